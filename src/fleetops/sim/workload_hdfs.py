"""HDFS traffic of the simulated workload: block reads and write pipelines over the network.

This is where network and disk faults become visible: a transfer runs at the rate of the slowest
component on its path, and a datanode that is down, full or behind a bad switch shows up in the
DataNode and client lines exactly as it would on a real cluster.
"""

from __future__ import annotations

from fleetops.sim import faults as fx
from fleetops.sim.workload_clock import WorkloadClock
from fleetops.sim.workload_model import (
    BLOCK,
    CONNECT_TIMEOUT,
    DCI_MBPS,
    DFS_WARN,
    DISK_MBPS,
    DN_ERROR,
    DN_INFO,
    DN_WARN,
    FIRST_BLOCK,
    PORT,
    SPINE_MBPS,
    STREAMER,
    TOR_MBPS,
    TRACE,
    UPLINK_MBPS,
    S,
    SimHost,
    Task,
    YarnCluster,
)


class HdfsTraffic(WorkloadClock):
    """Reads and writes of HDFS blocks on behalf of Spark tasks."""

    def _xfer(
        self, src: SimHost, dst: SimHost, nbytes: int, t: int, disk: SimHost
    ) -> tuple[int, str]:
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
                    if (k := eff.uplink.get(rack)) and rack not in eff.drained:
                        rate = min(rate, DISK_MBPS / k)
                if src.dc != dst.dc:
                    rate = min(rate, DCI_MBPS)
                    latency += self._rtt.get(frozenset((src.dc, dst.dc)), 10.0) / 2000
        seconds = nbytes / (rate * 1e6)
        rng = self._rng
        if fail and rng.random() < fail:
            return int(seconds * rng.uniform(0.1, 0.9) * S), "reset"
        return int((seconds * rng.lognormvariate(0, 0.15) + latency) * S), ""

    def _read(self, task: Task, src: SimHost, nbytes: int, t: int) -> int:
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

    def _accepts(self, dn: SimHost, writer: SimHost, t: int) -> bool:
        """Whether `dn` can take a block from `writer` at `t` (space left, links up)."""
        eff = self._effects
        if dn.name in eff.full:
            return False
        return dn is writer or not (eff.link_down(dn.name, t) or eff.link_down(writer.name, t))

    def _block(self, cluster: YarnCluster, offset: int) -> str:
        return f"{cluster.bp}:blk_{FIRST_BLOCK + offset}_{1001 + offset}"

    def _write(self, task: Task, t: int) -> int:
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
        pipeline: list[SimHost] = []
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
