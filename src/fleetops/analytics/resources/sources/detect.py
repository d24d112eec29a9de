"""Which layouts a directory holds, each loaded into the one `{name}_usage` table.

A directory may hold several families (the whole Alibaba trace has batch and container files);
each is loaded and recorded, and families whose units differ are refused together. Files of no
family (`machine_meta.csv`, a README) are ignored. A single file is read as a plain usage CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from fleetops.analytics.resources.exceptions import TraceNotFound
from fleetops.analytics.resources.sources import alibaba, canonical, google, plain

EXPECTED = (
    "batch_task* + batch_instance* (Alibaba 2018, original or reformatted), container_meta* + "
    "container_usage* (Alibaba 2018), instance_usage* + instance_events* (Google 2019), or a CSV "
    "whose header names group, cpu_request, cpu_used, mem_request, mem_used"
)


def load(db: duckdb.DuckDBPyConnection, path: Path, *, name: str) -> list[canonical.Loaded]:
    """Load every usage family found at `path` into `{name}_usage`; TraceNotFound if none."""
    canonical.create(db, name)
    if path.is_file():
        return [canonical.record(db, name, plain.load(db, name, [path]))]
    if not path.is_dir():
        raise TraceNotFound(f"{path}: no such file or directory")
    loaded: list[canonical.Loaded] = []
    claimed: set[Path] = set()
    for first, second, reader in (
        ("batch_task", "batch_instance", alibaba.load_batch),
        ("container_meta", "container_usage", alibaba.load_containers),
    ):
        pair = _pair(path, first, second, alibaba.csv_files)
        if pair:
            loaded.append(canonical.record(db, name, reader(db, name, *pair)))
            claimed.update(*pair)
    found = _pair(path, "instance_usage", "instance_events", google.data_files)
    if found:
        collections = google.data_files(path, "collection_events")
        loaded.append(canonical.record(db, name, google.load(db, name, *found, collections)))
        claimed.update(*found, collections)
    others = sorted(set(alibaba.csv_files(path, "")) - claimed)
    plains = [p for p in others if plain.is_plain(p)]
    if plains:
        loaded.append(canonical.record(db, name, plain.load(db, name, plains)))
    if not loaded:
        raise TraceNotFound(f"{path}: no usage files; expected {EXPECTED}")
    return loaded


def _pair(
    directory: Path, first: str, second: str, finder: Callable[[Path, str], tuple[Path, ...]]
) -> tuple[tuple[Path, ...], tuple[Path, ...]] | None:
    """Both kinds of files of a family, None when neither is there; one alone is an error."""
    a, b = finder(directory, first), finder(directory, second)
    if not a and not b:
        return None
    for files, kind, other in ((a, first, b), (b, second, a)):
        if not files:
            raise TraceNotFound(f"{directory}: no {kind}* file beside {other[0].name}")
    return a, b
