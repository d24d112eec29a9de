"""NetBox device CSV: the DCIM device bulk-import format, and NetBox's own table export.

Headers are matched loosely (`Device Type`, `device_type` and `type` are one column) because
NetBox's export writes display names while its import expects field names. Columns fleetops has no
field for become labels, so nothing in the file is silently dropped.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re

from fleetops.devices.enums import Lifecycle
from fleetops.inventory.document import HardwareModelDoc, HostDoc, InventoryDoc
from fleetops.inventory.formats.native import (
    Issues,
    NotExportable,
    cells,
    item_label,
    read_rows,
    split_header,
)

L = Lifecycle
STATUS_TO_STATE = {
    "active": L.IN_SERVICE,
    "planned": L.PROVISIONING,
    "staged": L.PROVISIONING,
    "inventory": L.PROVISIONING,
    "failed": L.IN_REPAIR,
    "offline": L.ISOLATED,
    "decommissioning": L.RETIRED,
}
# NetBox has no words for the transient states; these are the nearest (and lose information).
STATE_TO_STATUS: dict[str, str] = {
    L.IN_SERVICE: "active",
    L.PROVISIONING: "planned",
    L.SUSPECT: "active",
    L.DRAINING: "active",
    L.ISOLATED: "offline",
    L.IN_REPAIR: "failed",
    L.VERIFYING: "staged",
    L.RETIRED: "decommissioning",
}
# Columns that hint a CSV is a NetBox export rather than a fleetops hosts CSV.
NETBOX_COLUMNS = frozenset({
    "role", "device_type", "manufacturer", "site", "location", "tenant", "platform", "serial",
    "asset_tag", "primary_ip4", "primary_ip", "position", "status",
})  # fmt: skip
_ALIASES = {
    "device_role": "role",
    "type": "device_type",
    "primary_ipv4": "primary_ip4",
    "primary_ipv6": "primary_ip6",
    "ip_address": "primary_ip",
    "serial_number": "serial",
}
_ADDRESS_COLUMNS = ("primary_ip4", "primary_ip", "primary_ip6", "dns_name")  # first one set wins
_FIELD_COLUMNS = {"device_type": "model", "rack": "rack", "cluster": "cluster"}
_EXPORT_COLUMNS = (
    "name", "status", "role", "site", "tenant", "platform", "serial", "asset_tag", "device_type",
    "rack", "cluster", "primary_ip4", "primary_ip6", "dns_name", "tags",
)  # fmt: skip
# Columns an export fills from fields; a label by one of these names could not come back as one.
_NOT_LABELS = frozenset(
    {"name", "status", "tags", "primary_ip", *_FIELD_COLUMNS, *_ADDRESS_COLUMNS}
)


def normalize_column(name: str) -> str:
    """Map `Device Type`, `device-type` and the older `device_role` to NetBox field names."""
    key = re.sub(r"[\s-]+", "_", name.strip().lower())
    return _ALIASES.get(key, key)


def parse(text: str) -> InventoryDoc:
    """Parse a NetBox device CSV into host documents."""
    issues = Issues()
    rows = read_rows(text, issues)
    _, header = split_header(rows, required="name", normalize=normalize_column, issues=issues)
    issues.raise_if_any()
    hosts: list[HostDoc] = []
    names: list[tuple[str, int | None]] = []
    for line, row in rows:
        data = cells(header, row, line, issues)
        if data is None:
            continue
        if "name" in data:
            names.append((data["name"], line))
        if (host := _host(data, line, issues)) is not None:
            hosts.append(host)
    issues.check_unique("host", names)
    issues.raise_if_any()
    return InventoryDoc(hardware_models=_device_types(hosts), hosts=hosts)


def _device_types(hosts: list[HostDoc]) -> list[HardwareModelDoc]:
    """NetBox names each device's type and maker: enough to create the hardware model."""
    models: dict[str, HardwareModelDoc] = {}
    for host in hosts:
        if host.model and host.model not in models:
            vendor = host.labels.get("manufacturer")
            fields = {"name": host.model, "line": host.line} | (
                {"vendor": vendor} if vendor else {}
            )
            models[host.model] = HardwareModelDoc(**fields)
    return list(models.values())


def _host(data: dict[str, str], line: int, issues: Issues) -> HostDoc | None:
    what = item_label("host", data.get("name"))
    values: dict[str, object] = {}
    columns = {"hostname": "name", "state": "status", "groups": "tags"}  # for messages
    if "name" in data:
        values["hostname"] = data.pop("name")
    for column, target in _FIELD_COLUMNS.items():
        if column in data:
            values[target], columns[target] = data.pop(column), column
    if source := next((c for c in _ADDRESS_COLUMNS if c in data), None):
        values["address"], columns["address"] = data.pop(source).split("/", 1)[0], source
    if (status := data.pop("status", "")) and status.lower() in STATUS_TO_STATE:
        values["state"] = STATUS_TO_STATE[status.lower()]
    elif status:
        expected = ", ".join(STATUS_TO_STATE)
        issues.add(line, f"{what}: status: unknown NetBox status {status!r}; expected {expected}")
    if "tags" in data:
        values["groups"] = [tag.strip() for tag in data.pop("tags").split(",") if tag.strip()]
    values["labels"] = data  # role, site, tenant, platform, serial, ... and unknown columns
    return issues.build(HostDoc, values, what=what, line=line, field_names=columns)


def render(doc: InventoryDoc) -> str:
    """Render hosts as a NetBox device CSV; labels become columns of the same name."""
    extra = sorted({key for h in doc.hosts for key in h.labels} - set(_EXPORT_COLUMNS))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*_EXPORT_COLUMNS, *extra], lineterminator="\n")
    writer.writeheader()
    for host in doc.hosts:
        writer.writerow(_row(host))
    return out.getvalue()


def _row(host: HostDoc) -> dict[str, str]:
    if clash := sorted(_NOT_LABELS & host.labels.keys()):
        raise NotExportable(f"host {host.hostname!r}: labels {clash} clash with NetBox columns")
    if bad := [group for group in host.groups if "," in group]:
        raise NotExportable(f"host {host.hostname!r}: tags cannot contain ',': {bad}")
    row = {
        **host.labels,
        "name": host.hostname,
        "status": STATE_TO_STATUS[host.state],
        "device_type": host.model or "",
        "rack": host.rack or "",
        "cluster": host.cluster or "",
        "tags": ",".join(host.groups),
    }
    if host.address:
        row[_address_column(host.address)] = host.address
    return row


def _address_column(address: str) -> str:
    try:
        version = ipaddress.ip_address(address).version
    except ValueError:
        return "dns_name"  # NetBox devices only point at IPs; keep the name where it reads back
    return "primary_ip4" if version == 4 else "primary_ip6"
