"""Send batches to `POST /api/v1/logs` and return only once the server has committed them.

One request at a time: the server keeps, per (token, file), the highest offset stored and drops
anything at or below it, so a batch must not overtake the one before it. Failures that time can
fix (no connection, 429, 5xx) are retried forever with exponential backoff and jitter (429's
Retry-After is honoured); a 413 splits the batch; a refused token stops the agent.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from fleetops.agent.exceptions import AgentError, TokenRefused
from fleetops.agent.progress import Log, Totals
from fleetops.agent.reader import Line

ENDPOINT = "/api/v1/logs"
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
MIN_MESSAGE = 256  # a single line refused as too large is halved down to this, then skipped


@dataclass(frozen=True)
class ShipOptions:
    server: str
    token: str
    host: str
    labels: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    max_backoff: float = 30.0
    compress_level: int = 5


@dataclass(frozen=True)
class Answer:
    accepted: int = 0
    duplicates: int = 0

    def __add__(self, other: Answer) -> Answer:
        return Answer(self.accepted + other.accepted, self.duplicates + other.duplicates)


class Shipper:
    """Delivers batches; `wait(seconds)` is how it sleeps, so the caller keeps watching files."""

    def __init__(
        self,
        options: ShipOptions,
        *,
        log: Log,
        totals: Totals,
        wait: Callable[[float], None],
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.options = options
        self.log = log
        self.totals = totals
        self.wait = wait
        self.client = httpx.Client(
            base_url=options.server.rstrip("/"),
            headers={
                "Authorization": f"Bearer {options.token}",
                "Content-Type": "application/x-ndjson",
                "Content-Encoding": "gzip",
                "User-Agent": "fleetops-agent",
            },
            timeout=options.timeout,
            transport=transport,
        )
        common = {"host": options.host, **options.labels}
        self._common = json.dumps(common, ensure_ascii=False, separators=(",", ":"))[1:-1]
        self._failures = 0

    def close(self) -> None:
        self.client.close()

    def send(self, lines: Sequence[Line]) -> Answer:
        """Deliver `lines` (blank ones are skipped); returns what the server counted."""
        records = [line for line in lines if line.text is not None]
        if not records:
            return Answer()
        return self._send(records, {})

    def _encode(self, line: Line, cut: dict[int, int]) -> bytes:
        text = line.text or ""
        if id(line) in cut:
            text = text[: cut[id(line)]]
        return (
            f'{{"message":{json.dumps(text, ensure_ascii=False)},'
            f'"file":{json.dumps(line.entry.key, ensure_ascii=False)},'
            f'"offset":{line.offset},{self._common}}}'
        ).encode(errors="replace")

    def _send(self, records: list[Line], cut: dict[int, int]) -> Answer:
        body = gzip.compress(
            b"\n".join(self._encode(r, cut) for r in records), self.options.compress_level
        )
        while True:
            try:
                response = self.client.post(ENDPOINT, content=body)
            except httpx.TransportError as exc:
                self._retry(f"cannot reach {self.options.server}: {exc or type(exc).__name__}")
                continue
            status = response.status_code
            if status == 200:
                return self._delivered(response, len(records))
            if status == 413:
                return self._too_large(records, cut)
            if status in (401, 403):
                raise TokenRefused(
                    f"the server refused the ingest token (HTTP {status}): {_detail(response)}; "
                    "check --token / FLEETOPS_INGEST_TOKEN (create one with "
                    "`fleetops logs token create NAME`)"
                )
            if status not in RETRYABLE:
                raise AgentError(
                    f"the server rejected a batch (HTTP {status}): {_detail(response)}"
                )
            after = _retry_after(response) if status in (429, 503) else None
            self._retry(f"the server answered {status}: {_detail(response)}", after)

    def _delivered(self, response: httpx.Response, count: int) -> Answer:
        try:
            body = response.json()
            answer = Answer(int(body["accepted"]), int(body["duplicates"]))
        except (ValueError, KeyError, TypeError):
            raise AgentError(
                f"the server at {self.options.server} did not answer as fleetops does: "
                f"{response.text[:200]!r}"
            ) from None
        if self._failures:
            self.log.info(f"delivered again after {self._failures} failed attempts")
            self._failures = 0
        self.totals.requests += 1
        self.totals.lines += count
        self.totals.accepted += answer.accepted
        self.totals.duplicates += answer.duplicates
        return answer

    def _too_large(self, records: list[Line], cut: dict[int, int]) -> Answer:
        if len(records) > 1:  # halves in order: a file's offsets must keep increasing
            half = len(records) // 2
            self.log.warn("the server refused a batch as too large; splitting it", key="413")
            return self._send(records[:half], cut) + self._send(records[half:], cut)
        line = records[0]
        size = cut.get(id(line), len(line.text or "")) // 2
        if size < MIN_MESSAGE:
            self.log.warn(f"{line.entry.key} offset {line.offset}: line refused as too large")
            return Answer()
        self.log.warn(
            f"{line.entry.key} offset {line.offset}: line refused as too large; cutting it to "
            f"{size} characters",
            key="413-line",
        )
        return self._send(records, {**cut, id(line): size})

    def _retry(self, reason: str, after: float | None = None) -> None:
        self._failures += 1
        self.totals.retries += 1
        if after is None:
            ceiling = min(self.options.max_backoff, 0.5 * 2 ** min(self._failures - 1, 16))
            delay = ceiling * random.uniform(0.5, 1.0)  # jitter: agents must not retry in step
        else:
            delay = after * random.uniform(1.0, 1.2)
        self.log.warn(
            f"{reason}; retrying in {delay:.1f} s (attempt {self._failures})", key="retry"
        )
        self.wait(delay)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])[:300]
    return response.text[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    try:
        return min(max(float(value), 0.0), 300.0)
    except ValueError:
        return None
