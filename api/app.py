"""The FastAPI application over the gis library."""

from __future__ import annotations

from fastapi import FastAPI

from api import errors
from api.routers import health
from gis.config import Settings, get_settings
from gis.db import get_engine


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database (embedded or external) is resolved once, here."""
    settings = settings or get_settings()
    app = FastAPI(title="征收征迁 parcel-blocker", version="0.1.0")
    app.state.settings = settings
    app.state.engine = get_engine(settings)
    errors.install(app)
    app.include_router(health.router)
    return app
