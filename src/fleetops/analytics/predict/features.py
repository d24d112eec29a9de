"""Features per drive and day, computed in DuckDB over table `smart`, and the label to learn.

A drive's day sees only its own past: raw counters (log-scaled), their rise over the last 1 and
7 days, whether they ever rose, their 7-day slope, and a value relative to its model's fleet
that day (the same temperature or read-error rate means different things on different models).
The label of a day is whether the drive fails within the next `horizon` days (the failure day
itself included), as far as the history read tells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import numpy.typing as npt

# Error counters: they only grow on a healthy drive, and growth is the signal.
COUNTERS = (5, 187, 188, 197, 198)
# Gauges: read-error rate, power-on hours and temperature, meaningful against the model's fleet.
GAUGES = (1, 9, 194)
TRENDED = (1, 5, 194, 197)


@dataclass(frozen=True, slots=True)
class Frame:
    """Feature matrix with who and when each row is, and what is known of its future."""

    names: tuple[str, ...]
    x: npt.NDArray[np.float64]
    serial: npt.NDArray[np.str_]
    model: npt.NDArray[np.str_]
    day: npt.NDArray[np.int64]  # days since 1970-01-01
    fail_day: npt.NDArray[np.int64]  # the drive's failure day in the history, -1 if none
    raw5: npt.NDArray[np.float64]
    raw197: npt.NDArray[np.float64]

    def label(self, horizon: int, *, known_until: int | None = None) -> npt.NDArray[np.bool_]:
        """Whether each row's drive fails within `horizon` days, counting only failures seen
        by `known_until` (a training label must not use the test period)."""
        seen = self.fail_day >= 0
        if known_until is not None:
            seen &= self.fail_day <= known_until
        ahead = self.fail_day - self.day
        return seen & (ahead >= 0) & (ahead < horizon)


def names() -> tuple[str, ...]:
    """The feature names, in column order."""
    out: list[str] = []
    for n in COUNTERS:
        out += [f"log_raw_{n}", f"delta1_{n}", f"delta7_{n}", f"ever_rose_{n}"]
    for n in (*GAUGES, *COUNTERS):
        out.append(f"model_z_{n}")
    for n in TRENDED:
        out.append(f"slope7_{n}")
    return tuple(out)


def _sql() -> str:
    drive = "partition by serial order by day"
    week = f"({drive} range between interval 7 days preceding and current row)"
    logs = ", ".join(f"ln(1 + greatest(coalesce(s{n}, 0), 0)) as l{n}" for n in COUNTERS)
    step = ", ".join(
        f"coalesce(s{n} - lag(s{n}) over ({drive}), 0) as d1_{n}, "
        f"coalesce(s{n} - first_value(s{n} ignore nulls) over {week}, 0) as d7_{n}"
        for n in COUNTERS
    )
    slopes = ", ".join(
        f"coalesce(regr_slope(s{n}, epoch(day) / 86400) over {week}, 0) as slope7_{n}"
        for n in TRENDED
    )
    first = f"select *, {logs}, {step}, {slopes} from smart"
    cols = []
    for n in COUNTERS:
        cols += [
            f"l{n}",
            f"d1_{n}",
            f"d7_{n}",
            f"(max(d1_{n} > 0) over ({drive} rows unbounded preceding))::double",
        ]
    fleet = "over (partition by model, day)"
    for n in GAUGES:
        cols.append(
            f"coalesce((s{n} - avg(s{n}) {fleet}) / nullif(stddev_pop(s{n}) {fleet}, 0), 0)"
        )
    for n in COUNTERS:
        cols.append(
            f"coalesce((l{n} - avg(l{n}) {fleet}) / nullif(stddev_pop(l{n}) {fleet}, 0), 0)"
        )
    cols += [f"slope7_{n}" for n in TRENDED]
    features = ", ".join(f"{c} as f{i}" for i, c in enumerate(cols))
    return f"""
with steps as ({first}),
failed as (select serial, min(day) as fail_day from smart where failure = 1 group by serial)
select {features}, steps.serial, model, (epoch(day) / 86400)::bigint as day_n,
       coalesce((epoch(fail_day) / 86400)::bigint, -1) as fail_n,
       coalesce(s5, 0) as raw5, coalesce(s197, 0) as raw197
from steps left join failed using (serial)
order by day, steps.serial"""


def build(db: duckdb.DuckDBPyConnection) -> Frame:
    """Every drive-day of table `smart` as a feature row."""
    import numpy as np

    columns = db.execute(_sql()).fetchnumpy()
    feature_names = names()
    x = np.column_stack(
        [np.asarray(columns[f"f{i}"], dtype=np.float64) for i in range(len(feature_names))]
    )
    return Frame(
        names=feature_names,
        x=np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0),
        serial=np.asarray(columns["serial"], dtype=np.str_),
        model=np.asarray(columns["model"], dtype=np.str_),
        day=np.asarray(columns["day_n"], dtype=np.int64),
        fail_day=np.asarray(columns["fail_n"], dtype=np.int64),
        raw5=np.asarray(columns["raw5"], dtype=np.float64),
        raw197=np.asarray(columns["raw197"], dtype=np.float64),
    )
