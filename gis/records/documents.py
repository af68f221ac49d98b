"""The parcel archive (档案): documents stored by content hash, and the kinds each stage requires.

A file is stored once under ``<data_dir>/documents/<sha256>`` (identical uploads share it); its row
records the parcel, kind, original file name, SHA-256, size, who uploaded it and when. Which kinds
a stage requires is data (table document_requirements), changed by an admin.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.workflow import DATE_COLUMNS, check_stage
from gis.platform.config import documents_dir
from gis.platform.errors import InvalidInput, NotFound, PayloadTooLarge
from gis.records import history
from gis.records.users import Principal

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# A stage counts as reached when it is the current one or its date is set (constants only in the SQL).
_REACHED = " OR ".join(f"(r.stage = '{s}' AND p.{c} IS NOT NULL)" for s, c in DATE_COLUMNS.items())
_MISSING_SQL = f"""
SELECT DISTINCT r.kind
FROM parcels p
JOIN document_requirements r ON r.stage = p.stage OR {_REACHED}
WHERE p.id = :id
  AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.parcel_id = p.id AND d.kind = r.kind)
ORDER BY r.kind
"""


def missing_documents(conn: Connection, parcel_id: int) -> list[str]:
    """Kinds required by the current stage or any stage the parcel reached (dated), with no document."""
    return list(conn.execute(text(_MISSING_SQL), {"id": parcel_id}).scalars())


def document_requirements(conn: Connection) -> dict[str, list[str]]:
    """The document kinds each stage requires, ``{stage: [kind, ...]}``; stages requiring none are absent."""
    out: dict[str, list[str]] = {}
    for stage, kind in conn.execute(text("SELECT stage, kind FROM document_requirements ORDER BY stage, kind")):
        out.setdefault(stage, []).append(kind)
    return out


def set_document_requirements(conn: Connection, requirements: dict[str, list[str]]) -> dict[str, list[str]]:
    """Replace the whole table: ``{stage: [kind, ...]}``."""
    rows = []
    for stage, kinds in requirements.items():
        check_stage(stage, f"requirements.{stage}")
        for kind in kinds:
            _check_kind(kind, f"requirements.{stage}")
            rows.append({"stage": stage, "kind": kind})
    conn.execute(text("DELETE FROM document_requirements"))
    if rows:
        conn.execute(text("INSERT INTO document_requirements (stage, kind) VALUES (:stage, :kind)"), rows)
    return document_requirements(conn)


def _check_kind(kind: str, where: str = "kind") -> str:
    if not isinstance(kind, str) or not KIND_PATTERN.match(kind):
        raise InvalidInput("a document kind is lower-case letters, digits and _ (e.g. contract)", where)
    return kind


def safe_filename(name: str | None) -> str:
    """An uploaded file's name as stored: its base name, printable characters only, at most 255."""
    base = os.path.basename((name or "").replace("\\", "/"))
    base = "".join(c for c in base if c.isprintable()).strip()
    return base[:255] or "document"


def masked_filename(kind: str, filename: str) -> str:
    """A file name as shown to those who may not see personal data: names of scans often carry the owner's."""
    return kind + Path(filename).suffix[:10]


def list_documents(conn: Connection, parcel_id: int, *, reveal_personal: bool = False) -> list[dict[str, Any]]:
    """A parcel's documents, oldest first; file names masked (kind and suffix) unless ``reveal_personal``. NotFound
    for an unknown parcel."""
    if conn.execute(text("SELECT 1 FROM parcels WHERE id = :id"), {"id": parcel_id}).first() is None:
        raise NotFound(f"no parcel with id {parcel_id}")
    rows = conn.execute(text(
        """SELECT id, kind, filename, sha256, size_bytes, uploaded_by, uploaded_at, storage_path IS NOT NULL AS stored
           FROM documents WHERE parcel_id = :id ORDER BY uploaded_at, id"""
    ), {"id": parcel_id}).mappings()
    return [dict(r) | {"uploaded_at": r["uploaded_at"].isoformat(),
                       "filename": r["filename"] if reveal_personal else masked_filename(r["kind"], r["filename"])}
            for r in rows]


def store_file(chunks: Iterable[bytes], data_dir: Path, max_bytes: int) -> tuple[str, int, str]:
    """Write the stream to the content store; returns (sha256, size, path relative to data_dir)."""
    folder = documents_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"a document may be at most {max_bytes} bytes")
                digest.update(chunk)
                fh.write(chunk)
        if size == 0:
            raise InvalidInput("the file is empty", "file")
        sha = digest.hexdigest()
        os.replace(tmp, folder / sha)  # same content, same name: a repeat upload replaces identical bytes
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha, size, f"documents/{sha}"


def store_document(
    conn: Connection,
    parcel_id: int,
    *,
    kind: str,
    filename: str | None,
    chunks: Iterable[bytes],
    data_dir: Path,
    max_bytes: int,
    principal: Principal,
) -> dict[str, Any]:
    """Store an uploaded file in the archive of a parcel the caller may edit, and log it in the history."""
    district = conn.execute(text("SELECT district_id FROM parcels WHERE id = :id"), {"id": parcel_id}).scalar()
    if district is None:
        raise NotFound(f"no parcel with id {parcel_id}")
    principal.ensure_may_edit_district(district)
    _check_kind(kind)
    sha, size, rel = store_file(chunks, data_dir, max_bytes)
    row = conn.execute(
        text("""INSERT INTO documents (parcel_id, kind, filename, sha256, size_bytes, storage_path, uploaded_by)
                VALUES (:p, :kind, :filename, :sha, :size, :path, :by)
                RETURNING id, kind, filename, sha256, size_bytes, uploaded_by, uploaded_at"""),
        {"p": parcel_id, "kind": kind, "filename": safe_filename(filename), "sha": sha, "size": size, "path": rel,
         "by": principal.name},
    ).mappings().one()
    out = dict(row) | {"uploaded_at": row["uploaded_at"].isoformat(), "stored": True}
    history.record(conn, [history.event(parcel_id, principal.name, "document", changes={
        "document": {k: out[k] for k in ("id", "kind", "filename", "sha256", "size_bytes")}})])
    return out
