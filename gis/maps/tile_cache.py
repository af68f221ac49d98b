"""Built tiles kept in memory, keyed by layer, address and the data version of what the layer draws.

A tile's version is the counters of the tables its layer reads (``tile_versions``, raised in the writer's own
transaction by a statement trigger on each: migration 0018). Every edit, import or alignment change raises
them, so from its commit on, each tile of the layers it touches is a miss: nothing stale is ever served, and
nothing needs to be dropped (old versions age out of the LRU). The same version makes the ETag, so a browser
repeating a tile with ``If-None-Match`` is answered 304 after one small query, without building it.

The versions are read before the tile is built: a change committed between the two is in the tile but not in
its key, which only costs that tile one more build later; never the other way round.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import Connection, text

from gis.maps.tiles import tile_layer

# The tables each layer's tiles read: parcels carry their district's code.
LAYER_SOURCES: dict[str, tuple[str, ...]] = {
    "parcels": ("parcels", "districts"),
    "projects": ("projects",),
    "districts": ("districts",),
}
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


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


def tile_key(conn: Connection, layer: str, z: int, x: int, y: int, shift: str = "") -> TileKey:
    """The tile's key with the current data versions (one small query); the address checked first."""
    tile_layer(layer, z, x, y)
    sources = LAYER_SOURCES[layer]
    found = dict(conn.execute(text("SELECT source, version FROM tile_versions WHERE source = ANY(:sources)"),
                              {"sources": list(sources)}).all())
    return TileKey(layer, z, x, y, shift, tuple(found.get(s, 0) for s in sources))


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
