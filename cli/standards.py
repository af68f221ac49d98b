"""``gis standards import|list|template``: compensation standards (补偿标准) from planners' sheets."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.common import console, parse_day
from cli.imports import _login
from gis.domain.stages import today_in
from gis.io.export import csv_safe
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.platform.errors import InvalidInput
from gis.records.standards import (
    StandardsRejected,
    StandardsReport,
    as_json,
    import_standards,
    list_standards,
    standards_template,
)

app = typer.Typer(help="Compensation standards (补偿标准): import a planner's sheet, list, get the template.",
                  no_args_is_help=True)
LIST_COLUMNS = {
    "district_name": "片区", "kind_label": "类型", "item_label": "补偿科目", "rate_yuan": "单价", "unit_label": "单位",
    "valid_from": "生效日期", "valid_to": "截止日期", "note": "依据",
}


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="XLSX or CSV with the template's "
                                                                             "columns (片区, 类型, 补偿科目, 单价, "
                                                                             "单位, 生效日期).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row; store nothing.")] = False,
    actor: Annotated[str | None, typer.Option(help="Who sets the standards (default: your login).")] = None,
) -> None:
    """Import standards: every row checked, all stored or none (exit 1, with each refused row and column)."""
    settings = get_settings()
    try:
        with connect(settings) as conn:
            report = import_standards(conn, file, actor or _login(), today=today_in(settings.city_timezone),
                                      dry_run=dry_run)
    except StandardsRejected as exc:
        _print_issues(exc)
        raise typer.Exit(1) from None
    _print_report(report)


def _print_issues(exc: StandardsRejected) -> None:
    table = Table(title="refused")
    for name in ("row", "column", "reason"):
        table.add_column(name, overflow="fold")
    for issue in exc.issues:
        table.add_row(str(issue.row), issue.column, issue.message)
    console.print(table)
    console.print(f"[red]{len({i.row for i in exc.issues})} row(s) refused: nothing was stored[/red]")


def _print_report(report: StandardsReport) -> None:
    for note in report.notes:
        console.print(f"note: {note}")
    verb = "would be" if report.dry_run else "were"
    console.print(f"[green]{report.rows} rows: {report.created} standards {verb} created, {report.corrected} "
                  f"corrected, {report.unchanged} unchanged[/green]" + (" — dry run, nothing stored"
                                                                       if report.dry_run else ""))


@app.command("list")
def list_command(
    district: Annotated[str | None, typer.Option(help="District code or name.")] = None,
    kind: Annotated[str | None, typer.Option(help="house or land (房屋, 土地).")] = None,
    item: Annotated[str | None, typer.Option(help="Item: house_value, land, crops … or its Chinese label.")] = None,
    on: Annotated[str | None, typer.Option(help="Only the standards in force on this day, YYYY-MM-DD.")] = None,
    format: Annotated[str, typer.Option(help="table, csv or json.")] = "table",
) -> None:
    """The standards with the day each ends (the day before its successor takes effect)."""
    if format not in ("table", "csv", "json"):
        raise InvalidInput("format must be table, csv or json", "--format")
    with connect(get_settings()) as conn:
        rows = list_standards(conn, district=district, kind=kind, item=item,
                              on=parse_day(on, "--on") if on else None)
    if format == "json":
        typer.echo(json.dumps([as_json(r) for r in rows], ensure_ascii=False, indent=2))
    elif format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(LIST_COLUMNS.values())
        writer.writerows([csv_safe(_cell(r[k])) for k in LIST_COLUMNS] for r in rows)
    else:
        table = Table(title=f"补偿标准{'（' + on + ' 有效）' if on else ''} {len(rows)} 条")
        for label in LIST_COLUMNS.values():
            table.add_column(label)
        for r in rows:
            table.add_row(*(_cell(r[k]) for k in LIST_COLUMNS))
        Console(file=sys.stdout, width=max(console.width, 140)).print(table)  # stdout: the data


def _cell(value: Any) -> str:
    return "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


@app.command("template")
def template_command(
    output: Annotated[Path, typer.Argument(dir_okay=False, help="Where to write the XLSX.")] = Path(
        "standards_template.xlsx"),
) -> None:
    """Write the XLSX template: the headers planners fill in, one example row, and the accepted values."""
    settings = get_settings()
    with connect(settings) as conn:
        output.write_bytes(standards_template(conn, today=today_in(settings.city_timezone)))
    console.print(f"template written to {output}")
