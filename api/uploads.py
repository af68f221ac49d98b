"""Uploaded files on disk for the length of a request: the one way every upload route writes one.

The upload's own name stays out of the path, and so out of the logs and the error messages that quote
paths (GDAL's): planners name files after people (``黄辉霞_341881200012042564.gpkg``). The file is saved
as ``upload<suffix>``, keeping only a last suffix that looks like a format (letters and digits, starting
with a letter: ``.gpkg``, ``.zip``); anything else (``.341881200012042564``, ``..``) is dropped. The client's
own name, shown back in reports, must be one a file system could hold: at most 255 bytes, no NUL.
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

from gis.platform.errors import InvalidInput

CHUNK = 1024 * 1024
MAX_NAME_BYTES = 255  # what ext4, NTFS and APFS allow
_FORMAT_SUFFIX = re.compile(r"\.[a-z][a-z0-9]{0,7}")


class Upload(Protocol):
    """FastAPI's and Starlette's UploadFile alike."""

    filename: str | None
    file: object


def upload_name(upload: Upload, default: str = "upload") -> str:
    """The name the client gave the file, checked: InvalidInput (``file``) for one over 255 bytes or with a NUL."""
    name = upload.filename or default
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidInput(f"the file name is longer than {MAX_NAME_BYTES} bytes: rename the file", "file")
    if "\x00" in name:
        raise InvalidInput("the file name contains a NUL (0x00) character", "file")
    return name


def stored_name(filename: str | None) -> str:
    """The name an upload is saved under: ``upload`` and, when it looks like a format, its last suffix."""
    suffix = Path((filename or "").replace("\\", "/")).suffix.lower()
    return "upload" + (suffix if _FORMAT_SUFFIX.fullmatch(suffix) else "")


def _copy(upload: Upload, path: Path) -> None:
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, CHUNK)  # type: ignore[arg-type]


@contextmanager
def upload_path(filename: str | None) -> Iterator[Path]:
    """Where an upload goes: ``stored_name(filename)`` in a temporary folder of its own, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="pb-upload-"))
    try:
        yield folder / stored_name(filename)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def kept_upload(upload: Upload) -> Iterator[Path]:
    """The upload saved at ``upload_path`` for the duration (for plain ``def`` routes, already in the thread pool;
    the body's size is capped by ``api.limits.BodyLimit``)."""
    with upload_path(upload_name(upload)) as path:
        _copy(upload, path)
        yield path


@asynccontextmanager
async def saved_upload(upload: Upload) -> AsyncIterator[Path]:
    """``kept_upload`` for ``async def`` routes: the copy runs in the thread pool."""
    with upload_path(upload_name(upload)) as path:
        await run_in_threadpool(_copy, upload, path)
        yield path
