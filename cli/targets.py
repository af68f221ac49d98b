"""``gis targets import|list|progress``: annual targets (年度任务) from planners' sheets, and progress against them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.common import console, parse_day
from cli.imports import _login
from cli.standards import _print_issues
from gis.domain.tolerance import Tolerance
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.records.targets import TargetsRejected, as_json, import_targets, list_targets, targets_progress

app = typer.Typer(help="Annual targets (年度任务): import a planner's sheet, list, progress.", no_args_is_help=True)
LIST_COLUMNS = {"district_name": "片区", "year": "年度", "quarter": "季度", "project_name": "项目",
                "house_m2": "房屋（㎡）", "land_mu": "土地（亩）", "parcels": "宗数"}


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="XLSX or CSV: 片区, 年度, 季度, 项目, "
                                                                             "房屋（㎡ or 万㎡）, 土地（亩）, 宗数.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row; store nothing.")] = False,
    actor: Annotated[str | None, typer.Option(help="Who sets the targets (default: your login).")] = None,
) -> None:
    """Import targets: every row checked, all stored or none (exit 1, with each refused row and column)."""
    try:
        with connect(get_settings()) as conn:
            report = import_targets(conn, file, actor or _login(), dry_run=dry_run)
    except TargetsRejected as exc:
        _print_issues(exc)
        raise typer.Exit(1) from None
    for note in report.notes:
        console.print(f"note: {note}")
    verb = "would be stored" if report.dry_run else "stored"
    console.print(f"[green]{report.rows} rows: {report.rows if report.dry_run else report.stored} targets "
                  f"{verb}[/green]")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


@app.command("list")
def list_command(
    year: Annotated[int | None, typer.Option(help="Only this year's targets.")] = None,
    quarter: Annotated[int | None, typer.Option(help="Only this quarter's (1–4).")] = None,
    as_json_: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """The targets, by district, year, quarter and project."""
    with connect(get_settings()) as conn:
        rows = list_targets(conn, year=year, quarter=quarter)
    if as_json_:
        typer.echo(json.dumps([as_json(r) for r in rows], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"年度任务 {len(rows)} 条")
    for label in LIST_COLUMNS.values():
        table.add_column(label)
    for r in rows:
        table.add_row(*(_cell(r[k]) for k in LIST_COLUMNS))
    Console(file=sys.stdout, width=max(console.width, 120)).print(table)  # stdout: the data


@app.command("progress")
def progress_command(
    year: Annotated[int | None, typer.Option(help="The year (default: the as-of day's).")] = None,
    quarter: Annotated[int | None, typer.Option(help="Only this quarter's targets (1–4).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Progress at the end of this day, YYYY-MM-DD.")] = None,
) -> None:
    """Progress against the targets, replayed from the history, as JSON."""
    settings = get_settings()
    with connect(settings) as conn:
        answer = targets_progress(conn, Tolerance.from_settings(settings), year=year, quarter=quarter,
                                  as_of=parse_day(as_of, "--as-of") if as_of else None, tz=settings.city_timezone)
    typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
