"""``gis compensation estimate|parcel|survey-import``: itemised compensation (逐项补偿) from the standards in force."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import console, parse_day
from cli.imports import _login
from cli.standards import _print_issues
from gis.analysis import compensation
from gis.domain.stages import today_in
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.records.surveys import SurveysRejected, import_surveys

app = typer.Typer(help="Itemised compensation (逐项补偿): estimate, a parcel's calculation, survey import.",
                  no_args_is_help=True)


def _show(calc: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(calc, ensure_ascii=False, indent=2))
        return
    table = Table("补偿科目", "等级/种类", "数量", "单价", "金额（元）", "依据", "说明")
    for i in calc["items"]:
        amount = "—" if i["amount_yuan"] is None else f"{i['amount_yuan']:,.2f}"
        table.add_row(i["item_label"], i["grade_label"] or "", f"{i['quantity'] or 0:g} {i['quantity_unit_label']}",
                      f"{i['rate_yuan']:,.2f} {i['rate_unit_label']}", amount, i["article"] or "", i["note"] or "")
    console.print(table)
    console.print(f"合计 {calc['total_yuan']:,.2f} 元（按 {calc['agreed_on']} 有效的标准）"
                  + ("" if calc["complete"] else "；有科目缺少调查数据，未计入"))


@app.command("estimate")
def estimate_command(
    district: Annotated[str, typer.Option(help="District code, name or id.")],
    kind: Annotated[str, typer.Option(help="house or land.")] = "house",
    floor_area_m2: Annotated[float | None, typer.Option(help="A house's floor area, m².")] = None,
    land_area_mu: Annotated[float | None, typer.Option(help="Land's area, mu.")] = None,
    structure: Annotated[str | None, typer.Option(help="钢混, 砖混, 砖木 or 简易.")] = None,
    decoration: Annotated[str | None, typer.Option(help="无装修, 简易装修, 中等装修 or 精装修.")] = None,
    business_area_m2: Annotated[float | None, typer.Option(help="Floor area used for business, m².")] = None,
    transition_months: Annotated[int | None, typer.Option(help="Months of transition.")] = None,
    agreed_on: Annotated[str | None, typer.Option(help="The agreement's day (default today).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Every item of a hypothetical household's compensation and the total (the service's and the public
    calculator's engine); a refused value is exit 1 with its reason."""
    settings = get_settings()
    values = {"district": district, "kind": kind, "floor_area_m2": floor_area_m2, "land_area_mu": land_area_mu,
              "structure": structure, "decoration": decoration, "business_area_m2": business_area_m2,
              "transition_months": transition_months,
              "agreed_on": parse_day(agreed_on, "--agreed-on") if agreed_on else None}
    with connect(settings) as conn:
        calc = compensation.estimate(conn, {k: v for k, v in values.items() if v is not None},
                                     today=today_in(settings.city_timezone))
    _show(calc, as_json)


@app.command("parcel")
def parcel_command(
    parcel_id: Annotated[int, typer.Argument(help="The parcel's id.")],
    xlsx: Annotated[Path | None, typer.Option(help="Also write the calculation as a workbook here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """A parcel's itemised compensation, each item beside what was paid on it."""
    settings = get_settings()
    today: date = today_in(settings.city_timezone)
    with connect(settings) as conn:
        calc = compensation.parcel_calculation(conn, parcel_id, today=today)
    _show(calc, as_json)
    if xlsx:
        compensation.write_calculation_xlsx(calc, xlsx, on=today)
        console.print(f"written {xlsx}")


@app.command("survey-import")
def survey_import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The parcel file or a survey sheet: "
                                                                             "地块编号, 房屋结构, 装修等级, …")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row; store nothing.")] = False,
) -> None:
    """Import the parcels' survey facts: every row checked, all stored or none (exit 1, each refused row)."""
    try:
        with connect(get_settings()) as conn:
            out = import_surveys(conn, file, _login(), dry_run=dry_run)
    except SurveysRejected as exc:
        _print_issues(exc)
        raise typer.Exit(1) from None
    console.print(f"[green]{out['rows']} rows: {out['changed']} surveys changed"
                  + (" (dry run)" if dry_run else "") + "[/green]")
