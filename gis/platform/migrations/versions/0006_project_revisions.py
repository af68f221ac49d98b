"""Projects of a real city: alignment revisions kept, archived projects, the overlaps of past revisions.

Revision ID: 0006
Revises: 0005

A project's alignment changes (改线) while the work goes on; every revision is kept with who made it,
when and why, and the day it takes effect, so that an answer for a past day uses the footprint that
was in force then. ``projects`` keeps the current revision's geometry, so every query that only needs
today's footprint stays as it was. The overlaps of a superseded revision are moved to
``revision_parcel_overlaps`` when it is superseded. Both new tables are keyed by parcel or project
first, as the others, so they distribute on Citus (revisions as a reference table, like projects).
The service's login may add revisions but never change or remove one.
"""

import re

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = """
ALTER TABLE projects
    ADD COLUMN revision integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    ADD COLUMN archived_at timestamptz,
    ADD COLUMN archived_by text,
    ADD CONSTRAINT projects_width_range CHECK (corridor_width_m <= 2000),
    ADD CONSTRAINT projects_dates_order CHECK (deadline IS NULL OR freeze_date IS NULL OR deadline >= freeze_date);

CREATE TABLE project_revisions (
    project_id integer NOT NULL REFERENCES projects (id),
    revision integer NOT NULL CHECK (revision >= 1),
    effective_from date NOT NULL,
    centerline geometry(MultiLineString, {srid}),
    corridor_width_m double precision CHECK (corridor_width_m > 0 AND corridor_width_m <= 2000),
    boundary geometry(MultiPolygon, {srid}),
    footprint geometry(MultiPolygon, {srid}) NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    note text CHECK (length(note) <= 2000),
    PRIMARY KEY (project_id, revision),
    CHECK ((centerline IS NOT NULL AND corridor_width_m IS NOT NULL) OR boundary IS NOT NULL)
);

CREATE TABLE revision_parcel_overlaps (
    parcel_id bigint NOT NULL REFERENCES parcels (id) ON DELETE CASCADE,
    project_id integer NOT NULL,
    revision integer NOT NULL,
    overlap_m2 double precision NOT NULL,
    share double precision NOT NULL,
    PRIMARY KEY (parcel_id, project_id, revision),
    FOREIGN KEY (project_id, revision) REFERENCES project_revisions (project_id, revision)
);
CREATE INDEX revision_parcel_overlaps_revision_idx ON revision_parcel_overlaps (project_id, revision);

INSERT INTO project_revisions (project_id, revision, effective_from, centerline, corridor_width_m, boundary,
                               footprint, created_by, note)
SELECT id, 1, coalesce(freeze_date, CAST(now() AS date)), centerline, corridor_width_m, boundary, footprint,
       'migration', '迁移时的线位'
FROM projects;
"""


def _role() -> str:
    # DDL takes no bound parameters; the name comes from the validated setting and is checked again here.
    role = str(op.get_context().config.attributes.get("app_db_user", "gis_app"))
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError(f"invalid app_db_user {role!r}")
    return role


def upgrade() -> None:
    srid = int(op.get_context().config.attributes["srid"])
    op.execute(SCHEMA.format(srid=srid))
    op.execute(f"""DO $$ BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{_role()}') THEN
            REVOKE UPDATE, DELETE, TRUNCATE ON project_revisions FROM "{_role()}";
        END IF; END $$""")


def downgrade() -> None:
    op.execute("DROP TABLE revision_parcel_overlaps")
    op.execute("DROP TABLE project_revisions")
    op.execute("""ALTER TABLE projects DROP COLUMN revision, DROP COLUMN archived_at, DROP COLUMN archived_by,
        DROP CONSTRAINT IF EXISTS projects_width_range, DROP CONSTRAINT IF EXISTS projects_dates_order""")
