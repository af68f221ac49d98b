"""Uploaded files on disk for the length of a request: the one way every upload route writes one.

The upload's own name stays out of the path, and so out of the logs and the error messages that quote
paths (GDAL's): planners name files after people (``黄辉霞_341881200012042564.gpkg``). The file is saved
as ``upload<suffix>``, keeping only a last suffix that looks like a format (letters and digits, starting
with a letter: ``.gpkg``, ``.zip``); anything else (``.341881200012042564``) is dropped.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Protocol

from starlette.concurrency import run_in_threadpool

CHUNK = 1024 * 1024
_FORMAT_SUFFIX = re.compile(r"\.[a-z][a-z0-9]{0,7}")


class Upload(Protocol):
    """FastAPI's and Starlette's UploadFile alike."""

    filename: str | None
    file: object


def upload_name(filename: str | None) -> str:
    """The name an upload is saved under: ``upload`` and, when it looks like a format, its last suffix."""
    suffix = Path(filename or "").suffix.lower()
    return "upload" + (suffix if _FORMAT_SUFFIX.fullmatch(suffix) else "")


def _copy(upload: Upload, path: Path) -> None:
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, CHUNK)  # type: ignore[arg-type]


@contextmanager
def upload_path(filename: str | None) -> Iterator[Path]:
    """Where an upload goes: ``upload_name(filename)`` in a temporary folder of its own, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="pb-upload-"))
    try:
        yield folder / upload_name(filename)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def kept_upload(upload: Upload) -> Iterator[Path]:
    """The upload saved at ``upload_path`` for the duration (for plain ``def`` routes, already in the thread pool;
    the body's size is capped by ``api.limits.BodyLimit``)."""
    with upload_path(upload.filename) as path:
        _copy(upload, path)
        yield path


@asynccontextmanager
async def saved_upload(upload: Upload) -> AsyncIterator[Path]:
    """``kept_upload`` for ``async def`` routes: the copy runs in the thread pool."""
    with upload_path(upload.filename) as path:
        await run_in_threadpool(_copy, upload, path)
        yield path
