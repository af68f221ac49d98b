"""Service health: is the database reachable, which PostGIS, how many rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

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


# One statement for all the figures: under load every round trip is a wait for the server and for this
# process's other threads, and /health must answer within a second. Table names are the constants above.
_FIGURES_SQL = ("SELECT (SELECT version_num FROM alembic_version) AS revision, "
                "Find_SRID('public', 'parcels', 'geom') AS srid, "
                + ", ".join(f"(SELECT count(*) FROM {t}) AS {t}" for t in COUNTED_TABLES))


def check(engine: Engine) -> Health:
    """Reachable, PostGIS, migrated, and the rows each table holds; ``ok`` False with the reason otherwise."""
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            postgis, migrated = conn.execute(text(
                "SELECT postgis_lib_version(), to_regclass('public.alembic_version') IS NOT NULL")).one()
            figures = conn.execute(text(_FIGURES_SQL)).mappings().one_or_none() if migrated else None
            if figures is None or figures["revision"] is None:
                return Health(ok=False, database="reachable", postgis=postgis, error="schema not migrated")
            return Health(ok=True, database="reachable", postgis=postgis, schema_revision=figures["revision"],
                          srid=int(figures["srid"]), counts={t: figures[t] for t in COUNTED_TABLES})
    except SQLAlchemyError as exc:
        return Health(ok=False, database="unreachable", error=type(exc.orig or exc).__name__)
