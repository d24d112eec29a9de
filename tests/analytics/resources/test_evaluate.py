"""The replay's arithmetic on a tiny trace, and `fleetops resources evaluate` on the sample."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fleetops.analytics.resources.evaluate import evaluate
from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_USAGE
from tests.analytics.resources.test_traces import write_trace
from tests.fixtures.server import run_cli

SAMPLE = Path(__file__).resolve().parents[4] / "shared" / "data" / "traces" / "alibaba2018"


def test_slack_and_violations_are_worked_out_exactly(tmp_path: Path) -> None:
    train = write_trace(
        tmp_path / "train",
        "0,j_1,M1,30,50,0.5,2\n",
        "0,j_1,M1,i1,30,10,0.1\n0,j_1,M1,i2,30,20,0.2\n",
    )
    test = write_trace(
        tmp_path / "test",
        "0,j_2,M1,30,50,0.5,2\n",
        "0,j_2,M1,i1,10,10,0.1\n0,j_2,M1,i2,30,30,0.3\n",
    )
    report = evaluate(train, test, split_at=None)
    # requests (cores, the trace's hundredths / 100): 0.5 x 40 allocated; unused
    # 0.4 x 10 + 0.2 x 30 = 10; nothing over
    assert report["request"]["cpu"] == {
        "slack": 0.5,
        "violation_rate": 0.0,
        "shortfall": 0.0,
        "allocated": 20.0,
        "used": 10.0,
    }
    # memory 0.5 x 40 allocated, unused 0.4 x 10 + 0.2 x 30 = 10 of it
    assert report["request"]["mem"]["slack"] == 0.5
    # KRR: CPU p95 of (0.1, 0.2) is 0.2. i1 leaves 0.1 x 10 unused, i2 runs 0.1 over for 30 s:
    # its over-use is a shortfall (3 of the 10 used), not netted against i1's unused 1
    krr = report["methods"]["krr"]
    assert krr["cpu"] == {
        "slack": 0.125,
        "violation_rate": 0.5,
        "shortfall": 0.3,
        "allocated": 8.0,
        "used": 10.0,
    }
    # memory max 0.2 x 1.15 = 0.23: i1 leaves 0.13 x 10 = 1.3 of 9.2, i2 misses 0.07 x 30 = 2.1
    assert krr["mem"]["allocated"] == pytest.approx(9.2)
    assert krr["mem"]["slack"] == pytest.approx(round(1.3 / 9.2, 4))
    assert krr["mem"]["shortfall"] == pytest.approx(0.21)
    assert krr["mem"]["violation_rate"] == 0.5
    assert report["counts"] == {"test_instances": 2, "unseen_group_instances": 0}


def test_an_unseen_group_falls_back_to_its_profile(tmp_path: Path) -> None:
    train = write_trace(tmp_path / "a", "0,j_1,M1,30,50,0.5,1\n", "0,j_1,M1,i1,30,10,0.1\n")
    test = write_trace(tmp_path / "b", "0,j_2,R1,30,50,0.5,1\n", "0,j_2,R1,i1,30,10,0.1\n")
    report = evaluate(train, test, split_at=None)
    assert report["counts"]["unseen_group_instances"] == 1
    # the profile (50, 0.5) was seen: KRR's 0.1 x 30 allocated, not the request's 0.5 x 30
    assert report["methods"]["krr"]["cpu"]["allocated"] == pytest.approx(3.0)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}


def test_errors_say_what_and_where(tmp_path: Path) -> None:
    bad = write_trace(
        tmp_path / "t", "0,j_1,M1,30,50,0.5,1\n", "0,j_1,M1,i1,-30,10,0.1\n", gz=False
    )
    result = run_cli(env(), "resources", "evaluate", "--train", str(bad), "--test", str(bad),
                     "--split-at", "1")  # fmt: skip
    assert result.returncode == EXIT_ERROR
    assert "batch_instances_x.csv line 1: duration_s '-30': negative" in result.stderr
    unsplit = run_cli(env(), "resources", "evaluate", "--train", str(bad), "--test", str(bad))
    assert unsplit.returncode == EXIT_USAGE
    assert "give --split-at" in unsplit.stderr


@pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"{SAMPLE} (the shared data) is absent")
@pytest.mark.xfail(
    strict=True,
    reason="not met: on train 0-600 s / test 600-1200 s fleetops' memory slack is 7 % below "
    "VPA's at slightly more violations, and its CPU slack no lower: within-group usage drifts "
    "between periods, so cuts that look safe in training violate (docs/resources.md)",
)
def test_fleetops_beats_vpa_on_the_acceptance_split() -> None:
    args = ("--train", str(SAMPLE), "--test", str(SAMPLE), "--split-at", "600", "-o", "json")
    result = run_cli(env(), "resources", "evaluate", *args, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["counts"]["test_instances"] == 503_114
    vpa, ours = report["methods"]["vpa"], report["methods"]["fleetops"]
    for resource in ("cpu", "mem"):
        assert ours[resource]["violation_rate"] <= vpa[resource]["violation_rate"]
        assert ours[resource]["slack"] <= 0.75 * vpa[resource]["slack"]
