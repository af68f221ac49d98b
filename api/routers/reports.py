"""Daily report, three-day summary, weekly dispatch: ``GET /reports/{daily|three-day|weekly}?date=D&format=...``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.auth import Principal, Role, require
from api.deps import Conn, Day, check_past_day, get_settings, get_today, get_tolerance
from api.pages import page_header
from gis import reports
from gis.domain.tolerance import Tolerance
from gis.io.export import FORMATS, content_disposition
from gis.platform.config import Settings

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/{kind}")
def report(
    kind: Literal["daily", "three-day", "weekly"],
    request: Request,
    principal: Annotated[Principal, Depends(require(Role.viewer))],
    conn: Conn,
    settings: Annotated[Settings, Depends(get_settings)],
    tolerance: Annotated[Tolerance, Depends(get_tolerance)],
    today: Annotated[date, Depends(get_today)],
    day: Annotated[Day | None, Query(alias="date", description="The report's day (YYYY-MM-DD, city time, "
                                                               "1980-01-01 to today); default today.")] = None,
    format: Annotated[Literal["html", "xlsx", "json"], Query(description="html (a page with charts and maps), "
                                                                         "xlsx or json.")] = "html",
) -> Response:
    """The report as of the end of the day, replayed from the history: the same data gives the same file.
    Owner names are masked unless the caller may see personal data. The inspection checks appear as counts
    for every role; their findings (parcels, owners, amounts) only for the roles that may read ``/checks``
    (inspectors, admins)."""
    day = check_past_day(day, today, "date") or today
    built = reports.build_report(conn, kind, day, tolerance=tolerance, tz=settings.city_timezone,
                                 reveal_personal=principal.reveal_personal, pictures=format != "json",
                                 with_findings=principal.may_read_checks)
    if format == "json":
        return JSONResponse(built.as_dict())
    if format == "xlsx":
        name = f"report_{kind}_{day.isoformat()}.xlsx"
        return Response(reports.render_xlsx(built), media_type=FORMATS["xlsx"].media_type,
                        headers={"Content-Disposition": content_disposition(name)})
    return HTMLResponse(reports.render_html(built, page_header(request, current="reports")))
