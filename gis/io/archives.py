"""Opening uploaded zip archives without being flooded by them (zip bombs, path traversal).

A zip's central directory states every member's name and sizes. Before anything is extracted the
directory is checked against ``ZIP_LIMITS``: the member count, the total unpacked size, each member's
compression ratio, and names that would climb out of a folder (``../``, absolute paths, drive
letters). The directory can lie, so extraction (``extract_member``) counts the bytes it really
writes and stops at the member's stated size and at the total cap.

Zipped Shapefiles and KMZ files are unpacked here; XLSX workbooks (zips read by openpyxl, which
stops at each member's stated size) get the directory check before they are opened.

The limits live here, once. A deployment with larger files raises them in this module; tests lower
them to craft small bombs.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from gis.platform.errors import InvalidInput, PayloadTooLarge


@dataclass(frozen=True)
class ZipLimits:
    """What an uploaded zip may hold."""

    max_members: int = 10_000  # a Shapefile is 3-8 members; an XLSX a few dozen
    max_unpacked_bytes: int = 2 * 1024**3  # twice the largest upload (Settings.max_upload_bytes)
    # unpacked / packed bytes of one member: blank-padded .dbf tables reach 100-300, bombs 1000
    max_ratio: float = 500.0
    ratio_floor_bytes: int = 1024**2  # members smaller than this are too small to matter, whatever their ratio


ZIP_LIMITS = ZipLimits()
CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def limits() -> ZipLimits:
    """The limits in force (read at call time, so a test can lower them)."""
    return ZIP_LIMITS


def _unsafe_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in path.parts or "\0" in name


def check_directory(archive: zipfile.ZipFile, what: str = "the zip") -> list[zipfile.ZipInfo]:
    """The archive's members once its directory passes the limits, else 413 (too big) or 422 (unsafe names)."""
    lim = limits()
    members = archive.infolist()
    if len(members) > lim.max_members:
        raise PayloadTooLarge(f"{what} holds {len(members)} files; at most {lim.max_members} are accepted", "file")
    total = 0
    for m in members:
        if _unsafe_name(m.filename):
            raise InvalidInput(f"{what} holds a file with an unsafe path ({m.filename[:80]!r}): refused", "file")
        total += m.file_size
        if m.file_size > lim.ratio_floor_bytes and m.file_size > lim.max_ratio * max(m.compress_size, 1):
            raise PayloadTooLarge(
                f"{what} holds a file compressed {m.file_size / max(m.compress_size, 1):.0f} to 1 "
                f"(at most {lim.max_ratio:.0f} to 1 is accepted): refused as a zip bomb", "file")
    if total > lim.max_unpacked_bytes:
        raise PayloadTooLarge(f"{what} unpacks to {total} bytes; at most {lim.max_unpacked_bytes} are accepted", "file")
    return members


def check_zip_file(path: Path, what: str = "the file") -> None:
    """The directory check for a zip-based file opened by another library (XLSX)."""
    try:
        with zipfile.ZipFile(path) as archive:
            check_directory(archive, what)
    except zipfile.BadZipFile:
        raise InvalidInput(f"{what} is not a valid zip container", "file") from None


class Extraction:
    """Counts what extraction really writes, across members, against the total cap."""

    def __init__(self) -> None:
        self.written = 0

    def extract_member(self, archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path) -> None:
        """Write ``member`` to ``target``, refusing more bytes than it states or than the total cap allows."""
        lim = limits()
        try:
            with archive.open(member) as src, target.open("wb") as dst:
                self._copy(src, dst, member, lim)
        except zipfile.BadZipFile:  # a CRC or size that does not match what the directory stated
            raise InvalidInput(f"the zip is damaged or its directory is wrong ({Path(member.filename).name})",
                               "file") from None
        except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError):
            raise InvalidInput(f"cannot unpack {Path(member.filename).name} from the zip", "file") from None

    def _copy(self, src: BinaryIO, dst: BinaryIO, member: zipfile.ZipInfo, lim: ZipLimits) -> None:
        own = 0
        while chunk := src.read(CHUNK):
            own += len(chunk)
            self.written += len(chunk)
            if own > member.file_size:
                raise InvalidInput(f"{Path(member.filename).name} unpacks to more than the zip states: refused",
                                   "file")
            if self.written > lim.max_unpacked_bytes:
                raise PayloadTooLarge(f"the zip unpacks to more than {lim.max_unpacked_bytes} bytes", "file")
            dst.write(chunk)
