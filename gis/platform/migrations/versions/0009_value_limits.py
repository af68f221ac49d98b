"""Every field's bounds kept by the database too: one CHECK constraint per bounded column.

Revision ID: 0009
Revises: 0008

The bounds are declared once, on the columns of ``gis.domain.schema`` (``info["limits"]``, see
``gis.domain.limits``): the
API's models, the importer's row checks and these constraints read the same declaration, so an import can no
longer store an owner name PATCH would refuse (a 10 MB one was), nor a payment dated 0001-01-01. Each
constraint is named ``<table>_<column>_limits``; changing a bound needs a new migration replacing it.
Whether a day is after today depends on the city's calendar, which the database does not know: the service
checks that, the database keeps the fixed range (1980-01-01 to 2100-12-31).

The constraints they supersede (a lower bound only, or the same bound under another name) are dropped: each
bound is kept once. Existing rows are validated as the constraints are added: a row out of bounds stops the
migration, naming the
constraint, rather than leaving data the service would refuse to save again.
"""

from alembic import op

from gis.domain.limits import check_constraints
from gis.domain.schema import metadata

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The bounds do not depend on the working CRS; metadata needs one to build its geometry columns.
_ANY_SRID = 4326
# The tables that existed when this migration was written: later tables' bounds are their own migrations' CHECKs.
TABLES = ("parcels", "payments", "projects", "project_revisions", "documents")
# (table, constraint, its CHECK as migrations 0001 and 0006 wrote it): now within a <table>_<column>_limits one.
SUPERSEDED = (
    ("parcels", "parcels_households_check", "households >= 0"),
    ("parcels", "parcels_floor_area_m2_check", "floor_area_m2 >= 0"),
    ("parcels", "parcels_land_area_mu_check", "land_area_mu >= 0"),
    ("payments", "payments_amount_yuan_check", "amount_yuan > 0"),
    ("projects", "projects_corridor_width_m_check", "corridor_width_m > 0"),
    ("projects", "projects_width_range", "corridor_width_m <= 2000"),
    ("project_revisions", "project_revisions_corridor_width_m_check",
     "corridor_width_m > 0 AND corridor_width_m <= 2000"),
    ("project_revisions", "project_revisions_note_check", "length(note) <= 2000"),
)


def _constraints() -> list[tuple[str, str, str]]:
    return [c for c in check_constraints(metadata(_ANY_SRID)) if c[0] in TABLES]


def upgrade() -> None:
    for table, name, _expression in SUPERSEDED:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for table, name, expression in _constraints():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({expression})")


def downgrade() -> None:
    for table, name, _expression in _constraints():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
    for table, name, expression in SUPERSEDED:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({expression})")
