"""Each parcel's box centre in Web Mercator, kept by PostgreSQL itself: the low-zoom tiles count parcels by it.

Revision ID: 0021
Revises: 0020

A generalised parcel tile (``gis.maps.tiles``, zooms 12 to 14) counts a parcel in the grid cell of its box's
centre in Web Mercator. Built on the fly, that is a transform per parcel per tile: a zoom-12 tile of the
1,000,000-parcel city transforms 220,000 points (about 1.7 s). A stored generated column moves the transform to
the write, once per row, by the same expression the tile used (so the cells, and the tiles' bytes, are unchanged),
and no writer can forget it. Citus distributes tables with stored generated columns.

Adding it rewrites the parcels table and its indexes under an exclusive lock: about 9 s for 1,000,000 parcels on
a 2-core machine, during which parcels can be neither read nor written (run the upgrade outside working hours).
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE parcels ADD COLUMN centre_3857 geometry(Point, 3857) GENERATED ALWAYS AS ("
               "ST_Transform(ST_SetSRID(ST_MakePoint((ST_XMin(geom) + ST_XMax(geom)) / 2, "
               "(ST_YMin(geom) + ST_YMax(geom)) / 2), ST_SRID(geom)), 3857)) STORED")


def downgrade() -> None:
    op.execute("ALTER TABLE parcels DROP COLUMN centre_3857")
