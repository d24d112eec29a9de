"""Inventory: regions, datacenters, clusters, racks, switches, hosts, links, hardware models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fleetops.models.base import Base, UTCDateTime, utcnow


class Region(Base):
    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")


class Datacenter(Base):
    __tablename__ = "datacenters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    region_id: Mapped[int] = mapped_column(
        ForeignKey("regions.id", ondelete="RESTRICT"), index=True
    )
    region: Mapped[Region] = relationship(lazy="raise")


class DatacenterLatency(Base):
    """Measured round-trip time between two datacenters (stored once per unordered pair)."""

    __tablename__ = "datacenter_latencies"
    __table_args__ = (
        UniqueConstraint("a_id", "b_id"),
        CheckConstraint("a_id < b_id", name="ordered_pair"),
        CheckConstraint("rtt_ms >= 0", name="rtt_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    a_id: Mapped[int] = mapped_column(ForeignKey("datacenters.id", ondelete="CASCADE"))
    b_id: Mapped[int] = mapped_column(ForeignKey("datacenters.id", ondelete="CASCADE"))
    rtt_ms: Mapped[float]


class Cluster(Base):
    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # yarn | kubernetes | slurm | none: tells later features how to drain a host.
    scheduler: Mapped[str] = mapped_column(String(32), default="none")
    description: Mapped[str] = mapped_column(String(500), default="")


class Rack(Base):
    __tablename__ = "racks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    datacenter_id: Mapped[int] = mapped_column(
        ForeignKey("datacenters.id", ondelete="RESTRICT"), index=True
    )
    cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="SET NULL"), index=True
    )
    # Failure domains this rack shares with others, e.g. {"power": "pdu-a", "row": "r1"}.
    failure_domains: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    datacenter: Mapped[Datacenter] = relationship(lazy="raise")
    cluster: Mapped[Cluster | None] = relationship(lazy="raise")


class HardwareModel(Base):
    """A SKU: hosts of one model are compared against each other."""

    __tablename__ = "hardware_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    vendor: Mapped[str] = mapped_column(String(64), default="")
    cpu_model: Mapped[str] = mapped_column(String(128), default="")
    cpu_cores: Mapped[int] = mapped_column(Integer, default=0)
    memory_gb: Mapped[int] = mapped_column(Integer, default=0)
    # [{"kind": "nvme", "size_gb": 3840, "count": 4}]
    disks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # [{"speed_gbps": 25, "count": 2}]
    nics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Switch(Base):
    __tablename__ = "switches"
    __table_args__ = (CheckConstraint("role IN ('tor', 'spine')", name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    datacenter_id: Mapped[int] = mapped_column(
        ForeignKey("datacenters.id", ondelete="RESTRICT"), index=True
    )
    rack_id: Mapped[int | None] = mapped_column(ForeignKey("racks.id", ondelete="SET NULL"))
    address: Mapped[str] = mapped_column(String(64), default="")
    datacenter: Mapped[Datacenter] = relationship(lazy="raise")
    rack: Mapped[Rack | None] = relationship(lazy="raise")


class Host(Base):
    __tablename__ = "hosts"

    id: Mapped[int] = mapped_column(primary_key=True)
    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    address: Mapped[str] = mapped_column(String(253), default="")  # an IP address or a DNS name
    ssh_port: Mapped[int] = mapped_column(Integer, default=22)
    ssh_user: Mapped[str] = mapped_column(String(64), default="root")
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("hardware_models.id", ondelete="RESTRICT"), index=True
    )
    rack_id: Mapped[int | None] = mapped_column(
        ForeignKey("racks.id", ondelete="RESTRICT"), index=True
    )
    cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="RESTRICT"), index=True
    )
    state: Mapped[str] = mapped_column(String(32), default="in_service", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    model: Mapped[HardwareModel | None] = relationship(lazy="raise")
    rack: Mapped[Rack | None] = relationship(lazy="raise")
    cluster: Mapped[Cluster | None] = relationship(lazy="raise")
    labels: Mapped[list[HostLabel]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="HostLabel.key"
    )
    groups: Mapped[list[HostGroup]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="HostGroup.name"
    )


class HostLabel(Base):
    __tablename__ = "host_labels"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), index=True)


class HostGroup(Base):
    """Group membership, e.g. from an Ansible inventory."""

    __tablename__ = "host_groups"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


class Link(Base):
    """A cable: host↔ToR (a_host_id set) or ToR↔spine (a_switch_id set)."""

    __tablename__ = "links"
    __table_args__ = (
        CheckConstraint("(a_host_id IS NULL) <> (a_switch_id IS NULL)", name="one_a_endpoint"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    a_host_id: Mapped[int | None] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), index=True
    )
    a_switch_id: Mapped[int | None] = mapped_column(
        ForeignKey("switches.id", ondelete="CASCADE"), index=True
    )
    b_switch_id: Mapped[int] = mapped_column(
        ForeignKey("switches.id", ondelete="CASCADE"), index=True
    )
    speed_gbps: Mapped[float] = mapped_column(default=25.0)
