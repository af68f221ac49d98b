"""Inspection checks (纪检监察), one route each: ``GET /checks/<name>`` as JSON, or as a parcel list file.

Each route reads its check's parameters from the query string (``?days=31``), with the defaults and
bounds of the check's parameter dataclass, and answers as of ``as_of`` (default today in the city).
The JSON states the rule and the parameters; a file download (``?format=csv|xlsx|geojson|gpkg|...``,
through ``api.export.export_response``) names them in its file name and in ``X-Check-Params``.
Inspectors and admins only: the findings name owners.
"""

# No ``from __future__ import annotations`` here: the routes are built in a loop, and FastAPI must see
# each one's own parameter class in its annotations, not a name to look up later.

import dataclasses
import inspect
import typing
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.auth import Principal, require
from api.deps import AsOf, Conn, get_settings, get_today
from api.export import export_response
from api.pages import page_header, root_path
from gis import checks
from gis.io.export import FORMATS
from gis.maps.check_result_page import check_result_html
from gis.maps.checks_page import checks_overview_html
from gis.maps.page import district_shapes
from gis.platform.config import Settings
from gis.records.users import CHECKS_MIN_ROLE

router = APIRouter(prefix="/checks", tags=["checks"])

Inspector = Annotated[Principal, Depends(require(CHECKS_MIN_ROLE))]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Today = Annotated[date, Depends(get_today)]
FORMAT_NAMES = ("json", "html", *FORMATS)
Format = Annotated[str, Query(pattern="^(" + "|".join(FORMAT_NAMES) + ")$",
                              description="json; html (the check's page: its parcels in a table and on a map, with "
                                          "the downloads); or a parcel list file: " + ", ".join(FORMATS) + ".")]
GIS_FORMATS = frozenset(name for name, spec in FORMATS.items() if name == "geojson" or spec.driver)


def params_dependency(cls: type[checks.CheckParams]) -> Any:
    """A dependency reading ``cls``'s fields from the query string, with their defaults and bounds."""
    hints = typing.get_type_hints(cls)

    def dependency(**values: Any) -> checks.CheckParams:
        return cls(**values).validated()

    dependency.__signature__ = inspect.Signature([
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
            annotation=Annotated[hints[f.name], Query(description=f.metadata["help"], ge=f.metadata["ge"],
                                                      le=f.metadata["le"])],
        )
        for f in dataclasses.fields(cls)
    ])
    return dependency


def _params_suffix(params: checks.CheckParams) -> str:
    return "_".join(f"{k}{v:g}" for k, v in params.as_dict().items())


def _route(check: checks.Check) -> None:
    Params = Annotated[check.params, Depends(params_dependency(check.params))]

    def endpoint(request: Request, principal: Inspector, conn: Conn, settings: SettingsDep, today: Today,
                 params: Params, as_of: AsOf = None, format: Format = "json") -> Response:
        result = check.run(conn, params, as_of=as_of or today, tz=settings.city_timezone,
                           reveal_personal=principal.reveal_personal,
                           with_geometry=format in GIS_FORMATS or format == "html")
        if format == "json":
            return JSONResponse(result.as_dict())
        if format == "html":
            return HTMLResponse(check_result_html(
                result, path=f"/checks/{check.slug}", srid=settings.srid, districts=district_shapes(conn),
                header=page_header(request, current="checks"), base_url=root_path(request)))
        response = export_response(
            result.export_rows(), f"check_{check.name}_{_params_suffix(params)}", format, srid=settings.srid,
            today=result.as_of, columns=result.columns, reveal_personal=principal.reveal_personal,
            title=check.title, tz=settings.city_timezone, geometry_type=result.geometry_type,
        )
        response.headers["X-Check-Params"] = "; ".join(f"{k}={v}" for k, v in result.params.items())
        return response

    endpoint.__name__ = check.name
    fields = "; ".join(f"{f.name}: {f.metadata['help']}" for f in dataclasses.fields(check.params))
    router.add_api_route(
        f"/{check.slug}", endpoint, methods=["GET"], response_class=Response,
        summary=f"{check.title} ({check.slug})",
        description=f"{check.run.__doc__}\n\nParameters: {fields}\n\nRule in full: see gis.checks.",
    )


for _check in checks.CHECKS.values():
    _route(_check)


@router.get("", response_model=None)
def overview(request: Request, _principal: Inspector, conn: Conn, settings: SettingsDep, today: Today,
             as_of: AsOf = None,
             format: Annotated[Literal["json", "html"], Query(description="json, or html: the checks' page with "
                                                                            "links to every list.")] = "json",
             ) -> Any:
    """Every check with its default parameters, its rule and how many findings it has as of the day."""
    day = as_of or today
    out = []
    for check in checks.CHECKS.values():
        result = check.run(conn, check.params(), as_of=day, tz=settings.city_timezone)
        out.append({"check": check.name, "path": f"/checks/{check.slug}", "title": check.title, "rule": result.rule,
                    "params": result.params, "count": result.count, "summary": result.summary})
    answer = {"as_of": day.isoformat(), "checks": out}
    if format == "html":
        return HTMLResponse(checks_overview_html(answer, header=page_header(request, current="checks"),
                                                 base_url=root_path(request)))
    return answer
