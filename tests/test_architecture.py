"""Imports follow the direction in DESIGN.md: edges → service → repository → models."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fleetops"
EDGE_FILES = {"routes", "pages", "cli", "tasks", "dependencies"}
# Edges that belong to their domain alone (auth's `dependencies` is shared by every route).
PRIVATE_EDGES = {"routes", "pages", "cli", "tasks"}
WEB_OR_CLI = ("fastapi", "starlette", "jinja2", "typer", "click", "uvicorn")
ROOT_EDGES = {"fleetops.main", "fleetops.cli", "fleetops.__main__", "fleetops.localserver"}
# Jinja renders shell commands here, not pages: a library use, not the web layer.
NOT_WEB = {"fleetops.changes.templating"}
# Modules every domain may use: they belong to no domain.
SHARED = {
    "fleetops",
    "fleetops.config",
    "fleetops.db",
    "fleetops.errors",
    "fleetops.models",
    "fleetops.kit",
}
# Each domain owns the tables of its model family (`models/<domain>.py`); another domain may
# hold its rows (as its service returns them) but not query or build them. The inventory's
# tables are the exception that is read everywhere: hosts, racks and clusters are every domain's
# subject, a published read model (written by inventory alone).
READ_EVERYWHERE = {"inventory", "base"}
SHARED_TOPS = {name.split(".")[1] for name in SHARED if "." in name}


# Another domain is used through its standard public files, or through a module it publishes
# for others to build on (a contract, a language, a parser), each named here with why.
STANDARD_PUBLIC = {"service", "schemas", "states", "exceptions", "repository", "enums"}
PUBLISHED = {
    "fleetops.auth.dependencies": "who calls, and the audit context of the call: every edge",
    "fleetops.auth.roles": "the roles every edge checks",
    "fleetops.dashboard.render": "the page kit every domain's pages are written with",
    "fleetops.audit.refusals": "the refusal counter every edge reports to",
    "fleetops.changes.executor": "the contract every executor implements",
    "fleetops.changes.approvals": "who must approve a change another domain submits",
    "fleetops.changes.operations": "the operation library the changes others submit run",
    "fleetops.changes.standard": "the standard workflows other domains pin",
    "fleetops.changes.pins": "how a pin is written, checked wherever settings are read",
    "fleetops.logs.dependencies": "who an ingest token speaks for, at every push endpoint",
    "fleetops.inventory.selectors": "the host selector language every list speaks",
    "fleetops.inventory.document": "inventory files, as `fleetops exec` reads them",
    "fleetops.inventory.formats": "inventory files, as `fleetops exec` reads them",
    "fleetops.devices.signals.smart": "the SMART reading that inspection's probe reuses",
    "fleetops.adapters.executors": "the executors the settings name",
    "fleetops.adapters.local.executor": "running a served action on this server",
    "fleetops.adapters.prometheus": "the Prometheus client an edge hands to a reader",
}


def published(name: str) -> bool:
    """Whether `name` (a module, or a name in one) may be imported from another domain."""
    parts = name.split(".")
    if len(parts) <= 2 or any(part in STANDARD_PUBLIC for part in parts[2:]):
        return True
    return any(name == p or name.startswith(p + ".") or p.startswith(name + ".") for p in PUBLISHED)


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
        # `fleetops.<domain>.routes`, or a sub-package's `fleetops.<domain>.<sub>.routes`
        edge = any(part in PRIVATE_EDGES for part in name.split(".")[2:])
        if target not in (own, "kit") and edge and module not in ROOT_EDGES:
            out.append(f"{module} imports another domain's edge {name}")
        elif (
            own not in ("", "kit", "models", "sim")
            and module not in ROOT_EDGES
            and target not in {own, "", *SHARED_TOPS}
            and not published(name)
        ):
            out.append(f"{module} reaches into {name}: use the domain's published modules")
    return out


def model_families() -> dict[str, str]:
    """Model class name -> the domain that owns its table."""
    return {
        node.name: path.stem
        for path in (SRC / "models").glob("*.py")
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.ClassDef)
    }


def _annotation_nodes(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        roots: list[ast.expr] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            args += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
            roots = [a.annotation for a in args if a.annotation is not None]
            roots += [node.returns] if node.returns is not None else []
        elif isinstance(node, ast.AnnAssign):
            roots = [node.annotation]
        found.update(id(sub) for root in roots for sub in ast.walk(root))
    return found


def table_violations(module: str, source: str, families: dict[str, str]) -> list[str]:
    """Queries or constructions of another domain's model outside type hints."""
    own = domain_of(module)
    if own in ("models", "sim", "kit", "") or module in ROOT_EDGES:
        return []
    tree = ast.parse(source)
    imported = {
        alias.asname or alias.name: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fleetops.models")
        for alias in node.names
    }
    hints = _annotation_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in imported and id(node) not in hints:
            owner = families.get(imported[node.id])
            if owner and owner != own and owner not in READ_EVERYWHERE:
                out.append(
                    f"{module}:{node.lineno} uses {imported[node.id]}, a table of {owner}: "
                    f"ask fleetops.{owner}'s service or repository"
                )
    return out


def all_modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "static" not in p.parts)


def test_imports_follow_the_design() -> None:
    problems = [
        v for path in all_modules() for v in violations(module_name(path), imports_of(path))
    ]
    assert problems == []


def test_every_shared_module_exists() -> None:
    for name in SHARED:
        path = SRC.parent.joinpath(*name.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), name


def test_each_domain_queries_only_its_own_tables() -> None:
    families = model_families()
    problems = [
        v
        for path in all_modules()
        for v in table_violations(module_name(path), path.read_text(encoding="utf-8"), families)
    ]
    assert problems == []


PLANTED = """
from sqlalchemy import select
from fleetops.models import Finding, Host

def live(session, host: Host) -> list[Finding]:
    return list(session.scalars(select(Finding).where(Finding.entity == host.hostname)))
"""


def test_a_planted_cross_domain_query_is_caught() -> None:
    found = table_violations("fleetops.devices.health", PLANTED, model_families())
    assert len(found) == 2  # select(Finding) and Finding.entity; the hints and Host are fine
    assert all("a table of findings" in v for v in found)
    assert table_violations("fleetops.findings.repository", PLANTED, model_families()) == []


@pytest.mark.parametrize(
    ("module", "imported", "expected"),
    [
        ("fleetops.inventory.service", ["fastapi"], "is not an edge"),
        ("fleetops.inventory.service", ["fleetops.auth.routes"], "another domain's edge"),
        ("fleetops.auth.service", ["fleetops.devices.repairs.routes"], "another domain's edge"),
        ("fleetops.kit.pagination", ["fleetops.inventory.service"], "kit is domain-free"),
        ("fleetops.models.inventory", ["fleetops.inventory.service"], "models must not"),
        ("fleetops.inventory.service", ["fleetops.sim.fleet"], "never imports sim"),
        ("fleetops.devices.service", ["fleetops.logs.parse.miner"], "reaches into"),
        ("fleetops.logs.tasks", ["fleetops.devices.lifecycle.safety"], "reaches into"),
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
    assert violations("fleetops.inspection.probes", ["fleetops.devices.signals.smart"]) == []
    assert violations("fleetops.logs.tasks", ["fleetops.devices.repairs.service"]) == []


def str_enums(source: str) -> dict[str, frozenset[str]]:
    """The `StrEnum` classes a module defines, each with the set of its values."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        bases = {
            b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases
        }
        if "StrEnum" in bases:
            found[node.name] = frozenset(
                item.value.value
                for item in node.body
                if isinstance(item, ast.Assign)
                and isinstance(item.value, ast.Constant)
                and isinstance(item.value.value, str)
            )
    return found


def enum_copies(module: str, source: str, named: dict[frozenset[str], str]) -> list[str]:
    """The `StrEnum`s of a module that repeat the values of one in a domain's `enums.py`."""
    return [
        f"{module}.{name} repeats {named[values]}: import it from there"
        for name, values in str_enums(source).items()
        if values in named
    ]


PLANTED_COPY = """
from enum import StrEnum

class HostState(StrEnum):
    RETIRED = "retired"
    IN_SERVICE = "in_service"
    SUSPECT = "suspect"
    DRAINING = "draining"
    ISOLATED = "isolated"
    IN_REPAIR = "in_repair"
    VERIFYING = "verifying"
    PROVISIONING = "provisioning"
"""


def test_named_values_live_in_the_light_enums_modules() -> None:
    """A domain's `enums.py` imports only the standard library (the CLI and documents import it
    without the database layer), and no other module defines a `StrEnum` copying one of it."""
    enum_files = sorted(SRC.rglob("enums.py"))
    assert enum_files, "no enums.py found"
    heavy = [
        f"{module_name(path)} imports {name}"
        for path in enum_files
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else ["." * node.level + (node.module or "")]
        )
        if name.split(".")[0] not in sys.stdlib_module_names
    ]
    assert heavy == []
    named = {
        values: f"{module_name(path)}.{name}"
        for path in enum_files
        for name, values in str_enums(path.read_text(encoding="utf-8")).items()
    }
    copies = [
        copy
        for path in all_modules()
        if path.name != "enums.py"
        for copy in enum_copies(module_name(path), path.read_text(encoding="utf-8"), named)
    ]
    assert copies == []
    # The check sees a copy, whatever the order of its values.
    assert enum_copies("fleetops.devices.cli", PLANTED_COPY, named) == [
        "fleetops.devices.cli.HostState repeats fleetops.devices.enums.Lifecycle: import it "
        "from there"
    ]


MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60


def test_modules_and_functions_stay_readable() -> None:
    """A module a newcomer can read in one sitting, a function on one screen."""
    long: list[str] = []
    for path in all_modules():
        source = path.read_text(encoding="utf-8")
        if (lines := len(source.splitlines())) > MAX_MODULE_LINES:
            long.append(f"{module_name(path)}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long.append(f"{module_name(path)}.{node.name}: {size} lines")
    assert long == []
