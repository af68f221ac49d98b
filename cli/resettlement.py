"""``gis resettlement households|totals|timeline|export|fee`` and ``gis cleared-land list|supply``: resettlement
(安置) and the supply of cleared land, through the same functions as the API."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import console, parse_day
from cli.imports import _login
from gis.analysis import resettlement as analysis
from gis.domain.stages import today_in
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.platform.errors import InvalidInput
from gis.records import resettlement as records

app = typer.Typer(help="Resettlement (安置): households, totals, timelines, the status workbook, fees.",
                  no_args_is_help=True)
land_app = typer.Typer(help="Cleared land (交地后): supply status, record a supply (出让/划拨).", no_args_is_help=True)
AsOfOption = Annotated[str | None, typer.Option("--as-of", help="As of the end of this day, YYYY-MM-DD.")]


def _day(as_of: str | None, tz: str) -> date:
    return parse_day(as_of, "--as-of") if as_of else today_in(tz)


def _echo(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=lambda v: float(v) if isinstance(v, Decimal)
                          else v.isoformat() if isinstance(v, date) else str(v)))


def _yuan(value: str, option: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise InvalidInput(f"{option} must be a number", option) from None


@app.command("households")
def households_command(as_of: AsOfOption = None,
                       project_id: Annotated[int | None, typer.Option(help="Only this project's.")] = None) -> None:
    """Every household with its state, flat and months of transition, as JSON (owner names masked)."""
    settings = get_settings()
    with connect(settings) as conn:
        rows = analysis.households(conn, as_of=_day(as_of, settings.city_timezone), tz=settings.city_timezone,
                                   project_id=project_id)
    _echo(rows)


@app.command("totals")
def totals_command(as_of: AsOfOption = None,
                   by: Annotated[str, typer.Option(help="project or district.")] = "project") -> None:
    """Households resettled and waiting, months of transition owed and paid, per project or district."""
    settings = get_settings()
    with connect(settings) as conn:
        _echo(analysis.totals(conn, as_of=_day(as_of, settings.city_timezone), tz=settings.city_timezone, by=by))


@app.command("timeline")
def timeline_command(parcel_id: Annotated[int, typer.Argument(help="The household's parcel id.")],
                     as_of: AsOfOption = None) -> None:
    """A household's way from agreement to keys."""
    settings = get_settings()
    with connect(settings) as conn:
        _echo(analysis.timeline(conn, parcel_id, as_of=_day(as_of, settings.city_timezone), tz=settings.city_timezone))


@app.command("export")
def export_command(out: Annotated[Path, typer.Argument(dir_okay=False, help="The .xlsx file to write.")],
                   as_of: AsOfOption = None) -> None:
    """Resettlement status by project as XLSX (owner names masked)."""
    settings = get_settings()
    with connect(settings) as conn:
        counts = analysis.status_workbook(conn, out, as_of=_day(as_of, settings.city_timezone),
                                          tz=settings.city_timezone)
    console.print(f"[green]{out}: {len(counts)} sheets[/green]")


@app.command("fee")
def fee_command(parcel_id: Annotated[int, typer.Argument()], month_no: Annotated[int, typer.Argument(min=1)],
                amount: Annotated[str, typer.Argument(help="Yuan.")],
                paid_on: Annotated[str, typer.Option("--paid-on", help="YYYY-MM-DD (default today).")] = "",
                actor: Annotated[str | None, typer.Option(help="Who records it (your login).")] = None) -> None:
    """Record one month's transitional fee (临时安置费)."""
    settings = get_settings()
    today = today_in(settings.city_timezone)
    with connect(settings) as conn:
        records.pay_transition_month(conn, parcel_id, month_no, parse_day(paid_on, "--paid-on") if paid_on else today,
                                     _yuan(amount, "amount"), actor or _login(), today)
    console.print(f"[green]month {month_no} recorded[/green]")


@land_app.command("list")
def land_list_command(as_of: AsOfOption = None) -> None:
    """Every cleared parcel with its supply status, as JSON."""
    settings = get_settings()
    with connect(settings) as conn:
        _echo(analysis.cleared_land(conn, as_of=_day(as_of, settings.city_timezone), tz=settings.city_timezone))


@land_app.command("supply")
def land_supply_command(parcel_id: Annotated[int, typer.Argument()],
                        method: Annotated[str, typer.Argument(help="transfer (出让) or allocation (划拨).")],
                        receiving_project: Annotated[str, typer.Argument(help="The project receiving the land.")],
                        supplied_on: Annotated[str, typer.Option("--on", help="YYYY-MM-DD (default today).")] = "",
                        actor: Annotated[str | None, typer.Option(help="Who records it.")] = None) -> None:
    """Record a cleared parcel's supply."""
    settings = get_settings()
    today = today_in(settings.city_timezone)
    with connect(settings) as conn:
        records.record_supply(conn, parcel_id, method, parse_day(supplied_on, "--on") if supplied_on else today,
                              receiving_project, actor or _login(), today)
    console.print(f"[green]parcel {parcel_id}: {records.SUPPLY_LABELS_ZH[method]}[/green]")
