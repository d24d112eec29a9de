"""Rank drives by failure risk on a day, and measure that ranking on a time split.

Both learn only from what was known at the time: `rank` trains on the days up to `as_of`
(labels from failures seen by then) and scores that day; `evaluate` trains on the days up to
`train_until` and scores each later day with features from the drives' whole past.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fleetops.analytics.predict import features, reader, scoring
from fleetops.analytics.predict.model import fit

EPOCH = date(1970, 1, 1)


def _frame(history: Path, until: date | None) -> features.Frame:
    import duckdb

    db = duckdb.connect()
    try:
        db.execute("set TimeZone = 'UTC'")
        db.execute("set enable_progress_bar = false")
        reader.load(db, history, as_of=until)
        return features.build(db)
    finally:
        db.close()


def _day(n: int) -> date:
    return EPOCH + timedelta(days=n)


def _learn(frame: features.Frame, train: Any, *, horizon: int, known_until: int) -> Any:
    """Fit on the training rows and pick the threshold there; (model, threshold)."""
    labels = frame.label(horizon, known_until=known_until)
    model = fit(frame.x[train], labels[train])
    fail_known = frame.fail_day.copy()
    fail_known[fail_known > known_until] = -1
    threshold = scoring.choose_threshold(
        frame.serial[train],
        frame.day[train],
        fail_known[train],
        model.score(frame.x[train]),
        horizon=horizon,
    )
    return model, threshold


def rank(history: Path, *, as_of: date, horizon: int = 14) -> list[dict[str, Any]]:
    """Every drive seen on `as_of`, highest risk first, flagged above the training threshold."""
    frame = _frame(history, as_of)
    today = (as_of - EPOCH).days
    if not (frame.day == today).any():
        raise ValueError(f"no drive reported on {as_of}: the history has no file for that day")
    model, threshold = _learn(frame, frame.day <= today, horizon=horizon, known_until=today)
    now = frame.day == today
    scores = model.score(frame.x[now])
    rows: list[dict[str, Any]] = [
        {
            "serial_number": str(s),
            "model": str(m),
            "score": round(float(p), 6),
            "predicted_failure": bool(p >= threshold),
        }
        for s, m, p in zip(frame.serial[now], frame.model[now], scores, strict=True)
    ]
    rows.sort(key=lambda row: (-row["score"], row["serial_number"]))
    return rows


def evaluate(
    history: Path, *, train_until: date, horizon: int = 14, test_until: date | None = None
) -> dict[str, Any]:
    """Train up to `train_until`, test on the later days (up to `test_until`): the model at its
    training threshold next to the rule "SMART 5 or 197 raw > 0", per drive."""
    frame = _frame(history, test_until)
    cut = (train_until - EPOCH).days
    train, test = frame.day <= cut, frame.day > cut
    if not test.any():
        raise ValueError(f"no day after --train-until {train_until} to test on")
    model, threshold = _learn(frame, train, horizon=horizon, known_until=cut)
    args = (frame.serial[test], frame.day[test], frame.fail_day[test])
    flags = model.score(frame.x[test]) >= threshold
    baseline = (frame.raw5[test] > 0) | (frame.raw197[test] > 0)
    train_fail = {s for s, f in zip(frame.serial, frame.fail_day, strict=True) if 0 <= f <= cut}
    return {
        "split": {
            "train": [_day(int(frame.day.min())).isoformat(), train_until.isoformat()],
            "test": [_day(cut + 1).isoformat(), _day(int(frame.day.max())).isoformat()],
            "horizon_days": horizon,
            "train_failures": len(train_fail),
            "threshold": round(threshold, 6),
        },
        "model": scoring.outcome(*args, flags, horizon=horizon).as_dict(),
        "baseline": scoring.outcome(*args, baseline, horizon=horizon).as_dict(),
    }
