"""Data versions of the tile layers: a counter per table the tiles draw, raised by every statement that writes it.

Revision ID: 0018
Revises: 0010

The tile cache (``gis.maps.tile_cache``) keys each tile by the versions of the tables its layer reads, so an
edit, an import (COPY fires statement triggers too) or an alignment change makes every tile of that layer a
miss at once, and a browser's ETag stale. One statement-level trigger per table, in the writer's own
transaction: the new version is seen exactly when the change is, and concurrent writers of one table queue on
its counter row until the first commits, so versions follow commit order. These are the schema's first
triggers: were parcels distributed on Citus, the bump would move into the writers instead.
"""

from alembic import op

revision = "0018"
down_revision = "0014"
branch_labels = None
depends_on = None

TABLES = ("parcels", "projects", "districts")

SCHEMA = """
CREATE TABLE tile_versions (
    source text PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0
);
INSERT INTO tile_versions (source) VALUES ('parcels'), ('projects'), ('districts');
CREATE FUNCTION tile_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tile_versions SET version = version + 1 WHERE source = TG_TABLE_NAME;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    for table in TABLES:
        op.execute(f"CREATE TRIGGER {table}_tile_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION tile_version_bump()")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_tile_version ON {table}")
    op.execute("DROP FUNCTION IF EXISTS tile_version_bump()")
    op.execute("DROP TABLE IF EXISTS tile_versions")
