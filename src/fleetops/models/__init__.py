"""All ORM models; importing this package registers every table on `Base.metadata`."""

from fleetops.models.analytics import ResourceRecommendation, ResourceReport, StorageReport
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
from fleetops.models.devices import DeviceState, DeviceTransition, RepairTicket, WebhookDelivery
from fleetops.models.findings import Finding
from fleetops.models.inspection import BaselineRow, ProbeRun
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
from fleetops.models.logs import (
    HostErrorCount,
    HostTaskWindow,
    IngestToken,
    LatencyWindow,
    LinkWindow,
    LogCursor,
    LogJob,
    LogLine,
    LogTemplate,
    RollupState,
    TemplateCount,
)
from fleetops.models.metrics import MetricWindow

__all__ = [
    "ApiToken",
    "Approval",
    "AuditRecord",
    "Base",
    "BaselineRow",
    "ChangeRequest",
    "Cluster",
    "Datacenter",
    "DatacenterLatency",
    "DeviceState",
    "DeviceTransition",
    "Finding",
    "FreezeWindow",
    "HardwareModel",
    "Host",
    "HostErrorCount",
    "HostGroup",
    "HostLabel",
    "HostLease",
    "HostRun",
    "HostTaskWindow",
    "IngestToken",
    "LatencyWindow",
    "Link",
    "LinkWindow",
    "LogCursor",
    "LogJob",
    "LogLine",
    "LogTemplate",
    "LoginFailure",
    "MetricWindow",
    "ProbeRun",
    "Rack",
    "Region",
    "RepairTicket",
    "ResourceRecommendation",
    "ResourceReport",
    "RollupState",
    "StepRun",
    "StorageReport",
    "Switch",
    "TemplateCount",
    "UTCDateTime",
    "User",
    "WebSession",
    "WebhookDelivery",
    "Workflow",
    "utcnow",
]
