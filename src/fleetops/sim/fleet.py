"""Generate a realistic leaf–spine fleet as an inventory document.

Deterministic for a seed, so demos, tests and benchmarks see the same fleet.
"""

from __future__ import annotations

import ipaddress
import random

from fleetops.inventory.document import (
    ClusterDoc,
    DatacenterDoc,
    HardwareModelDoc,
    HostDoc,
    InventoryDoc,
    LatencyDoc,
    LinkDoc,
    RackDoc,
    RegionDoc,
    SwitchDoc,
)

MODELS = [
    HardwareModelDoc(
        name="dn-gen3",
        vendor="Dell",
        cpu_model="Xeon Gold 6248",
        cpu_cores=40,
        memory_gb=384,
        disks=[
            {"kind": "hdd", "size_gb": 12000, "count": 12},
            {"kind": "ssd", "size_gb": 960, "count": 2},
        ],
        nics=[{"speed_gbps": 25, "count": 2}],
    ),
    HardwareModelDoc(
        name="cn-gen4",
        vendor="Lenovo",
        cpu_model="EPYC 7543",
        cpu_cores=64,
        memory_gb=512,
        disks=[{"kind": "nvme", "size_gb": 3840, "count": 4}],
        nics=[{"speed_gbps": 100, "count": 1}],
    ),
    HardwareModelDoc(
        name="gp-gen2",
        vendor="Supermicro",
        cpu_model="Xeon Silver 4214",
        cpu_cores=24,
        memory_gb=192,
        disks=[{"kind": "ssd", "size_gb": 1920, "count": 2}],
        nics=[{"speed_gbps": 10, "count": 2}],
    ),
]
SITES = [("eu-west", "ams1"), ("eu-west", "fra1"), ("us-east", "iad1")]
CLUSTERS = [
    ClusterDoc(name="hadoop-prod", scheduler="yarn", description="HDFS + YARN batch"),
    ClusterDoc(name="k8s-stream", scheduler="kubernetes", description="Flink/Spark streaming"),
]


def generate(
    *, hosts: int = 1000, racks: int = 40, spines_per_dc: int = 4, seed: int = 7
) -> InventoryDoc:
    """A fleet of `hosts` spread evenly over `racks`, two clusters, three sites."""
    if hosts < 1 or racks < 1 or hosts < racks:
        raise ValueError("need at least one rack and at least as many hosts as racks")
    rng = random.Random(seed)
    doc = InventoryDoc(
        regions=[RegionDoc(name=r) for r in sorted({r for r, _ in SITES})],
        datacenters=[DatacenterDoc(name=dc, region=r) for r, dc in SITES],
        latencies=[
            LatencyDoc(a="ams1", b="fra1", rtt_ms=7.8),
            LatencyDoc(a="ams1", b="iad1", rtt_ms=81.5),
            LatencyDoc(a="fra1", b="iad1", rtt_ms=88.2),
        ],
        clusters=list(CLUSTERS),
        hardware_models=list(MODELS),
    )
    for _region, dc in SITES:
        doc.switches += [
            SwitchDoc(name=f"{dc}-spine-{i + 1}", role="spine", datacenter=dc)
            for i in range(spines_per_dc)
        ]
    net = ipaddress.IPv4Network("10.0.0.0/8")
    per_rack, extra = divmod(hosts, racks)
    serial = 0
    for r in range(racks):
        dc = SITES[r % len(SITES)][1]
        cluster = CLUSTERS[0] if r < racks * 3 // 5 or racks == 1 else CLUSTERS[1]
        rack = f"r{r + 1:03d}"
        doc.racks.append(
            RackDoc(
                name=rack,
                datacenter=dc,
                cluster=cluster.name,
                failure_domains={
                    "row": f"row-{r // 8 + 1}",
                    "power": f"pdu-{'ab'[r % 2]}{r // 4 + 1}",
                },
            )
        )
        tor = f"{dc}-{rack}-tor"
        doc.switches.append(
            SwitchDoc(
                name=tor,
                role="tor",
                datacenter=dc,
                rack=rack,
                address=str(net[(r + 1) * 256 + 254]),
            )
        )
        doc.links += [
            LinkDoc(a=tor, b=f"{dc}-spine-{i + 1}", speed_gbps=100) for i in range(spines_per_dc)
        ]
        for slot in range(per_rack + (1 if r < extra else 0)):
            serial += 1
            doc.hosts.append(_host(serial, slot, rack, r, cluster.name, net, rng))
            doc.links.append(LinkDoc(a=doc.hosts[-1].hostname, b=tor, speed_gbps=25))
    return doc


def _host(
    serial: int,
    slot: int,
    rack: str,
    r: int,
    cluster: str,
    net: ipaddress.IPv4Network,
    rng: random.Random,
) -> HostDoc:
    if cluster == "hadoop-prod":
        prefix, model, role = "dn", "dn-gen3", "datanode"
        if slot == 0:
            role = "namenode" if r == 0 else "master"
    else:
        prefix, model, role = "wk", rng.choice(["cn-gen4", "gp-gen2"]), "worker"
    return HostDoc(
        hostname=f"{prefix}-{serial:04d}",
        address=str(net[(r + 1) * 256 + slot + 10]),
        model=model,
        rack=rack,
        cluster=cluster,
        labels={"role": role, "os": rng.choice(["debian-12", "debian-12", "rocky-9"])},
        groups=[cluster, role],
    )
