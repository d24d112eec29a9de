"""Event-time windows over the committed line stream.

Lines arrive from the ingest pipeline after commit. Extraction rules turn some into events (task
durations, job lifecycle, block transfers, error signatures); every line also counts for its
template. Events fall into fixed 10 s and 1 min windows by their own time; a window is final once
the watermark (the newest event time seen, minus an allowed lateness) has passed its end, and is
then handed over as rows for the rollup tables. A line later than that is counted as late and left
out of the rollups (it is still stored raw). Detectors read the recent-event buffers kept here.
Memory is bounded: open windows are few, buffers are trimmed by age and capped in length."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

from fleetops.inventory.service import Topology
from fleetops.kit.sketch import DDSketch
from fleetops.logs.aggregate.rules import Event, Rule, Rules
from fleetops.logs.ingest.pipeline import StoredLine
from fleetops.logs.parse.tokens import Bounded

SHORT, LONG = 10, 60  # window lengths, seconds
HISTORY = timedelta(minutes=10)  # how far back detectors can look
SLOW_FACTOR = 2.5  # a transfer this many times below its path's usual throughput is slow
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = bytes.maketrans(b"123456789", b"000000000")


def window_start(ts: datetime, seconds: int) -> datetime:
    offset = (ts - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=math.floor(offset / seconds) * seconds)


@dataclass(slots=True)
class Task:
    ts: datetime
    host: str
    stage: tuple[str, str]
    ms: float
    ratio: float | None  # duration / the stage's median when the stage had enough peers


@dataclass(slots=True)
class Transfer:
    """A block moved (or failing to move) from `src` to `dst`; `disk` is the host whose disk it
    was read from or written to (the server's), so slowness can be told apart from the network."""

    ts: datetime
    src: str  # hostnames
    dst: str
    src_rack: str
    dst_rack: str
    disk: str
    ms: float
    mbps: float
    slow: bool
    failed: bool = False

    @property
    def local(self) -> bool:
        return self.src == self.dst


@dataclass
class _LinkCell:
    transfers: int = 0
    bytes: int = 0
    slow: int = 0
    ms: DDSketch = field(default_factory=DDSketch)
    mbps: DDSketch = field(default_factory=DDSketch)


@dataclass
class _Window:
    start: datetime
    seconds: int
    links: dict[tuple[str, str], _LinkCell] = field(default_factory=dict)
    jobs: DDSketch = field(default_factory=DDSketch)
    tasks: DDSketch = field(default_factory=DDSketch)
    templates: dict[int, list[Any]] = field(default_factory=dict)  # id -> [count, hosts set]
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    host_tasks: dict[str, list[float]] = field(default_factory=dict)
    host_failed: dict[str, int] = field(default_factory=dict)
    host_ratios: dict[str, list[float]] = field(default_factory=dict)
    job_tasks: dict[str, list[int]] = field(default_factory=dict)  # app -> [finished, failed]


@dataclass
class Job:
    app_id: str
    host: str
    state: str
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


@dataclass
class Closed:
    """Everything a set of final windows contributes to the rollup tables."""

    watermark: datetime
    latency: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    host_tasks: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    # Task counts per job from final 1 min windows: added to the job rows. A minute window is
    # saved once (a replay starts after the last saved one), so the additions are never repeated.
    job_tasks: list[dict[str, Any]] = field(default_factory=list)
    windows_closed: list[datetime] = field(default_factory=list)  # short-window ends, in order
    # Where a restart replays from once these rows are saved: taken when they were closed, so a
    # later window still waiting to be saved is never skipped.
    resume_from: datetime = _EPOCH


_TERMINAL = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}


class Aggregator:
    def __init__(
        self,
        rules: Rules,
        topology: Callable[[], Topology],
        *,
        lateness: timedelta = timedelta(seconds=5),
        watermark: datetime | None = None,
        max_buffer: int = 500_000,
    ) -> None:
        self.rules = rules
        self.topology = topology()
        self.lateness = lateness
        self.watermark = watermark  # windows ending at or before it are final
        self.max_ts: datetime | None = None
        self.late = 0
        self.lines = 0
        self._windows: dict[tuple[int, datetime], _Window] = {}
        self.tasks: deque[Task] = deque(maxlen=max_buffer)
        self.transfers: deque[Transfer] = deque(maxlen=max_buffer)
        self.signatures: deque[tuple[datetime, str, str]] = deque(maxlen=max_buffer)
        self.template_minutes: dict[int, deque[tuple[datetime, int]]] = {}
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._changed_jobs: set[str] = set()
        self._stages: OrderedDict[tuple[str, str], _Peers] = OrderedDict()
        self._rules_index: _RuleIndex | None = None
        self._baseline: dict[str, deque[float]] = {}
        self._baseline_median: dict[str, float] = {}
        self._baseline_dirty: dict[str, int] = {}

    # --- input ---------------------------------------------------------------------------------

    def add(self, lines: Sequence[StoredLine]) -> None:
        index = self._rule_index()
        known = index.known  # the hot generation of its cache, looked up inline
        watermark, max_ts = self.watermark, self.max_ts
        windows: dict[tuple[int, int], tuple[_Window, _Window]] = {}  # by window index
        count = late = 0
        try:
            for line in lines:
                count += 1
                ts = line.ts
                if watermark is not None and ts < watermark:
                    late += 1
                    continue
                if max_ts is None or ts > max_ts:
                    max_ts = ts
                offset = (ts - _EPOCH).total_seconds()
                at = (math.floor(offset / SHORT), math.floor(offset / LONG))
                pair = windows.get(at)
                if pair is None:
                    pair = windows[at] = (self._window(SHORT, ts), self._window(LONG, ts))
                short, long = pair
                entry = long.templates.get(line.template_id)
                if entry is None:
                    long.templates[line.template_id] = [1, {line.host}]
                else:
                    entry[0] += 1
                    if len(entry[1]) < 1000:
                        entry[1].add(line.host)
                content = line.content
                key = content.encode("utf-8", "surrogatepass").translate(_ZERO)
                rules = known.get(key) or index.candidates(key)
                if not rules.rules:
                    continue
                event = rules.match(content, line.source)
                if event is not None:
                    self.max_ts = max_ts  # what the event handlers see is up to date
                    self._event(event, ts, line, short, long)
        finally:
            self.lines += count
            self.late += late
            self.max_ts = max_ts

    def _event(
        self, event: Event, ts: datetime, line: StoredLine, short: _Window, long: _Window
    ) -> None:
        f = event.fields
        if event.kind == "signature":
            signature = event.rule.signature
            # a disk a little slow now and then is normal; many times its threshold is failing
            if "threshold" in f and "ms" in f and int(f["ms"]) < 3 * int(f["threshold"]):
                signature += "_minor"
            key = (f.get("host") or line.host, signature)
            long.errors[key] = long.errors.get(key, 0) + 1
            self.signatures.append((ts, key[0], signature))
        elif event.kind == "transfer":
            self._transfer(ts, f, short, long)
        elif event.kind == "transfer_failed":
            self._failed_transfer(ts, line, f, short, long)
        elif event.kind == "task_finished":
            self._task(ts, line, f, short, long)
        elif event.kind == "task_failed":
            host = f.get("host") or line.host
            long.host_failed[host] = long.host_failed.get(host, 0) + 1
            app = line.labels.get("application")
            if app:
                long.job_tasks.setdefault(app, [0, 0])[1] += 1
        elif event.kind == "job_state":
            self._job(ts, line.host, f, short, long)

    def _rule_index(self) -> _RuleIndex:
        if self._rules_index is None or self._rules_index.rules is not self.rules:
            self._rules_index = _RuleIndex(self.rules)
        return self._rules_index

    def _window(self, seconds: int, ts: datetime) -> _Window:
        start = window_start(ts, seconds)
        window = self._windows.get((seconds, start))
        if window is None:
            window = self._windows[(seconds, start)] = _Window(start, seconds)
        return window

    def _transfer(self, ts: datetime, f: dict[str, str], short: _Window, long: _Window) -> None:
        topo = self.topology
        src = topo.host_of_address.get(f.get("src", ""))
        dst = topo.host_of_address.get(f.get("dst", ""))
        if src is None or dst is None:
            return
        src_rack, dst_rack = topo.rack_of.get(src, "?"), topo.rack_of.get(dst, "?")
        ns = max(int(f.get("ns", "0")), 1)
        size = int(f.get("bytes", "0"))
        op = f.get("op", "READ")
        ms = ns / 1e6
        mbps = size / 1e6 / (ns / 1e9)
        if src == dst:
            path = "local"
        elif src_rack == dst_rack:
            path = "intra"
        elif topo.dc_of_rack.get(src_rack) == topo.dc_of_rack.get(dst_rack):
            path = "cross"
        else:
            path = "dci"
        key = f"{path}:{op}"
        base = self._baseline_median.get(key)
        slow = base is not None and mbps < base / SLOW_FACTOR
        if not slow:  # the baseline learns from healthy-looking transfers only
            samples = self._baseline.get(key)
            if samples is None:
                samples = self._baseline[key] = deque(maxlen=2000)
            samples.append(mbps)
            self._baseline_dirty[key] = self._baseline_dirty.get(key, 0) + 1
            if len(samples) >= 50 and (base is None or self._baseline_dirty[key] >= 200):
                self._baseline_median[key] = median(samples)
                self._baseline_dirty[key] = 0
        disk = dst if op == "WRITE" else src
        self.transfers.append(Transfer(ts, src, dst, src_rack, dst_rack, disk, ms, mbps, slow))
        if src == dst:
            return
        for window in (short, long):
            cell = window.links.get((src_rack, dst_rack))
            if cell is None:
                cell = window.links[(src_rack, dst_rack)] = _LinkCell()
            cell.transfers += 1
            cell.bytes += size
            cell.slow += slow
            cell.ms.add(ms)
            cell.mbps.add(mbps)

    def _failed_transfer(
        self, ts: datetime, line: StoredLine, f: dict[str, str], short: _Window, long: _Window
    ) -> None:
        """A transfer that could not connect or was reset: slow by definition, no disk blamed."""
        topo = self.topology
        src = topo.host_of_address.get(f.get("src", ""))
        dst = topo.host_of_address.get(f["dst"]) if "dst" in f else line.host
        if src is None or dst is None or src == dst:
            return
        src_rack, dst_rack = topo.rack_of.get(src, "?"), topo.rack_of.get(dst, "?")
        self.transfers.append(Transfer(ts, src, dst, src_rack, dst_rack, "", 0.0, 0.0, True, True))
        for window in (short, long):
            cell = window.links.get((src_rack, dst_rack))
            if cell is None:
                cell = window.links[(src_rack, dst_rack)] = _LinkCell()
            cell.transfers += 1
            cell.slow += 1

    def _task(
        self, ts: datetime, line: StoredLine, f: dict[str, str], short: _Window, long: _Window
    ) -> None:
        host = f.get("host") or line.host
        ms = float(f.get("ms", "0"))
        app = line.labels.get("application") or line.host
        stage = (app, f.get("stage", ""))
        peers = self._stages.get(stage)
        if peers is None:
            peers = self._stages[stage] = _Peers(200)
            if len(self._stages) > 20_000:
                self._stages.popitem(last=False)
        ratio = None
        if len(peers) >= 4:
            mid = peers.median()
            ratio = ms / mid if mid > 0 else None
        peers.append(ms)
        self.tasks.append(Task(ts, host, stage, ms, ratio))
        short.tasks.add(ms)
        long.tasks.add(ms)
        long.host_tasks.setdefault(host, []).append(ms)
        if ratio is not None:
            long.host_ratios.setdefault(host, []).append(ratio)
        if "application" in line.labels:
            long.job_tasks.setdefault(app, [0, 0])[0] += 1

    def _job(
        self, ts: datetime, host: str, f: dict[str, str], short: _Window, long: _Window
    ) -> None:
        app, to = f.get("app", ""), f.get("to", "")
        job = self.jobs.get(app)
        if job is None:
            job = self.jobs[app] = Job(app, host, "running")
            if len(self.jobs) > 100_000:
                self.jobs.popitem(last=False)
        if to == "RUNNING":
            job.started_at = job.started_at or ts
            job.state = "running"
        elif to in _TERMINAL:
            job.finished_at = ts
            job.state = _TERMINAL[to]
            if job.duration_s is not None and job.state == "finished":
                short.jobs.add(job.duration_s)
                long.jobs.add(job.duration_s)
        self._changed_jobs.add(app)

    def restore_jobs(self, jobs: list[Job]) -> None:
        """Put back the jobs still running at a restart, so their durations can be measured."""
        for job in jobs:
            self.jobs.setdefault(job.app_id, job)

    def resume_point(self) -> datetime:
        """Where a restart must replay from: the start of the oldest window still open."""
        starts = [start for _, start in self._windows]
        if starts:
            return min(starts)
        return self.watermark or self.max_ts or _EPOCH

    # --- output --------------------------------------------------------------------------------

    def advance(self, now: datetime | None = None) -> Closed | None:
        """Finalise every window that ended before the watermark; None when nothing closed.

        The watermark follows the newest event time; `now` (wall clock) moves it on when no
        lines arrive, so a quiet fleet still gets its windows closed."""
        candidates = [t - self.lateness for t in (self.max_ts, now) if t is not None]
        if not candidates:
            return None
        mark = max(candidates)
        if self.watermark is not None and mark <= self.watermark:
            return None
        self.watermark = mark
        done = sorted(
            (k for k in self._windows if k[1] + timedelta(seconds=k[0]) <= mark),
            key=lambda k: (k[1], k[0]),
        )
        if not done:
            return None
        closed = Closed(watermark=mark)
        for key in done:
            self._emit(self._windows.pop(key), closed)
        closed.jobs = [self._job_row(self.jobs[a]) for a in self._changed_jobs if a in self.jobs]
        self._changed_jobs.clear()
        self._trim(mark)
        closed.resume_from = self.resume_point()
        return closed

    def _emit(self, w: _Window, out: Closed) -> None:
        """Hand a final window over as rollup rows. Only minute windows carry the per-template,
        per-error, per-host and per-job figures, and feed the history the burst detector reads."""
        if w.seconds == SHORT:
            out.windows_closed.append(w.start + timedelta(seconds=SHORT))
        out.latency += _latency_rows(w)
        out.links += _link_rows(w)
        if w.seconds != LONG:
            return
        out.job_tasks += [
            {"app_id": app, "finished": n[0], "failed": n[1]} for app, n in w.job_tasks.items()
        ]
        for tid, (count, hosts) in w.templates.items():
            out.templates.append(
                {"start": w.start, "template_id": tid, "count": count, "hosts": len(hosts)}
            )
            history = self.template_minutes.setdefault(tid, deque(maxlen=60))
            history.append((w.start, count))
        for (host, signature), count in w.errors.items():
            out.errors.append(
                {"start": w.start, "host": host, "signature": signature, "count": count}
            )
        out.host_tasks += _host_task_rows(w)

    @staticmethod
    def _job_row(job: Job) -> dict[str, Any]:
        return {
            "app_id": job.app_id,
            "host": job.host,
            "state": job.state,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "duration_s": job.duration_s,
        }

    def _trim(self, mark: datetime) -> None:
        horizon = mark - HISTORY
        for buffer in (self.tasks, self.transfers):
            while buffer and buffer[0].ts < horizon:
                buffer.popleft()
        while self.signatures and self.signatures[0][0] < horizon:
            self.signatures.popleft()
        for app in [a for a, j in self.jobs.items() if j.finished_at and j.finished_at < horizon]:
            del self.jobs[app]


class _RuleIndex:
    """Which rules a message can match at all, remembered per message with its digits zeroed.

    A rule runs only where its `contains` literal occurs, and where a literal occurs in a
    message, the literal with its digits zeroed occurs in the message with its digits zeroed.
    Messages that differ only in their numbers (a stream's block ids, ports, durations) thus
    share the rules they may match; those left, usually none, are then tried in their order
    by `Rules.match`, which checks the literals themselves."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._literals = [(rule, _zeroed(rule.contains)) for rule in rules.rules]
        self._candidates: Bounded[bytes, Rules] = Bounded(50_000)
        self._sets: dict[tuple[Rule, ...], Rules] = {}  # one Rules per distinct answer

    @property
    def known(self) -> dict[bytes, Rules]:
        """Recent answers (any answer found here is right: it depends on the key alone)."""
        return self._candidates.hot

    def match(self, content: str, source: str) -> Event | None:
        candidates = self.candidates(_zeroed(content))
        return candidates.match(content, source) if candidates.rules else None

    def candidates(self, key: bytes) -> Rules:
        """The rules a message may match, by the message with its digits zeroed."""
        candidates = self._candidates.hot.get(key) or self._candidates.get(key)
        if candidates is None:
            found = tuple(rule for rule, literal in self._literals if literal in key)
            candidates = self._sets.get(found)
            if candidates is None:
                candidates = self._sets[found] = Rules(list(found))
            self._candidates.put(key, candidates)
        return candidates


def _zeroed(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass").translate(_ZERO)


class _Peers:
    """The last `size` durations of a stage, kept sorted too, so the median is a lookup."""

    __slots__ = ("_nan", "order", "sorted")

    def __init__(self, size: int) -> None:
        self.order: deque[float] = deque(maxlen=size)
        self.sorted: list[float] = []
        self._nan = 0  # NaNs do not sort: with any, fall back to `statistics.median`

    def __len__(self) -> int:
        return len(self.order)

    def append(self, value: float) -> None:
        order = self.order
        if len(order) == order.maxlen:
            oldest = order[0]
            if oldest != oldest:
                self._nan -= 1
            else:
                del self.sorted[bisect_left(self.sorted, oldest)]
        order.append(value)
        if value != value:
            self._nan += 1
        else:
            insort(self.sorted, value)

    def median(self) -> float:
        if self._nan:
            return median(self.order)
        values = self.sorted
        n = len(values)
        if n % 2 == 1:
            return values[n // 2]
        return (values[n // 2 - 1] + values[n // 2]) / 2


def _latency_rows(w: _Window) -> list[dict[str, Any]]:
    """Job and task latency of a window, quantiles with the sketch itself so windows can be
    merged into longer ranges later; none for a metric without samples."""
    return [
        {
            "start": w.start,
            "seconds": w.seconds,
            "metric": metric,
            "count": sketch.count,
            "p50": sketch.quantile(0.5),
            "p95": sketch.quantile(0.95),
            "p99": sketch.quantile(0.99),
            "max": sketch.max,
            "sketch": sketch.to_dict(),
        }
        for metric, sketch in (("job", w.jobs), ("task", w.tasks))
        if sketch.count
    ]


def _link_rows(w: _Window) -> list[dict[str, Any]]:
    """One row per rack pair that moved blocks in the window: the heatmap's cells."""
    return [
        {
            "start": w.start,
            "seconds": w.seconds,
            "src_rack": src,
            "dst_rack": dst,
            "transfers": cell.transfers,
            "bytes": cell.bytes,
            "slow": cell.slow,
            "p50_ms": cell.ms.quantile(0.5),
            "p95_ms": cell.ms.quantile(0.95),
            "mbps_p50": cell.mbps.quantile(0.5),
        }
        for (src, dst), cell in w.links.items()
    ]


def _host_task_rows(w: _Window) -> list[dict[str, Any]]:
    """Each host's tasks in a minute window, failed ones included even when none finished."""
    rows = []
    for host in w.host_tasks.keys() | w.host_failed.keys():
        durations = sorted(w.host_tasks.get(host, []))
        ratios = w.host_ratios.get(host)
        rows.append(
            {
                "start": w.start,
                "host": host,
                "tasks": len(durations),
                "failed": w.host_failed.get(host, 0),
                "p50_ms": _pct(durations, 0.5),
                "p95_ms": _pct(durations, 0.95),
                "ratio": median(ratios) if ratios else None,
            }
        )
    return rows


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]
