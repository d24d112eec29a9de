"""Protobuf message classes described at run time from a table of fields.

fleetops reads a few messages of other projects' formats (Prometheus remote write, HDFS
fsimage). Describing them here, rather than generating `_pb2` modules, leaves no generated file or
`protoc` step to keep in step with the library's version; the library still does the decoding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.protobuf import descriptor_pb2, descriptor_pool

# (name, number, type, label, message type: a message of the same package, or "")
Field = tuple[str, int, int, int, str]


def message_pool(
    file: str, package: str, syntax: str, messages: Mapping[str, Sequence[Field]]
) -> descriptor_pool.DescriptorPool:
    """A pool of its own holding `messages` of `package` (find them as `package.Name`)."""
    proto = descriptor_pb2.FileDescriptorProto(name=file, package=package, syntax=syntax)
    for name, fields in messages.items():
        message = proto.message_type.add(name=name)
        for field, number, kind, label, type_name in fields:
            message.field.add(
                name=field,
                number=number,
                type=kind,
                label=label,
                type_name=f".{package}.{type_name}" if type_name else None,
            )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return pool
