"""Built tiles kept in memory, keyed by layer, address and the data version of what the tile itself draws.

Every statement that writes a table the tiles draw (parcels, projects, districts) raises that table's counter
(``tile_versions``) and logs, in the writer's own transaction, the new version with the extent of the rows it
touched, before and after (``tile_edits``, statement triggers of migration 0020; imports' COPY fires them too).
A tile's version is, for each table its layer reads, the highest logged version whose extent meets the box the
tile's build searches (``gis.maps.tiles.SEARCH_BOUNDS``), or the table's base version if none does: one small
query on the log's spatial index. So an edit makes a miss of exactly the tiles that could draw the rows it
touched, from its commit on; every other cached tile, and every browser's ETag for it, stays valid. Nothing
stale is ever served, and nothing needs to be dropped (old versions age out of the LRU). The same version makes
the ETag, so a browser repeating a tile with ``If-None-Match`` is answered 304 after that one query.

The versions are read before the tile is built: a change committed between the two is in the tile but not in
its key, which only costs that tile one more build later; never the other way round.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import Connection, text

from gis.maps.tiles import BUFFER, EXTENT, SEARCH_BOUNDS, search_params, tile_layer, tile_size

# The tables each layer's tiles read: parcels carry their district's code.
LAYER_SOURCES: dict[str, tuple[str, ...]] = {
    "parcels": ("parcels", "districts"),
    "projects": ("projects",),
    "districts": ("districts",),
}
TILE_SOURCES = tuple(dict.fromkeys(s for sources in LAYER_SOURCES.values() for s in sources))
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# The key's box is the build's own search box (the tile, its buffer, and for a GCJ-02 tile the shift's offset and
# slack: SEARCH_BOUNDS with the same parameters), widened once more by the buffer's width and a metre. The build
# reads no row outside its search box (grid cells too count only the parcels found in it), so the search box alone
# would be exact; the extra width is cheap (1.6 % of the tile a side) and keeps a stale tile impossible should float
# rounding of the boxes, or a later change to the build's own margin, ever make the two differ slightly.
KEY_MARGIN_TILES = BUFFER / EXTENT
KEY_MARGIN_M = 1.0
# For each table the layer reads, in order: the highest version of its edits meeting the box, else its base.
_VERSIONS_SQL = SEARCH_BOUNDS + """
SELECT coalesce((SELECT max(e.version) FROM tile_edits e, bounds b
                 WHERE e.source = v.source AND e.extent && b.query), v.base)
FROM unnest(CAST(:sources AS text[])) WITH ORDINALITY AS s (source, n) JOIN tile_versions v USING (source)
ORDER BY s.n
"""


@dataclass(frozen=True)
class TileKey:
    layer: str
    z: int
    x: int
    y: int
    shift: str  # "" or the basemap datum the tile is drawn for
    versions: tuple[int, ...]

    @property
    def etag(self) -> str:
        """A strong ETag: the same key, the same bytes."""
        digest = hashlib.blake2b(repr(self).encode(), digest_size=12).hexdigest()
        return f'"{digest}"'


def tile_key(conn: Connection, layer: str, z: int, x: int, y: int, shift: str = "", *, srid: int) -> TileKey:
    """The tile's key with the current data versions of what it draws (one small query); the address checked
    first. ``srid`` is the working CRS the log's extents are in."""
    tile_layer(layer, z, x, y)
    sources = LAYER_SOURCES[layer]
    params = search_params(z, x, y, srid=srid, gcj02=shift == "gcj02")
    params["slack"] += KEY_MARGIN_TILES * tile_size(z) + KEY_MARGIN_M
    versions = conn.execute(text(_VERSIONS_SQL), params | {"sources": list(sources)}).scalars().all()
    return TileKey(layer, z, x, y, shift, tuple(versions))


def expire_everywhere(conn: Connection, source: str) -> int:
    """An edit of ``source`` (a table the tiles draw) everywhere, in the caller's transaction, as a TRUNCATE logs
    one: from its commit on, every tile drawing it is rebuilt. For what the triggers cannot see (a change of how the
    tiles are drawn, a benchmark's worst case); returns the new version."""
    if source not in TILE_SOURCES:
        raise ValueError(f"no tile source {source!r}; sources are {', '.join(TILE_SOURCES)}")
    return conn.execute(text("SELECT tile_edit_everywhere(:source)"), {"source": source}).scalar_one()


class TileCache:
    """A thread-safe LRU of tiles (bytes, or None for an empty tile), bounded by their total size."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[TileKey, bytes | None] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: TileKey) -> tuple[bool, bytes | None]:
        """(found, tile)."""
        with self._lock:
            if key not in self._entries:
                self.misses += 1
                return False, None
            self._entries.move_to_end(key)
            self.hits += 1
            return True, self._entries[key]

    def put(self, key: TileKey, data: bytes | None) -> None:
        size = len(data or b"")
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = data
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._bytes -= len(old or b"")

    def __len__(self) -> int:
        return len(self._entries)
