"""The FastAPI application over the gis library."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import auth, errors, strict_query
from api.capacity import Capacity
from api.limits import BodyLimit
from api.routers import (
    admin,
    checks,
    compensation,
    disclosures,
    dispatch,
    districts,
    docs,
    exports,
    findings,
    health,
    imagery,
    imports,
    labels,
    maps,
    ogc,
    overlaps,
    parcels,
    projects,
    public,
    reports,
    resettlement,
    session,
    standards,
    targets,
    tiles,
    units,
    users,
    workbench,
)
from api.security import SecurityHeaders
from gis.platform.config import Settings, get_settings
from gis.platform.db import get_app_engine, get_health_engine, get_read_engine
from gis.platform.versioned import BytesLRU

_frozen = False


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    # The objects made by the imports and the app (about 260,000) live as long as the process. Frozen out of the
    # collector's sight once, a full collection no longer walks them all while holding the event loop (0.3 s
    # each time on this machine, a stall every request and /health would wait out).
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True
    yield


# A full list of 10,000 blockers is ~4 MB of JSON: room for the demo city's projects at every role and filter.
BLOCKER_CACHE_BYTES = 32 * 1024 * 1024
HEALTH_WAIT_S = 0.5  # /health waits this long at most for one of its two threads, then says 503


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database (embedded or external) is resolved once, here."""
    settings = settings or get_settings()
    app = FastAPI(title="征收征迁 parcel-blocker", version="0.1.0", docs_url=None, redoc_url=None, lifespan=_lifespan,
                  dependencies=[Depends(strict_query.reject_unknown_query)])
    app.state.settings = settings
    app.state.engine = get_app_engine(settings)  # the service's own login, not the schema owner
    app.state.read_engine = get_read_engine(settings) or app.state.engine  # GET routes (api.deps.engine_for)
    # Capacity kept apart (api.capacity): tiles come in floods and must queue, not stall the rest;
    # /health has its own connections and threads so it answers while everything else is busy.
    app.state.tile_capacity = Capacity("tiles", settings.tile_concurrency, settings.tile_queue_timeout_s)
    app.state.tile_cache = BytesLRU()  # built tiles by data version (gis.maps.tile_cache)
    app.state.blocker_cache = BytesLRU(BLOCKER_CACHE_BYTES)  # today's blocker pages by data version
    app.state.render_capacity = Capacity("renders", settings.render_concurrency, settings.render_queue_timeout_s)
    app.state.health_engine = get_health_engine(settings)
    app.state.health_capacity = Capacity("health", 2, HEALTH_WAIT_S)
    errors.install(app)
    auth.install(app, settings.auth_cache_seconds)
    app.add_middleware(BodyLimit, json_limit=settings.max_json_body_bytes, upload_limit=settings.max_upload_bytes)
    app.add_middleware(SecurityHeaders, settings=settings)  # added last: outermost, so every response has them
    app.include_router(health.router)
    app.include_router(projects.router)
    app.include_router(overlaps.router)
    app.include_router(districts.router)
    app.include_router(imagery.router)
    app.include_router(imports.router)
    app.include_router(exports.router)  # before parcels.router: /parcels/export is not /parcels/{parcel_id}
    app.include_router(checks.router)
    app.include_router(reports.router)
    app.include_router(maps.router)
    app.include_router(tiles.router)
    app.include_router(standards.router)
    app.include_router(targets.router)
    app.include_router(units.router)
    app.include_router(dispatch.router)
    app.include_router(disclosures.router)
    app.include_router(resettlement.router)  # 安置 and cleared land's supply
    app.include_router(findings.router)
    app.include_router(compensation.router)
    app.include_router(admin.router)
    app.include_router(workbench.router)
    app.include_router(docs.router)
    app.include_router(labels.router)
    app.include_router(ogc.router)  # OGC API - Features and Tiles for GIS clients, under /ogc
    app.mount("/static/vendor", maps.vendor_files(settings), name="vendor")  # the maps' scripts, offline
    for router in (parcels.router, session.router, users.router, public.router):
        app.include_router(router)
    return app
