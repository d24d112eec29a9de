"""Template mining as users meet it: one command over a file, against Drain3, as whole processes.

The goal's measure: `fleetops logs parse --content-only -o jsonl FILE` on 200k lines in which no
line repeats verbatim, against Drain3 0.9.11 with its default settings (no masking configured),
each timed as a whole process from start to exit, output written to a file.

The input is built from Loghub's eight 2k samples (content column): the samples are walked round
by round, and in round k every number in a line is shifted by k (a block id, a port, a size
grows), so a line's shape and its event stay those of the real line while its text is new. A line
without digits cannot be made new that way and is used in the first round only. The file holds
25k lines of each system in turn (200k in all); per-system files of 25k lines give the spread.

Both tools print one JSON object per line. Drain3's process is the few lines a user would write:
read the file, `add_log_message` each line, print the cluster id and template.

Needs drain3==0.9.11, the locked `bench` extra (`uv sync --locked --extra dev --extra bench`).
Run: `.venv/bin/python bench/parse_cli.py [--lines 200000] [--systems HDFS,Linux]`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

from parse import LOGHUB, SYSTEMS, has_drain3, load  # as the accuracy benchmark reads them

FLEETOPS = [str(Path(sys.executable).with_name("fleetops")), "logs", "parse", "--content-only"]
GOAL_SPEEDUP = 5.0
DRAIN3 = """
import json, sys
from drain3 import TemplateMiner
miner = TemplateMiner()
out = open(sys.argv[2], "w")
with open(sys.argv[1], encoding="utf-8") as lines:
    for line in lines:
        r = miner.add_log_message(line.rstrip("\\n"))
        out.write(json.dumps({"template_id": r["cluster_id"], "template": r["template_mined"]}))
        out.write("\\n")
"""
_NUMBER = re.compile(r"\d+")


def unique_lines(sample: Sequence[str], n: int) -> Iterator[str]:
    """`n` lines from `sample`, none repeated verbatim (see the module docstring)."""
    seen: set[str] = set()
    made, round_ = 0, 0
    while made < n:
        fresh = 0
        for line in sample:
            shifted = _NUMBER.sub(partial(_shift, by=round_), line)
            if shifted in seen:
                continue
            seen.add(shifted)
            fresh += 1
            made += 1
            yield shifted
            if made == n:
                return
        if fresh == 0:
            raise ValueError("the sample cannot make enough distinct lines")
        round_ += 1


def _shift(number: re.Match[str], by: int) -> str:
    return str(int(number.group()) + by)


def timed(command: Sequence[str], stdout: Path, *, quiet: bool = False) -> float:
    start = time.perf_counter()
    with stdout.open("w") as out:
        subprocess.run(
            command, stdout=out, stderr=subprocess.DEVNULL if quiet else None, check=True
        )
    return time.perf_counter() - start


def race(path: Path, work: Path) -> tuple[float, float, int, int]:
    """Seconds for fleetops and Drain3 on `path`, and the templates each found."""
    ours_out, theirs_out = work / "fleetops.jsonl", work / "drain3.jsonl"
    ours = timed([*FLEETOPS, str(path)], ours_out)
    # quiet: Drain3 says on stderr that it runs without a drain3.ini, as intended here
    theirs = timed(
        [sys.executable, "-c", DRAIN3, str(path), str(theirs_out)], work / "null", quiet=True
    )
    return ours, theirs, _templates(ours_out), _templates(theirs_out)


def _templates(jsonl: Path) -> int:
    ids = set()
    with jsonl.open() as f:
        for line in f:
            ids.add(line.split('"template_id": ', 1)[1].split(",", 1)[0])
    return len(ids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated")
    parser.add_argument("--lines", type=int, default=200_000, help="lines in the whole file")
    parser.add_argument("--data", type=Path, default=LOGHUB, help="Loghub folder")
    args = parser.parse_args()
    if not has_drain3():
        return 2
    systems = args.systems.split(",")
    each = args.lines // len(systems)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        whole = work / "all.log"
        rows = []
        with whole.open("w", encoding="utf-8") as all_lines:
            for system in systems:
                lines = list(unique_lines(load(system, args.data).contents, each))
                all_lines.writelines(f"{line}\n" for line in lines)
                one = work / f"{system}.log"
                one.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
                rows.append((system, len(lines), *race(one, work)))
                print(f"  {system} done", file=sys.stderr)
        total = sum(r[1] for r in rows)
        rows.append(("all", total, *race(whole, work)))
    print(
        f"\n{'file':<10} {'lines':>8} {'fleetops s':>11} {'drain3 s':>9} {'speed':>6} "
        f"{'templates fleetops':>19} {'drain3':>7}"
    )
    for system, n, ours, theirs, ours_t, theirs_t in rows:
        print(
            f"{system:<10} {n:>8,} {ours:>11.2f} {theirs:>9.2f} {theirs / ours:>5.1f}x "
            f"{ours_t:>19,} {theirs_t:>7,}"
        )
    ratio = rows[-1][3] / rows[-1][2]
    verdict = "met" if ratio >= GOAL_SPEEDUP else "NOT met"
    print(
        f"\nverdict: {verdict}: whole file {ratio:.1f}x Drain3 (goal {GOAL_SPEEDUP:.0f}x), "
        "both as whole processes from start to exit"
    )
    print("drain3==0.9.11 default settings; Python " + sys.version.split()[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
