"""Resettlement (安置) and cleared land's supply: read by everyone signed in (owner names masked for roles that may
not see them), recorded by district editors (their districts' parcels) and admins; the stock set up by admins.

Writes answer only after their transaction has committed (``Conn`` commits before the response).
"""

from __future__ import annotations

import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text
from starlette.background import BackgroundTask

from api.auth import Principal, Role, require, require_any
from api.capacity import render_slot
from api.deps import AsOf, BigId, Conn, Day, IntId, get_settings, get_today
from api.export import export_response
from api.pages import page_header, root_path
from api.params import limited
from gis.analysis import resettlement as analysis
from gis.domain.limits import MAX_YUAN
from gis.io.export import content_disposition, export_filename
from gis.maps.assets import ensure_assets
from gis.maps.page import Basemap, MapContext
from gis.maps.resettlement_page import cleared_land_map_html, resettlement_page_html
from gis.platform.config import Settings
from gis.platform.errors import NotFound
from gis.records import resettlement as records

router = APIRouter(tags=["resettlement"])

Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Recorder = Annotated[Principal, Depends(require_any(Role.district_editor, Role.admin))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Today = Annotated[date, Depends(get_today)]


def _may_edit(conn: Connection, principal: Principal, parcel_id: int) -> None:
    district = conn.execute(text("SELECT district_id FROM parcels WHERE id = :id"), {"id": parcel_id}).scalar()
    if district is None:
        raise NotFound(f"no parcel {parcel_id}")
    principal.ensure_may_edit_district(int(district))


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: float(v) if isinstance(v, Decimal) else v for k, v in r.items()} for r in rows]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HouseholdIn(_Body):
    parcel_id: BigId
    choice: Literal["money", "flat"] = Field(description="money (货币补偿) or flat (产权调换).")
    agreement_on: Day | None = limited("resettlement_households", "agreement_on",
                                         description="Default: the parcel's contract day.")
    project_id: IntId | None = None
    old_value_yuan: Decimal | None = limited("resettlement_households", "old_value_yuan",
                                              description="Default: the agreement amount (house_value payments).")
    transition_from: Day | None = limited("resettlement_households", "transition_from")
    promised_months: int | None = limited("resettlement_households", "promised_months")
    monthly_fee_yuan: Decimal | None = limited("resettlement_households", "monthly_fee_yuan")
    note: str | None = limited("resettlement_households", "note")


class SelectionIn(_Body):
    flat_id: IntId
    selected_on: Day = limited("resettlement_allocations", "selected_on", ...)


class KeysIn(_Body):
    keys_on: Day = limited("resettlement_households", "keys_on", ...)


class SettlementIn(_Body):
    settled_on: Day = limited("resettlement_allocations", "settled_on", ...)
    old_value_yuan: Decimal | None = limited("resettlement_households", "old_value_yuan",
                                              description="Default: the stored value.")


class FeeIn(_Body):
    month_no: int = limited("transition_payments", "month_no", ...)
    paid_on: Day = limited("transition_payments", "paid_on", ...)
    amount_yuan: Decimal = limited("transition_payments", "amount_yuan", ...)


class SupplyIn(_Body):
    method: Literal["transfer", "allocation"] = Field(description="transfer (出让) or allocation (划拨).")
    supplied_on: Day = limited("land_supply", "supplied_on", ...)
    receiving_project: str = limited("land_supply", "receiving_project", ..., min_length=1)
    note: str | None = limited("land_supply", "note")


class EstateIn(_Body):
    code: str = limited("resettlement_estates", "code", ..., min_length=1)
    name: str = limited("resettlement_estates", "name", ..., min_length=1)
    district_id: IntId


class BuildingIn(_Body):
    name: str = limited("resettlement_buildings", "name", ..., min_length=1)
    floors: int = limited("resettlement_buildings", "floors", ...)


class FlatIn(_Body):
    number: str = limited("resettlement_flats", "number", ..., min_length=1)
    floor: int = limited("resettlement_flats", "floor", ...)
    area_m2: Decimal = limited("resettlement_flats", "area_m2", ...)
    unit_price_yuan: Decimal = limited("resettlement_flats", "unit_price_yuan", ...)


# ---------------------------------------------------------------------------------------------
# Reads


@router.get("/resettlement/households")
def get_households(principal: Viewer, conn: Conn, settings: SettingsDep, today: Today, as_of: AsOf = None,
                   project_id: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Only this project's.")]
                   = None) -> dict[str, Any]:
    """Every household with its choice, state, flat, months of transition owed and paid, as of the day."""
    day = as_of or today
    rows = analysis.households(conn, as_of=day, tz=settings.city_timezone, project_id=project_id,
                               reveal_personal=principal.reveal_personal)
    return {"as_of": day, "count": len(rows), "households": _jsonable(rows)}


@router.get("/resettlement/households/{parcel_id}/timeline")
def get_timeline(parcel_id: BigId, _principal: Viewer, conn: Conn, settings: SettingsDep, today: Today,
                 as_of: AsOf = None) -> dict[str, Any]:
    """The household's way from agreement to keys, in date order."""
    day = as_of or today
    steps = analysis.timeline(conn, parcel_id, as_of=day, tz=settings.city_timezone)
    return {"parcel_id": parcel_id, "as_of": day, "steps": _jsonable(steps)}


@router.get("/resettlement/households/{parcel_id}/difference")
def get_difference(parcel_id: BigId, _principal: Viewer, conn: Conn,
                   old_value_yuan: Annotated[Decimal | None, Query(
                       description="The old house's value; default the stored one.", ge=0, le=MAX_YUAN)] = None,
                   ) -> dict[str, Any]:
    """The price difference (差价) of the household's allocated flat; positive: the household pays."""
    return _jsonable([analysis.household_difference(conn, parcel_id, old_value_yuan)])[0]


@router.get("/resettlement/flats")
def get_flats(_principal: Viewer, conn: Conn, today: Today, as_of: AsOf = None,
              estate_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> dict[str, Any]:
    """The resettlement stock, each flat with its status (可选, 已选, 已交房) as of the day."""
    rows = analysis.flats(conn, as_of=as_of or today, estate_id=estate_id)
    return {"count": len(rows), "flats": _jsonable(rows)}


@router.get("/resettlement/totals")
def get_totals(_principal: Viewer, conn: Conn, settings: SettingsDep, today: Today, as_of: AsOf = None,
               by: Annotated[Literal["project", "district"], Query()] = "project") -> dict[str, Any]:
    """Households resettled and waiting, and months of transition owed and paid, per project or district."""
    day = as_of or today
    return {"as_of": day, "by": by, "groups": _jsonable(analysis.totals(conn, as_of=day, tz=settings.city_timezone,
                                                                         by=by))}


@router.get("/resettlement/status.xlsx", response_class=FileResponse)
def get_status_xlsx(principal: Viewer, conn: Conn, settings: SettingsDep, today: Today,
                    as_of: AsOf = None) -> FileResponse:
    """Resettlement status by project as an XLSX workbook (a totals sheet, then one sheet per project)."""
    day = as_of or today
    folder = Path(tempfile.mkdtemp(prefix="resettlement-"))
    path = folder / "status.xlsx"
    analysis.status_workbook(conn, path, as_of=day, tz=settings.city_timezone,
                             reveal_personal=principal.reveal_personal)
    name = export_filename("安置进度", None, fmt="xlsx", on=day)

    def cleanup() -> None:
        path.unlink(missing_ok=True)
        folder.rmdir()

    return FileResponse(path, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": content_disposition(name)}, background=BackgroundTask(cleanup))


@router.get("/cleared-land")
def get_cleared_land(_principal: Viewer, conn: Conn, settings: SettingsDep, today: Today,
                     as_of: AsOf = None) -> dict[str, Any]:
    """Every cleared parcel with its supply status (待供地, 已出让, 已划拨), day and receiving project."""
    day = as_of or today
    rows = analysis.cleared_land(conn, as_of=day, tz=settings.city_timezone)
    counts = {s: sum(r["supply_status"] == s for r in rows) for s in records.SUPPLY_LABELS_ZH}
    return {"as_of": day, "count": len(rows), "by_status": counts, "parcels": _jsonable(rows)}


@router.get("/cleared-land.geojson")
def get_cleared_land_geojson(_principal: Viewer, conn: Conn, settings: SettingsDep, today: Today,
                             as_of: AsOf = None) -> StreamingResponse:
    """The map layer of cleared land by supply status (GeoJSON, WGS 84); styled by ``supply_status``."""
    day = as_of or today
    rows = analysis.cleared_land(conn, as_of=day, tz=settings.city_timezone, with_geometry=True)
    return export_response(rows, "cleared_land", "geojson", srid=settings.srid, today=day,
                           columns=analysis.CLEARED_LAND_COLUMNS, title="交地后土地供应", tz=settings.city_timezone)


@router.get("/resettlement", response_class=HTMLResponse)
def resettlement_page(request: Request, _principal: Viewer, conn: Conn, settings: SettingsDep, today: Today,
                      as_of: AsOf = None) -> HTMLResponse:
    """The resettlement page (安置进度): totals per project and district, the stock, links to the workbook and map."""
    html = resettlement_page_html(conn, as_of=as_of or today, tz=settings.city_timezone,
                                  header=page_header(request, current="resettlement"), base_url=root_path(request))
    return HTMLResponse(html)


@router.get("/cleared-land/map", response_class=HTMLResponse, dependencies=[Depends(render_slot)])
def cleared_land_map(request: Request, _principal: Viewer, conn: Conn, settings: SettingsDep, today: Today,
                     as_of: AsOf = None) -> HTMLResponse:
    """The map of cleared land by supply status; land awaiting supply beyond the idle days in red."""
    ensure_assets(settings.map_assets_dir)
    ctx = MapContext(lang="zh", basemap=Basemap.from_settings(settings), base_url=root_path(request),
                     header=page_header(request, current="resettlement"))
    return HTMLResponse(cleared_land_map_html(conn, as_of=as_of or today, tz=settings.city_timezone,
                                              idle_days=settings.idle_land_days, ctx=ctx))


# ---------------------------------------------------------------------------------------------
# Writes


@router.post("/resettlement/households", status_code=201)
def post_household(principal: Recorder, conn: Conn, today: Today, body: Annotated[HouseholdIn, Body()]
                   ) -> dict[str, Any]:
    """Record a house parcel's resettlement choice and terms (once)."""
    _may_edit(conn, principal, body.parcel_id)
    stored = records.register_household(conn, records.HouseholdIn(**body.model_dump()), principal.name, today)
    return _jsonable([stored])[0]


@router.post("/resettlement/households/{parcel_id}/selection", status_code=201)
def post_selection(parcel_id: BigId, principal: Recorder, conn: Conn, today: Today,
                   body: Annotated[SelectionIn, Body()]) -> dict[str, Any]:
    """The household selects a flat, in its turn by signing order (选房顺序)."""
    _may_edit(conn, principal, parcel_id)
    return records.select_flat(conn, parcel_id, body.flat_id, body.selected_on, principal.name, today)


@router.post("/resettlement/households/{parcel_id}/keys")
def post_keys(parcel_id: BigId, principal: Recorder, conn: Conn, today: Today,
              body: Annotated[KeysIn, Body()]) -> JSONResponse:
    """The household gets its keys (交房): the transition ends."""
    _may_edit(conn, principal, parcel_id)
    records.hand_over_keys(conn, parcel_id, body.keys_on, principal.name, today)
    return JSONResponse({"parcel_id": parcel_id, "keys_on": body.keys_on.isoformat()})


@router.post("/resettlement/households/{parcel_id}/settlement")
def post_settlement(parcel_id: BigId, principal: Recorder, conn: Conn, today: Today,
                    body: Annotated[SettlementIn, Body()]) -> dict[str, Any]:
    """Settle the price difference (差价结算) of the household's flat, computed from the old house's value."""
    _may_edit(conn, principal, parcel_id)
    difference = analysis.household_difference(conn, parcel_id, body.old_value_yuan)
    records.record_settlement(conn, parcel_id, difference["difference_yuan"], body.settled_on, principal.name, today)
    return _jsonable([{**difference, "settled_on": body.settled_on}])[0]


@router.post("/resettlement/households/{parcel_id}/transition-payments", status_code=201)
def post_fee(parcel_id: BigId, principal: Recorder, conn: Conn, today: Today,
             body: Annotated[FeeIn, Body()]) -> dict[str, Any]:
    """Record one month's transitional fee (临时安置费), once per month of the transition."""
    _may_edit(conn, principal, parcel_id)
    records.pay_transition_month(conn, parcel_id, body.month_no, body.paid_on, body.amount_yuan, principal.name, today)
    return {"parcel_id": parcel_id, "month_no": body.month_no}


@router.post("/cleared-land/{parcel_id}/supply", status_code=201)
def post_supply(parcel_id: BigId, principal: Recorder, conn: Conn, today: Today,
                body: Annotated[SupplyIn, Body()]) -> dict[str, Any]:
    """Record a cleared parcel's supply: transfer (出让) or allocation (划拨), its day and the receiving project."""
    _may_edit(conn, principal, parcel_id)
    records.record_supply(conn, parcel_id, body.method, body.supplied_on, body.receiving_project, principal.name,
                          today, body.note)
    return {"parcel_id": parcel_id, "supply_status": body.method}


@router.post("/resettlement/estates", status_code=201)
def post_estate(principal: Admin, conn: Conn, body: Annotated[EstateIn, Body()]) -> dict[str, Any]:
    """Add a resettlement estate (安置小区)."""
    return {"id": records.add_estate(conn, body.code, body.name, body.district_id, principal.name)}


@router.post("/resettlement/estates/{estate_id}/buildings", status_code=201)
def post_building(estate_id: IntId, _principal: Admin, conn: Conn,
                  body: Annotated[BuildingIn, Body()]) -> dict[str, Any]:
    """Add a building to an estate."""
    return {"id": records.add_building(conn, estate_id, body.name, body.floors)}


@router.post("/resettlement/buildings/{building_id}/flats", status_code=201)
def post_flat(building_id: IntId, _principal: Admin, conn: Conn, body: Annotated[FlatIn, Body()]) -> dict[str, Any]:
    """Add a flat to a building."""
    return {"id": records.add_flat(conn, building_id, body.number, body.floor, body.area_m2, body.unit_price_yuan)}
