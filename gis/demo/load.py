"""Load the synthetic demo city into the database, replacing what was there."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import Connection, text

from gis.bulk import copy_frame
from gis.demo.generator import DemoCity
from gis.project_overlaps import record_first_revisions, refresh_projects

# Child tables first: TRUNCATE ... CASCADE would also do, but naming them keeps it explicit.
DEMO_TABLES = (
    "revision_parcel_overlaps", "project_parcel_overlaps", "project_revisions", "documents", "payments", "parcel_events", "parcels", "compensation_standards",
    "document_requirements", "projects", "districts", "dataset_notes",
)

PARCEL_COLUMNS = (
    "id", "code", "kind", "district_id", "owner_name", "owner_id_number", "owner_phone", "households",
    "floor_area_m2", "land_area_mu", "stage", "stage_since", "holdout", "legacy", "holdout_note",
    "surveyed_on", "appraised_on", "signed_on", "paid_on", "demolished_on", "cleared_on", "geom",
)
PROJECT_COLUMNS = (
    "id", "code", "name", "kind", "centerline", "corridor_width_m", "boundary", "footprint", "freeze_date", "deadline",
)
EVENT_COLUMNS = ("parcel_id", "at", "actor", "kind", "stage_from", "stage_to", "note")
PAYMENT_COLUMNS = (
    "parcel_id", "project_id", "paid_on", "amount_yuan", "item", "basis_area", "basis_unit", "rate_yuan", "note",
)
STANDARD_COLUMNS = ("district_id", "kind", "item", "unit", "rate_yuan", "valid_from", "recorded_by")
DOCUMENT_COLUMNS = ("parcel_id", "kind", "filename", "sha256", "size_bytes", "uploaded_by", "uploaded_at")


def load_city(conn: Connection, city: DemoCity, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Replace every table's rows by the demo city, in the caller's transaction."""
    conn.execute(text("TRUNCATE " + ", ".join(DEMO_TABLES) + " RESTART IDENTITY"))
    srid = city.srid
    districts = city.districts.rename_geometry("geom")
    parcels = city.parcels.rename_geometry("geom")
    written = {
        "districts": copy_frame(conn, "districts", districts, ("id", "code", "name", "geom"), srid=srid),
        "projects": copy_frame(conn, "projects", city.projects, PROJECT_COLUMNS, srid=srid),
        "compensation_standards": copy_frame(
            conn, "compensation_standards", city.standards, STANDARD_COLUMNS, srid=srid
        ),
        "document_requirements": copy_frame(
            conn, "document_requirements", city.document_requirements, ("stage", "kind"), srid=srid
        ),
        "parcels": copy_frame(conn, "parcels", parcels, PARCEL_COLUMNS, srid=srid, progress=progress),
        "parcel_events": copy_frame(conn, "parcel_events", city.events, EVENT_COLUMNS, srid=srid),
        "payments": copy_frame(conn, "payments", city.payments, PAYMENT_COLUMNS, srid=srid),
        "documents": copy_frame(conn, "documents", city.documents, DOCUMENT_COLUMNS, srid=srid),
    }
    conn.execute(text("SELECT setval(pg_get_serial_sequence('parcels', 'id'), (SELECT max(id) FROM parcels))"))
    record_first_revisions(conn, "demo")
    written["project_parcel_overlaps"] = refresh_projects(conn)
    manifest = {"seed": city.seed, "parcels": len(city.parcels), "synthetic": True, "planted": city.planted}
    conn.execute(
        text("INSERT INTO dataset_notes (key, value) VALUES ('demo', CAST(:value AS jsonb))"),
        {"value": json.dumps(manifest, ensure_ascii=False, default=str)},
    )
    return written
