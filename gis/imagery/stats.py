"""Zonal statistics per parcel: each parcel, in the raster's CRS, masks only its own window of pixels.

A pixel belongs to a parcel when its centre lies inside it (GDAL's rasterisation
rule, as ``rasterio.mask`` applies it); nodata pixels are left out. Only the
parcel's bounding window is read, so a parcel list costs what its parcels cover,
not what the raster covers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.features import geometry_mask, shapes
from rasterio.windows import Window
from shapely.geometry import shape
from sqlalchemy import Connection, text

from gis.imagery.layers import ImageryLayer, get_layer, open_layer, transform_geom, working_crs
from gis.io.export import Column
from gis.platform.db import working_srid
from gis.platform.errors import InvalidInput, PayloadTooLarge

MAX_PARCELS = 20_000
EXPORT_COLUMNS: tuple[Column, ...] = (
    Column("code", "地块编号", width=16),
    Column("area_m2", "图形面积(㎡)", "m2", total=True),
    Column("pixel_count", "像元数", "int", shp="pixels"),
    Column("mean", "均值", "float"),
    Column("min", "最小值", "float"),
    Column("max", "最大值", "float"),
    Column("share_above", "超阈值占比", "share", shp="above"),
    Column("coverage", "影像覆盖率", "share"),
)

PARCELS_SQL = """
SELECT p.id, p.code, ST_AsBinary(p.geom) AS wkb, ST_Area(p.geom) AS area_m2
FROM parcels p
WHERE p.id = ANY(:ids)
ORDER BY p.id
"""


@dataclass(frozen=True)
class ZonalStats:
    pixel_count: int  # valid pixels whose centre lies in the parcel
    mean: float | None
    min: float | None
    max: float | None
    share_above: float | None  # of those pixels, the share above the threshold (None without a threshold)
    coverage: float  # share of the parcel's area under valid pixels (outside the raster counts as not covered)


def parcel_window(transform: Affine, width: int, height: int, bounds: Sequence[float]) -> Window | None:
    """The smallest whole-pixel window of a north-up grid holding ``bounds``; None when they miss the grid."""
    inv = ~transform
    xs, ys = zip(*(inv @ (x, y) for x in (bounds[0], bounds[2]) for y in (bounds[1], bounds[3])), strict=True)
    col0, col1 = max(math.floor(min(xs)), 0), min(math.ceil(max(xs)), width)
    row0, row1 = max(math.floor(min(ys)), 0), min(math.ceil(max(ys)), height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def cells_polygon(mask: np.ndarray, transform: Affine) -> shapely.Geometry:
    """The cells of ``mask`` (True) as one polygon in the raster's CRS."""
    return shapely.union_all([shape(g) for g, _ in shapes(mask.astype("uint8"), mask=mask, transform=transform)])


def covered_share(valid: np.ndarray, transform: Affine, geom: shapely.Geometry) -> float:
    """The share of ``geom``'s area under the ``valid`` cells: exact, the cells clipped by the polygon."""
    if not valid.any() or geom.area <= 0:
        return 0.0
    return float(shapely.intersection(cells_polygon(valid, transform), geom).area / geom.area)


def zonal_stats(
    src: rasterio.DatasetReader, geom: shapely.Geometry, *, band: int = 1, threshold: float | None = None
) -> ZonalStats:
    """Statistics of band ``band`` over ``geom`` (in the raster's CRS)."""
    window = None if geom.is_empty else parcel_window(src.transform, src.width, src.height, geom.bounds)
    if window is None:
        return ZonalStats(0, None, None, None, None, 0.0)
    data = src.read(band, window=window, masked=True)
    transform = src.window_transform(window)
    inside = geometry_mask([geom], out_shape=data.shape, transform=transform, invert=True, all_touched=False)
    valid = ~np.ma.getmaskarray(np.ma.masked_invalid(data))
    values = np.asarray(data.data[inside & valid], dtype="float64")
    coverage = covered_share(valid, transform, geom)
    if values.size == 0:
        return ZonalStats(0, None, None, None, None, coverage)
    return ZonalStats(
        pixel_count=int(values.size),
        mean=float(values.mean()),
        min=float(values.min()),
        max=float(values.max()),
        share_above=None if threshold is None else float((values > threshold).mean()),
        coverage=coverage,
    )


def default_threshold(layer: ImageryLayer, height_threshold_m: float) -> float | None:
    """Share-above needs a threshold that means something: heights above ground have a natural one."""
    return height_threshold_m if layer.kind == "hag" else None


def parcel_stats(
    conn: Connection,
    layer_id: int,
    parcel_ids: Sequence[int],
    *,
    threshold: float | None = None,
    band: int = 1,
) -> list[dict]:
    """Zonal statistics of one layer for each parcel in ``parcel_ids`` (a project's blockers, say).

    Each row: parcel_id, code, area_m2, then the ``ZonalStats`` fields. Unknown ids are refused.
    """
    layer = get_layer(conn, layer_id)
    ids = list(dict.fromkeys(int(i) for i in parcel_ids))
    if len(ids) > MAX_PARCELS:
        raise PayloadTooLarge(f"at most {MAX_PARCELS} parcels at once; got {len(ids)}")
    if not 1 <= band <= layer.band_count:
        raise InvalidInput(f"layer {layer_id} has bands 1..{layer.band_count}", where="band")
    rows = conn.execute(text(PARCELS_SQL), {"ids": ids}).all()
    missing = sorted(set(ids) - {r.id for r in rows})
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        raise InvalidInput(f"unknown parcel ids: {shown}", where="parcel_ids")
    srid = working_srid(conn)
    geoms = transform_geom(shapely.from_wkb([r.wkb for r in rows]), working_crs(srid), layer.crs)
    out = []
    with open_layer(layer) as src:
        for row, geom in zip(rows, geoms, strict=True):
            stats = zonal_stats(src, geom, band=band, threshold=threshold)
            out.append({"parcel_id": row.id, "code": row.code, "area_m2": row.area_m2, **asdict(stats)})
    return out

