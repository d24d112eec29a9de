"""Log-based detectors: straggler hosts, slow network components, hardware error signatures,
bursting templates.

Each is a pure function of the aggregator's recent buffers at a watermark, returning candidate
findings with their evidence; the caller reports them (findings de-duplicate) and resolves the ones
no longer proposed. Thresholds are robust statistics over the fleet's peers, not absolute numbers,
wherever the peers exist: a whole fleet that is slow is not a straggler."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from fleetops.findings.schemas import Observation
from fleetops.logs.aggregate.stream import Aggregator, Transfer

SIGNATURE_TEXT = {
    "disk_io": "disk I/O errors",
    "fs_error": "filesystem errors",
    "mce": "machine-check exceptions",
    "edac_ce": "corrected memory (EDAC) errors",
    "edac_ue": "uncorrected memory (EDAC) errors",
    "nic_down": "NIC link-down events",
    "oom": "OOM-killer events",
    "disk_full": "'No space left on device' errors",
    "slow_disk": "slow disk writes",
}


@dataclass(frozen=True)
class DetectorConfig:
    # straggler
    straggler_window: timedelta = timedelta(minutes=2)
    straggler_min_tasks: int = 4
    straggler_ratio: float = 2.5  # host's median task duration / its stages' medians
    straggler_z: float = 4.0  # robust z-score against the other hosts' ratios
    # slow network component
    # two look-backs: the short one sees a fault soon after onset, the long one a quieter path
    link_windows: tuple[timedelta, ...] = (timedelta(seconds=15), timedelta(seconds=30))
    link_min_transfers: int = 6
    link_slow_fraction: float = 0.6
    link_min_explained: int = 4
    nic_slow_fraction: float = 0.75  # a NIC fault makes nearly all of its transfers slow
    intra_min_transfers: int = 3  # to tell a bad ToR from congested uplinks
    # a host's disk serves few transfers in a short look-back, but any slow one is rare news
    disk_min_transfers: int = 4
    disk_min_explained: int = 3
    # error signatures: count within the window that makes a finding
    signature_window: timedelta = timedelta(minutes=5)
    signature_thresholds: dict[str, int] = field(
        default_factory=lambda: {
            "disk_io": 2,
            "fs_error": 1,
            "mce": 1,
            "edac_ce": 2,
            "edac_ue": 1,
            "nic_down": 1,  # a server's link going down is never routine
            "oom": 3,
            "disk_full": 1,
            "slow_disk": 2,  # writes/flushes taking 3x their threshold or more
        }
    )
    critical_signatures: frozenset[str] = frozenset({"edac_ue", "mce", "fs_error", "disk_full"})
    # template bursts
    burst_min: int = 50
    new_template_after: timedelta = timedelta(minutes=15)  # watch this long before calling one new
    burst_factor: float = 10.0


@dataclass(frozen=True)
class Candidate:
    kind: str
    detector: str
    entity_type: str
    entity: str
    severity: str
    score: float
    title: str
    evidence: list[dict[str, Any]]
    details: dict[str, Any]
    onset_at: datetime

    @property
    def dedup_key(self) -> str:
        signature = self.details.get("signature")
        suffix = f":{signature}" if signature else ""
        return f"{self.kind}{suffix}:{self.entity_type}:{self.entity}"

    def observation(self) -> Observation:
        """The candidate as the findings service takes it."""
        return Observation(
            kind=self.kind,
            detector=self.detector,
            entity_type=self.entity_type,
            entity=self.entity,
            severity=self.severity,
            score=self.score,
            title=self.title,
            evidence=self.evidence,
            details=self.details,
            onset_at=self.onset_at,
            dedup_key=self.dedup_key,
        )


def _iso(ts: datetime) -> str:
    return ts.isoformat()


def detect_all(agg: Aggregator, now: datetime, config: DetectorConfig) -> list[Candidate]:
    links = slow_links(agg, now, config)
    covered = _hosts_under(links, agg)
    return [
        *links,
        *stragglers(agg, now, config, exclude=covered),
        *error_signatures(agg, now, config),
        *template_bursts(agg, now, config),
    ]


def _hosts_under(links: list[Candidate], agg: Aggregator) -> set[str]:
    """Hosts behind a slow network component: their slowness is the network's, not theirs."""
    racks = {c.details["rack"] for c in links if c.details.get("component") in ("tor", "uplink")}
    hosts = {c.entity for c in links if c.details.get("component") in ("nic", "disk")}
    hosts |= {h for h, r in agg.topology.rack_of.items() if r in racks}
    return hosts


def stragglers(
    agg: Aggregator,
    now: datetime,
    config: DetectorConfig,
    *,
    exclude: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[Candidate]:
    since = now - config.straggler_window
    ratios, first_slow = _task_ratios(agg, since, now, config)
    scores = {h: median(r) for h, r in ratios.items() if len(r) >= config.straggler_min_tasks}
    if len(scores) < 5:
        return []
    values = list(scores.values())
    mid = median(values)
    mad = median(abs(v - mid) for v in values)
    spread = 1.4826 * mad + 0.05
    found = []
    for host, score in scores.items():
        z = (score - mid) / spread
        if host in exclude or score < config.straggler_ratio or z < config.straggler_z:
            continue
        found.append(
            _straggler(
                host,
                score,
                z=z,
                fleet_ratio=mid,
                tasks=len(ratios[host]),
                since=since,
                now=now,
                onset=first_slow.get(host, since),
            )
        )
    return found


def _task_ratios(
    agg: Aggregator, since: datetime, now: datetime, config: DetectorConfig
) -> tuple[dict[str, list[float]], dict[str, datetime]]:
    """Each host's task durations over the window relative to their stages' medians, and when
    each host first ran a task slow enough to count."""
    ratios: dict[str, list[float]] = defaultdict(list)
    first_slow: dict[str, datetime] = {}
    for task in reversed(agg.tasks):
        if task.ts < since:
            break
        if task.ts > now or task.ratio is None:
            continue
        ratios[task.host].append(task.ratio)
        if task.ratio >= config.straggler_ratio:
            first_slow[task.host] = task.ts  # iterating backwards: ends at the earliest
    return ratios, first_slow


def _straggler(
    host: str,
    score: float,
    *,
    z: float,
    fleet_ratio: float,
    tasks: int,
    since: datetime,
    now: datetime,
    onset: datetime,
) -> Candidate:
    """The finding for a host whose tasks run far slower than the same stages elsewhere."""
    return Candidate(
        kind="straggler",
        detector="straggler",
        entity_type="host",
        entity=host,
        severity="warning",
        score=round(score, 2),
        title=(
            f"{host}: tasks take {score:.1f}× as long as the same stages elsewhere "
            f"({tasks} tasks, fleet median {fleet_ratio:.2f}×)"
        ),
        evidence=[
            {
                "type": "window",
                "metric": "host_tasks",
                "entity": host,
                "from": _iso(since),
                "to": _iso(now),
            },
            {"type": "lines", "host": host, "from": _iso(since), "to": _iso(now)},
        ],
        details={
            "ratio": round(score, 3),
            "z": round(z, 2),
            "tasks": tasks,
            "fleet_ratio": round(fleet_ratio, 3),
        },
        onset_at=onset,
    )


def _components(t: Transfer, agg: Aggregator) -> list[tuple[str, str]]:
    """What a transfer went through: serving disk, NICs, ToRs and (across racks) uplinks."""
    parts = [("disk", t.disk)] if t.disk else []
    if t.local:
        return parts
    tor_src = agg.topology.tor_of_rack.get(t.src_rack, t.src_rack)
    tor_dst = agg.topology.tor_of_rack.get(t.dst_rack, t.dst_rack)
    parts += [("nic", t.src), ("nic", t.dst), ("tor", tor_src), ("tor", tor_dst)]
    if t.src_rack != t.dst_rack:
        parts += [("uplink", tor_src), ("uplink", tor_dst)]
    return parts


def slow_links(agg: Aggregator, now: datetime, config: DetectorConfig) -> list[Candidate]:
    """Localise slow transfers to the fewest components that explain them (greedy tomography).

    Components are the serving disk, the NICs, the ToR switches and the racks' uplinks; a disk
    explains slow local reads that no network component can.

    A component is a candidate when most transfers through it were slow; the one explaining most
    still-unexplained slow transfers wins (ties: the higher slow fraction, so a congested uplink
    beats its ToR when intra-rack traffic is fine), its slow transfers count as explained, and the
    search repeats. It runs over each look-back; a component found in any of them is reported."""
    found: dict[str, Candidate] = {}
    for window in config.link_windows:
        for candidate in _tomography(agg, now - window, now, config):
            found.setdefault(candidate.dedup_key, candidate)
    return list(found.values())


def _tomography(
    agg: Aggregator, since: datetime, now: datetime, config: DetectorConfig
) -> list[Candidate]:
    total: dict[tuple[str, str], int] = defaultdict(int)
    slow_of: dict[tuple[str, str], list[int]] = defaultdict(list)
    first: dict[tuple[str, str], datetime] = {}
    recent: list[Transfer] = []
    for t in reversed(agg.transfers):
        if t.ts < since:
            break
        if t.ts <= now:
            recent.append(t)
    for i, t in enumerate(recent):
        for part in _components(t, agg):
            total[part] += 1
            if t.slow:
                slow_of[part].append(i)
                first[part] = min(first.get(part, t.ts), t.ts)
    unexplained = {i for i, t in enumerate(recent) if t.slow}
    found = []
    while unexplained:
        best, best_key = None, (0, 0.0)
        for part, slow in slow_of.items():
            explained = [i for i in slow if i in unexplained]
            disk = part[0] == "disk"
            least = config.disk_min_transfers if disk else config.link_min_transfers
            least_slow = config.disk_min_explained if disk else config.link_min_explained
            if total[part] < least or len(explained) < least_slow:
                continue
            fraction = len(slow) / total[part]
            if fraction < (
                config.nic_slow_fraction if part[0] == "nic" else config.link_slow_fraction
            ):
                continue
            key = (len(explained), fraction)
            if key > best_key and _plausible(part, explained, recent):
                best, best_key = part, key
        if best is None:
            break
        unexplained -= set(slow_of[best])
        if best[0] in ("tor", "uplink"):
            decided = _tor_or_uplink(best[1], recent, agg, config)
            if decided is None:
                continue  # not enough intra-rack traffic yet to tell: decide on a later pass
            best = (decided, best[1])
        found.append(_link_candidate(best, best_key, total[best], first[best], since, now, agg))
    return found


def _plausible(part: tuple[str, str], explained: list[int], recent: list[Transfer]) -> bool:
    """A component must be slow with several peers: slowness towards one place is that place's
    problem (a peer's flapping NIC, a faulty rack, a fault that just ended), not this one's."""
    kind, name = part
    slow = [recent[i] for i in explained]
    if kind == "nic":
        per_rack = Counter(t.dst_rack if t.src == name else t.src_rack for t in slow)
        return sum(1 for n in per_rack.values() if n >= 2) >= 2
    if kind == "disk":
        peers = {t.dst if t.src == name else t.src for t in slow}
        return any(t.local for t in slow) or len(peers) >= 3
    racks = {r for t in slow for r in (t.src_rack, t.dst_rack)}
    return len(racks) >= 3 or len({r for t in recent for r in (t.src_rack, t.dst_rack)}) < 3


def _tor_or_uplink(
    tor: str, recent: list[Transfer], agg: Aggregator, config: DetectorConfig
) -> str | None:
    """A rack whose cross-rack traffic is slow has a bad ToR if its intra-rack traffic is slow
    too, and congested uplinks if that is fine; None while intra-rack traffic is too scarce."""
    rack = next((r for r, t in agg.topology.tor_of_rack.items() if t == tor), tor)
    intra = [t for t in recent if t.src_rack == rack and t.dst_rack == rack and not t.local]
    if len(intra) < config.intra_min_transfers:
        return None
    slow = sum(t.slow for t in intra) / len(intra)
    if slow >= 0.5:
        return "tor"
    if slow <= 0.25:
        return "uplink"
    return None


def _link_candidate(
    part: tuple[str, str],
    key: tuple[int, float],
    total: int,
    onset: datetime,
    since: datetime,
    now: datetime,
    agg: Aggregator,
) -> Candidate:
    component, name = part
    explained, fraction = key
    kind = "slow_link"
    if component == "disk":
        entity_type, entity, rack = "host", name, agg.topology.rack_of.get(name, "")
        what, kind = f"disk of {name} (reads and writes it serves, local ones too)", "slow_disk"
    elif component == "nic":
        entity_type, entity, rack = "host", name, agg.topology.rack_of.get(name, "")
        what = f"network interface of {name}"
    elif component == "tor":
        entity_type, entity = "switch", name
        rack = next((r for r, t in agg.topology.tor_of_rack.items() if t == name), name)
        what = f"ToR switch {name}"
    else:
        entity_type, entity = "link", f"{name}|uplink"
        rack = next((r for r, t in agg.topology.tor_of_rack.items() if t == name), name)
        what = f"uplinks of {name} to the spines"
    return Candidate(
        kind=kind,
        detector="link-tomography",
        entity_type=entity_type,
        entity=entity,
        severity="critical" if fraction >= 0.8 else "warning",
        score=round(fraction, 3),
        title=f"{what}: {fraction:.0%} of {total} transfers through it were slow",
        evidence=[
            {
                "type": "window",
                "metric": "links",
                "entity": rack,
                "from": _iso(since),
                "to": _iso(now),
            },
        ],
        details={
            "component": component,
            "rack": rack,
            "slow_fraction": round(fraction, 3),
            "transfers": total,
            "explained": explained,
        },
        onset_at=onset,
    )


def error_signatures(agg: Aggregator, now: datetime, config: DetectorConfig) -> list[Candidate]:
    since = now - config.signature_window
    counts: dict[tuple[str, str], int] = defaultdict(int)
    first: dict[tuple[str, str], datetime] = {}
    for ts, host, signature in reversed(agg.signatures):
        if ts < since:
            break
        if ts > now:
            continue
        counts[(host, signature)] += 1
        first[(host, signature)] = ts
    found = []
    for (host, signature), count in counts.items():
        threshold = config.signature_thresholds.get(signature)
        if threshold is None or count < threshold:
            continue
        text = SIGNATURE_TEXT.get(signature, signature)
        minutes = int(config.signature_window.total_seconds() // 60)
        found.append(
            Candidate(
                kind="hardware_error",
                detector="error-signatures",
                entity_type="host",
                entity=host,
                severity="critical" if signature in config.critical_signatures else "warning",
                score=float(count),
                title=f"{host}: {count} {text} in {minutes} min",
                evidence=[
                    {
                        "type": "lines",
                        "host": host,
                        "from": _iso(first[(host, signature)]),
                        "to": _iso(now),
                        "query": signature,
                    }
                ],
                details={"signature": signature, "count": count, "threshold": threshold},
                onset_at=first[(host, signature)],
            )
        )
    return found


def template_bursts(agg: Aggregator, now: datetime, config: DetectorConfig) -> list[Candidate]:
    """A template whose last minute is far above its usual rate, or one never seen before (once
    the aggregation has watched the stream long enough to know what is usual)."""
    found = []
    starts = [h[0][0] for h in agg.template_minutes.values() if h]
    watched_since = min(starts) if starts else now
    for template_id, history in agg.template_minutes.items():
        if not history:
            continue
        start, count = history[-1]
        if (
            len(history) == 1
            and template_id > 0
            and start >= now - timedelta(minutes=2)
            and start - watched_since >= config.new_template_after
        ):
            found.append(_new_template(template_id, start, count))
            continue
        if start < now - timedelta(minutes=2) or count < config.burst_min:
            continue
        before = [c for _, c in list(history)[:-1]]
        usual = median(before) if before else 0.0
        if len(before) >= 5 and count >= config.burst_factor * max(usual, 1.0):
            found.append(_template_burst(template_id, start, count, usual))
    return found


def _new_template(template_id: int, start: datetime, count: int) -> Candidate:
    """The finding for a template first seen in the minute starting at `start`."""
    return Candidate(
        kind="new_template",
        detector="template-burst",
        entity_type="template",
        entity=str(template_id),
        severity="info",
        score=float(count),
        title=f"template {template_id} appeared: {count} lines in its first minute",
        evidence=[_minute_of_lines(template_id, start)],
        details={"count": count},
        onset_at=start,
    )


def _template_burst(template_id: int, start: datetime, count: int, usual: float) -> Candidate:
    """The finding for a template whose minute starting at `start` far exceeds its usual one."""
    return Candidate(
        kind="template_burst",
        detector="template-burst",
        entity_type="template",
        entity=str(template_id),
        severity="info",
        score=round(count / max(usual, 1.0), 1),
        title=f"template {template_id}: {count} lines in a minute, usually {usual:.0f}",
        evidence=[_minute_of_lines(template_id, start)],
        details={"count": count, "usual": usual},
        onset_at=start,
    )


def _minute_of_lines(template_id: int, start: datetime) -> dict[str, Any]:
    """Evidence: the template's lines in the minute that made the finding."""
    return {
        "type": "lines",
        "template_id": template_id,
        "from": _iso(start),
        "to": _iso(start + timedelta(minutes=1)),
    }
