"""Service health: is the database reachable, which PostGIS, how many rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from gis.db import working_srid
from gis.migrate import current_revision

COUNTED_TABLES = ("districts", "projects", "parcels", "parcel_events", "payments", "documents")


@dataclass
class Health:
    ok: bool
    database: str
    postgis: str | None = None
    schema_revision: str | None = None
    srid: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def check(engine: Engine) -> Health:
    try:
        with engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
            revision = current_revision(conn)
            if revision is None:
                return Health(ok=False, database="reachable", postgis=postgis, error="schema not migrated")
            counts = {
                t: conn.execute(text("SELECT count(*) FROM " + t)).scalar_one()  # names from the constant above
                for t in COUNTED_TABLES
            }
            srid = working_srid(conn)
            return Health(ok=True, database="reachable", postgis=postgis, schema_revision=revision,
                          srid=srid, counts=counts)
    except SQLAlchemyError as exc:
        return Health(ok=False, database="unreachable", error=type(exc.orig or exc).__name__)
