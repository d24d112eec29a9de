"""The Prometheus HTTP API, read: instant and range queries.

Only for servers the settings name (`prometheus_sources`): the server never connects to an
address a request gives. Redirects are not followed, so a Prometheus (or a proxy in front of it)
cannot send the server somewhere else; environment proxies are not used either.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import httpx

from fleetops.metrics.exceptions import (
    PrometheusAnswerError,
    PrometheusUnreachable,
    UnexpectedResult,
)
from fleetops.metrics.schemas import QueriedSeries

ERROR_TEXT = 300  # characters of a non-JSON error page kept in the message


class PrometheusClient:
    """An async client for one Prometheus; implements `metrics.schemas.PrometheusReader`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    async def query(self, promql: str, *, at: datetime | None = None) -> list[QueriedSeries]:
        """Evaluate `promql` at `at` (default: Prometheus's now); it must give a vector."""
        form = {"query": promql}
        if at is not None:
            form["time"] = _stamp(at)
        return _series(await self._post("/api/v1/query", form), "vector")

    async def query_range(
        self, promql: str, *, start: datetime, end: datetime, step: float
    ) -> list[QueriedSeries]:
        """Evaluate `promql` every `step` seconds over [start, end]; a matrix."""
        form = {"query": promql, "start": _stamp(start), "end": _stamp(end), "step": f"{step:g}"}
        return _series(await self._post("/api/v1/query_range", form), "matrix")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, form: dict[str, str]) -> Any:
        """The answer's `data`; POST as a form, so that long queries fit (Prometheus takes both)."""
        where = f"{self.base_url}{path}"
        try:
            response = await self._http.post(path, data=form)
        except httpx.TimeoutException:
            raise PrometheusUnreachable(f"{where}: no answer within {self.timeout:g} s") from None
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise PrometheusUnreachable(f"{where}: cannot connect ({reason})") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            kind, error = str(body.get("errorType", "")), str(body.get("error", ""))
            raise PrometheusAnswerError(
                f"{where}: HTTP {response.status_code}, {kind}: {error}",
                status=response.status_code,
                error_type=kind,
            )
        if response.status_code != 200 or not isinstance(body, dict):
            text = response.text[:ERROR_TEXT].strip() or "(empty body)"
            if response.is_redirect:
                text = f"redirected to {response.headers.get('location')}: set that URL instead"
            raise PrometheusAnswerError(
                f"{where}: HTTP {response.status_code}, not a Prometheus API answer: {text}",
                status=response.status_code,
            )
        if body.get("status") != "success" or not isinstance(body.get("data"), dict):
            raise UnexpectedResult(f"{where}: an answer without status 'success' and data")
        return body["data"]


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.timestamp():.3f}"


def _series(data: dict[str, Any], wanted: str) -> list[QueriedSeries]:
    """The series of a vector or matrix result, NaN and infinite samples left out (Prometheus
    writes them as "NaN", "+Inf", "-Inf": a division by zero, an empty histogram)."""
    kind = data.get("resultType")
    if kind != wanted:
        hint = " (wrap a scalar in vector())" if kind == "scalar" else ""
        raise UnexpectedResult(f"the result is a {kind}, not a {wanted}{hint}")
    result = data.get("result")
    if not isinstance(result, list):
        raise UnexpectedResult(f"the {wanted} result is not a list")
    try:
        return [_one(item, wanted) for item in result]
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise UnexpectedResult(f"a malformed {wanted} sample: {exc!r}") from None


def _one(item: dict[str, Any], wanted: str) -> QueriedSeries:
    labels = {str(k): str(v) for k, v in item["metric"].items()}
    # a native histogram's series (`histogram`, `histograms`) has no float samples to keep
    pairs = (
        ([item["value"]] if "value" in item else [])
        if wanted == "vector"
        else item.get("values", [])
    )
    samples = []
    for stamp, text in pairs:
        value = float(text)
        if math.isfinite(value):
            samples.append((datetime.fromtimestamp(float(stamp), UTC), value))
    return QueriedSeries(labels=labels, samples=samples)
