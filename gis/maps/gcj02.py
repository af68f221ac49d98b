"""WGS 84 → GCJ-02, the obfuscated datum of Gaode/AMap and Tencent tiles, for display only.

GCJ-02 is WGS 84 plus a smooth, position-dependent offset of a few hundred metres inside China
(none outside). The formula is the published one (Krasovsky 1940 semi-major axis and eccentricity);
there is no closed-form inverse, and none is needed: stored coordinates are never converted, only
what a map draws over a GCJ-02 basemap.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping, shape

A = 6378245.0  # Krasovsky 1940 semi-major axis, as the published formula uses
EE = 0.00669342162296594323  # its first eccentricity squared
# The offset applies inside this box only (the usual rough outline of China).
CHINA_LON = (73.66, 135.05)
CHINA_LAT = (3.86, 53.55)
_MERCATOR_R = 6378137.0


def _offset_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _offset_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 longitudes and latitudes (degrees) of WGS 84 ones; arrays or scalars; unchanged outside China."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    d_lat = _offset_lat(lon - 105.0, lat - 35.0)
    d_lon = _offset_lon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * np.pi
    magic = 1.0 - EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (A / sqrt_magic * np.cos(rad) * np.pi)
    inside = (lon > CHINA_LON[0]) & (lon < CHINA_LON[1]) & (lat > CHINA_LAT[0]) & (lat < CHINA_LAT[1])
    return np.where(inside, lon + d_lon, lon), np.where(inside, lat + d_lat, lat)


def _shift_coords(coords: np.ndarray) -> np.ndarray:
    lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def shift_geometry(geometry: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON geometry (WGS 84) with every vertex moved to GCJ-02."""
    return mapping(shapely.transform(shape(geometry), _shift_coords))


def _mercator_to_lonlat(x: float, y: float) -> tuple[float, float]:
    return math.degrees(x / _MERCATOR_R), math.degrees(2 * math.atan(math.exp(y / _MERCATOR_R)) - math.pi / 2)


def _lonlat_to_mercator(lon: float, lat: float) -> tuple[float, float]:
    return _MERCATOR_R * math.radians(lon), _MERCATOR_R * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def mercator_offset(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 offset at one point, in Web Mercator metres (dx, dy)."""
    glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    (x0, y0), (x1, y1) = _lonlat_to_mercator(lon, lat), _lonlat_to_mercator(glon, glat)
    return x1 - x0, y1 - y0


def mercator_affine(cx: float, cy: float, half: float) -> tuple[float, float, float, float, float, float]:
    """``ST_Affine`` parameters (a, b, d, e, xoff, yoff) moving Web Mercator points to their GCJ-02 positions,
    linearised around (cx, cy) over ±``half`` metres: for one vector tile at a time.

    The offset changes by a few metres per kilometre, so a plain translation is a pixel off at a tile's
    corners; with its gradient the error left is second order, centimetres at street zooms.
    """
    def offset(x: float, y: float) -> tuple[float, float]:
        return mercator_offset(*_mercator_to_lonlat(x, y))

    ox, oy = offset(cx, cy)
    (ex0, ey0), (ex1, ey1) = offset(cx - half, cy), offset(cx + half, cy)
    (nx0, ny0), (nx1, ny1) = offset(cx, cy - half), offset(cx, cy + half)
    gxx, gyx = (ex1 - ex0) / (2 * half), (ey1 - ey0) / (2 * half)  # d(offset)/dx
    gxy, gyy = (nx1 - nx0) / (2 * half), (ny1 - ny0) / (2 * half)  # d(offset)/dy
    return (1 + gxx, gxy, gyx, 1 + gyy, ox - gxx * cx - gxy * cy, oy - gyx * cx - gyy * cy)
