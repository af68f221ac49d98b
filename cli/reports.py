"""``gis report daily|three-day|weekly --date D [--xlsx out.xlsx] [--html out.html]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import console, parse_day
from gis import reports
from gis.domain.stages import today_in
from gis.domain.tolerance import Tolerance
from gis.platform.config import get_settings
from gis.platform.db import connect


def report(
    kind: Annotated[str, typer.Argument(help="daily (日报), three-day (三日总结) or weekly (周调度).")],
    day: Annotated[str | None, typer.Option("--date", help="The report's day, YYYY-MM-DD; default today.")] = None,
    xlsx: Annotated[Path | None, typer.Option(help="Write the workbook here.")] = None,
    html: Annotated[Path | None, typer.Option(help="Write the HTML page (charts and maps embedded) here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    reveal_personal: Annotated[bool, typer.Option(help="Show owner names unmasked.")] = False,
) -> None:
    """A report as of the end of the day, replayed from the history; a summary table unless --json."""
    reports.get_kind(kind)
    settings = get_settings()
    tz = settings.city_timezone
    on = parse_day(day, "--date") if day else today_in(tz)
    with connect(settings) as conn:
        built = reports.build_report(conn, kind, on, tolerance=Tolerance.from_settings(settings), tz=tz,
                                     reveal_personal=reveal_personal, pictures=html is not None or xlsx is not None)
    if xlsx:
        xlsx.write_bytes(reports.render_xlsx(built))
        console.print(f"written {xlsx}")
    if html:
        html.write_text(reports.render_html(built), encoding="utf-8")
        console.print(f"written {html}")
    if as_json:
        json.dump(built.as_dict(), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return
    table = Table(title=f"{built.heading} 较{built.previous}")
    for label in ("项目", "红线内地块", "已交地", "本期新增", "完成率%", "剩余阻碍", "钉子户", "距节点天数"):
        table.add_column(label)
    for p in built.projects:
        table.add_row(p["name"], str(p["total"]), str(p["cleared"]), f"+{p['change']}", str(p["percent_cleared"]),
                      str(p["blocking"]), str(p["holdouts"]), str(p["days_to_deadline"]))
    out = Console(file=sys.stdout, width=max(console.width, 120))
    out.print(table)
    out.print("核查：" + "，".join(f"{c['title']} {c['count']}" for c in built.checks))
