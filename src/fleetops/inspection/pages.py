"""Inspection pages: the fleet's outliers per hardware model, a run's report (its curve drawn over
its model's band), a host's results over time and a model's baselines.

The pages read `probe_runs` and `baselines` as stored: a verdict is written with its run and never
changes, so nothing here judges again. The report's chart is drawn by `static/inspection.js` from a
JSON data block in the page (the Content-Security-Policy forbids inline scripts, not data); the
table under it holds the same figures for readers without JavaScript.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from fleetops.auth.dependencies import Principal, SessionDep
from fleetops.dashboard.render import PageUser
from fleetops.dashboard.render import page as render_page
from fleetops.errors import BadRequest, NotFound
from fleetops.inspection.baselines import Band
from fleetops.inspection.enums import Outcome
from fleetops.kit.pagination import MAX_OFFSET
from fleetops.models import BaselineRow, ProbeRun

router = APIRouter(include_in_schema=False)

# the order outliers are listed in
STATUSES = (Outcome.FAIL, Outcome.ERROR, Outcome.INCONCLUSIVE, Outcome.PASS)
TONES: dict[str, str] = {
    Outcome.PASS: "ok",
    Outcome.FAIL: "bad",
    Outcome.INCONCLUSIVE: "warn",
    Outcome.ERROR: "muted",
}
OUTLIER_CAP = 500
HOST_RUNS = 200
RUN_HINT = "fleetops inspect run --target SELECTOR"
RunId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
Hostname = Annotated[str, Path(max_length=253)]
Model = Annotated[str, Path(max_length=64)]
Filter = Annotated[str, Query(max_length=64)]


# --- formatting ----------------------------------------------------------------------------------


def pct(ratio: float | None) -> str:
    """A ratio as whole percent, two significant digits below 10 % (as the verdicts word it)."""
    if ratio is None:
        return "—"
    percent = ratio * 100
    return f"{percent:.0f}" if abs(percent) >= 10 else f"{percent:.2g}"


def figure(value: float | None) -> str:
    """A measured figure: thousands grouped, three significant digits for small ones."""
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def tone(status: str) -> str:
    return TONES.get(status, "muted")


def page(
    request: Request, name: str, who: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    helpers = {"pct": pct, "figure": figure, "tone": tone, "run_hint": RUN_HINT}
    return render_page(request, name, who, status_code, **helpers, **context)


# --- curves against bands ------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One curve point of a run, with the band it was judged on (if any)."""

    label: str
    value: float | None  # None: the baseline has the point, the run does not
    unit: str
    band: Band | None
    ratio: float | None  # value / the model's median

    @property
    def below(self) -> bool:
        """Below its band: the points that fail a run."""
        return self.band is not None and self.value is not None and self.value < self.band.low

    @property
    def words(self) -> str:
        """Where the value sits, in the verdict's own words."""
        if self.band is not None and self.value is not None and self.band.median > 0:
            return self.band.describe(self.value)
        return f"{pct(self.ratio)} % of the model's median" if self.ratio is not None else ""


def bands_of(row: BaselineRow | None) -> dict[str, Band]:
    """A stored baseline's bands as `Band`s (the table keeps them as plain JSON)."""
    if row is None:
        return {}
    return {
        name: Band(
            median=float(b["median"]),
            mad=float(b.get("mad", 0.0)),
            low=float(b["low"]),
            high=float(b["high"]),
            unit=str(b.get("unit", "")),
        )
        for name, b in row.bands.items()
    }


def curve(run: ProbeRun, bands: dict[str, Band]) -> list[Point]:
    """The run's points in measured order, then any point its baseline has and it lacks."""
    points = []
    for label in [*run.points, *(name for name in bands if name not in run.points)]:
        value, band = run.points.get(label), bands.get(label)
        ratio = run.ratios.get(label)
        if ratio is None and value is not None and band is not None and band.median > 0:
            ratio = value / band.median
        unit = run.units.get(label) or (band.unit if band else "")
        points.append(Point(label, value, unit, band, ratio))
    return points


def worst(points: Sequence[Point]) -> Point | None:
    """The lowest point below its band, else the lowest against its median."""
    rated = [p for p in points if p.ratio is not None]
    low = [p for p in rated if p.below] or rated
    return min(low, key=lambda p: p.ratio or 0.0, default=None)


def chart_data(hostname: str, points: Sequence[Point]) -> dict[str, Any]:
    """What the chart script draws: every point raw and, with a band, in % of the median."""

    def share(value: float | None, band: Band | None) -> float | None:
        if value is None or band is None or band.median <= 0:
            return None
        return round(value / band.median * 100, 4)

    return {
        "host": hostname,
        "normalised": any(p.band is not None for p in points),
        "points": [
            {
                "label": p.label,
                "unit": p.unit,
                "value": p.value,
                "pct": share(p.value, p.band),
                "below": p.below,
                "median": p.band.median if p.band else None,
                "low": p.band.low if p.band else None,
                "high": p.band.high if p.band else None,
                "low_pct": share(p.band.low, p.band) if p.band else None,
                "high_pct": share(p.band.high, p.band) if p.band else None,
            }
            for p in points
        ],
    }


# --- queries -------------------------------------------------------------------------------------


def latest_ids() -> Select[tuple[int]]:
    """The id of every host's latest run of each probe."""
    rank = (
        func.row_number()
        .over(
            partition_by=(ProbeRun.hostname, ProbeRun.probe),
            order_by=(ProbeRun.at.desc(), ProbeRun.id.desc()),
        )
        .label("rank")
    )
    ranked = select(ProbeRun.id, rank).subquery()
    return select(ranked.c.id).where(ranked.c.rank == 1)


def baselines_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, BaselineRow]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.scalars(select(BaselineRow).where(BaselineRow.id.in_(wanted)))
    return {row.id: row for row in rows}


# --- the fleet's outliers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outlier:
    run: ProbeRun
    worst: Point | None  # for a fail: the point that failed it worst


@dataclass
class Group:
    """One hardware model and probe: its active baseline, latest-result counts and outliers."""

    model: str
    probe: str
    baseline: BaselineRow | None = None
    counts: dict[str, int] = field(default_factory=dict)
    outliers: list[Outlier] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _status(value: str) -> str:
    value = value.strip()
    if value and value not in STATUSES:
        raise BadRequest(f"status must be one of {' | '.join(STATUSES)}, not {value!r}")
    return value


def _groups(session: Session, model: str, probe: str, status: str) -> tuple[list[Group], int]:
    """The groups to show and how many outliers matched (at most OUTLIER_CAP are listed)."""
    runs: list[ColumnElement[bool]] = [ProbeRun.id.in_(latest_ids())]
    actives: list[ColumnElement[bool]] = [BaselineRow.active.is_(True)]
    if model:
        runs.append(ProbeRun.model == model)
        actives.append(BaselineRow.model == model)
    if probe:
        runs.append(ProbeRun.probe == probe)
        actives.append(BaselineRow.probe == probe)
    groups: dict[tuple[str, str], Group] = {}
    for row in session.scalars(select(BaselineRow).where(*actives)):
        groups[(row.model, row.probe)] = Group(row.model, row.probe, baseline=row)
    counted = session.execute(
        select(ProbeRun.model, ProbeRun.probe, ProbeRun.status, func.count())
        .where(*runs)
        .group_by(ProbeRun.model, ProbeRun.probe, ProbeRun.status)
    )
    for m, p, s, n in counted:
        groups.setdefault((m, p), Group(m, p)).counts[s] = n
    listed = [status] if status else [s for s in STATUSES if s is not Outcome.PASS]
    query = select(ProbeRun).where(*runs, ProbeRun.status.in_(listed))
    matched = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    found = list(session.scalars(query.order_by(ProbeRun.hostname).limit(OUTLIER_CAP)))
    judged_on = baselines_by_id(session, (r.baseline_id for r in found))
    for run in found:
        points = curve(run, bands_of(judged_on.get(run.baseline_id or 0)))
        group = groups.setdefault((run.model, run.probe), Group(run.model, run.probe))
        group.outliers.append(Outlier(run, worst(points) if run.status == Outcome.FAIL else None))
    shown = [g for g in groups.values() if not status or g.counts.get(status)]
    for g in shown:
        g.outliers.sort(key=_outlier_order)
    return sorted(shown, key=lambda g: (g.model, g.probe)), matched


def _outlier_order(o: Outlier) -> tuple[int, float, str]:
    ratio = o.worst.ratio if o.worst and o.worst.ratio is not None else 0.0
    return STATUSES.index(o.run.status), ratio, o.run.hostname


def _choices(session: Session) -> tuple[list[str], list[str]]:
    """Every model and probe that has a run or a baseline, for the filter menus."""
    models = set(session.scalars(select(ProbeRun.model).distinct()))
    models |= set(session.scalars(select(BaselineRow.model).distinct()))
    probes = set(session.scalars(select(ProbeRun.probe).distinct()))
    probes |= set(session.scalars(select(BaselineRow.probe).distinct()))
    return sorted(models), sorted(probes)


@router.get("/inspection", response_class=HTMLResponse)
def outliers(
    request: Request,
    session: SessionDep,
    who: PageUser,
    model: Filter = "",
    probe: Filter = "",
    status: Filter = "",
) -> HTMLResponse:
    """Per hardware model and probe: the active baseline, and the hosts whose latest result
    failed (worst point first), was inconclusive or errored; then how many passed."""
    model, probe, status = model.strip(), probe.strip(), _status(status)
    groups, matched = _groups(session, model, probe, status)
    models, probes = _choices(session)
    return page(
        request,
        "inspection/outliers.html",
        who,
        groups=groups,
        matched=matched,
        cap=OUTLIER_CAP,
        models=models,
        probes=probes,
        statuses=STATUSES,
        params={"model": model, "probe": probe, "status": status},
        filtered=bool(model or probe or status),
        anything=bool(models),
    )


# --- one run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """How busy the host was around the probe, as the verdict's load checks read it."""

    cpus: int
    per_cpu: float | None
    load1_before: float | None
    load1_after: float | None
    busy_before: float | None
    busy_during: float | None
    steal_during: float | None


def load_of(run: ProbeRun) -> Load | None:
    sample = run.load or {}
    if not sample:
        return None

    def get(name: str) -> float | None:
        value = sample.get(name)
        return float(value) if isinstance(value, int | float) else None

    cpus = int(sample.get("cpus") or 0)
    before = get("load1_before")
    return Load(
        cpus=cpus,
        per_cpu=before / cpus if before is not None and cpus > 0 else None,
        load1_before=before,
        load1_after=get("load1_after"),
        busy_before=get("busy_before"),
        busy_during=get("busy_during"),
        steal_during=get("steal_during"),
    )


@router.get("/inspection/runs/{run_id}", response_class=HTMLResponse)
def report(request: Request, run_id: RunId, session: SessionDep, who: PageUser) -> HTMLResponse:
    """One probe run: its verdict and reasons, the load it ran under, and its curve drawn over
    the band of the baseline it was judged on."""
    run = session.get(ProbeRun, run_id)
    if run is None:
        raise NotFound(f"inspection run {run_id} not found: the latest runs are at /inspection")
    baseline = session.get(BaselineRow, run.baseline_id) if run.baseline_id else None
    active = session.scalar(
        select(BaselineRow)
        .where(
            BaselineRow.model == run.model,
            BaselineRow.probe == run.probe,
            BaselineRow.active.is_(True),
        )
        .order_by(BaselineRow.version.desc())
        .limit(1)
    )
    points = curve(run, bands_of(baseline))
    return page(
        request,
        "inspection/report.html",
        who,
        run=run,
        baseline=baseline,
        active=active,
        points=points,
        worst=worst(points) if run.status == Outcome.FAIL else None,
        load=load_of(run),
        chart=chart_data(run.hostname, points),
    )


# --- one host ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostRun:
    run: ProbeRun
    baseline: BaselineRow | None
    worst: Point | None


@router.get("/inspection/hosts/{hostname}", response_class=HTMLResponse)
def host_runs(
    request: Request, hostname: Hostname, session: SessionDep, who: PageUser
) -> HTMLResponse:
    """A host's inspection results over time, newest first, one table per probe."""
    total = session.scalar(select(func.count()).where(ProbeRun.hostname == hostname)) or 0
    if not total:
        raise NotFound(
            f"no inspection result for host {hostname!r}: inspect it with "
            f"`fleetops inspect run --target {hostname}`"
        )
    found = list(
        session.scalars(
            select(ProbeRun)
            .where(ProbeRun.hostname == hostname)
            .order_by(ProbeRun.at.desc(), ProbeRun.id.desc())
            .limit(HOST_RUNS)
        )
    )
    judged_on = baselines_by_id(session, (r.baseline_id for r in found))
    by_probe: dict[str, list[HostRun]] = {}
    for run in found:
        baseline = judged_on.get(run.baseline_id or 0)
        points = curve(run, bands_of(baseline))
        row = HostRun(run, baseline, worst(points) if run.status == Outcome.FAIL else None)
        by_probe.setdefault(run.probe, []).append(row)
    return page(
        request,
        "inspection/host.html",
        who,
        hostname=hostname,
        model=found[0].model,
        by_probe=dict(sorted(by_probe.items())),
        total=total,
        shown=len(found),
    )


# --- one model's baselines -----------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeBaselines:
    probe: str
    active: BaselineRow | None
    bands: dict[str, Band]
    versions: list[BaselineRow]


@router.get("/baselines/{model}", response_class=HTMLResponse)
def model_baselines(
    request: Request, model: Model, session: SessionDep, who: PageUser
) -> HTMLResponse:
    """A hardware model's active baseline of each probe with its bands, and every version."""
    rows = list(
        session.scalars(
            select(BaselineRow)
            .where(BaselineRow.model == model)
            .order_by(BaselineRow.probe, BaselineRow.version.desc(), BaselineRow.id.desc())
        )
    )
    if not rows:
        raise NotFound(
            f"no baseline for hardware model {model!r}: build one with `fleetops baseline build` "
            "from the inspection results of its healthy hosts"
        )
    probes: dict[str, list[BaselineRow]] = {}
    for row in rows:
        probes.setdefault(row.probe, []).append(row)
    sections = []
    for probe, versions in probes.items():
        active = next((v for v in versions if v.active), None)
        sections.append(ProbeBaselines(probe, active, bands_of(active), versions))
    hosts = session.scalar(
        select(func.count(func.distinct(ProbeRun.hostname))).where(ProbeRun.model == model)
    )
    return page(
        request, "inspection/baselines.html", who, model=model, sections=sections, hosts=hosts
    )
