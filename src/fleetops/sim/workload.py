"""A simulated Hadoop/Spark workload writing the fleet's logs, with faults and known ground truth.

Spark applications arrive on YARN (Poisson), run stages of tasks on executors, and every task reads
HDFS blocks over a leaf–spine network; some final-stage tasks write a block through a pipeline of
three datanodes. Each actor writes what the real software writes (ResourceManager, Spark driver
and executors, DataNode, the kernel through rsyslog), so the diagnosis pipeline sees what it would
see on a real fleet. Faults change only durations, failures and what the software says.

Pure and deterministic for (fleet, seed, faults): a discrete-event simulation over integer
microseconds since `start`. Nothing sleeps and nothing is written; callers ask for the lines up to
a time (`advance`) and ship them themselves. Finished jobs are forgotten, so memory stays bounded.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetops.inventory.document import InventoryDoc
from fleetops.sim import faults as fx
from fleetops.sim.faults import UPLINK, Effects, Fault, Flaps

S = 1_000_000  # µs per second
PORT = 50010  # DataNode transfer port
BLOCK = 128 * 1024 * 1024
FIRST_BLOCK = 1073741825
CORES = 4  # spark.executor.cores
MAX_FAILURES = 4  # spark.task.maxFailures
SLOTS_PER_WORKER = 2.5  # busy task slots per worker at load 1.0 (≈ 1.5–2 lines/s per worker)
JOB_SLOT_SECONDS = 2.75 * 2 * 9.0  # mean waves × stages × task seconds, per executor slot
DISK_MBPS = 160.0  # one HDD streaming one block: the healthy bottleneck of every transfer
TOR_MBPS, UPLINK_MBPS, SPINE_MBPS, DCI_MBPS = 1200.0, 600.0, 900.0, 300.0  # per-flow shares
CONNECT_TIMEOUT = 3 * S
WRITE_P = 0.2  # share of final-stage tasks that write an output block
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
# Level and logger of each kind of line, as log4j prints them.
TRACE = f"INFO {fx.DN_LOG}.clienttrace"
DN_INFO, DN_WARN, DN_ERROR = (f"{level} {fx.DN_LOG}" for level in ("INFO", "WARN", "ERROR"))
PAUSE = "INFO org.apache.hadoop.util.JvmPauseMonitor"
RMAPP = "INFO org.apache.hadoop.yarn.server.resourcemanager.rmapp.RMAppImpl"
SUMMARY = "INFO org.apache.hadoop.yarn.server.resourcemanager.RMAppManager$ApplicationSummary"
TSM, TSM_WARN, TSM_ERROR = (f"{lv} scheduler.TaskSetManager" for lv in ("INFO", "WARN", "ERROR"))
DAG = "INFO scheduler.DAGScheduler"
EXEC, EXEC_ERROR = "INFO executor.Executor", "ERROR executor.Executor"
AM, AM_ERROR = "INFO yarn.ApplicationMaster", "ERROR yarn.ApplicationMaster"
DFS_WARN, STREAMER = "WARN hdfs.DFSClient", "INFO hdfs.DataStreamer"
BACKEND = "INFO executor.CoarseGrainedExecutorBackend"
YARN_BACKEND = "INFO cluster.YarnClusterSchedulerBackend"
YARN_SCHEDULER = "INFO cluster.YarnClusterScheduler"
JOBS = ("EventsRollup", "SessionJoin", "ClickDedup", "FeatureExtract", "DailyAggregates")
DATASETS = ("events", "clicks", "sessions", "impressions", "orders")
TASK_ERRORS = (
    "java.io.IOException: Connection reset by peer",
    "java.net.SocketTimeoutException: Read timed out",
    "java.io.IOException: Filesystem closed",
)
BENIGN_KERNEL = (
    "perf: interrupt took too long ({a} > 2500), lowering kernel.perf_event_max_sample_rate to {b}",
    "TCP: request_sock_TCP: Possible SYN flooding on port 50010. Sending cookies.  Check SNMP "
    "counters.",
    "hrtimer: interrupt took {a}0 ns",
    "device eth0 entered promiscuous mode",
    "device eth0 left promiscuous mode",
)


@dataclass(frozen=True, slots=True)
class SimLine:
    """One log line as a shipper reads it from `file` on `host`.

    `labels` dicts are shared between the lines of one source: treat them as read-only."""

    ts: datetime
    host: str
    file: str
    message: str
    labels: dict[str, str]


@dataclass(slots=True, eq=False)
class _Host:
    name: str
    ip: str
    rack: str
    dc: str
    cluster: str
    gbps: float
    disk_mbps: float
    uptime: int  # kernel uptime at start, µs
    uuid: str  # the DataNode's storage id
    peers: list[_Host] = field(default_factory=list)  # the other workers of its rack
    dn_file: str = ""
    dn_labels: dict[str, str] = field(default_factory=dict)
    kern_labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dn_file = f"/var/log/hadoop/hdfs/hadoop-hdfs-datanode-{self.name}.log"
        self.dn_labels = {"app": "hdfs-datanode", "cluster": self.cluster, "rack": self.rack}
        self.kern_labels = {"app": "kernel", "cluster": self.cluster, "rack": self.rack}

    @property
    def nic_mbps(self) -> float:
        return self.gbps * 125 / 4  # a flow's share of a busy NIC


@dataclass(slots=True, eq=False)
class _Container:
    """A Spark driver or executor (YARN container): where its lines go."""

    host: _Host
    id: int
    file: str
    labels: dict[str, str]
    cli: str = ""  # its DFSClient name
    port: int = 0


@dataclass(slots=True, eq=False)
class _Cluster:
    workers: list[_Host]
    rm: _Host
    bp: str  # HDFS block pool id
    app_ts: int  # ResourceManager start, ms: the middle of every application id
    apps: int = 0
    rm_file: str = ""
    rm_labels: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class _Job:
    app: str
    cluster: _Cluster
    name: str
    stages: int
    submitted: int
    dataset: str
    driver: _Container | None = None
    executors: list[_Container] = field(default_factory=list)
    done: bool = False
    stage: int = -1
    stage_start: int = 0
    median: float = 0.0  # the current stage's median task compute time, s
    n_tasks: int = 0
    task_bytes: int = 0
    pending: deque[tuple[int, int]] = field(default_factory=deque)  # (partition, attempt)
    running: int = 0
    finished: int = 0
    tid: int = 0
    failures: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class _Task:
    job: _Job
    executor: _Container
    part: int
    attempt: int
    tid: int
    start: int
    error: str = ""

    def name(self) -> str:
        """`3.0 in stage 1.0 (TID 17`: Spark closes the parenthesis, or goes on with the host."""
        return f"{self.part}.{self.attempt} in stage {self.job.stage}.0 (TID {self.tid}"


@dataclass(slots=True, eq=False)
class _Active:
    """A fault with its own random stream, so that its lines do not shift the workload's."""

    fault: Fault
    rng: random.Random
    on: bool = False
    since: int = 0
    dimm: tuple[int, int, int, int] = (0, 0, 0, 0)


class Workload:
    """The simulated fleet's jobs and logs; `advance` moves the simulated clock."""

    def __init__(
        self,
        fleet: InventoryDoc,
        *,
        seed: int,
        start: datetime,
        faults: Sequence[Fault] = (),
        load: float = 1.0,
    ) -> None:
        if load < 0:
            raise ValueError("load must be ≥ 0")
        self.start = _utc(start)
        self.seed = seed
        self.load = load
        self.faults: list[Fault] = []
        self._actives: list[_Active] = []
        self._rng = random.Random(seed)
        self._epoch = (self.start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        self._now = 0
        self._t = 0  # time of the event being handled
        self._seq = itertools.count()
        self._events: list[tuple[int, int, Callable[[Any], None], Any]] = []
        self._lines: list[tuple[int, int, str, str, str, dict[str, str]]] = []
        self._stamps: dict[int, tuple[str, str, str]] = {}
        self._effects = Effects()
        self._jobs: dict[str, _Job] = {}
        self._build(fleet)
        self._start_processes()
        for fault in faults:
            self.inject(fault)

    @property
    def now(self) -> datetime:
        """The simulated clock: every line up to it has been returned."""
        return self.start + timedelta(microseconds=self._now)

    def advance(self, until: datetime) -> list[SimLine]:
        """Run the simulation to `until`; return the lines with now < ts <= until, by time."""
        end = self._us(until)
        if end < self._now:
            raise ValueError(f"cannot go back in time: {until} is before {self.now}")
        events, pop = self._events, heapq.heappop
        while events and events[0][0] <= end:
            self._t, _, handler, arg = pop(events)
            handler(arg)
        self._now = end
        out: list[SimLine] = []
        lines, start = self._lines, self.start
        while lines and lines[0][0] <= end:
            us, _, host, file, message, labels = pop(lines)
            out.append(SimLine(start + timedelta(microseconds=us), host, file, message, labels))
        return out

    def inject(self, fault: Fault) -> None:
        """Add a fault; it takes effect at its onset (or now, if that has passed)."""
        self._check_target(fault)
        self.faults.append(fault)
        rng = random.Random(f"{self.seed}:{fault.kind}:{fault.target}:{fault.onset.isoformat()}")
        active = _Active(fault, rng)
        self._actives.append(active)
        onset = max(self._us(fault.onset), self._now + 1)
        self._at(onset, self._fault_on, active)
        if fault.end is not None:
            self._at(max(self._us(fault.end), onset + 1), self._fault_off, active)

    def repair(self, target: str) -> int:
        """End the faults on `target` now (a repaired machine stops writing their lines); how many
        were active."""
        ended = [a for a in self._actives if a.fault.target == target and a.on]
        for active in ended:
            self._at(self._now + 1, self._fault_off, active)
        self._actives = [a for a in self._actives if a.fault.target != target]
        return len(ended)

    def stats(self) -> dict[str, int]:
        """Sizes of the simulation's state, which must stay bounded however long it runs."""
        return {
            "jobs": len(self._jobs),
            "events": len(self._events),
            "pending_lines": len(self._lines),
            "stamps": len(self._stamps),
            "flap_intervals": sum(len(f.intervals) for f in self._effects.flaps.values()),
        }

    # -- the fleet ---------------------------------------------------------------------------

    def _build(self, fleet: InventoryDoc) -> None:
        rng = self._rng
        dc_of = {r.name: r.datacenter for r in fleet.racks}
        nic = {
            m.name: float(m.nics[0].get("speed_gbps", 25)) for m in fleet.hardware_models if m.nics
        }
        self._rtt = {frozenset((x.a, x.b)): x.rtt_ms for x in fleet.latencies}
        self._hosts: dict[str, _Host] = {}
        for d in fleet.hosts:
            rack = d.rack or "-"
            self._hosts[d.hostname] = _Host(
                d.hostname,
                d.address,
                rack,
                dc_of.get(rack, "-"),
                d.cluster or "-",
                gbps=nic.get(d.model or "", 25.0),
                disk_mbps=DISK_MBPS * rng.uniform(0.9, 1.1),
                uptime=rng.randrange(2 * 86400 * S, 200 * 86400 * S),
                uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            )
        self._all = list(self._hosts.values())
        self._tor_rack = {tor: rack for rack, tor in fx.tor_of(fleet).items()}
        self._clusters: dict[str, _Cluster] = {}
        for names in fx.yarn_workers(fleet).values():
            rack_hosts = [self._hosts[n] for n in names]
            for h in rack_hosts:
                h.peers = [p for p in rack_hosts if p is not h]
                self._cluster(fleet, h.cluster).workers.append(h)
        self._workers = [h for c in self._clusters.values() for h in c.workers]
        self._next_block = FIRST_BLOCK + rng.randrange(10**7)

    def _cluster(self, fleet: InventoryDoc, name: str) -> _Cluster:
        """The cluster's ResourceManager (a master), block pool and application id prefix."""
        if cluster := self._clusters.get(name):
            return cluster
        rng = self._rng
        roles = {
            d.labels.get("role"): d.hostname for d in reversed(fleet.hosts) if d.cluster == name
        }
        rm = self._hosts[roles.get("master") or roles.get("namenode") or next(iter(roles.values()))]
        nn = self._hosts[roles.get("namenode") or rm.name]
        app_ts = self._epoch // 1000 - rng.randrange(86400_000, 30 * 86400_000)
        bp = f"BP-{rng.randrange(10**8, 2 * 10**9)}-{nn.ip}-{app_ts - rng.randrange(10**10)}"
        cluster = _Cluster([], rm, bp, app_ts)
        cluster.rm_file = f"/var/log/hadoop/yarn/hadoop-yarn-resourcemanager-{rm.name}.log"
        cluster.rm_labels = {"app": "yarn-rm", "cluster": name, "rack": rm.rack}
        self._clusters[name] = cluster
        return cluster

    def _check_target(self, fault: Fault) -> None:
        if fault.kind in fx.HOST_KINDS:
            known = fault.target in self._hosts
        else:
            known = fault.target.removesuffix(UPLINK) in self._tor_rack
        if not known:
            raise ValueError(f"{fault.kind} target {fault.target!r} is not in the fleet")

    # -- clock and lines ---------------------------------------------------------------------

    def _us(self, at: datetime) -> int:
        return (_utc(at) - self.start) // timedelta(microseconds=1)

    def _at(self, us: int, handler: Callable[[Any], None], arg: Any) -> None:
        heapq.heappush(self._events, (us, next(self._seq), handler, arg))

    def _after(self, seconds: float, handler: Callable[[Any], None], arg: Any) -> None:
        self._at(self._t + int(seconds * S) + 1, handler, arg)

    def _stamp(self, us: int) -> tuple[tuple[str, str, str], int]:
        """(log4j ISO8601 to the second, Spark's yy/MM/dd, syslog's 'Mmm dd'), and the µs."""
        sec, frac = divmod(self._epoch + us, S)
        stamp = self._stamps.get(sec)
        if stamp is None:
            d = datetime.fromtimestamp(sec, UTC)
            hms = f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
            stamp = (
                f"{d.year:04d}-{d.month:02d}-{d.day:02d} {hms}",
                f"{d.year % 100:02d}/{d.month:02d}/{d.day:02d} {hms}",
                f"{MONTHS[d.month - 1]} {d.day:2d} {hms}",
            )
            if len(self._stamps) > 4096:
                self._stamps.clear()
            self._stamps[sec] = stamp
        return stamp, frac

    def _line(self, us: int, host: str, file: str, labels: dict[str, str], line: str) -> None:
        heapq.heappush(self._lines, (us, next(self._seq), host, file, line, labels))

    def _dn(self, us: int, host: _Host, head: str, msg: str) -> None:
        """A DataNode line: `2026-11-26 17:02:03,123 INFO <logger>: msg`."""
        stamp, frac = self._stamp(us)
        line = f"{stamp[0]},{frac // 1000:03d} {head}: {msg}"
        self._line(us, host.name, host.dn_file, host.dn_labels, line)

    def _rm(self, us: int, cluster: _Cluster, head: str, msg: str) -> None:
        stamp, frac = self._stamp(us)
        line = f"{stamp[0]},{frac // 1000:03d} {head}: {msg}"
        self._line(us, cluster.rm.name, cluster.rm_file, cluster.rm_labels, line)

    def _spark(self, us: int, c: _Container, head: str, msg: str) -> None:
        """A driver/executor line: `26/11/26 17:02:03 INFO scheduler.TaskSetManager: msg`."""
        self._line(us, c.host.name, c.file, c.labels, f"{self._stamp(us)[0][1]} {head}: {msg}")

    def _kernel(self, us: int, host: _Host, msg: str) -> None:
        """kern.log as rsyslog writes it: `Nov 26 17:02:03 dn-0042 kernel: [  12.345678] msg`."""
        up = host.uptime + us
        line = f"{self._stamp(us)[0][2]} {host.name} kernel: [{up // S:5d}.{up % S:06d}] {msg}"
        self._line(us, host.name, "/var/log/kern.log", host.kern_labels, line)

    # -- background ----------------------------------------------------------------------

    def _start_processes(self) -> None:
        rng = self._rng
        for cluster in self._clusters.values() if self.load > 0 else ():
            slots = SLOTS_PER_WORKER * len(cluster.workers) * self.load
            executors = sum(min(len(cluster.workers), n) for n in range(4, 25)) / 21
            rate = slots / (executors * CORES * JOB_SLOT_SECONDS)  # applications per second
            self._after(rng.expovariate(rate), self._arrive, (cluster, rate))
            for _ in range(round(0.7 * slots / (executors * CORES))):  # warm start
                self._at(rng.randrange(1, 20 * S), self._submit, cluster)
        noise = []
        if self._all:
            noise += [
                (self._kernel_noise, len(self._all) / 600),
                (self._edac_noise, len(self._all) / 43200),
            ]
        if self._workers:
            noise.append((self._pause_noise, len(self._workers) / 1200))
        for handler, rate in noise:
            self._after(rng.expovariate(rate), handler, rate)

    def _kernel_noise(self, rate: float) -> None:
        rng = self._rng
        msg = rng.choice(BENIGN_KERNEL).format(
            a=rng.randint(2501, 9000), b=rng.randrange(20000, 80000, 250)
        )
        self._kernel(self._t, rng.choice(self._all), msg)
        self._after(rng.expovariate(rate), self._kernel_noise, rate)

    def _edac_noise(self, rate: float) -> None:
        rng = self._rng
        self._kernel(self._t, rng.choice(self._all), fx.edac_message(rng, fx.pick_dimm(rng)))
        self._after(rng.expovariate(rate), self._edac_noise, rate)

    def _pause_noise(self, rate: float) -> None:
        rng = self._rng
        pause = rng.randint(1000, 4000)
        msg = f"Detected pause in JVM or host machine (eg GC): pause of approximately {pause}ms"
        self._dn(self._t, rng.choice(self._workers), PAUSE, msg)
        self._after(rng.expovariate(rate), self._pause_noise, rate)

    # -- applications ------------------------------------------------------------------------

    def _arrive(self, arg: tuple[_Cluster, float]) -> None:
        self._submit(arg[0])
        self._after(self._rng.expovariate(arg[1]), self._arrive, arg)

    def _submit(self, cluster: _Cluster) -> None:
        rng, t = self._rng, self._t
        cluster.apps += 1
        app = f"application_{cluster.app_ts}_{cluster.apps:04d}"
        dataset = f"/warehouse/{rng.choice(DATASETS)}/dt={self.start - timedelta(days=1):%Y-%m-%d}"
        job = _Job(app, cluster, rng.choice(JOBS), rng.choice((1, 2, 2, 3)), t, dataset)
        self._jobs[app] = job
        self._rm(t, cluster, RMAPP, f"{app} {_state('SUBMITTED', 'ACCEPTED', 'APP_ACCEPTED')}")
        self._after(rng.uniform(1, 3), self._am_start, job)

    def _container(self, job: _Job, host: _Host, n: int, kind: str) -> _Container:
        serial = job.app.removeprefix("application_")
        file = f"/var/log/hadoop-yarn/containers/{job.app}/container_e07_{serial}_01_{n:06d}/stderr"
        labels = {"app": kind, "cluster": host.cluster, "rack": host.rack, "application": job.app}
        return _Container(host, n - 1, file, labels)

    def _am_start(self, job: _Job) -> None:
        """The driver (ApplicationMaster) starts and asks for its executors."""
        rng, t, workers = self._rng, self._t, job.cluster.workers
        job.driver = driver = self._container(job, rng.choice(workers), 1, "spark-driver")
        for n, host in enumerate(rng.sample(workers, min(len(workers), rng.randint(4, 24))), 2):
            ex = self._container(job, host, n, "spark-executor")
            ex.cli = (
                f"DFSClient_NONMAPREDUCE_{rng.randint(-(2**31), 2**31 - 1)}_{rng.randint(1, 300)}"
            )
            ex.port = rng.randrange(32768, 61000)
            job.executors.append(ex)
        msg = f"{job.app} State change from ACCEPTED to RUNNING on event = ATTEMPT_REGISTERED"
        self._rm(t, job.cluster, RMAPP, msg)
        attempt = job.app.replace("application", "appattempt")
        self._spark(t, driver, AM, f"ApplicationAttemptId: {attempt}_000001")
        self._after(rng.uniform(2, 5), self._executors_up, job)

    def _executors_up(self, job: _Job) -> None:
        rng, t, driver = self._rng, self._t, job.driver
        assert driver is not None
        for ex in job.executors:
            at = t + rng.randrange(800_000)
            self._spark(at, ex, BACKEND, "Successfully registered with driver")
            endpoint = f"NettyRpcEndpointRef(spark-client://Executor) ({ex.host.ip}:{ex.port})"
            self._spark(
                at + 2000, driver, YARN_BACKEND, f"Registered executor {endpoint} with ID {ex.id}"
            )
        self._after(1, self._stage_start, job)

    def _stage_start(self, job: _Job) -> None:
        rng, t, driver = self._rng, self._t, job.driver
        assert driver is not None
        job.stage += 1
        job.stage_start = t
        job.n_tasks = max(1, round(len(job.executors) * CORES * rng.uniform(1.5, 4.0)))
        job.median = min(40.0, max(1.5, rng.lognormvariate(1.75, 0.5)))
        job.task_bytes = rng.randrange(4000, 9000)
        job.pending = deque((p, 0) for p in range(job.n_tasks))
        job.running = job.finished = 0
        job.failures = {}
        kind, site = _stage_site(job, job.stage)
        rdd = f"MapPartitionsRDD[{2 * job.stage + 1}] at {site}"
        tasks = f"{job.n_tasks} missing tasks from {kind} {job.stage} ({rdd})"
        self._spark(t, driver, DAG, f"Submitting {tasks}")
        self._spark(
            t, driver, YARN_SCHEDULER, f"Adding task set {job.stage}.0 with {job.n_tasks} tasks"
        )
        for _ in range(CORES):
            for ex in job.executors:
                if job.pending:
                    self._launch(job, ex)

    def _launch(self, job: _Job, ex: _Container) -> None:
        """Start the next pending task on `ex`: its lines and its end are all decided now."""
        rng, t, host, eff = self._rng, self._t, ex.host, self._effects
        assert job.driver is not None
        part, attempt = job.pending.popleft()
        task = _Task(job, ex, part, attempt, job.tid, t)
        job.tid += 1
        job.running += 1
        sources = [self._source(host) for _ in range(rng.choice((1, 1, 2, 2, 3)))]
        first = sources[0]
        where = (
            "NODE_LOCAL" if first is host else "RACK_LOCAL" if first.rack == host.rack else "ANY"
        )
        msg = f"{host.name}, executor {ex.id}, partition {part}, {where}, {job.task_bytes} bytes)"
        self._spark(t, job.driver, TSM, f"Starting task {task.name()}, {msg}")
        t += rng.randrange(3000, 20000)
        self._spark(t, ex, EXEC, f"Running task {task.name()})")
        for i, src in enumerate(sources):
            nbytes = BLOCK if i < len(sources) - 1 else rng.randrange(BLOCK // 8, BLOCK + 1)
            t = self._read(task, src, nbytes, t)
            if task.error:
                break
        else:
            compute = job.median * rng.lognormvariate(0, 0.3) * eff.disk.get(host.name, 1.0)
            if (p := eff.full.get(host.name)) and rng.random() < p:
                task.error, compute = fx.NO_SPACE, compute * rng.uniform(0.1, 0.6)
            elif rng.random() < 0.002:
                task.error, compute = rng.choice(TASK_ERRORS), compute * rng.uniform(0.1, 0.9)
            t += int(compute * S)
            if not task.error and job.stage == job.stages - 1 and rng.random() < WRITE_P:
                t = self._write(task, t)
        self._at(t + rng.randrange(1000, 10000), self._task_end, task)

    def _source(self, reader: _Host) -> _Host:
        """The datanode a block is read from: the local replica, else the rack, else anywhere."""
        rng = self._rng
        r = rng.random()
        if r < 0.5:
            return reader
        if r < 0.8 and reader.peers:
            return rng.choice(reader.peers)
        return rng.choice(self._clusters[reader.cluster].workers)

    def _task_end(self, task: _Task) -> None:
        job, ex, t, driver = task.job, task.executor, self._t, task.job.driver
        if job.done or driver is None:
            return  # its application was aborted: running tasks are killed without a word
        job.running -= 1
        if task.error:
            self._spark(t, ex, EXEC_ERROR, f"Exception in task {task.name()})")
            lost = f"Lost task {task.name()}, {ex.host.name}, executor {ex.id}): {task.error}"
            self._spark(t + 3000, driver, TSM_WARN, lost)
            job.failures[task.part] = failures = job.failures.get(task.part, 0) + 1
            if failures >= MAX_FAILURES:
                self._abort(job, task)
                return
            job.pending.append((task.part, task.attempt + 1))
        else:
            job.finished += 1
            result = f"{self._rng.randrange(1500, 2600)} bytes result sent to driver"
            self._spark(t, ex, EXEC, f"Finished task {task.name()}). {result}")
            took = f"in {(t - task.start) // 1000} ms on {ex.host.name} (executor {ex.id})"
            done = f"({job.finished}/{job.n_tasks})"
            self._spark(t + 3000, driver, TSM, f"Finished task {task.name()}) {took} {done}")
        if job.pending:
            self._launch(job, ex)
        elif job.running == 0:
            self._stage_done(job, driver)

    def _stage_done(self, job: _Job, driver: _Container) -> None:
        t = self._t + 5000
        kind, site = _stage_site(job, job.stage)
        took = f"finished in {(t - job.stage_start) / S:.3f} s"
        self._spark(t, driver, DAG, f"{kind} {job.stage} ({site}) {took}")
        if job.stage < job.stages - 1:
            self._after(self._rng.uniform(0.05, 0.3), self._stage_start, job)
            return
        self._spark(t, driver, DAG, f"Job 0 finished: {site}, took {(t - job.submitted) / S:.6f} s")
        self._spark(t + 2000, driver, AM, "Final app status: SUCCEEDED, exitCode: 0")
        self._finish(job, driver, t, ok=True)

    def _abort(self, job: _Job, task: _Task) -> None:
        t, driver, stage = self._t + 4000, job.driver, f"stage {job.stage}.0"
        assert driver is not None
        failed = f"Task {task.part} in {stage} failed {MAX_FAILURES} times"
        self._spark(t, driver, TSM_ERROR, f"{failed}; aborting job")
        site = _stage_site(job, job.stages - 1)[1]
        took = f"took {(t - job.submitted) / S:.6f} s"
        self._spark(t + 1000, driver, DAG, f"Job 0 failed: {site}, {took}")
        ex = task.executor
        lost = f"Lost task {task.name()}, {ex.host.name}, executor {ex.id}): {task.error}"
        reason = (
            "User class threw exception: org.apache.spark.SparkException: Job aborted due to "
            f"stage failure: {failed}, most recent failure: {lost}"
        )
        self._spark(t + 2000, driver, AM_ERROR, reason)
        final = f"Final app status: FAILED, exitCode: 15, (reason: {reason})"
        self._spark(t + 3000, driver, AM, final)
        self._finish(job, driver, t, ok=False)

    def _finish(self, job: _Job, driver: _Container, t: int, *, ok: bool) -> None:
        """The ResourceManager's view of the end: its state changes and one-line summary."""
        job.done = True
        del self._jobs[job.app]
        cluster, app = job.cluster, job.app
        t += self._rng.randrange(300_000, 1_000_000)
        steps = (
            [
                ("RUNNING", "FINAL_SAVING", "ATTEMPT_UNREGISTERED"),
                ("FINAL_SAVING", "FINISHING", "APP_UPDATE_SAVED"),
                ("FINISHING", "FINISHED", "ATTEMPT_FINISHED"),
            ]
            if ok
            else [
                ("RUNNING", "FINAL_SAVING", "ATTEMPT_FAILED"),
                ("FINAL_SAVING", "FAILED", "APP_UPDATE_SAVED"),
            ]
        )
        for i, (a, b, event) in enumerate(steps):
            self._rm(t + i * 5000, cluster, RMAPP, f"{app} {_state(a, b, event)}")
        sub, end = (self._epoch + job.submitted) // 1000, (self._epoch + t) // 1000
        seconds, cores = (end - sub) // 1000, len(job.executors) * CORES + 1
        summary = (
            f"appId={app},name={job.name},user=etl,queue=root.etl,"
            f"state={'FINISHED' if ok else 'FAILED'},trackingUrl=http://{cluster.rm.name}:8088/"
            f"proxy/{app}/,appMasterHost={driver.host.name},submitTime={sub},startTime={sub + 12},"
            f"launchTime={sub + 1500},finishTime={end},"
            f"finalStatus={'SUCCEEDED' if ok else 'FAILED'},"
            f"memorySeconds={seconds * cores * 4096},vcoreSeconds={seconds * cores},"
            "preemptedMemorySeconds=0,preemptedVcoreSeconds=0,preemptedAMContainers=0,"
            "preemptedNonAMContainers=0,applicationType=SPARK"
        )
        self._rm(t + 20000, cluster, SUMMARY, summary)

    # -- HDFS over the network ---------------------------------------------------------------

    def _xfer(self, src: _Host, dst: _Host, nbytes: int, t: int, disk: _Host) -> tuple[int, str]:
        """(µs, failure) of moving a block src → dst, `disk` being the disk read or written.

        The flow runs at the rate of the slowest component on its path: the disk, both NICs, the
        ToR (same rack) or ToR → uplink → spine (ECMP) → uplink → ToR (other rack), the link
        between sites. Failure is "" (none), "down" (cannot connect) or "reset" (mid-transfer)."""
        eff = self._effects
        rate = disk.disk_mbps / eff.disk.get(disk.name, 1.0)
        latency, fail = 0.0003, 0.0
        if src is not dst:
            if eff.flaps and (eff.link_down(src.name, t) or eff.link_down(dst.name, t)):
                return 0, "down"
            rate = min(rate, src.nic_mbps, dst.nic_mbps)
            if src.rack == dst.rack:
                rate = min(rate, TOR_MBPS)
                if bad := eff.tor.get(src.rack):
                    rate, fail = min(rate, DISK_MBPS / bad[0]), bad[1]
            else:
                rate = min(rate, UPLINK_MBPS, SPINE_MBPS)
                for rack in (src.rack, dst.rack):
                    if bad := eff.tor.get(rack):
                        rate, fail = min(rate, DISK_MBPS / bad[0]), max(fail, bad[1])
                    if k := eff.uplink.get(rack):
                        rate = min(rate, DISK_MBPS / k)
                if src.dc != dst.dc:
                    rate = min(rate, DCI_MBPS)
                    latency += self._rtt.get(frozenset((src.dc, dst.dc)), 10.0) / 2000
        seconds = nbytes / (rate * 1e6)
        rng = self._rng
        if fail and rng.random() < fail:
            return int(seconds * rng.uniform(0.1, 0.9) * S), "reset"
        return int((seconds * rng.lognormvariate(0, 0.15) + latency) * S), ""

    def _read(self, task: _Task, src: _Host, nbytes: int, t: int) -> int:
        """Read a block for `task` from `src`, else from one other replica; return when the read
        ends (setting task.error when the block could not be had)."""
        rng, ex = self._rng, task.executor
        reader = ex.host
        block = self._block(task.job.cluster, self._rng.randrange(self._next_block - FIRST_BLOCK))
        path = f"{task.job.dataset}/part-{task.part:05d}"
        for tries in range(2):
            took, fail = self._xfer(src, reader, nbytes, t, src)
            port = rng.randrange(32768, 61000)
            if not fail:
                trace = (
                    f"src: /{src.ip}:{PORT}, dest: /{reader.ip}:{port}, bytes: {nbytes}, "
                    f"op: HDFS_READ, cliID: {ex.cli}, offset: 0, srvID: {src.uuid}, "
                    f"blockid: {block}, duration(ns): {took * 1000 + rng.randrange(1000)}"
                )
                self._dn(t + took, src, TRACE, trace)
                return t + took
            if fail == "down":
                t += CONNECT_TIMEOUT
                msg = (
                    f"Failed to connect to /{src.ip}:{PORT} for file {path} for block {block}, "
                    "add to deadNodes and continue. java.net.ConnectException: Connection timed out"
                )
                self._spark(t, ex, DFS_WARN, msg)
            else:
                t += took
                msg = (
                    f"{src.name}:{PORT}:DataXceiver error processing READ_BLOCK operation  "
                    f"src: /{reader.ip}:{port} dst: /{src.ip}:{PORT}"
                )
                self._dn(t, src, DN_ERROR, msg)
                node = f"DatanodeInfoWithStorage[{src.ip}:{PORT},DS-{src.uuid},DISK]"
                msg = f"Exception while reading from {block} of {path} from {node}"
                self._spark(t + 1000, ex, DFS_WARN, msg)
            if tries == 0:
                others = [h for h in (reader, *reader.peers) if h is not src]
                src = rng.choice(
                    others if others and rng.random() < 0.5 else task.job.cluster.workers
                )
        missing = "org.apache.hadoop.hdfs.BlockMissingException: Could not obtain block"
        task.error = f"{missing}: {block} file={path}"
        return t

    def _accepts(self, dn: _Host, writer: _Host, t: int) -> bool:
        """Whether `dn` can take a block from `writer` at `t` (space left, links up)."""
        eff = self._effects
        if dn.name in eff.full:
            return False
        return dn is writer or not (eff.link_down(dn.name, t) or eff.link_down(writer.name, t))

    def _block(self, cluster: _Cluster, offset: int) -> str:
        return f"{cluster.bp}:blk_{FIRST_BLOCK + offset}_{1001 + offset}"

    def _write(self, task: _Task, t: int) -> int:
        """Write an output block through a pipeline (local, another rack, a peer there); a datanode
        that refuses it or cannot be reached is excluded and replaced. Return when it ends."""
        rng, ex, eff, cluster = self._rng, task.executor, self._effects, task.job.cluster
        writer = ex.host
        block_id = self._next_block
        self._next_block += 1
        block = self._block(cluster, block_id - FIRST_BLOCK)
        remote = rng.choice(cluster.workers)
        for _ in range(3):  # HDFS puts the second replica on another rack
            if remote.rack != writer.rack:
                break
            remote = rng.choice(cluster.workers)
        pipeline: list[_Host] = []
        for dn in (writer, remote, rng.choice(remote.peers or cluster.workers)):
            if not self._accepts(dn, writer, t):
                full = dn.name in eff.full
                if full:
                    self._dn(t + 2000, dn, DN_INFO, fx.out_of_space_message(block, BLOCK))
                t += 5000 if full else CONNECT_TIMEOUT
                node = f"DatanodeInfoWithStorage[{dn.ip}:{PORT},DS-{dn.uuid},DISK]"
                self._spark(t, ex, STREAMER, f"Excluding datanode {node}")
                dn = rng.choice(cluster.workers)
                if not self._accepts(dn, writer, t):
                    continue
            if dn not in pipeline:
                pipeline.append(dn)
        pipeline = [dn for dn in pipeline if self._accepts(dn, writer, t)]  # t may have moved
        if not pipeline:
            return t
        nbytes = rng.randrange(BLOCK // 4, BLOCK + 1)
        ups, ports = [writer, *pipeline[:-1]], [rng.randrange(32768, 61000) for _ in pipeline]
        took = 0
        for i, dn in enumerate(pipeline):
            msg = f"Receiving {block} src: /{ups[i].ip}:{ports[i]} dest: /{dn.ip}:{PORT}"
            self._dn(t + 1000 * i, dn, DN_INFO, msg)
            took = max(took, self._xfer(ups[i], dn, nbytes, t, dn)[0])
        end = t + took + 2000 * len(pipeline)
        for i, dn in enumerate(pipeline):
            at = end - 2000 * i  # the last datanode acknowledges first
            if (factor := eff.disk.get(dn.name)) or rng.random() < 0.003:
                cost = int(300 + rng.uniform(10, 600) * (factor or 1.0))
                self._dn(at - 1000, dn, DN_WARN, fx.slow_write_message(rng, cost, block_id))
            trace = (
                f"src: /{ups[i].ip}:{ports[i]}, dest: /{dn.ip}:{PORT}, bytes: {nbytes}, "
                f"op: HDFS_WRITE, cliID: {ex.cli}, offset: 0, srvID: {dn.uuid}, "
                f"blockid: {block}, duration(ns): {(at - t) * 1000 + rng.randrange(1000)}"
            )
            self._dn(at, dn, TRACE, trace)
            after = pipeline[i + 1 :]
            kind = "LAST_IN_PIPELINE"
            if after:
                downstreams = ", ".join(f"{d.ip}:{PORT}" for d in after)
                kind = f"HAS_DOWNSTREAM_IN_PIPELINE, downstreams={len(after)}:[{downstreams}]"
            self._dn(at, dn, DN_INFO, f"PacketResponder: {block}, type={kind} terminating")
        return end

    # -- faults ------------------------------------------------------------------------------

    def _fault_on(self, active: _Active) -> None:
        fault, eff, t = active.fault, self._effects, self._t
        active.on, active.since = True, t
        kind, target, intensity = fault.kind, fault.target, fault.intensity
        if kind == "slow_disk":
            eff.disk[target] = fx.slow_disk_factor(intensity)
            self._at(t + 1, self._slow_disk_tick, active)
        elif kind == "full_disk":
            eff.full[target] = fx.full_disk_task_failure(intensity)
            self._at(t + 1, self._full_disk_tick, active)
        elif kind == "bad_dimm":
            active.dimm = fx.pick_dimm(active.rng)
            self._at(t + 1, self._dimm_tick, active)
        elif kind == "flapping_link":
            end = None if fault.end is None else self._us(fault.end)
            eff.flaps[target] = flaps = Flaps(fault, self.seed, t, end)
            if first := flaps.first_from(t):
                self._at(first[0], self._flap, active)
        elif kind == "congested_link":
            eff.uplink[self._tor_rack[target.removesuffix(UPLINK)]] = fx.congestion_factor(
                intensity
            )
        else:
            eff.tor[self._tor_rack[target]] = fx.bad_tor_effect(intensity)

    def _fault_off(self, active: _Active) -> None:
        eff, target = self._effects, active.fault.target
        active.on = False
        if active.fault.kind == "congested_link":
            eff.uplink.pop(self._tor_rack[target.removesuffix(UPLINK)], None)
        elif active.fault.kind == "bad_tor":
            eff.tor.pop(self._tor_rack[target], None)
        else:
            for table in (eff.disk, eff.full, eff.flaps):
                table.pop(target, None)

    def _slow_disk_tick(self, active: _Active) -> None:
        """Slow writes and flushes every few seconds; now and then a failed read, a hung task."""
        if not active.on:
            return
        rng, t, host = active.rng, self._t, self._hosts[active.fault.target]
        cost = int(rng.uniform(300, 900) * fx.slow_disk_factor(active.fault.intensity))
        block_id = FIRST_BLOCK + rng.randrange(self._next_block - FIRST_BLOCK + 1)
        slow = fx.slow_write_message if rng.random() < 0.6 else fx.slow_flush_message
        self._dn(t, host, DN_WARN, slow(rng, cost, block_id))
        if rng.random() < 0.2:
            self._kernel(t + 1, host, fx.io_error_message(rng))
        if rng.random() < 0.02:
            self._kernel(t + 2, host, fx.hung_task_message(rng))
        self._after(rng.expovariate(active.fault.intensity / 8.0), self._slow_disk_tick, active)

    def _full_disk_tick(self, active: _Active) -> None:
        if not active.on:
            return
        host = self._hosts[active.fault.target]
        self._dn(self._t, host, f"WARN {fx.VOLUME_CHECKER}", fx.volume_check_message(active.rng))
        self._after(active.rng.uniform(20, 60), self._full_disk_tick, active)

    def _dimm_tick(self, active: _Active) -> None:
        """Bursts of corrected errors on one DIMM, rising from 2/min to 10/min over 30 minutes."""
        if not active.on:
            return
        rng, t, host = active.rng, self._t, self._hosts[active.fault.target]
        # A weak cell is read again and again: its corrected errors come in bursts on one page,
        # which sets a failing DIMM apart from the fleet's scattered single errors.
        page = rng.randrange(0x100000, 0x3FFFFF)
        for i in range(rng.choice((2, 2, 3, 4))):
            at = t + i * rng.randrange(2000, 40000)
            self._kernel(at, host, fx.edac_message(rng, active.dimm, page))
        if rng.random() < 0.15:
            self._kernel(t + 150, host, fx.MCE_MESSAGE)
        per_min = active.fault.intensity * (2 + 8 * min(1.0, (t - active.since) / (1800 * S)))
        self._after(rng.expovariate(per_min / 60), self._dimm_tick, active)

    def _flap(self, active: _Active) -> None:
        flaps = self._effects.flaps.get(active.fault.target)
        if not active.on or flaps is None:
            return
        t, host = self._t, self._hosts[active.fault.target]
        interval = flaps.first_from(t)
        if interval is None or interval[0] != t:
            return
        down, up = fx.link_messages(host.gbps)
        self._kernel(t, host, down)
        self._kernel(interval[1], host, up)
        flaps.forget(t)
        if following := flaps.first_from(t + 1):
            self._at(following[0], self._flap, active)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _state(before: str, after: str, event: str) -> str:
    return f"State change from {before} to {after} on event = {event}"


def _stage_site(job: _Job, stage: int) -> tuple[str, str]:
    """('ResultStage' | 'ShuffleMapStage', call site) of a stage, as the DAGScheduler names them."""
    if stage == job.stages - 1:
        return "ResultStage", f"saveAsTextFile at {job.name}.scala:{88 + stage}"
    return "ShuffleMapStage", f"map at {job.name}.scala:{42 + 7 * stage}"
