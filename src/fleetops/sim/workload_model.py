"""The simulated workload's vocabulary: its constants, the lines it writes and the actors in it.

Kept apart from the simulation so the event handlers (`workload`, `workload_hdfs`,
`workload_faults`) share one definition of a host, a container, a job and what Hadoop and Spark
print, and so a reader can see the whole model of the fleet in one place.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fleetops.sim import faults as fx
from fleetops.sim.faults import Fault

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
class SimHost:
    name: str
    ip: str
    rack: str
    dc: str
    cluster: str
    gbps: float
    disk_mbps: float
    uptime: int  # kernel uptime at start, µs
    uuid: str  # the DataNode's storage id
    peers: list[SimHost] = field(default_factory=list)  # the other workers of its rack
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
class Container:
    """A Spark driver or executor (YARN container): where its lines go."""

    host: SimHost
    id: int
    file: str
    labels: dict[str, str]
    cli: str = ""  # its DFSClient name
    port: int = 0


@dataclass(slots=True, eq=False)
class YarnCluster:
    workers: list[SimHost]
    rm: SimHost
    bp: str  # HDFS block pool id
    app_ts: int  # ResourceManager start, ms: the middle of every application id
    apps: int = 0
    rm_file: str = ""
    rm_labels: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Job:
    app: str
    cluster: YarnCluster
    name: str
    stages: int
    submitted: int
    dataset: str
    driver: Container | None = None
    executors: list[Container] = field(default_factory=list)
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
class Task:
    job: Job
    executor: Container
    part: int
    attempt: int
    tid: int
    start: int
    error: str = ""

    def name(self) -> str:
        """`3.0 in stage 1.0 (TID 17`: Spark closes the parenthesis, or goes on with the host."""
        return f"{self.part}.{self.attempt} in stage {self.job.stage}.0 (TID {self.tid}"


@dataclass(slots=True, eq=False)
class ActiveFault:
    """A fault with its own random stream, so that its lines do not shift the workload's."""

    fault: Fault
    rng: random.Random
    on: bool = False
    since: int = 0
    dimm: tuple[int, int, int, int] = (0, 0, 0, 0)


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def rm_state(before: str, after: str, event: str) -> str:
    return f"State change from {before} to {after} on event = {event}"


def stage_site(job: Job, stage: int) -> tuple[str, str]:
    """('ResultStage' | 'ShuffleMapStage', call site) of a stage, as the DAGScheduler names them."""
    if stage == job.stages - 1:
        return "ResultStage", f"saveAsTextFile at {job.name}.scala:{88 + stage}"
    return "ShuffleMapStage", f"map at {job.name}.scala:{42 + 7 * stage}"
