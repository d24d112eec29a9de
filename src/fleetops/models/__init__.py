"""All ORM models; importing this package registers every table on `Base.metadata`."""

from fleetops.models.audit import AuditRecord
from fleetops.models.auth import ApiToken, LoginFailure, User, WebSession
from fleetops.models.base import Base, UTCDateTime, utcnow
from fleetops.models.changes import (
    Approval,
    ChangeRequest,
    FreezeWindow,
    HostLease,
    HostRun,
    StepRun,
    Workflow,
)
from fleetops.models.findings import Finding
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
from fleetops.models.logs import IngestToken, LogCursor, LogLine, LogTemplate

__all__ = [
    "ApiToken",
    "Approval",
    "AuditRecord",
    "Base",
    "ChangeRequest",
    "Cluster",
    "Datacenter",
    "DatacenterLatency",
    "Finding",
    "FreezeWindow",
    "HardwareModel",
    "Host",
    "HostGroup",
    "HostLabel",
    "HostLease",
    "HostRun",
    "IngestToken",
    "Link",
    "LogCursor",
    "LogLine",
    "LogTemplate",
    "LoginFailure",
    "Rack",
    "Region",
    "StepRun",
    "Switch",
    "UTCDateTime",
    "User",
    "WebSession",
    "Workflow",
    "utcnow",
]
