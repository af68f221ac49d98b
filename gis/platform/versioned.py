"""Answers kept by the data version of what they draw: the versions' read, their ETag and a bounded LRU.

Tiles and blocker lists are asked again and again (a map panned back and forth, the command centre's screens
refreshing the same project) while their data changes a few times an hour, each time somewhere else. Every
statement that writes parcels, projects or districts raises that table's counter (``tile_versions``) and logs the
new version with the extent of the rows it touched, before and after (``tile_edits``, statement triggers of
migration 0020, in the writer's own transaction; imports' COPY fires them too). The version of a region is, per
table, the highest logged version whose extent meets the region's box, or the table's base version if none does:
one small query on the log's spatial index (``region_versions``). An answer is keyed by what it answers and by the
versions of its region, so an edit makes a miss of exactly the answers that could show what it touched, from its
commit on; nothing stale is served and nothing needs dropping (old keys age out of the LRU). The same key makes
the ETag.

The versions are read before the answer is built: a change committed between the two is in the answer but not in
its key, which only costs one more build later; never the other way round.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import Connection, text

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


# ``bounds_sql`` is a WITH clause giving the region's box as ``bounds.query`` (in the working CRS). Per source, in
# order: the source's counter where the answer depends on it everywhere, else the highest version of its edits
# meeting the box, else its base.
_REGION_VERSIONS_SQL = """
SELECT CASE WHEN v.source = ANY(CAST(:everywhere AS text[])) THEN v.version
            ELSE coalesce((SELECT max(e.version) FROM tile_edits e, bounds b
                           WHERE e.source = v.source AND e.extent && b.query), v.base) END
FROM unnest(CAST(:sources AS text[])) WITH ORDINALITY AS s (source, n) JOIN tile_versions v USING (source)
ORDER BY s.n
"""


# After a restore the counters are back where the backup left them, while browsers and running workers may hold
# answers tagged with versions the lost database handed out later: the same numbers would name other data. So each
# counter restarts at the clock in microseconds, past all those (a counter rises by one per writing statement), and
# becomes its table's base: every answer kept before is a miss.
_RESTART_SQL = """
WITH now AS (SELECT CAST(extract(epoch FROM clock_timestamp()) * 1000000 AS bigint) AS us)
UPDATE tile_versions SET version = greatest(version + 1, now.us), base = greatest(version + 1, now.us) FROM now
"""


def restart_versions(conn: Connection) -> None:
    """Versions past any handed out before, in the caller's transaction (after a restore: ``gis.platform.backup``)."""
    conn.execute(text(_RESTART_SQL))
    conn.execute(text("DELETE FROM tile_edits"))


def region_versions(conn: Connection, bounds_sql: str, params: dict[str, Any], sources: Sequence[str], *,
                    everywhere: Sequence[str] = ()) -> tuple[int, ...]:
    """The versions of ``sources`` (tables with the edit triggers) in the box ``bounds_sql`` gives from ``params``;
    those also in ``everywhere`` by their city-wide counter. One small query."""
    rows = conn.execute(text(bounds_sql + _REGION_VERSIONS_SQL),
                        params | {"sources": list(sources), "everywhere": list(everywhere)}).scalars().all()
    return tuple(rows)


class VersionedKey:
    """The base of a kept answer's key: a frozen dataclass of plain values holding the versions it was built from."""

    @property
    def etag(self) -> str:
        """A strong ETag: the same key, the same bytes. The repr of plain values is stable across workers and
        restarts."""
        digest = hashlib.blake2b(repr(self).encode(), digest_size=12).hexdigest()
        return f'"{digest}"'


class BytesLRU:
    """A thread-safe LRU of built answers (bytes, or None for an empty one), bounded by their total size."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, bytes | None] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> tuple[bool, bytes | None]:
        """(found, answer)."""
        with self._lock:
            if key not in self._entries:
                self.misses += 1
                return False, None
            self._entries.move_to_end(key)
            self.hits += 1
            return True, self._entries[key]

    def put(self, key: Hashable, data: bytes | None) -> None:
        """Keep ``data`` (the first answer kept for a key stays), dropping the least recently used beyond the
        bound; an answer larger than the whole bound is not kept."""
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
        with self._lock:
            return len(self._entries)
