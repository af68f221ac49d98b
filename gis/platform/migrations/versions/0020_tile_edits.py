"""Per-tile expiry: each statement that writes a table the tiles draw logs the box it wrote in (``tile_edits``).

Revision ID: 0020
Revises: 0019

With 0018 alone a tile's version was its tables' counters, so one parcel's stage change expired every cached tile
of the city. Here each writing statement also appends one row: the new value of its table's counter and the
extent (in the working CRS) of the drawn geometry of every row it touched, before and after. A tile's version is
then, for each table, the highest version whose extent meets the box its build searches
(``gis.maps.tile_cache.tile_key``): an edit changes the key of exactly the tiles that could draw it.

- One statement-level AFTER trigger per event, because PostgreSQL takes transition tables (``REFERENCING``) only on
  triggers of a single event. TRUNCATE has none: it expires every tile of its table by raising the table's base
  version (below). COPY fires the triggers too, so imports are logged like any other write; a statement that
  touched no row logs nothing.
- The version is still taken from the table's counter row in ``tile_versions``: concurrent writers of one table
  queue on that row until the first commits, so versions follow commit order, as before.
- Parcel tiles carry their district's code: a district whose code (or id) changes also logs the extent of its
  parcels, wherever they lie, not only of its own outline.
- The projects layer draws the stored footprint (a line's corridor is already buffered by its width there), so the
  footprint's extent is what is logged.
- The log stays small without losing exactness: a new row deletes the older rows of its table whose extent it
  contains, as those can no longer raise any tile's maximum; after a whole-city import one row is left.
- A tile no logged edit meets has its table's ``base`` version: the counter's value when the log began, so every
  tile's version just after the upgrade is what it was before (browsers' ETags stay valid), and a tile cached
  before the upgrade is never mistaken for a later one. An edit everywhere (TRUNCATE,
  ``gis.maps.tile_cache.expire_everywhere``) makes its version the base and empties the table's log.

On Citus (``gis.domain.distribution``) ``tile_edits`` would be a reference table like ``tile_versions``; Citus does
not run triggers with transition tables on distributed tables, so the writers of parcels would append their edit
there themselves (``SELECT tile_edit_log(...)`` in their transaction) instead; most likely the writers of projects
and districts too (docs/scaling.md). The blocker pages' keys (``gis.analysis.blockers``) read this log as well: they
rely on every statement writing parcels being logged, whichever columns it sets.
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

TABLES = ("parcels", "projects", "districts")

# {srid} is the working CRS, an integer from the settings (a type modifier, see 0001).
SCHEMA = """
ALTER TABLE tile_versions ADD COLUMN base bigint NOT NULL DEFAULT 0;
UPDATE tile_versions SET base = version;
CREATE TABLE tile_edits (
    version bigint NOT NULL,
    source text NOT NULL REFERENCES tile_versions (source),
    extent geometry(Polygon, {srid}) NOT NULL,
    PRIMARY KEY (source, version)
);
CREATE INDEX tile_edits_extent_idx ON tile_edits USING gist (extent);

-- One edit of the table ``edited`` in ``area``: the table's next version, logged, with the older edits it covers
-- removed (any box meeting one of them meets ``area``, whose version is higher). Returns the version.
CREATE FUNCTION tile_edit_log(edited text, area geometry) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    UPDATE tile_versions SET version = version + 1 WHERE source = edited RETURNING version INTO v;
    DELETE FROM tile_edits WHERE source = edited AND extent @ area;
    INSERT INTO tile_edits (version, source, extent) VALUES (v, edited, area);
    RETURN v;
END $$;

-- An edit of ``edited`` everywhere: the next version becomes the base of every tile, and no logged edit can raise
-- a tile above it any more, so the table's log is emptied. Returns the version.
CREATE FUNCTION tile_edit_everywhere(edited text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    UPDATE tile_versions SET version = version + 1, base = version + 1 WHERE source = edited RETURNING version INTO v;
    DELETE FROM tile_edits WHERE source = edited;
    RETURN v;
END $$;

-- The statement trigger: TG_ARGV[0] selects the drawn geometries the statement touched, from its transition tables
-- (old_rows, new_rows). Run with EXECUTE: a plan cached for one event would name a transition table another lacks.
CREATE FUNCTION tile_edit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    box box2d;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM tile_edit_everywhere(TG_TABLE_NAME);
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT ST_Extent(g) FROM (' || TG_ARGV[0] || ') AS drawn (g)' INTO box;
    IF box IS NOT NULL THEN
        PERFORM tile_edit_log(TG_TABLE_NAME, ST_MakeEnvelope(ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box),
                                                             {srid}));
    END IF;
    RETURN NULL;
END $$;
"""

# A district whose key or code changes redraws its parcels (they carry its code), wherever they lie.
_RECODED_PARCELS = ("SELECT p.geom FROM parcels p WHERE p.district_id IN (SELECT o.id FROM old_rows o WHERE NOT EXISTS "
                    "(SELECT FROM new_rows n WHERE n.id = o.id AND n.code = o.code))")
_DROPPED_PARCELS = "SELECT p.geom FROM parcels p WHERE p.district_id IN (SELECT o.id FROM old_rows o)"

# What each table's tiles draw of a statement's rows, by event: the geometry before and after, and for districts
# their parcels when the code the parcel tiles carry changes.
DRAWN: dict[str, dict[str, str]] = {
    table: {
        "INSERT": f"SELECT {geom} FROM new_rows",
        "UPDATE": f"SELECT {geom} FROM old_rows UNION ALL SELECT {geom} FROM new_rows"
                  + (f" UNION ALL {_RECODED_PARCELS}" if table == "districts" else ""),
        "DELETE": f"SELECT {geom} FROM old_rows" + (f" UNION ALL {_DROPPED_PARCELS}" if table == "districts" else ""),
    }
    for table, geom in (("parcels", "geom"), ("projects", "footprint"), ("districts", "geom"))
}
_REFERENCING = {"INSERT": "NEW TABLE AS new_rows", "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                "DELETE": "OLD TABLE AS old_rows"}


def _quoted(sql: str) -> str:
    # A trigger's arguments are string literals; what is quoted is this migration's own fixed text.
    return "'" + sql.replace("'", "''") + "'"


def upgrade() -> None:
    # The SRID is a type modifier (see 0001): an integer from the settings, never from a request.
    srid = int(op.get_context().config.attributes["srid"])
    op.execute(SCHEMA.replace("{srid}", str(srid)))
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_tile_version ON {table}")
        for event, drawn in DRAWN[table].items():
            op.execute(f"CREATE TRIGGER {table}_tile_edit_{event.lower()} AFTER {event} ON {table} "
                       f"REFERENCING {_REFERENCING[event]} FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION tile_edit({_quoted(drawn)})")
        op.execute(f"CREATE TRIGGER {table}_tile_edit_truncate AFTER TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION tile_edit()")


def downgrade() -> None:
    for table in TABLES:
        for event in (*DRAWN[table], "TRUNCATE"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_tile_edit_{event.lower()} ON {table}")
        op.execute(f"CREATE TRIGGER {table}_tile_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION tile_version_bump()")
    op.execute("DROP FUNCTION IF EXISTS tile_edit()")
    op.execute("DROP FUNCTION IF EXISTS tile_edit_log(text, geometry)")
    op.execute("DROP FUNCTION IF EXISTS tile_edit_everywhere(text)")
    op.execute("DROP TABLE IF EXISTS tile_edits")
    op.execute("ALTER TABLE tile_versions DROP COLUMN IF EXISTS base")
