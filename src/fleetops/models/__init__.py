"""All ORM models; importing this package registers every table on `Base.metadata`."""

from fleetops.models.audit import AuditRecord
from fleetops.models.auth import ApiToken, LoginFailure, User, WebSession
from fleetops.models.base import Base, UTCDateTime, utcnow
from fleetops.models.inventory import (
    Cluster,
    Datacenter,
    DatacenterLatency,
    HardwareModel,
    Host,
    HostGroup,
    HostLabel,
    Link,
    Rack,
    Region,
    Switch,
)

__all__ = [
    "ApiToken",
    "AuditRecord",
    "Base",
    "Cluster",
    "Datacenter",
    "DatacenterLatency",
    "HardwareModel",
    "Host",
    "HostGroup",
    "HostLabel",
    "Link",
    "LoginFailure",
    "Rack",
    "Region",
    "Switch",
    "UTCDateTime",
    "User",
    "WebSession",
    "utcnow",
]
