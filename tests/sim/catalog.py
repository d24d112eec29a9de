"""Every kind of line the simulator writes, as a regex over the whole line (header included).

The tests hold the simulator to this catalog, so extraction rules written against it keep working.
"""

from __future__ import annotations

import re

LOG4J = r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
SPARK = r"(?P<ts>\d\d/\d\d/\d\d \d\d:\d\d:\d\d) "
SYSLOG = r"(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) kernel: \[ *\d+\.\d{6}\] "
DN = r"org\.apache\.hadoop\.hdfs\.server\.datanode\.DataNode"
IP = r"[\d.]+"
BLOCK = r"BP-\d+-[\d.]+-\d+:blk_\d+_\d+"
NODE = rf"DatanodeInfoWithStorage\[{IP}:50010,DS-[0-9a-f-]{{36}},DISK\]"
TASK = r"(?P<task>\d+)\.(?P<attempt>\d+) in stage (?P<stage>\d+)\.0 \(TID (?P<tid>\d+)"

PATTERNS: dict[str, dict[str, str]] = {
    "hdfs-datanode": {
        "clienttrace": LOG4J + rf"INFO {DN}\.clienttrace: src: /(?P<src>{IP}):(?P<sport>\d+), "
        rf"dest: /(?P<dst>{IP}):(?P<dport>\d+), bytes: (?P<bytes>\d+), "
        r"op: (?P<op>HDFS_READ|HDFS_WRITE), cliID: DFSClient_NONMAPREDUCE_-?\d+_\d+, offset: 0, "
        rf"srvID: [0-9a-f-]{{36}}, blockid: (?P<block>{BLOCK}), duration\(ns\): (?P<ns>\d+)",
        "receiving": LOG4J
        + rf"INFO {DN}: Receiving {BLOCK} src: /{IP}:\d+ dest: /(?P<dst>{IP}):50010",
        "packet_responder": LOG4J + rf"INFO {DN}: PacketResponder: {BLOCK}, "
        rf"type=(LAST_IN_PIPELINE|HAS_DOWNSTREAM_IN_PIPELINE, downstreams=\d:\[{IP}:50010"
        rf"(, {IP}:50010)*\]) terminating",
        "slow_write": LOG4J + rf"WARN {DN}: Slow BlockReceiver write data to disk "
        r"cost:(?P<ms>\d+)ms \(threshold=300ms\), volume=file:/data/\d+/dfs/dn, blockId=\d+",
        "slow_flush": LOG4J + rf"WARN {DN}: Slow flushOrSync took (?P<ms>\d+)ms "
        r"\(threshold=300ms\), isSync:false, flushTotalNanos=\d+ns, "
        r"volume=file:/data/\d+/dfs/dn, blockId=\d+",
        "xceiver_error": LOG4J + rf"ERROR {DN}: (?P<host>\S+):50010:DataXceiver error processing "
        rf"READ_BLOCK operation  src: /(?P<reader>{IP}):\d+ dst: /(?P<server>{IP}):50010",
        "out_of_space": LOG4J + rf"INFO {DN}: opWriteBlock {BLOCK} received exception "
        r"org\.apache\.hadoop\.util\.DiskChecker\$DiskOutOfSpaceException: Out of space: The "
        r"volume with the most available space \(=0 B\) is less than the block size "
        r"\(=134217728 B\)\.",
        "volume_check": LOG4J + r"WARN org\.apache\.hadoop\.hdfs\.server\.datanode\.checker\."
        r"DatasetVolumeChecker: Exception running disk checks against volume /data/\d+/dfs/dn: "
        r"org\.apache\.hadoop\.util\.DiskChecker\$DiskErrorException: Error checking directory "
        r"/data/\d+/dfs/dn/current: No space left on device",
        "jvm_pause": LOG4J + r"INFO org\.apache\.hadoop\.util\.JvmPauseMonitor: Detected pause in "
        r"JVM or host machine \(eg GC\): pause of approximately (?P<ms>\d+)ms",
    },
    "yarn-rm": {
        "state_change": LOG4J + r"INFO org\.apache\.hadoop\.yarn\.server\.resourcemanager\.rmapp"
        r"\.RMAppImpl: (?P<app>application_\d+_\d{4}) State change from (?P<before>[A-Z_]+) to "
        r"(?P<after>[A-Z_]+) on event = (?P<event>[A-Z_]+)",
        "summary": LOG4J + r"INFO org\.apache\.hadoop\.yarn\.server\.resourcemanager\.RMAppManager"
        r"\$ApplicationSummary: appId=(?P<app>application_\d+_\d{4}),name=\w+,user=etl,"
        r"queue=root\.etl,state=(?P<state>FINISHED|FAILED),trackingUrl=http://\S+/,"
        r"appMasterHost=(?P<host>\S+?),submitTime=\d+,startTime=\d+,launchTime=\d+,"
        r"finishTime=\d+,finalStatus=(?P<final>SUCCEEDED|FAILED),memorySeconds=\d+,"
        r"vcoreSeconds=\d+,preemptedMemorySeconds=0,preemptedVcoreSeconds=0,"
        r"preemptedAMContainers=0,preemptedNonAMContainers=0,applicationType=SPARK",
    },
    "spark-driver": {
        "attempt": SPARK + r"INFO yarn\.ApplicationMaster: ApplicationAttemptId: "
        r"appattempt_\d+_\d{4}_000001",
        "registered": SPARK + r"INFO cluster\.YarnClusterSchedulerBackend: Registered executor "
        rf"NettyRpcEndpointRef\(spark-client://Executor\) \({IP}:\d+\) with ID \d+",
        "submitting": SPARK + r"INFO scheduler\.DAGScheduler: Submitting \d+ missing tasks from "
        r"(ResultStage|ShuffleMapStage) \d+ \(MapPartitionsRDD\[\d+\] at \w+ at \w+\.scala:\d+\)",
        "task_set": SPARK + r"INFO cluster\.YarnClusterScheduler: Adding task set \d+\.0 with "
        r"\d+ tasks",
        "starting": SPARK + rf"INFO scheduler\.TaskSetManager: Starting task {TASK}, "
        r"(?P<host>\S+), executor \d+, partition \d+, (NODE_LOCAL|RACK_LOCAL|ANY), \d+ bytes\)",
        "finished": SPARK + rf"INFO scheduler\.TaskSetManager: Finished task {TASK}\) in "
        r"(?P<ms>\d+) ms on (?P<host>\S+) \(executor \d+\) \(\d+/\d+\)",
        "lost": SPARK + rf"WARN scheduler\.TaskSetManager: Lost task {TASK}, (?P<host>\S+), "
        r"executor \d+\): (?P<error>\S+: .+)",
        "abort": SPARK + r"ERROR scheduler\.TaskSetManager: Task \d+ in stage \d+\.0 failed 4 "
        r"times; aborting job",
        "stage_done": SPARK + r"INFO scheduler\.DAGScheduler: (ResultStage|ShuffleMapStage) \d+ "
        r"\(\w+ at \w+\.scala:\d+\) finished in \d+\.\d{3} s",
        "job_done": SPARK + r"INFO scheduler\.DAGScheduler: Job 0 (finished|failed): \w+ at "
        r"\w+\.scala:\d+, took \d+\.\d{6} s",
        "final_status": SPARK + r"INFO yarn\.ApplicationMaster: Final app status: "
        r"(SUCCEEDED, exitCode: 0|FAILED, exitCode: 15, "
        r"\(reason: User class threw exception: .+\))",
        "user_exception": SPARK + r"ERROR yarn\.ApplicationMaster: User class threw exception: "
        r"org\.apache\.spark\.SparkException: Job aborted due to stage failure: .+",
    },
    "spark-executor": {
        "registered": SPARK + r"INFO executor\.CoarseGrainedExecutorBackend: Successfully "
        r"registered with driver",
        "running": SPARK + rf"INFO executor\.Executor: Running task {TASK}\)",
        "finished": SPARK + rf"INFO executor\.Executor: Finished task {TASK}\)\. \d+ bytes result "
        r"sent to driver",
        "exception": SPARK + rf"ERROR executor\.Executor: Exception in task {TASK}\)",
        "connect_failed": SPARK + rf"WARN hdfs\.DFSClient: Failed to connect to /(?P<server>{IP})"
        rf":50010 for file /\S+ for block {BLOCK}, add to deadNodes and continue\. "
        r"java\.net\.ConnectException: Connection timed out",
        "read_failed": SPARK + rf"WARN hdfs\.DFSClient: Exception while reading from {BLOCK} of "
        rf"/\S+ from {NODE}",
        "excluding": SPARK + rf"INFO hdfs\.DataStreamer: Excluding datanode {NODE}",
    },
    "kernel": {
        "edac_ce": SYSLOG + r"EDAC MC(?P<mc>\d): 1 CE memory read error on "
        r"(?P<dimm>CPU_SrcID#\d_Ha#\d_Chan#\d_DIMM#\d) \(channel:\d slot:\d page:0x[0-9a-f]+ "
        r"offset:0x[0-9a-f]+ grain:32 syndrome:0x0 - area:DRAM err_code:0101:009\d socket:\d "
        r"ha:\d channel_mask:\d rank:\d\)",
        "mce": SYSLOG + r"mce: \[Hardware Error\]: Machine check events logged",
        "link_down": SYSLOG + r"(i40e|ixgbe) 0000:3b:00\.0 eth0: NIC Link is Down",
        "link_up": SYSLOG + r"(i40e 0000:3b:00\.0 eth0: NIC Link is Up, \d+ Gbps Full Duplex, "
        r"Requested FEC: CL108 RS-FEC, Negotiated FEC: CL108 RS-FEC, Autoneg: False, Flow "
        r"Control: None|ixgbe 0000:3b:00\.0 eth0: NIC Link is Up \d+ Gbps, Flow Control: RX/TX)",
        "io_error": SYSLOG + r"blk_update_request: I/O error, dev sdb, sector \d+ op 0x0:\(READ\) "
        r"flags 0x0 phys_seg 1 prio class 0",
        "hung_task": SYSLOG + r"INFO: task java:\d+ blocked for more than 120 seconds\.",
        "perf": SYSLOG + r"perf: interrupt took too long \(\d+ > 2500\), lowering "
        r"kernel\.perf_event_max_sample_rate to \d+",
        "syn_flood": SYSLOG + r"TCP: request_sock_TCP: Possible SYN flooding on port 50010\. "
        r"Sending cookies\.  Check SNMP counters\.",
        "hrtimer": SYSLOG + r"hrtimer: interrupt took \d+ ns",
        "promiscuous": SYSLOG + r"device eth0 (entered|left) promiscuous mode",
    },
}
COMPILED = {
    app: {kind: re.compile(pattern + "$") for kind, pattern in kinds.items()}
    for app, kinds in PATTERNS.items()
}


def kind_of(app: str, message: str) -> tuple[str, re.Match[str]] | None:
    """The catalog entry a line matches, with its match."""
    for kind, pattern in COMPILED[app].items():
        if match := pattern.match(message):
            return kind, match
    return None
