"""``gis disclosures add|list``: the days a project's compensation was published (亮底征收)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.common import console, parse_day
from cli.imports import _login
from gis.domain.stages import today_in
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.records.disclosures import list_disclosures, record_disclosure
from gis.records.projects import resolve_project

app = typer.Typer(help="Days a project's compensation was published (亮底征收), for the sunshine check.",
                  no_args_is_help=True)


@app.command("add")
def add_command(
    project: Annotated[str, typer.Argument(help="The project's id or code.")],
    on: Annotated[str, typer.Option("--on", help="The day it was published, YYYY-MM-DD (not after today).")],
    note: Annotated[str | None, typer.Option(help="Where and how it was published.")] = None,
    actor: Annotated[str | None, typer.Option(help="Who records it (default: your login).")] = None,
) -> None:
    """Record a day the project's compensation was published; a refusal exits 1 with the reason."""
    settings = get_settings()
    day = parse_day(on, "--on")
    with connect(settings) as conn:
        row = record_disclosure(conn, resolve_project(conn, project), day, actor or _login(),
                                today=today_in(settings.city_timezone), note=note)
    console.print(f"[green]recorded: project {row['project_id']} published on {row['published_on']}[/green]")


@app.command("list")
def list_command(project: Annotated[str, typer.Argument(help="The project's id or code.")]) -> None:
    """The project's recorded days of publication, as JSON."""
    with connect(get_settings()) as conn:
        rows = list_disclosures(conn, resolve_project(conn, project))
    typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
