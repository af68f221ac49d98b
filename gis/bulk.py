"""Bulk loading with COPY: frames are streamed as CSV in chunks, never inserted row by row."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import geopandas as gpd
import pandas as pd
import shapely
from psycopg import sql
from sqlalchemy import Connection

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
