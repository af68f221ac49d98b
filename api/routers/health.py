"""GET /health: 200 when the database answers and the schema is there, 503 otherwise.

It has a short path of its own, so it answers while the service is saturated: a small pool of connections
(``gis.db.get_health_engine``) and a thread or two (``app.state.health_capacity``) that no other route
uses, and no queue longer than a second.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gis import health

router = APIRouter(tags=["health"])


@router.get("/health")
async def get_health(request: Request) -> JSONResponse:
    state = request.app.state
    result = await state.health_capacity.run(health.check, state.health_engine)
    return JSONResponse(result.as_dict(), status_code=200 if result.ok else 503)
