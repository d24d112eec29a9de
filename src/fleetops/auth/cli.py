"""`fleetops user ...`, `fleetops token ...`, `fleetops whoami`."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from fleetops.auth.roles import Role
from fleetops.kit.cli import EXIT_USAGE, OutputOption, api, emit, fail, stderr, stdout

user_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (shown once, stored hashed).", no_args_is_help=True)

USER_COLUMNS = [
    ("user", "username"),
    ("role", "role"),
    ("disabled", "disabled"),
    ("locked until", "locked_until"),
    ("created", "created_at"),
]
TOKEN_COLUMNS = [
    ("id", "id"),
    ("name", "name"),
    ("user", "username"),
    ("role", "role"),
    ("prefix", "prefix"),
    ("expires", "expires_at"),
    ("last used", "last_used_at"),
    ("revoked", "revoked_at"),
]


def _password(given: str | None, prompt: bool) -> str:
    if given:
        return given
    if not prompt:
        fail("no password given: use --password-stdin or run in a terminal", EXIT_USAGE)
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        fail("passwords do not match", EXIT_USAGE)
    return first


@user_app.command("list")
def user_list(ctx: typer.Context, output: OutputOption = "table") -> None:
    """List users."""
    emit(api(ctx).get("/api/v1/users"), output, USER_COLUMNS)


@user_app.command("create")
def user_create(
    ctx: typer.Context,
    username: str,
    role: Annotated[Role, typer.Option(help="viewer, developer, operator or admin")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
    output: OutputOption = "table",
) -> None:
    """Create a user (password prompted, or read from stdin)."""
    import sys

    given = sys.stdin.readline().rstrip("\n") if password_stdin else None
    password = _password(given, prompt=sys.stdin.isatty())
    emit(
        api(ctx).post(
            "/api/v1/users", {"username": username, "role": role.value, "password": password}
        ),
        output,
        title=username,
    )


@user_app.command("update")
def user_update(
    ctx: typer.Context,
    username: str,
    role: Annotated[Role | None, typer.Option()] = None,
    disable: Annotated[bool | None, typer.Option("--disable/--enable")] = None,
    output: OutputOption = "table",
) -> None:
    """Change a user's role or disable/enable it."""
    body = {k: v for k, v in {"role": role, "disabled": disable}.items() if v is not None}
    if not body:
        fail("nothing to change: give --role or --disable/--enable", EXIT_USAGE)
    emit(api(ctx).patch(f"/api/v1/users/{username}", body), output, title=username)


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="what the token is for, e.g. 'ci' or 'agent-dn-001'")],
    user: Annotated[str | None, typer.Option(help="owner (admins only; default: you)")] = None,
    role: Annotated[Role | None, typer.Option(help="scope; default: the owner's role")] = None,
    expires_days: Annotated[int | None, typer.Option(min=1, max=3650)] = None,
    output: OutputOption = "table",
) -> None:
    """Create an API token; its secret is printed once."""
    body = {
        "name": name,
        "username": user,
        "role": role.value if role else None,
        "expires_days": expires_days,
    }
    created = api(ctx).post("/api/v1/tokens", body)
    if output != "table":
        emit(created, output)
        return
    stdout.print(created["token"])
    stderr.print(
        f"token {created['id']} ({created['role']}, user {created['username']}): "
        "store it now, it is not shown again"
    )


@token_app.command("list")
def token_list(ctx: typer.Context, output: OutputOption = "table") -> None:
    """List tokens (never their secrets)."""
    emit(api(ctx).get("/api/v1/tokens"), output, TOKEN_COLUMNS)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: int, output: OutputOption = "table") -> None:
    """Revoke a token."""
    emit(api(ctx).delete(f"/api/v1/tokens/{token_id}"), output, title=f"token {token_id}")


def whoami(ctx: typer.Context, output: OutputOption = "table") -> None:
    """Show who the CLI acts as."""
    emit(api(ctx).get("/api/v1/whoami"), output)
