"""The live screen over an hour: the page's JS heap and DOM nodes, and the server's RSS.

`fleetops demo` (300 hosts in 12 racks by default) runs as a real process, so the simulated fleet
keeps the panels changing: jobs and their logs, faults and findings, drain and repair changes,
the shop's transactions. One Debian Chromium page, logged in as the demo's viewer, shows /live for
`--minutes` (60 by default). Every minute the bench forces a garbage collection in the page
(CDP `HeapProfiler.collectGarbage`) and reads `Performance.getMetrics`: JSHeapUsedSize, Nodes
(every DOM node the renderer holds, detached ones included) and JSEventListeners. It counts the
`panels` events the page received (a counting EventSource installed before live.js runs) and
reads the server's VmRSS from /proc/<pid>/status.

The baselines are measured in the same run. For the page: itself, the mean of the first 10
minutes against the mean of the last 10 (thirds of the run when it is shorter than 30 minutes),
and a least-squares slope per hour over every sample from minute 1 (minute 0 is the page still
filling its panels). For the server: a second `fleetops demo` of the same size started beside
it with no screen open, whose RSS grows as the demo's own data does (logs kept for 2 hours,
findings, changes, metrics); what the screen costs the server is the difference between the two.

Verdict: a series is steady when its slope is under 5 % of its mean per hour (for the server,
the slope of its RSS less the baseline's, against its mean). After a forced GC
the page's heap varies by a percent or two from minute to minute, so an honest page stays well
inside 5 %/h; a leak of what one event brings (a few KB of panel JSON or DOM, with an event every
few seconds) adds several MB an hour to a heap of a few MB, tens of percent. At 5 %/h a screen
left on for a working day would grow by at most 40 %, which no wall screen notices.

Needs Chromium at /usr/bin/chromium and Playwright (the dev extra). Run:
`.venv/bin/python bench/live_soak.py [--minutes 60] [--hosts 300] [--racks 12]`;
`--minutes 3` is a quick run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import CDPSession, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the server helpers live with the test fixtures

with warnings.catch_warnings():  # the fixtures load Starlette's test client, deprecated there
    warnings.simplefilter("ignore", DeprecationWarning)
    from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS
    from tests.fixtures.server import server_process

TOLERANCE = 0.05  # of the mean, per hour
WINDOW_MINUTES = 10
# Installed before any page script: counts the `panels` events every EventSource receives and
# the stream's errors (a reconnect fires one), without touching live.js.
COUNTER = """(() => {
  const Native = window.EventSource;
  window.fleetopsSoak = { events: 0, bytes: 0, errors: 0 };
  window.EventSource = class extends Native {
    constructor(url, options) {
      super(url, options);
      this.addEventListener("panels", (e) => {
        window.fleetopsSoak.events += 1;
        window.fleetopsSoak.bytes += e.data.length;
      });
      this.addEventListener("error", () => { window.fleetopsSoak.errors += 1; });
    }
  };
})()"""
PASSWORD_LINE = re.compile(r"^\s*viewer\s+password:\s*(\S+)", re.M)


@dataclass(frozen=True)
class Sample:
    minute: int
    heap_mb: float
    nodes: int
    listeners: int
    events: int
    kb_in: float
    errors: int
    rss_mb: float
    baseline_mb: float


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def viewer_password(output: Path, timeout: float = 30) -> str:
    """The demo prints each user's one-time password once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := PASSWORD_LINE.search(output.read_text()):
            return found.group(1)
        time.sleep(0.2)
    raise RuntimeError(f"the demo printed no password for viewer: {output.read_text()[-2000:]}")


def sample(page: Page, cdp: CDPSession, pids: tuple[int, int], minute: int) -> Sample:
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    counted: dict[str, Any] = page.evaluate("window.fleetopsSoak")
    return Sample(
        minute=minute,
        heap_mb=metrics["JSHeapUsedSize"] / 2**20,
        nodes=int(metrics["Nodes"]),
        listeners=int(metrics["JSEventListeners"]),
        events=int(counted["events"]),
        kb_in=counted["bytes"] / 1024,
        errors=int(counted["errors"]),
        rss_mb=rss_mb(pids[0]),
        baseline_mb=rss_mb(pids[1]),
    )


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minute, value), per hour."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def soak(url: str, password: str, pids: tuple[int, int], minutes: int) -> list[Sample]:
    samples: list[Sample] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=url, viewport={"width": 1360, "height": 900})
        context.add_init_script(COUNTER)
        page = context.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        page.goto("/login?next=/live")
        page.get_by_label("Username").fill("viewer")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.locator("#live-state").filter(has_text="Live").wait_for(timeout=60_000)
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        start = time.monotonic()
        print(
            f"{'minute':>6} {'heap MB':>8} {'nodes':>6} {'listeners':>9} {'events':>7} "
            f"{'KB in':>8} {'errors':>6} {'server RSS MB':>13} {'no screen MB':>12}",
            flush=True,
        )
        for minute in range(minutes + 1):
            time.sleep(max(0.0, start + 60 * minute - time.monotonic()))
            s = sample(page, cdp, pids, minute)
            samples.append(s)
            print(
                f"{s.minute:>6} {s.heap_mb:>8.2f} {s.nodes:>6} {s.listeners:>9} {s.events:>7} "
                f"{s.kb_in:>8.0f} {s.errors:>6} {s.rss_mb:>13.1f} {s.baseline_mb:>12.1f}",
                flush=True,
            )
        if page_errors:
            print(f"\npage errors: {len(page_errors)}, first: {page_errors[0]}")
        browser.close()
    return samples


def summary(samples: list[Sample]) -> bool:
    """Print first vs last window and the slope per series; True when every one is steady."""
    fit = samples[1:]  # minute 0: the panels are still filling
    window = min(WINDOW_MINUTES, max(1, len(fit) // 3))
    first, last = fit[:window], fit[-window:]
    elapsed = samples[-1].minute - samples[0].minute
    rate = (samples[-1].events - samples[0].events) / elapsed if elapsed else 0.0
    print(
        f"\n{len(fit)} samples (minutes 1-{fit[-1].minute}); first vs last {window} minutes; "
        f"{rate:.1f} panel events a minute, {samples[-1].errors} stream errors"
    )
    print(
        f"{'series':<14} {'first':>9} {'last':>9} {'change':>8} {'slope /h':>10} "
        f"{'% of mean /h':>13}  verdict"
    )
    steady = True
    series: dict[str, tuple[Callable[[Sample], float], Callable[[Sample], float] | None]] = {
        "heap MB": (lambda s: s.heap_mb, None),
        "DOM nodes": (lambda s: float(s.nodes), None),
        "server RSS MB": (lambda s: s.rss_mb, lambda s: s.rss_mb - s.baseline_mb),
        "no screen MB": (lambda s: s.baseline_mb, None),
    }
    for name, (value, judged) in series.items():
        a = statistics.fmean(value(s) for s in first)
        b = statistics.fmean(value(s) for s in last)
        slope = slope_per_hour([(s.minute, value(s)) for s in fit])
        mean = statistics.fmean(value(s) for s in fit)
        share = slope / mean if mean else 0.0
        verdict = "steady" if abs(share) < TOLERANCE else "GROWS"
        if name == "no screen MB":
            verdict = "(baseline)"
        elif judged is not None:  # the server: what it grows beyond the demo without a screen
            extra = slope_per_hour([(s.minute, judged(s)) for s in fit]) / mean if mean else 0.0
            ok = abs(extra) < TOLERANCE
            verdict = f"{'steady' if ok else 'GROWS'} ({extra * 100:+.1f}%/h beyond the baseline)"
            steady = steady and ok
        else:
            steady = steady and verdict == "steady"
        print(
            f"{name:<14} {a:>9.2f} {b:>9.2f} {(b - a) / a * 100 if a else 0:>7.1f}% "
            f"{slope:>10.2f} {share * 100:>12.1f}%  {verdict}"
        )
    limit = f"{TOLERANCE:.0%} of the mean per hour"
    print(f"\nverdict: {'steady' if steady else 'not steady'} (every slope within {limit})")
    return steady


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="how long the page stays open")
    parser.add_argument("--hosts", type=int, default=300, help="hosts in the demo fleet")
    parser.add_argument("--racks", type=int, default=12, help="racks in the demo fleet")
    args = parser.parse_args()
    if args.minutes < 2:
        parser.error("--minutes: at least 2 (a slope needs two samples after minute 0)")
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2
    print(
        f"fleetops demo --hosts {args.hosts} --racks {args.racks}, twice (one with /live open, "
        f"one without); {args.minutes} min"
    )
    command = ("demo", "--hosts", str(args.hosts), "--racks", str(args.racks))
    with ExitStack() as stack:
        url, output, server = stack.enter_context(demo(command))
        _, _, baseline = stack.enter_context(demo(command))
        samples = soak(url, viewer_password(output), (server.pid, baseline.pid), args.minutes)
    return 0 if summary(samples) else 1


@contextmanager
def demo(command: tuple[str, ...]) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    """A `fleetops demo` process in a data directory of its own; its URL, output and process."""
    work = Path(tempfile.mkdtemp(prefix="fleetops-soak-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}
    env["FLEETOPS_DATA_DIR"] = str(work)
    output = work / "demo.out"
    try:
        with server_process(env, command=command, output=output, timeout=180) as (url, server):
            yield url, output, server
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
