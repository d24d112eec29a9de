"""One way in for every source: a tool's output (and the previous one) to signals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fleetops.devices.enums import Source
from fleetops.devices.signals.edac import parse_edac
from fleetops.devices.signals.exceptions import SignalError
from fleetops.devices.signals.fill import parse_fill
from fleetops.devices.signals.ipmi import parse_sel
from fleetops.devices.signals.node_exporter import parse_node_metrics
from fleetops.devices.signals.prediction import parse_predictions
from fleetops.devices.signals.service import Signal
from fleetops.devices.signals.smart import parse_smart

# Sources whose readings are cumulative counters or a history: they are compared with the
# previous payload of the same host. SMART readings are states and stand alone.
STATEFUL = frozenset({Source.IPMI_SEL, Source.EDAC, Source.NODE_EXPORTER})
_TEXT = {
    Source.IPMI_SEL: "the text output of `ipmitool sel elist`",
    Source.NODE_EXPORTER: "the text of a node_exporter /metrics page",
}


def parse_payload(
    source: Source, payload: Any, *, host: str, now: datetime, previous: Any = None
) -> list[Signal]:
    """The signals in `payload`, one source's output; SignalError (422) says what is wrong."""
    if source in _TEXT:
        for what, value in (("payload", payload), ("previous", previous)):
            if value is not None and not isinstance(value, str):
                raise SignalError(f"{what} of source {source} must be {_TEXT[source]}")
    if source is Source.SMART:
        return parse_smart(payload, host=host, now=now)
    if source is Source.EDAC:
        return parse_edac(payload, host=host, now=now, previous=previous)
    if source is Source.FILL_FORECAST:
        return parse_fill(payload, host=host, now=now)
    if source is Source.DISK_PREDICTION:
        return parse_predictions(payload, host=host, now=now)
    if source is Source.IPMI_SEL:
        return parse_sel(payload, host=host, now=now, previous=previous)
    return parse_node_metrics(payload, host=host, now=now, previous=previous)
