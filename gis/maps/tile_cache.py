"""Built tiles' keys: layer, address and the data versions of the box the tile's build searches.

The versions are those of ``gis.platform.versioned`` (edits logged with their extent by migration 0020's
triggers): an edit makes a miss of exactly the tiles that could draw the rows it touched, from its commit on;
every other cached tile, and every browser's ETag for it, stays valid. The key is read before the tile is built
(one small query on the log's spatial index), so a repeat with ``If-None-Match`` is a 304 after that query.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from gis.maps.tiles import BUFFER, EXTENT, SEARCH_BOUNDS, search_params, tile_layer, tile_size
from gis.platform.versioned import VersionedKey, region_versions

# The tables each layer's tiles read: parcels carry their district's code.
LAYER_SOURCES: dict[str, tuple[str, ...]] = {
    "parcels": ("parcels", "districts"),
    "projects": ("projects",),
    "districts": ("districts",),
}
TILE_SOURCES = tuple(dict.fromkeys(s for sources in LAYER_SOURCES.values() for s in sources))
# The key's box is the build's own search box (the tile, its buffer, and for a GCJ-02 tile the shift's offset and
# slack: SEARCH_BOUNDS with the same parameters), widened once more by the buffer's width and a metre. The build
# reads no row outside its search box (grid cells too count only the parcels found in it), so the search box alone
# would be exact; the extra width is cheap (1.6 % of the tile a side) and keeps a stale tile impossible should float
# rounding of the boxes, or a later change to the build's own margin, ever make the two differ slightly.
KEY_MARGIN_TILES = BUFFER / EXTENT
KEY_MARGIN_M = 1.0


@dataclass(frozen=True)
class TileKey(VersionedKey):
    layer: str
    z: int
    x: int
    y: int
    shift: str  # "" or the basemap datum the tile is drawn for
    versions: tuple[int, ...]


def tile_key(conn: Connection, layer: str, z: int, x: int, y: int, shift: str = "", *, srid: int) -> TileKey:
    """The tile's key with the current data versions of what it draws (one small query); the address checked
    first. ``srid`` is the working CRS the log's extents are in."""
    tile_layer(layer, z, x, y)
    sources = LAYER_SOURCES[layer]
    params = search_params(z, x, y, srid=srid, gcj02=shift == "gcj02")
    params["slack"] += KEY_MARGIN_TILES * tile_size(z) + KEY_MARGIN_M
    return TileKey(layer, z, x, y, shift, region_versions(conn, SEARCH_BOUNDS, params, sources))


def expire_everywhere(conn: Connection, source: str) -> int:
    """An edit of ``source`` (a table the tiles draw) everywhere, in the caller's transaction, as a TRUNCATE logs
    one: from its commit on, every tile drawing it is rebuilt. For what the triggers cannot see (a change of how the
    tiles are drawn, a benchmark's worst case); returns the new version."""
    if source not in TILE_SOURCES:
        raise ValueError(f"no tile source {source!r}; sources are {', '.join(TILE_SOURCES)}")
    return conn.execute(text("SELECT tile_edit_everywhere(:source)"), {"source": source}).scalar_one()
