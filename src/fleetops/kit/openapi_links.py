"""OpenAPI links: how the answer of one operation feeds the parameters of the next.

A client (or a stateful fuzzer) reads them to chain calls: the hostname a create returns is the
one to read, update and delete. The links are declared in one table at the edge and resolved to
the document's operation ids here, so a renamed handler cannot leave a dangling link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Link:
    """From `source`'s success answer to each of `targets` ("METHOD /path"), filling the
    target's parameters from the answer (`{"hostname": "$response.body#/hostname"}`)."""

    source: str
    targets: tuple[str, ...]
    parameters: dict[str, str]


def add_links(spec: dict[str, Any], links: list[Link]) -> dict[str, Any]:
    """Write `links` into the success responses of their sources; a link naming an operation the
    document does not have raises, so the table cannot go stale."""
    for link in links:
        source = _operation(spec, link.source)
        status = next(code for code in source["responses"] if code.startswith("2"))
        table = source["responses"][status].setdefault("links", {})
        for target in link.targets:
            operation_id = _operation(spec, target)["operationId"]
            table[operation_id] = {"operationId": operation_id, "parameters": link.parameters}
    return spec


def _operation(spec: dict[str, Any], label: str) -> dict[str, Any]:
    method, path = label.split(" ", 1)
    try:
        operation: dict[str, Any] = spec["paths"][path][method.lower()]
    except KeyError:
        raise ValueError(f"no operation {label} in the OpenAPI document") from None
    return operation
