"""Imports follow the direction in DESIGN.md: edges → service → repository → models."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fleetops"
EDGE_FILES = {"routes", "pages", "cli", "tasks", "dependencies"}
# Edges that belong to their domain alone (auth's `dependencies` is shared by every route).
PRIVATE_EDGES = {"routes", "pages", "cli", "tasks"}
WEB_OR_CLI = ("fastapi", "starlette", "jinja2", "typer", "click", "uvicorn")
ROOT_EDGES = {"fleetops.main", "fleetops.cli"}
# Jinja renders shell commands here, not pages: a library use, not the web layer.
NOT_WEB = {"fleetops.changes.templating"}
SHARED = {
    "fleetops",
    "fleetops.config",
    "fleetops.db",
    "fleetops.errors",
    "fleetops.events",
    "fleetops.models",
    "fleetops.kit",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def domain_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(module: str, imported: list[str]) -> list[str]:
    """Every rule a module breaks with its imports."""
    out: list[str] = []
    leaf = module.rsplit(".", 1)[-1]
    # `exec_cli`, `foo_routes`: edge files of a domain split by use case
    kind = leaf.rsplit("_", 1)[-1] if leaf.rsplit("_", 1)[-1] in EDGE_FILES else leaf
    own = domain_of(module)
    for name in imported:
        top = name.split(".")[0]
        if (
            kind not in EDGE_FILES
            and module not in ROOT_EDGES | NOT_WEB
            and own not in ("dashboard", "kit")
            and top in WEB_OR_CLI
        ):
            out.append(f"{module} is not an edge but imports {name}")
        if not name.startswith("fleetops."):
            continue
        target = domain_of(name)
        if own == "models" and target not in ("models", ""):
            out.append(f"models must not import domains: {module} imports {name}")
        if own == "kit" and target not in ("kit", "errors"):
            out.append(f"kit is domain-free: {module} imports {name}")
        if target == "sim" and own != "sim" and module not in ROOT_EDGES:
            out.append(f"the product never imports sim/: {module} imports {name}")
        leaf = name.split(".")[2] if name.count(".") >= 2 else ""
        if target not in (own, "kit") and leaf in PRIVATE_EDGES and module not in ROOT_EDGES:
            out.append(f"{module} imports another domain's edge {name}")
    return out


def all_modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "static" not in p.parts)


def test_imports_follow_the_design() -> None:
    problems = [
        v for path in all_modules() for v in violations(module_name(path), imports_of(path))
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("module", "imported", "expected"),
    [
        ("fleetops.inventory.service", ["fastapi"], "is not an edge"),
        ("fleetops.inventory.service", ["fleetops.auth.routes"], "another domain's edge"),
        ("fleetops.kit.pagination", ["fleetops.inventory.service"], "kit is domain-free"),
        ("fleetops.models.inventory", ["fleetops.inventory.service"], "models must not"),
        ("fleetops.inventory.service", ["fleetops.sim.fleet"], "never imports sim"),
    ],
)
def test_the_check_catches_wrong_directions(
    module: str, imported: list[str], expected: str
) -> None:
    assert any(expected in v for v in violations(module, imported))


def test_the_check_allows_the_right_directions() -> None:
    assert violations("fleetops.inventory.routes", ["fastapi", "fleetops.inventory.service"]) == []
    assert violations("fleetops.auth.service", ["fleetops.audit.service"]) == []
    assert violations("fleetops.cli", ["fleetops.sim.demo", "fleetops.inventory.cli"]) == []
