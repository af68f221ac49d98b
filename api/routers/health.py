"""GET /health: 200 when the database answers and the schema is there, 503 otherwise.

It has a short path of its own, so it answers while the service is saturated: a small pool of connections
(``gis.platform.db.get_health_engine``) and a thread or two (``app.state.health_capacity``) that no other route
uses, and no queue longer than a second.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gis.platform import health

router = APIRouter(tags=["health"])


@router.get("/health")
async def get_health(request: Request) -> JSONResponse:
    """No token needed. 200 with the PostGIS version, schema revision, working SRID and row counts when the
    database answers and is migrated; 503 with the reason (unreachable, not migrated, busy) otherwise. It runs on a
    small pool and threads of its own, so it answers while the service is loaded."""
    state = request.app.state
    result = await state.health_capacity.run(health.check, state.health_engine)
    return JSONResponse(result.as_dict(), status_code=200 if result.ok else 503)
