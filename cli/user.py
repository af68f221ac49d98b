"""``gis user add|list|attempts|token|revoke``: users of the API and the login page."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import db
from cli.common import console
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.records import users as auth

app = typer.Typer(help="Users, roles and API tokens.")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="User name (also the login name).")],
    role: Annotated[auth.Role, typer.Option(help="viewer, district_editor, inspector or admin.")],
    district: Annotated[list[str] | None, typer.Option(help="District id, code or name (district editors; "
                                                           "repeat for several).")] = None,
    password: Annotated[bool, typer.Option("--password", help="Also set a password for the login page "
                                                              "(asked for, not echoed).")] = False,
) -> None:
    """Create a user and print their API token. The token is shown this once: it is stored hashed."""
    secret = typer.prompt("password", hide_input=True, confirmation_prompt=True) if password else None
    settings = get_settings()
    db.up()
    with connect(settings) as conn:
        cred = auth.add_user(conn, name, role, district or [], secret)
    console.print(f"user {cred.name} ({cred.role.value}"
                  + (f", districts {', '.join(cred.districts)}" if cred.districts else "") + "); API token:")
    typer.echo(cred.token)


@app.command("list")
def list_users() -> None:
    """The users, their roles and districts (no secrets)."""
    with connect(get_settings()) as conn:
        for u in auth.list_users(conn):
            typer.echo(f"{u['name']}\t{u['role']}\t{','.join(u['districts'])}\t"
                       f"{'active' if u['active'] else 'disabled'}\t{'password' if u['has_password'] else '-'}")


@app.command("attempts")
def attempts(
    user: Annotated[str | None, typer.Option(help="Only this user name.")] = None,
    address: Annotated[str | None, typer.Option(help="Only this client address.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed or locked attempts.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="How many, newest first.")] = 50,
) -> None:
    """Sign-in attempts on the login page, newest first: time, user name, address, outcome."""
    with connect(get_settings()) as conn:
        rows = auth.login_attempts(conn, user=user, address=address, failed_only=failed, limit=limit)
    for r in rows:
        outcome = "locked" if r["locked"] else "ok" if r["success"] else "failed"
        typer.echo(f"{r['at']}\t{r['user_name']}\t{r['address'] or '-'}\t{outcome}")


@app.command("token")
def token(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Print a new API token for an existing user."""
    with connect(get_settings()) as conn:
        typer.echo(auth.new_api_token(conn, name))


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Revoke all of a user's tokens and browser sessions."""
    with connect(get_settings()) as conn:
        count = auth.revoke_tokens(conn, name)
    console.print(f"{count} token(s) of {name} revoked")
