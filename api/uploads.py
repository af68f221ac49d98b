"""Uploaded files on disk for the length of a request.

The upload's own name stays out of the path and the logs: planners name files after people
(``黄辉霞_341881200012042564.gpkg``). Only its last suffix is kept, which tells the format.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

CHUNK = 1024 * 1024


def _copy(upload: UploadFile, path: Path) -> None:
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, CHUNK)


@asynccontextmanager
async def saved_upload(upload: UploadFile) -> AsyncIterator[Path]:
    """The upload as ``upload<suffix>`` in a temporary folder, removed afterwards (the body's size is capped by
    ``api.limits.BodyLimit`` already)."""
    folder = Path(tempfile.mkdtemp(prefix="pb-upload-"))
    try:
        path = folder / ("upload" + Path(upload.filename or "").suffix.lower())
        await run_in_threadpool(_copy, upload, path)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
