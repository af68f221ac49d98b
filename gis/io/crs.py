"""Coordinate systems of imported files: which are accepted, guessing one, naming a likely mistake.

Accepted: WGS 84 (4326), CGCS2000 geographic (4490), Web Mercator (3857), the CGCS2000 3-degree
Gauss-Krüger zones with the zone number in the easting (4513-4533, zones 25-45) and without
(4534-4554), and the working CRS. A file that states no CRS gets one guessed from its coordinates
when that is unambiguous (degrees; a Gauss-Krüger easting whose prefix names the zone); otherwise
the caller must declare it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import CRS
from pyproj.exceptions import CRSError

from gis.domain.geometry import GAUSS_KRUGER, GEOGRAPHIC, transformer
from gis.platform.errors import InvalidInput

WEB_MERCATOR = 3857
FIRST_ZONE, LAST_ZONE = 25, 45
PREFIXED_BASE, PLAIN_BASE = 4513, 4534  # EPSG code of zone 25, with and without the zone prefix


def accepted(working_srid: int) -> set[int]:
    """The SRIDs a file may come in: WGS 84, CGCS2000 and its Gauss-Krüger zones, Web Mercator, the working CRS."""
    return GEOGRAPHIC | GAUSS_KRUGER | {WEB_MERCATOR, working_srid}


def describe(srid: int) -> str:
    """An SRID for people: zone and central meridian for the Gauss-Krüger codes, the CRS name otherwise."""
    if srid in GAUSS_KRUGER:
        prefixed = srid < PLAIN_BASE
        zone = srid - (PREFIXED_BASE if prefixed else PLAIN_BASE) + FIRST_ZONE
        return (f"EPSG:{srid} (CGCS2000 Gauss-Krüger zone {zone}, central meridian {3 * zone}°E, "
                f"{'with' if prefixed else 'without'} zone prefix)")
    names = {4326: "WGS 84", 4490: "CGCS2000", WEB_MERCATOR: "Web Mercator"}
    if srid in names:
        return f"EPSG:{srid} ({names[srid]})"
    try:
        return f"EPSG:{srid} ({CRS.from_epsg(srid).name})"
    except CRSError:
        return f"EPSG:{srid}"


def check(srid: int, working_srid: int, where: str = "crs") -> int:
    """``srid`` if a file may come in it; InvalidInput saying which CRSs are accepted otherwise."""
    if srid not in accepted(working_srid):
        raise InvalidInput(
            f"{describe(srid)} is not accepted: use 4326, 4490, 3857, a CGCS2000 Gauss-Krüger zone (4513-4554) "
            f"or the working CRS EPSG:{working_srid}",
            where,
        )
    return srid


def epsg_of(crs_text: str | None) -> int | None:
    """The EPSG code of a file's CRS definition (WKT, ESRI .prj text, 'EPSG:n'), None if it has none.

    Raises InvalidInput when the file has a CRS that matches no EPSG code.
    """
    if not crs_text:
        return None
    try:
        crs = CRS.from_user_input(crs_text)
    except CRSError as exc:
        raise InvalidInput(f"the file's CRS cannot be read: {exc}; declare it (--crs)", "crs") from None
    code = crs.to_epsg(min_confidence=70)
    if code is None:
        raise InvalidInput(f"the file's CRS ({crs.name}) matches no EPSG code; declare it (--crs)", "crs")
    return code


def guess(xy: np.ndarray) -> int | None:
    """A CRS for coordinates from a file that states none, when their values leave no doubt."""
    if len(xy) == 0:
        return None
    x, y = xy[:, 0], xy[:, 1]
    if (np.abs(x) <= 180).all() and (np.abs(y) <= 90).all():
        return 4326
    zones = np.floor(x / 1_000_000)
    if (zones == zones[0]).all() and FIRST_ZONE <= zones[0] <= LAST_ZONE and (np.abs(y) < 10_000_000).all():
        return PREFIXED_BASE + int(zones[0]) - FIRST_ZONE
    return None


def looks_like_northing_first(xy: np.ndarray, srid: int) -> bool:
    """Gauss-Krüger coordinates given survey-style, X = northing: the first column has the northings.

    In China northings are 7 digits (2,000,000-6,000,000 m) while eastings are 6 digits without the
    zone prefix and 8 with it, so the columns can be told apart.
    """
    if srid not in GAUSS_KRUGER or len(xy) == 0:
        return False
    x, y = np.median(xy[:, 0]), np.median(xy[:, 1])
    northing = 1_500_000 <= x < 7_000_000
    easting = 0 < y < 1_000_000 or 13_000_000 <= y < 46_000_000
    return northing and easting


@dataclass(frozen=True)
class Extent:
    """Where parcels may lie: the districts' bounding box in the working CRS, widened by a margin."""

    bounds: tuple[float, float, float, float]
    margin_m: float

    def distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance of each point from the districts' bounding box, 0 inside."""
        xmin, ymin, xmax, ymax = self.bounds
        dx = np.maximum.reduce([xmin - x, np.zeros_like(x), x - xmax])
        dy = np.maximum.reduce([ymin - y, np.zeros_like(y), y - ymax])
        return np.hypot(dx, dy)

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        xmin, ymin, xmax, ymax = self.bounds
        m = self.margin_m
        with np.errstate(invalid="ignore"):
            return (x >= xmin - m) & (x <= xmax + m) & (y >= ymin - m) & (y <= ymax + m)


def misplacement_hint(x: float, y: float, srid: int, working_srid: int, extent: Extent) -> str | None:
    """For a point (in ``srid``) far from the city: the reading of its coordinates that would fit, if any."""
    candidates = [(srid, False), (srid, True)] + [
        (other, swap) for other in sorted(accepted(working_srid) - {srid}) for swap in (False, True)
    ]
    for candidate, swap in candidates:
        if candidate == srid and not swap:
            continue
        cx, cy = (y, x) if swap else (x, y)
        try:
            tx, ty = transformer(candidate, working_srid).transform(cx, cy)
        except Exception:  # noqa: BLE001 - pyproj raises several types for out-of-domain input
            continue
        if not (np.isfinite(tx) and np.isfinite(ty)) or not extent.contains(np.array([tx]), np.array([ty]))[0]:
            continue
        if candidate == srid:
            axes = "latitude and longitude" if srid in GEOGRAPHIC else "x and y"
            return f"it would fit with {axes} swapped"
        if srid in GAUSS_KRUGER and candidate in GAUSS_KRUGER and not swap:
            has_prefix = x >= 1_000_000
            if has_prefix != (srid < PLAIN_BASE):
                what = "carries a zone prefix" if has_prefix else "has no zone prefix"
                return f"the easting {what}: it fits {describe(candidate)}; declare --crs {candidate}"
        swapped = " with x and y swapped" if swap else ""
        return f"it fits {describe(candidate)}{swapped}; declare --crs {candidate}"
    return None
