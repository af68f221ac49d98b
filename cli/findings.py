"""``gis findings list|open|status|recheck|overdue`` and ``gis contest``: findings followed to the end (督查督办、
整改、回头看) and the quarterly contest (四季竞赛、五大比拼), through the functions the API calls.

The command line is the operator's, who holds the database's credentials: it acts as an admin under the login's
name (admins may make every move; the history names who did).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import console, parse_day
from cli.imports import _login
from gis import contest as contest_scores
from gis import rectification
from gis.domain.stages import today_in
from gis.domain.tolerance import Tolerance
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.records import findings
from gis.records.users import Principal, Role

app = typer.Typer(help="Findings followed to the end (督查整改、回头看).", no_args_is_help=True)


def _operator() -> Principal:
    return Principal(_login(), Role.admin)


def _print_items(items: list[dict]) -> None:
    table = Table("编号", "核查项", "地块", "片区", "期限", "状态", "逾期天数")
    titles = rectification.known_checks()
    for i in items:
        table.add_row(str(i["id"]), titles.get(i["check_name"], i["check_name"]), i["parcel_code"],
                      i["district_name"], str(i["deadline"]), findings.STATUS_LABELS_ZH.get(i["status"], i["status"]),
                      str(i.get("days_overdue") or ""))
    console.print(table)


@app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="Only this status (open, rectifying, rectified, ...).")] = None,
    district: Annotated[str | None, typer.Option(help="Only this district (code).")] = None,
    overdue: Annotated[bool | None, typer.Option("--overdue/--not-overdue", help="Only overdue items, or the "
                                                 "others.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout instead of a table.")] = False,
) -> None:
    """The rectification items by deadline."""
    s = get_settings()
    with connect(s) as conn:
        items = findings.list_items(conn, today=today_in(s.city_timezone), status=status, district=district,
                                    overdue=overdue)
    if as_json:
        json.dump([findings.as_json(i) for i in items], sys.stdout, ensure_ascii=False, indent=1)
        return
    _print_items(items)


@app.command("overdue")
def overdue_command(day: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD (default today).")] = None
                    ) -> None:
    """Items still pending past their deadline at the end of the day (replayed from the history)."""
    s = get_settings()
    as_of = parse_day(day, "--as-of") if day else today_in(s.city_timezone)
    with connect(s) as conn:
        items = findings.overdue_items(conn, as_of, tz=s.city_timezone)
    json.dump([findings.as_json(i) for i in items], sys.stdout, ensure_ascii=False, indent=1)


@app.command("open")
def open_command(
    check: Annotated[str, typer.Argument(help="The check (paid-not-demolished, ...).")],
    parcel_id: Annotated[int, typer.Argument(help="The parcel it flags.")],
    deadline: Annotated[str, typer.Option(help="Rectify by this day, YYYY-MM-DD.")],
    unit: Annotated[str | None, typer.Option(help="The assisting unit's code.")] = None,
    note: Annotated[str | None, typer.Option(help="A note.")] = None,
) -> None:
    """Follow a check's finding on a parcel (the check must flag it today)."""
    s = get_settings()
    with connect(s) as conn:
        item = rectification.open_item(conn, check=check, parcel_id=parcel_id, deadline=parse_day(deadline,
                                       "--deadline"), principal=_operator(), unit_code=unit, note=note,
                                       today=today_in(s.city_timezone), tz=s.city_timezone)
    console.print(f"[green]finding {item['id']} opened: {item['summary']}[/green]")


@app.command("status")
def status_command(
    finding_id: Annotated[int, typer.Argument(help="The item.")],
    status: Annotated[str, typer.Argument(help="rectifying, rectified, verified or reopened.")],
    note: Annotated[str | None, typer.Option(help="A note.")] = None,
) -> None:
    """Move an item's status."""
    with connect(get_settings()) as conn:
        item = findings.set_status(conn, finding_id, status, _operator(), note=note)
    console.print(f"[green]finding {finding_id}: {findings.STATUS_LABELS_ZH[item['status']]}[/green]")


@app.command("recheck")
def recheck_command() -> None:
    """回头看: re-run the check of every rectified item; verified when it passes, reopened when not."""
    s = get_settings()
    with connect(s) as conn:
        answer = rectification.recheck(conn, _operator(), today=today_in(s.city_timezone), tz=s.city_timezone)
    console.print(f"verified {len(answer['verified'])}, reopened {len(answer['reopened'])}")
    json.dump(answer, sys.stdout, ensure_ascii=False)


def contest_command(
    year: Annotated[int | None, typer.Option(help="The year (default: today's).")] = None,
    quarter: Annotated[int | None, typer.Option(help="The quarter, 1–4 (default: today's).")] = None,
    xlsx: Annotated[Path | None, typer.Option(help="Write the table to this XLSX file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout instead of a table.")] = False,
) -> None:
    """四季竞赛、五大比拼: each district's five comparisons, score, rank and change against last quarter."""
    s = get_settings()
    today = today_in(s.city_timezone)
    with connect(s) as conn:
        answer = contest_scores.contest(conn, Tolerance.from_settings(s), year=year or today.year,
                                        quarter=quarter or (today.month - 1) // 3 + 1, today=today,
                                        tz=s.city_timezone)
    if xlsx is not None:
        xlsx.write_bytes(contest_scores.contest_xlsx(answer))
        console.print(f"[green]written {xlsx}[/green]")
    if as_json:
        json.dump(answer, sys.stdout, ensure_ascii=False, indent=1)
        return
    table = Table("名次", "片区", *(c.label for c in contest_scores.COMPARISONS), "得分", "上季度名次", "名次变化",
                  title=f"{answer['label']} 四季竞赛（截至{answer['as_of']}）")
    for r in answer["districts"]:
        rates = [("—" if r["rates"][c.key] is None else f"{100 * r['rates'][c.key]['rate']:.1f}%")
                 for c in contest_scores.COMPARISONS]
        table.add_row(str(r["rank"] or "—"), r["district_name"], *rates, str(r["score"]), str(r["previous_rank"] or
                      "—"), "" if r["rank_change"] is None else f"{r['rank_change']:+d}")
    console.print(table)
