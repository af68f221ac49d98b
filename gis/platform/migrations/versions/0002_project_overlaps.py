"""Kept overlaps of each project's footprint with the parcels.

Revision ID: 0002
Revises: 0001

Clipping parcels against a long corridor is where overlap time goes; computed once
per project (and again for a parcel whose geometry changes), a blockers query is a
join and a filter. Keyed by parcel first so it colocates with parcels on Citus.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE project_parcel_overlaps (
            parcel_id bigint NOT NULL REFERENCES parcels (id) ON DELETE CASCADE,
            project_id integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
            overlap_m2 double precision NOT NULL,
            share double precision NOT NULL,
            computed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (parcel_id, project_id)
        );
        CREATE INDEX project_parcel_overlaps_project_idx ON project_parcel_overlaps (project_id, overlap_m2);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE project_parcel_overlaps")
