"""Bulk loading: frames streamed with COPY as CSV in chunks, never inserted row by row; and the
indexes and foreign keys of tables that are about to grow a lot set aside and built again at once.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import geopandas as gpd
import pandas as pd
import shapely
from psycopg import sql
from sqlalchemy import Connection, text

CHUNK_ROWS = 50_000


def _as_csv_frame(frame: pd.DataFrame, columns: Sequence[str], srid: int) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for col in columns:
        values = frame[col]
        if isinstance(values, gpd.GeoSeries) or (len(values) and isinstance(values.iloc[0], shapely.Geometry)):
            geoms = shapely.set_srid(values.to_numpy(dtype=object), srid)
            out[col] = shapely.to_wkb(geoms, hex=True, include_srid=True)
        else:
            out[col] = values
    return out


def copy_frame(
    conn: Connection,
    table: str,
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    srid: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """COPY ``columns`` of ``frame`` into ``table`` on the connection's transaction; returns rows written.

    Geometry columns travel as hex EWKB; None/NaN become NULL.
    """
    raw = conn.connection.driver_connection
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    written = 0
    with raw.cursor() as cur, cur.copy(statement) as copy:
        for start in range(0, len(frame), CHUNK_ROWS):
            chunk = _as_csv_frame(frame.iloc[start : start + CHUNK_ROWS], columns, srid)
            buf = io.StringIO()
            chunk.to_csv(buf, header=False, index=False)
            copy.write(buf.getvalue())
            written += len(chunk)
            if progress:
                progress(len(chunk))
    return written


# What a bulk insert would otherwise keep up row by row: the foreign keys of the tables, their unique
# and exclusion constraints, and their other indexes. Kept: primary keys, check and not-null
# constraints, and any index another table's foreign key refers to. Each item is the statement that
# drops it and the one that makes it again, both written by PostgreSQL from pg_catalog
# (pg_get_constraintdef / pg_get_indexdef), so the migrations stay the only place they are defined.
_DEFERRABLE_SQL = """
SELECT 1 AS step, format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname) AS drop_sql,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid)) AS create_sql
FROM pg_constraint c
WHERE c.conrelid = ANY(CAST(:tables AS regclass[])) AND c.contype = 'f'
UNION ALL
SELECT 2, format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid))
FROM pg_constraint c
WHERE c.conrelid = ANY(CAST(:tables AS regclass[])) AND c.contype IN ('u', 'x')
  AND NOT EXISTS (SELECT FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)
UNION ALL
SELECT 3, format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = ANY(CAST(:tables AS regclass[])) AND NOT i.indisprimary
  AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""

# Does the login own every table that DDL touches: the tables, and those their foreign keys refer to?
_OWNS_ALL_SQL = """
SELECT bool_and(pg_has_role(current_user, t.relowner, 'USAGE'))
FROM pg_class t
WHERE t.oid = ANY(CAST(:tables AS regclass[]))
   OR t.oid IN (SELECT confrelid FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(CAST(:tables AS regclass[])))
"""

BUILD_MEMORY = "512MB"  # maintenance_work_mem for the index builds, when the server's is lower


def may_defer_indexes(conn: Connection, tables: Sequence[str]) -> bool:
    """Whether this login may set aside and rebuild the indexes and keys of ``tables``: it must own them
    (and the tables their foreign keys refer to). The service's own login owns nothing, so never there."""
    return bool(conn.execute(text(_OWNS_ALL_SQL), {"tables": list(tables)}).scalar())


@contextmanager
def deferred_indexes(conn: Connection, tables: Sequence[str]) -> Iterator[None]:
    """Within the caller's transaction: drop the foreign keys, unique constraints and secondary indexes
    of ``tables``, run the body, then make each again as it was (indexes built by one sort each, each
    foreign key checked by one join instead of once per row).

    For inserts that are large next to the table (a million parcels with their history: about three
    times faster than keeping five indexes and two foreign keys up row by row). DDL is
    transactional, so if the body or a rebuild fails (a duplicate, a dangling key) the caller's rollback
    restores everything as it was. The DDL holds ACCESS EXCLUSIVE locks on ``tables`` and on the tables
    their foreign keys refer to until the transaction ends: readers of those tables wait for it. Plain
    DDL, no triggers: the same works on Citus. Needs a login that owns the tables (may_defer_indexes).
    """
    items = conn.execute(text(_DEFERRABLE_SQL + " ORDER BY 1, 2"), {"tables": list(tables)}).all()
    # Generous memory for the index builds (this transaction only), unless the server already has more.
    conn.execute(text("""
        SELECT set_config('maintenance_work_mem', :memory, true)
        WHERE (SELECT setting::bigint * 1024 FROM pg_settings WHERE name = 'maintenance_work_mem')
              < pg_size_bytes(:memory)
    """), {"memory": BUILD_MEMORY})
    raw = conn.connection.driver_connection  # catalog-written DDL, run as written (no parameters)
    for item in items:
        raw.execute(item.drop_sql)
    yield
    # Indexes and unique constraints first, so that each foreign key is checked with its indexes there.
    for item in sorted(items, key=lambda i: -i.step):
        raw.execute(item.create_sql)
