"""GET /health: 200 when the database answers and the schema is there, 503 otherwise."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from api.deps import get_engine
from gis import health

router = APIRouter(tags=["health"])


@router.get("/health")
def get_health(engine: Annotated[Engine, Depends(get_engine)]) -> JSONResponse:
    result = health.check(engine)
    return JSONResponse(result.as_dict(), status_code=200 if result.ok else 503)
