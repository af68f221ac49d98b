"""``gis units …`` (协保单位) and ``gis posts …`` (指挥分部): the same functions as the API, acting as an admin (the
operator of the machine); names and phones masked unless ``--reveal-personal``. The dispatch check is
``gis check dispatch-gaps``."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

import typer

from cli.common import parse_day
from cli.imports import _login
from gis.analysis.units import unit_ranking
from gis.domain.stages import today_in
from gis.platform.config import get_settings
from gis.platform.db import connect
from gis.records import dispatch, units
from gis.records.targets import as_json
from gis.records.users import Principal, Role

app = typer.Typer(help="Assisting units (协保单位): units, staff, assignments, ranking.", no_args_is_help=True)
posts_app = typer.Typer(help="Command posts (指挥分部): posts, front-line visits, on-site duty.", no_args_is_help=True)
Reveal = Annotated[bool, typer.Option("--reveal-personal", help="Show names and phones unmasked.")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="As of the end of this day, YYYY-MM-DD (default today).")]


def _operator() -> Principal:
    return Principal(_login(), Role.admin)


def _today() -> date:
    return today_in(get_settings().city_timezone)


def _day(value: str | None, option: str) -> date:
    return parse_day(value, option) if value else _today()


def _print(value: Any) -> None:
    if isinstance(value, list):
        value = [as_json(v) for v in value]
    elif isinstance(value, dict):
        value = as_json(value)
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


@app.command("list")
def list_command() -> None:
    """The units, with their staff and open assignments counted (JSON)."""
    with connect(get_settings()) as conn:
        _print(units.list_units(conn))


@app.command("add")
def add_command(code: str, name: str) -> None:
    """Add a unit: a code (a letter, then letters, digits, _ or -) and its name."""
    with connect(get_settings()) as conn:
        _print(units.add_unit(conn, code, name, _login()))


@app.command("staff")
def staff_command(unit: str, reveal_personal: Reveal = False) -> None:
    """A unit's staff (JSON)."""
    with connect(get_settings()) as conn:
        _print(units.unit_staff(conn, unit, reveal_personal=reveal_personal))


@app.command("add-staff")
def add_staff_command(unit: str, name: str, phone: Annotated[str | None, typer.Option()] = None,
                      title: Annotated[str | None, typer.Option()] = None) -> None:
    """Add a person to a unit's staff."""
    with connect(get_settings()) as conn:
        _print(units.add_staff(conn, unit, name, phone=phone, title=title))


@app.command("assign")
def assign_command(
    unit: str,
    parcels: Annotated[list[str], typer.Argument(help="Parcel codes (or ids, as #123).")],
    staff: Annotated[int | None, typer.Option(help="The staff member's id.")] = None,
    on: Annotated[str | None, typer.Option(help="From this day, YYYY-MM-DD (default today).")] = None,
    note: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Assign parcels to a unit (and one of its staff); parcels with another unit or staff member are reassigned."""
    refs: list[int | str] = [int(p[1:]) if p.startswith("#") and p[1:].isdigit() else p for p in parcels]
    with connect(get_settings()) as conn:
        _print(units.assign(conn, refs, unit, _operator(), staff_id=staff, on=_day(on, "--on"), today=_today(),
                            note=note))


@app.command("assignments")
def assignments_command(unit: Annotated[str | None, typer.Option()] = None,
                        parcel: Annotated[int | None, typer.Option(help="A parcel's id.")] = None,
                        reveal_personal: Reveal = False) -> None:
    """Assignments with their periods, ended ones too (JSON)."""
    with connect(get_settings()) as conn:
        _print(units.assignments(conn, parcel_id=parcel, unit=unit, reveal_personal=reveal_personal))


@app.command("ranking")
def ranking_command(as_of: AsOf = None) -> None:
    """The units ranked (晒一晒、比一比), replayed for the end of the day (JSON)."""
    settings = get_settings()
    with connect(settings) as conn:
        _print(unit_ranking(conn, as_of=_day(as_of, "--as-of"), tz=settings.city_timezone))


@posts_app.command("list")
def posts_list_command(reveal_personal: Reveal = False) -> None:
    """The command posts (JSON)."""
    with connect(get_settings()) as conn:
        _print(dispatch.list_posts(conn, reveal_personal=reveal_personal))


@posts_app.command("add")
def posts_add_command(
    district: str, name: str, commander: str,
    lon: Annotated[float, typer.Option(help="The office's WGS 84 longitude.")],
    lat: Annotated[float, typer.Option(help="The office's WGS 84 latitude.")],
    deputy: Annotated[list[str] | None, typer.Option(help="A deputy commander (repeat for several).")] = None,
    established_on: Annotated[str | None, typer.Option("--established-on", help="YYYY-MM-DD (default today).")]
    = None,
) -> None:
    """Set up a district's command post."""
    settings = get_settings()
    with connect(settings) as conn:
        _print(dispatch.add_post(conn, district, name, commander, deputy or [],
                                 established_on=_day(established_on, "--established-on"), today=_today(), lon=lon,
                                 lat=lat, srid=settings.srid))


@posts_app.command("visit")
def posts_visit_command(
    post: str, leader: str,
    lon: Annotated[float, typer.Option(help="WGS 84 longitude of the place.")],
    lat: Annotated[float, typer.Option(help="WGS 84 latitude of the place.")],
    role: Annotated[str, typer.Option(help="commander or deputy.")] = "commander",
    on: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today).")] = None,
    place: Annotated[str | None, typer.Option()] = None,
    attendees: Annotated[str | None, typer.Option()] = None,
    problems: Annotated[str | None, typer.Option()] = None,
    decisions: Annotated[str | None, typer.Option()] = None,
    follow_up: Annotated[str | None, typer.Option("--follow-up")] = None,
) -> None:
    """Log a front-line visit."""
    settings = get_settings()
    with connect(settings) as conn:
        _print(dispatch.record_visit(conn, post, _operator(), visited_on=_day(on, "--on"), today=_today(),
                                     leader=leader, leader_role=role, lon=lon, lat=lat, srid=settings.srid,
                                     attendees=attendees, place=place, problems=problems, decisions=decisions,
                                     follow_up=follow_up))


@posts_app.command("duty")
def posts_duty_command(post: str, person: str,
                       on: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today).")] = None,
                       note: Annotated[str | None, typer.Option()] = None) -> None:
    """Log a day of on-site duty."""
    with connect(get_settings()) as conn:
        _print(dispatch.record_duty(conn, post, _operator(), duty_on=_day(on, "--on"), today=_today(), person=person,
                                    note=note))


@posts_app.command("visits")
def posts_visits_command(post: Annotated[str | None, typer.Argument()] = None, reveal_personal: Reveal = False
                         ) -> None:
    """The front-line visits, newest first (JSON)."""
    with connect(get_settings()) as conn:
        _print(dispatch.visits(conn, post, reveal_personal=reveal_personal))
