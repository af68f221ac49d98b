"""Uploaded files on disk for the length of a request.

The upload's own name stays out of the path and the logs: planners name files after people
(``黄辉霞_341881200012042564.gpkg``). Only its last suffix is kept, which tells the format; a name such as ``..``
or one with odd characters in its suffix then cannot reach outside the temporary folder or break the path.
The name itself, shown back in reports, must be one a file system could hold: at most 255 bytes, no NUL.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

from gis.errors import InvalidInput

CHUNK = 1024 * 1024
MAX_NAME_BYTES = 255  # what ext4, NTFS and APFS allow
_SUFFIX = re.compile(r"^\.[a-z0-9]{1,10}$")


def upload_name(upload: UploadFile, default: str = "upload") -> str:
    """The name the client gave the file, checked: InvalidInput (``file``) for one over 255 bytes or with a NUL."""
    name = upload.filename or default
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidInput(f"the file name is longer than {MAX_NAME_BYTES} bytes: rename the file", "file")
    if "\x00" in name:
        raise InvalidInput("the file name contains a NUL (0x00) character", "file")
    return name


def _local_path(folder: Path, upload: UploadFile) -> Path:
    suffix = Path(upload_name(upload).replace("\\", "/")).suffix.lower()
    return folder / ("upload" + (suffix if _SUFFIX.match(suffix) else ""))


def _copy(upload: UploadFile, path: Path) -> None:
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, CHUNK)


@contextmanager
def upload_on_disk(upload: UploadFile) -> Iterator[Path]:
    """The upload as ``upload<suffix>`` in a temporary folder, removed afterwards (for ``def`` handlers; the
    body's size is capped by ``api.limits.BodyLimit`` already)."""
    folder = Path(tempfile.mkdtemp(prefix="pb-upload-"))
    try:
        path = _local_path(folder, upload)
        _copy(upload, path)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def saved_upload(upload: UploadFile) -> AsyncIterator[Path]:
    """``upload_on_disk`` for ``async def`` handlers: the copy runs in the thread pool."""
    folder = Path(tempfile.mkdtemp(prefix="pb-upload-"))
    try:
        path = _local_path(folder, upload)
        await run_in_threadpool(_copy, upload, path)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
