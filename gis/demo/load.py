"""Load the synthetic demo city into the database, replacing what was there."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from gis.demo.command import COMMAND_TABLES, load_command
from gis.demo.compensation import load_compensation
from gis.demo.findings import plant_findings
from gis.demo.generator import DemoCity
from gis.demo.resettlement import seed_resettlement
from gis.domain.schema import metadata
from gis.platform.bulk import copy_frame
from gis.records.footprints import record_first_revisions, refresh_projects

# Child tables first: TRUNCATE ... CASCADE would also do, but naming them keeps it explicit.
DEMO_TABLES = COMMAND_TABLES + (
    "finding_documents", "finding_events", "findings",
    "land_supply", "transition_payments", "resettlement_allocations", "resettlement_households",
    "resettlement_flats", "resettlement_buildings", "resettlement_estates",
    "parcel_survey_counts", "parcel_surveys",
    "revision_parcel_overlaps", "project_parcel_overlaps", "project_revisions", "documents", "payments",
    "parcel_events", "parcels", "compensation_standards", "targets",
    "document_requirements", "compensation_disclosures", "projects", "districts", "dataset_notes",
)

def copy_table(conn: Connection, table: str, frame: pd.DataFrame, *, srid: int,
               progress: Callable[[int], None] | None = None) -> int:
    """COPY a generated frame into ``table``: the columns the schema declares and the frame has, by name."""
    columns = tuple(c.name for c in metadata(srid).tables[table].columns if c.name in frame.columns)
    return copy_frame(conn, table, frame, columns, srid=srid, progress=progress)


def load_city(conn: Connection, city: DemoCity, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Replace every table's rows by the demo city, in the caller's transaction."""
    conn.execute(text("TRUNCATE " + ", ".join(DEMO_TABLES) + " RESTART IDENTITY"))
    srid = city.srid
    districts = city.districts.rename_geometry("geom")
    parcels = city.parcels.rename_geometry("geom")

    def copy(table: str, frame: pd.DataFrame, **kw: Any) -> int:
        return copy_table(conn, table, frame, srid=srid, **kw)

    written = {
        "districts": copy("districts", districts),
        "projects": copy("projects", city.projects),
        "compensation_standards": copy("compensation_standards", city.standards),
        "targets": copy("targets", city.targets),
        "compensation_disclosures": copy("compensation_disclosures", city.disclosures),
        "document_requirements": copy("document_requirements", city.document_requirements),
        "parcels": copy("parcels", parcels, progress=progress),
        "parcel_events": copy("parcel_events", city.events),
        "payments": copy("payments", city.payments),
        "documents": copy("documents", city.documents),
    }
    written |= load_compensation(conn, city)
    conn.execute(text("SELECT setval(pg_get_serial_sequence('parcels', 'id'), (SELECT max(id) FROM parcels))"))
    record_first_revisions(conn, "demo")
    written["project_parcel_overlaps"] = refresh_projects(conn)
    written |= load_command(conn, city)  # units, assignments and command posts need the overlaps
    seed_resettlement(conn, seed=city.seed)  # estates, households in every state, land supply, planted cases
    written["findings"] = plant_findings(conn)
    manifest = {"seed": city.seed, "parcels": len(city.parcels), "synthetic": True, "planted": city.planted}
    conn.execute(
        text("INSERT INTO dataset_notes (key, value) VALUES ('demo', CAST(:value AS jsonb))"),
        {"value": json.dumps(manifest, ensure_ascii=False, default=str)},
    )
    return written
