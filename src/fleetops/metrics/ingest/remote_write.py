"""Prometheus remote write 1.0: a snappy-compressed protobuf `WriteRequest`, decoded.

The three messages fleetops reads (`WriteRequest`, `TimeSeries`, `Label`, `Sample`, from
prometheus/prompb/types.proto and remote.proto) are described to the protobuf library here, at
first use, instead of a generated `_pb2` module: the library still does all the decoding, and
there is no generated file or `protoc` step to keep in step with the library's version. Fields
fleetops does not read (metadata, exemplars, native histograms) are skipped as unknown fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import cramjam
from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.message import DecodeError, Message

from fleetops.errors import BadRequest, PayloadTooLarge
from fleetops.kit.protobuf import Field, message_pool

_F = descriptor_pb2.FieldDescriptorProto
_REP, _OPT = _F.LABEL_REPEATED, _F.LABEL_OPTIONAL
# message -> its fields: (name, number, type, label, message type)
_MESSAGES: dict[str, list[Field]] = {
    "WriteRequest": [("timeseries", 1, _F.TYPE_MESSAGE, _REP, "TimeSeries")],
    "TimeSeries": [
        ("labels", 1, _F.TYPE_MESSAGE, _REP, "Label"),
        ("samples", 2, _F.TYPE_MESSAGE, _REP, "Sample"),
    ],
    "Label": [("name", 1, _F.TYPE_STRING, _OPT, ""), ("value", 2, _F.TYPE_STRING, _OPT, "")],
    "Sample": [
        ("value", 1, _F.TYPE_DOUBLE, _OPT, ""),
        ("timestamp", 2, _F.TYPE_INT64, _OPT, ""),
    ],
}


class RemoteWriteError(BadRequest):
    """The body is not a snappy-compressed WriteRequest."""


@dataclass(frozen=True)
class WireSeries:
    """One series as sent: all its labels (`__name__` too) and (milliseconds, value) samples."""

    labels: dict[str, str]
    samples: list[tuple[int, float]]


@cache
def write_request_class() -> type[Message]:
    """The `prometheus.WriteRequest` message class, built once, in a pool of its own."""
    pool = message_pool("fleetops/prometheus_remote.proto", "prometheus", "proto3", _MESSAGES)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("prometheus.WriteRequest"))


def decode(body: bytes, *, max_bytes: int) -> list[WireSeries]:
    """The series of a remote-write body. The decompressed size snappy declares is checked
    before anything is decompressed, so a small body cannot claim a huge buffer."""
    try:
        size = cramjam.snappy.decompress_raw_len(body)
    except cramjam.DecompressionError as exc:
        raise RemoteWriteError(f"the body is not snappy (block format): {exc}") from None
    if size > max_bytes:
        raise PayloadTooLarge(
            f"the body decompresses to {size} bytes; the limit is {max_bytes} "
            "(metrics_max_decoded_bytes): lower queue_config.max_samples_per_send"
        )
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise RemoteWriteError(f"the body is not valid snappy: {exc}") from None
    request: Any = write_request_class()()
    try:
        request.ParseFromString(raw)
    except DecodeError as exc:
        raise RemoteWriteError(f"the body is not a protobuf WriteRequest: {exc}") from None
    return [
        WireSeries(
            labels={label.name: label.value for label in series.labels},
            samples=[(sample.timestamp, sample.value) for sample in series.samples],
        )
        for series in request.timeseries
    ]


def encode(series: list[WireSeries]) -> bytes:
    """A snappy-compressed WriteRequest of `series` (what Prometheus sends; for tests and
    tools)."""
    request: Any = write_request_class()()
    for one in series:
        wire = request.timeseries.add()
        for name, text in one.labels.items():
            wire.labels.add(name=name, value=text)
        for stamp, value in one.samples:
            wire.samples.add(timestamp=stamp, value=value)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
