"""Answers kept by the data version they were built from: the versions' read, their ETag and a bounded LRU.

Tiles and blocker lists are asked again and again (a map panned back and forth, the command centre's screens
refreshing the same project) while their data changes a few times an hour. Each is keyed by what it answers
and by the versions of the tables it reads (``tile_versions``, raised in the writer's own transaction by a
statement trigger on each: migration 0018), so from a change's commit on the old key is never asked again:
nothing stale is served and nothing needs dropping (old keys age out of the LRU). The same key makes the ETag.

The versions are read before the answer is built: a change committed between the two is in the answer but not
in its key, which only costs one more build later; never the other way round.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable

from sqlalchemy import Connection, text

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def data_versions(conn: Connection, sources: Iterable[str]) -> tuple[int, ...]:
    """The current versions of ``sources`` (tables with a version trigger), in their order: one small query."""
    sources = tuple(sources)
    found = dict(conn.execute(text("SELECT source, version FROM tile_versions WHERE source = ANY(:sources)"),
                              {"sources": list(sources)}).all())
    return tuple(found.get(s, 0) for s in sources)


def version_etag(key: Hashable) -> str:
    """A strong ETag of a key holding its versions: the same key, the same bytes. Keys are dataclasses of plain
    values, whose repr is stable across workers and restarts."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest()
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
