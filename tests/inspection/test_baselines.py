"""Baselines and verdicts on constructed results, with exact expected outcomes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleetops.inspection.baselines import Baseline, judge
from fleetops.inspection.probes import LoadSample
from tests.inspection.factories import IDLE, result

HEALTHY = [
    {"qd1": 1000.0, "qd32": 50000.0},
    {"qd1": 1010.0, "qd32": 49000.0},
    {"qd1": 990.0, "qd32": 51000.0},
    {"qd1": 1020.0, "qd32": 50500.0},
    {"qd1": 980.0, "qd32": 49500.0},
]


def model_baseline(n: int = 5) -> Baseline:
    return Baseline.build([result(p) for p in HEALTHY[:n]])


def test_build_takes_median_and_mad_and_widens_a_tight_band_to_ten_percent() -> None:
    base = model_baseline()
    qd1 = base.bands["qd1"]
    assert (qd1.median, qd1.mad) == (1000.0, 10.0)
    # 4·MAD = 40 is tighter than ±10 % of the median, so the band is 900–1100
    assert (qd1.low, qd1.high) == (900.0, 1100.0)
    assert base.samples == 5
    assert qd1.unit == "IOPS"


def test_build_uses_k_mad_when_the_machines_spread_more() -> None:
    spread = [{"qd1": v} for v in (600.0, 800.0, 1000.0, 1200.0, 1400.0)]
    band = Baseline.build([result(p) for p in spread]).bands["qd1"]
    assert (band.median, band.mad, band.low, band.high) == (1000.0, 200.0, 200.0, 1800.0)


def test_build_refuses_mixed_probes_and_nothing() -> None:
    with pytest.raises(ValueError, match="mix probes"):
        Baseline.build([result({"a": 1.0}), result({"a": 1.0}, probe="cpu")])
    with pytest.raises(ValueError, match="at least one"):
        Baseline.build([])


def test_a_machine_inside_the_band_passes() -> None:
    verdict = judge(result({"qd1": 950.0, "qd32": 52000.0}), model_baseline())
    assert verdict.status == "pass"
    assert verdict.ratios == {"qd1": 0.95, "qd32": 1.04}
    assert verdict.reasons == [
        "all 2 points within their band; lowest qd1: 95 % of the model's median (band 90–110 %)"
    ]


def test_faster_than_the_band_is_no_failure() -> None:
    assert judge(result({"qd1": 5000.0, "qd32": 90000.0}), model_baseline()).status == "pass"


def test_a_slow_machine_fails_naming_the_worst_points_first() -> None:
    verdict = judge(result({"qd1": 880.0, "qd32": 10500.0}), model_baseline())
    assert verdict.status == "fail"
    assert verdict.reasons == [
        "qd32: 21 % of the model's median (band 90–110 %)",
        "qd1: 88 % of the model's median (band 90–110 %)",
    ]


@pytest.mark.parametrize(
    ("load", "reason"),
    [
        (
            replace(IDLE, load1_before=6.0),
            "the machine was busy: 1-minute load 6 on 8 CPUs (0.75 per CPU, limit 0.5)",
        ),
        (
            replace(IDLE, busy_before=0.9),
            "the machine was busy: CPUs 90 % busy before the probe (limit 25 %)",
        ),
        (
            replace(IDLE, steal_during=0.2),
            "the hypervisor stole 20 % of CPU time during the probe (limit 5 %)",
        ),
    ],
)
def test_a_busy_machine_is_inconclusive_even_when_slow(load: LoadSample, reason: str) -> None:
    slow = result({"qd1": 100.0, "qd32": 100.0}, load=load)
    verdict = judge(slow, model_baseline())
    assert verdict.status == "inconclusive"
    assert verdict.reasons == [reason]
    assert verdict.ratios == {"qd1": 0.1, "qd32": 0.002}


def test_busy_thresholds_are_the_callers() -> None:
    busy = result({"qd1": 1000.0, "qd32": 50000.0}, load=replace(IDLE, busy_before=0.9))
    assert judge(busy, model_baseline(), busy_cpu=0.95).status == "pass"


def test_a_thin_baseline_or_a_missing_point_is_inconclusive() -> None:
    verdict = judge(result({"qd1": 100.0, "qd32": 100.0}), model_baseline(4))
    assert verdict.status == "inconclusive"
    assert verdict.reasons == ["the baseline has 4 healthy machines, at least 5 needed"]

    verdict = judge(result({"qd1": 100.0}), model_baseline())
    assert verdict.status == "inconclusive"
    assert verdict.reasons == ["the result lacks the point(s) qd32"]
    assert verdict.ratios == {"qd1": 0.1}


def test_a_result_of_another_probe_is_refused() -> None:
    with pytest.raises(ValueError, match="cpu result cannot be judged on a disk baseline"):
        judge(result({"qd1": 1.0}, probe="cpu"), model_baseline())


def test_a_collapsed_point_reads_in_two_digits_not_zero() -> None:
    verdict = judge(result({"qd1": 1000.0, "qd32": 61.0}), model_baseline())
    assert verdict.reasons == ["qd32: 0.12 % of the model's median (band 90–110 %)"]


def test_a_band_of_a_scattered_point_stops_at_zero() -> None:
    spread = [{"qd1": v} for v in (100.0, 500.0, 1000.0, 1500.0, 1900.0)]
    band = Baseline.build([result(p) for p in spread]).bands["qd1"]
    assert (band.median, band.mad, band.low, band.high) == (1000.0, 500.0, 0.0, 3000.0)
