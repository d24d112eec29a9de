"""Pushing named metrics and reading them back, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.metrics import service
from fleetops.metrics.schemas import MetricPoint
from fleetops.sim import business
from tests.fixtures.app import Tokens
from tests.logs.ingest_helpers import ingest_token


def now() -> datetime:
    return datetime.now(UTC)


def window(at: datetime) -> str:
    return service.window_start(at).isoformat()


def push(client: TestClient, headers: dict[str, str], *points: dict[str, object]):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/metrics", json={"points": list(points)}, headers=headers)


def test_samples_fold_into_windows_as_means_and_rates(client: TestClient, tokens: Tokens) -> None:
    pusher = ingest_token(client, tokens)
    at = service.window_start(now() - timedelta(seconds=30)) + timedelta(seconds=1)
    stamp = at.isoformat()
    answer = push(
        client,
        pusher,
        {"name": "shop.tps", "value": 30, "kind": "count", "time": stamp},
        {"name": "shop.tps", "value": 50, "kind": "count", "time": stamp, "labels": {"dc": "b"}},
        {"name": "queue.depth", "value": 4, "time": stamp},
        {"name": "queue.depth", "value": 8, "time": stamp},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": 4, "windows": 3}
    # a second push into the same window adds up, it does not overwrite
    assert (
        push(
            client, pusher, {"name": "shop.tps", "value": 20, "kind": "count", "time": stamp}
        ).status_code
        == 202
    )

    viewer = tokens.headers("viewer")
    listed = client.get("/api/v1/metrics", headers=viewer).json()
    assert listed == [
        {"name": "queue.depth", "kind": "gauge", "series": 1},
        {"name": "shop.tps", "kind": "count", "series": 2},
    ]
    tps = client.get("/api/v1/metrics/shop.tps", headers=viewer).json()
    assert tps["kind"] == "count"
    assert [p["value"] for p in tps["points"]] == [10.0]  # (30 + 20 + 50) per 10 s
    depth = client.get("/api/v1/metrics/queue.depth", headers=viewer).json()
    assert [p["value"] for p in depth["points"]] == [6.0]  # the mean of 4 and 8
    assert tps["band"] is None  # no history yet


def test_bad_points_refuse_the_whole_batch_and_say_which(
    client: TestClient, tokens: Tokens
) -> None:
    pusher = ingest_token(client, tokens)
    good = {"name": "ok.metric", "value": 1}
    cases = [
        ({"name": "bad name!", "value": 1}, "points.1.name"),
        (
            {"name": "x", "value": 1, "time": (now() - timedelta(days=30)).isoformat()},
            "points[1].time",
        ),
        ({"name": "x", "value": -3, "kind": "count"}, "a count cannot be negative"),
        ({"name": "x", "value": 1, "unit": "s"}, "points.1.unit"),
        ({"name": "x", "value": 1, "kind": "histogram"}, "points.1.kind"),
    ]
    for bad, said in cases:
        answer = push(client, pusher, good, bad)
        assert answer.status_code == 422, answer.text
        assert said in answer.json()["detail"], answer.json()
    not_finite = client.post(
        "/api/v1/metrics",
        content=b'{"points": [{"name": "x", "value": NaN}]}',
        headers={**pusher, "Content-Type": "application/json"},
    )
    assert not_finite.status_code == 422
    assert client.get("/api/v1/metrics", headers=tokens.headers("viewer")).json() == []  # nothing

    assert push(client, pusher, {"name": "jobs", "value": 1, "kind": "count"}).status_code == 202
    conflict = push(client, pusher, {"name": "jobs", "value": 1})
    assert conflict.status_code == 409
    assert "jobs is a count, not a gauge" in conflict.json()["detail"]


def test_only_an_ingest_token_pushes(client: TestClient, tokens: Tokens) -> None:
    point = {"name": "x", "value": 1}
    assert push(client, {}, point).status_code == 401
    assert push(client, {}, {"bad": "body"}).status_code == 401  # before the body is looked at
    refused = push(client, tokens.headers("admin"), point)  # a user's API token, even an admin's
    assert refused.status_code == 403
    assert "create an ingest token" in refused.json()["detail"]
    assert client.get("/api/v1/metrics").status_code == 401  # reading needs a login


def test_the_band_is_the_same_time_of_day_on_the_previous_week(
    db_url: str, client: TestClient
) -> None:
    """The demo's week of history gives a band around its normal rate; a peak falls outside."""
    moment = now()
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        business.backfill(session, now=moment, hours_after=0.5)
        peak = business.normal_tps(moment) * 10 * service.WINDOW_SECONDS
        service.record(
            session,
            [
                MetricPoint(
                    name=business.TRANSACTIONS,
                    value=peak,
                    kind="count",
                    time=moment - timedelta(seconds=15),
                )
            ],
            now=moment,
        )
    with sessions() as session:
        band = service.band(session, business.TRANSACTIONS, moment)
        _, points = service.values(
            session, business.TRANSACTIONS, moment - timedelta(minutes=1), moment
        )
    engine.dispose()
    assert band is not None
    usual = business.normal_tps(moment)
    assert band[0] < usual < band[1]
    assert band[1] < usual * 1.2
    assert points[-1][1] > band[1] * 5  # the peak stands far above it
