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
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetops.inventory.document import InventoryDoc
from fleetops.sim import faults as fx
from fleetops.sim.faults import UPLINK, UPLINK_INTERFACE, Effects, Fault
from fleetops.sim.workload_faults import FaultEffects
from fleetops.sim.workload_hdfs import HdfsTraffic
from fleetops.sim.workload_model import (
    AM,
    AM_ERROR,
    BACKEND,
    BENIGN_KERNEL,
    BLOCK,
    CORES,
    DAG,
    DATASETS,
    DISK_MBPS,
    EXEC,
    EXEC_ERROR,
    FIRST_BLOCK,
    JOB_SLOT_SECONDS,
    JOBS,
    MAX_FAILURES,
    PAUSE,
    RMAPP,
    SLOTS_PER_WORKER,
    SUMMARY,
    TASK_ERRORS,
    TSM,
    TSM_ERROR,
    TSM_WARN,
    WRITE_P,
    YARN_BACKEND,
    YARN_SCHEDULER,
    ActiveFault,
    Container,
    Job,
    S,
    SimHost,
    SimLine,
    Task,
    YarnCluster,
    rm_state,
    stage_site,
    utc,
)


class Workload(HdfsTraffic, FaultEffects):
    """The simulated fleet's jobs and logs; `advance` moves the simulated clock.

    The clock and log writers, HDFS traffic and fault handlers are its bases, one module each."""

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
        self.start = utc(start)
        self.seed = seed
        self.load = load
        self.faults: list[Fault] = []
        self._actives: list[ActiveFault] = []
        self._rng = random.Random(seed)
        self._epoch = (self.start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        self._now = 0
        # Work done so far (tasks that finished well, applications that ended): what a site's
        # scheduler exports, and the demo pushes as throughput metrics.
        self.finished = {"tasks": 0, "jobs": 0}
        self._t = 0  # time of the event being handled
        self._seq = itertools.count()
        self._events: list[tuple[int, int, Callable[[Any], None], Any]] = []
        self._lines: list[tuple[int, int, str, str, str, dict[str, str]]] = []
        self._stamps: dict[int, tuple[str, str, str]] = {}
        self._effects = Effects()
        self._jobs: dict[str, Job] = {}
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
        active = ActiveFault(fault, rng)
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

    def switch_link(self, action: str, switch: str, interface: str) -> tuple[int, str]:
        """A link-switch command as the demo's switches answer it: `drain` moves the rack's
        cross-rack traffic off its ToR's uplink (a congested uplink stops slowing it), `restore`
        puts it back, `is-drained`/`is-forwarding` tell (exit 0 when true, 1 when not);
        (exit code, what the switch printed)."""
        rack = self._tor_rack.get(switch)
        if rack is None:
            return 2, f"{switch}: no such switch\n"
        if interface != UPLINK_INTERFACE:
            return 2, f"{switch}: no interface {interface} (the simulated ToRs have one: uplink)\n"
        drained = self._effects.drained
        if action == "drain":
            drained.add(rack)
        elif action == "restore":
            drained.discard(rack)
        elif action not in ("is-drained", "is-forwarding"):
            return 2, f"unknown action {action}: drain, restore, is-drained or is-forwarding\n"
        state = "drained" if rack in drained else "forwarding"
        code = 1 if action.startswith("is-") and action != f"is-{state}" else 0
        return code, f"{switch} {interface}: {state}\n"

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
        self._hosts: dict[str, SimHost] = {}
        for d in fleet.hosts:
            rack = d.rack or "-"
            self._hosts[d.hostname] = SimHost(
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
        self._clusters: dict[str, YarnCluster] = {}
        for names in fx.yarn_workers(fleet).values():
            rack_hosts = [self._hosts[n] for n in names]
            for h in rack_hosts:
                h.peers = [p for p in rack_hosts if p is not h]
                self._cluster(fleet, h.cluster).workers.append(h)
        self._workers = [h for c in self._clusters.values() for h in c.workers]
        self._next_block = FIRST_BLOCK + rng.randrange(10**7)

    def _cluster(self, fleet: InventoryDoc, name: str) -> YarnCluster:
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
        cluster = YarnCluster([], rm, bp, app_ts)
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

    def _arrive(self, arg: tuple[YarnCluster, float]) -> None:
        self._submit(arg[0])
        self._after(self._rng.expovariate(arg[1]), self._arrive, arg)

    def _submit(self, cluster: YarnCluster) -> None:
        rng, t = self._rng, self._t
        cluster.apps += 1
        app = f"application_{cluster.app_ts}_{cluster.apps:04d}"
        dataset = f"/warehouse/{rng.choice(DATASETS)}/dt={self.start - timedelta(days=1):%Y-%m-%d}"
        job = Job(app, cluster, rng.choice(JOBS), rng.choice((1, 2, 2, 3)), t, dataset)
        self._jobs[app] = job
        self._rm(t, cluster, RMAPP, f"{app} {rm_state('SUBMITTED', 'ACCEPTED', 'APP_ACCEPTED')}")
        self._after(rng.uniform(1, 3), self._am_start, job)

    def _container(self, job: Job, host: SimHost, n: int, kind: str) -> Container:
        serial = job.app.removeprefix("application_")
        file = f"/var/log/hadoop-yarn/containers/{job.app}/container_e07_{serial}_01_{n:06d}/stderr"
        labels = {"app": kind, "cluster": host.cluster, "rack": host.rack, "application": job.app}
        return Container(host, n - 1, file, labels)

    def _am_start(self, job: Job) -> None:
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

    def _executors_up(self, job: Job) -> None:
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

    def _stage_start(self, job: Job) -> None:
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
        kind, site = stage_site(job, job.stage)
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

    def _launch(self, job: Job, ex: Container) -> None:
        """Start the next pending task on `ex`: its lines and its end are all decided now."""
        rng, t, host, eff = self._rng, self._t, ex.host, self._effects
        assert job.driver is not None
        part, attempt = job.pending.popleft()
        task = Task(job, ex, part, attempt, job.tid, t)
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

    def _source(self, reader: SimHost) -> SimHost:
        """The datanode a block is read from: the local replica, else the rack, else anywhere."""
        rng = self._rng
        r = rng.random()
        if r < 0.5:
            return reader
        if r < 0.8 and reader.peers:
            return rng.choice(reader.peers)
        return rng.choice(self._clusters[reader.cluster].workers)

    def _task_end(self, task: Task) -> None:
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
            self.finished["tasks"] += 1
            result = f"{self._rng.randrange(1500, 2600)} bytes result sent to driver"
            self._spark(t, ex, EXEC, f"Finished task {task.name()}). {result}")
            took = f"in {(t - task.start) // 1000} ms on {ex.host.name} (executor {ex.id})"
            done = f"({job.finished}/{job.n_tasks})"
            self._spark(t + 3000, driver, TSM, f"Finished task {task.name()}) {took} {done}")
        if job.pending:
            self._launch(job, ex)
        elif job.running == 0:
            self._stage_done(job, driver)

    def _stage_done(self, job: Job, driver: Container) -> None:
        t = self._t + 5000
        kind, site = stage_site(job, job.stage)
        took = f"finished in {(t - job.stage_start) / S:.3f} s"
        self._spark(t, driver, DAG, f"{kind} {job.stage} ({site}) {took}")
        if job.stage < job.stages - 1:
            self._after(self._rng.uniform(0.05, 0.3), self._stage_start, job)
            return
        self._spark(t, driver, DAG, f"Job 0 finished: {site}, took {(t - job.submitted) / S:.6f} s")
        self._spark(t + 2000, driver, AM, "Final app status: SUCCEEDED, exitCode: 0")
        self._finish(job, driver, t, ok=True)

    def _abort(self, job: Job, task: Task) -> None:
        t, driver, stage = self._t + 4000, job.driver, f"stage {job.stage}.0"
        assert driver is not None
        failed = f"Task {task.part} in {stage} failed {MAX_FAILURES} times"
        self._spark(t, driver, TSM_ERROR, f"{failed}; aborting job")
        site = stage_site(job, job.stages - 1)[1]
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

    def _finish(self, job: Job, driver: Container, t: int, *, ok: bool) -> None:
        """The ResourceManager's view of the end: its state changes and one-line summary."""
        job.done = True
        self.finished["jobs"] += 1
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
            self._rm(t + i * 5000, cluster, RMAPP, f"{app} {rm_state(a, b, event)}")
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
