"""`fleetops host ...` and `fleetops rack ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetops.kit.cli import EXIT_USAGE, OutputOption, api, emit, fail, stderr, stdout

host_app = typer.Typer(help="Hosts of the inventory.", no_args_is_help=True)
rack_app = typer.Typer(help="Racks and their failure domains.", no_args_is_help=True)

HOST_COLUMNS = [
    ("hostname", "hostname"),
    ("address", "address"),
    ("state", "state"),
    ("rack", "rack"),
    ("cluster", "cluster"),
    ("model", "model"),
    ("labels", "labels"),
]
RACK_COLUMNS = [
    ("rack", "name"),
    ("datacenter", "datacenter"),
    ("region", "region"),
    ("cluster", "cluster"),
    ("hosts", "host_count"),
    ("failure domains", "failure_domains"),
]
SelectorOption = Annotated[
    str | None, typer.Option("--selector", "-s", help="e.g. 'cluster=c1,rack=r07' or 'dn-0[01-40]'")
]


@host_app.command("list")
def host_list(
    ctx: typer.Context,
    selector: SelectorOption = None,
    sort: Annotated[
        str,
        typer.Option(help="hostname, address, state, rack, cluster, model; prefix - to reverse"),
    ] = "hostname",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    output: OutputOption = "table",
) -> None:
    """List hosts, optionally those a selector picks; retired ones only with `-s state=retired`."""
    page = api(ctx).get("/api/v1/hosts", selector=selector, sort=sort, limit=limit, offset=offset)
    emit(page, output, HOST_COLUMNS)


@host_app.command("show")
def host_show(ctx: typer.Context, hostname: str, output: OutputOption = "table") -> None:
    """Show one host."""
    emit(api(ctx).get(f"/api/v1/hosts/{hostname}"), output, title=hostname)


@host_app.command("delete")
def host_delete(ctx: typer.Context, hostname: str) -> None:
    """Delete a host that has no history; one with history is refused: retire it instead."""
    api(ctx).delete(f"/api/v1/hosts/{hostname}")
    stdout.print(f"deleted host {hostname}", highlight=False, markup=False)


@host_app.command("import")
def host_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="yaml, csv, ansible-ini, ansible-yaml, netbox-csv (default: detect)",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check and count, write nothing")
    ] = False,
    output: OutputOption = "table",
) -> None:
    """Import an inventory file as a whole: a broken file changes nothing and names its lines."""
    try:
        content = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    with stderr.status(f"importing {file.name}..."):
        summary = api(ctx).post(
            "/api/v1/inventory/import",
            {
                "content": content,
                "format": fmt,
                "filename": file.name,
                "dry_run": dry_run,
            },
        )
    if output != "table":
        emit(summary, output)
        return
    verb = "would change" if dry_run else "imported"
    stdout.print(
        f"{verb} ({summary['format']}): created {_counts(summary['created'])}; "
        f"updated {_counts(summary['updated'])}; unchanged {_counts(summary['unchanged'])}"
    )


def _counts(counts: dict[str, int]) -> str:
    return (
        ", ".join(f"{n} {_plural(kind.replace('_', ' '), n)}" for kind, n in counts.items())
        or "nothing"
    )


def _plural(noun: str, n: int) -> str:
    if n == 1:
        return noun
    if noun.endswith("y"):
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("ch", "s")) else "s")


@host_app.command("export")
def host_export(
    ctx: typer.Context,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="yaml, csv, ansible-ini, ansible-yaml, netbox-csv")
    ] = "yaml",
    selector: SelectorOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write to a file instead of stdout")
    ] = None,
) -> None:
    """Export the inventory (or the selected hosts) in a format."""
    text = api(ctx).get("/api/v1/inventory/export", format=fmt, selector=selector)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        stderr.print(f"wrote {out}")


@rack_app.command("list")
def rack_list(
    ctx: typer.Context,
    cluster: Annotated[str | None, typer.Option(help="only this cluster's racks")] = None,
    output: OutputOption = "table",
) -> None:
    """List racks with host counts."""
    emit(api(ctx).get("/api/v1/racks", cluster=cluster), output, RACK_COLUMNS)


@rack_app.command("show")
def rack_show(ctx: typer.Context, name: str, output: OutputOption = "table") -> None:
    """Show one rack."""
    emit(api(ctx).get(f"/api/v1/racks/{name}"), output, title=name)


@rack_app.command("create")
def rack_create(
    ctx: typer.Context,
    name: str,
    datacenter: Annotated[str, typer.Option(help="datacenter the rack stands in")],
    cluster: Annotated[str | None, typer.Option()] = None,
    domain: Annotated[
        list[str] | None, typer.Option(help="failure domain KEY=VALUE, repeatable")
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Add a rack."""
    domains = {}
    for item in domain or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--domain takes KEY=VALUE, got {item!r}", EXIT_USAGE)
        domains[key] = value
    body = {"name": name, "datacenter": datacenter, "cluster": cluster, "failure_domains": domains}
    emit(api(ctx).post("/api/v1/racks", body), output, title=name)


@rack_app.command("delete")
def rack_delete(ctx: typer.Context, name: str) -> None:
    """Delete an empty rack."""
    api(ctx).delete(f"/api/v1/racks/{name}")
    stderr.print(f"deleted rack {name}")
