"""Pictures of a layer: Web Mercator tiles for the maps, and small chips around a parcel for inspectors.

Reprojection is on the fly (rio-tiler reads through a warped VRT), nodata and the
outside of the image are transparent, and each kind has its own style: an
orthophoto is shown as it is, heights through a colour ramp over a fixed or
measured range, a classification through its class colours.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import shapely
from PIL import Image, ImageDraw
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rio_tiler.colormap import cmap
from rio_tiler.io import Reader
from rio_tiler.models import ImageData

from gis.imagery.layers import ImageryLayer, open_layer
from gis.platform.errors import InvalidInput

TILE_SIZE = 256
MAX_ZOOM = 24
CHIP_SIZE = 256
# Heights above ground: 0 m at the bottom of the ramp, at least this at the top,
# so a flat field does not get stretched into false colour.
HAG_MIN_TOP_M = 10.0
# ESA WorldCover's class codes and colours (the defaults of GIS_IMAGERY_*_CLASSES follow them).
CLASS_COLOURS = {
    10: (0, 100, 0, 255),  # tree cover 林地
    20: (255, 187, 34, 255),  # shrubland 灌木
    30: (255, 255, 76, 255),  # grassland 草地
    40: (240, 150, 255, 255),  # cropland 耕地
    50: (250, 0, 0, 255),  # built-up 建筑
    60: (180, 180, 180, 255),  # bare 裸地
    70: (240, 240, 240, 255),  # snow and ice
    80: (0, 100, 200, 255),  # water 水体
    90: (0, 150, 160, 255),  # herbaceous wetland
    95: (0, 207, 117, 255),  # mangroves
    100: (250, 230, 160, 255),  # moss and lichen
}
OUTLINE_COLOUR = (230, 0, 0, 255)
CHIP_BACKGROUND = (225, 225, 225, 255)


@dataclass(frozen=True)
class Style:
    indexes: tuple[int, ...]
    rescale: tuple[float, float] | None
    colormap: dict | None


def style_for(layer: ImageryLayer, value_range: tuple[float, float] | None = None) -> Style:
    """How a layer of each kind is drawn; ``value_range`` overrides the layer's measured range."""
    if layer.kind == "orthophoto":
        indexes = (1, 2, 3) if layer.band_count >= 3 else (1,)
        # 8-bit imagery is already display-ready; anything deeper is stretched over its measured range.
        return Style(indexes, None if layer.dtype == "uint8" else value_range or layer.value_range, None)
    if layer.kind == "classification":
        return Style((1,), None, CLASS_COLOURS)
    lo, hi = value_range or layer.value_range or (0.0, 1.0)
    if layer.kind == "hag":
        return Style((1,), (0.0, max(hi, HAG_MIN_TOP_M)), cmap.get("viridis"))
    return Style((1,), (lo, hi if hi > lo else lo + 1.0), cmap.get("terrain"))


def _render(img: ImageData, style: Style) -> bytes:
    if style.rescale is not None:
        img = img.rescale(in_range=(style.rescale,) * img.count)
    return img.render(img_format="PNG", colormap=style.colormap)


def tile_png(layer: ImageryLayer, z: int, x: int, y: int) -> bytes | None:
    """The 256 px Web Mercator tile z/x/y of ``layer`` as PNG; None when the tile misses the image.

    Only the tile's pixels that the image reaches are read and pasted into a transparent tile:
    rio-tiler's ``Reader.tile`` would warp the whole tile's extent at the image's own resolution,
    which for a zoomed-out tile of a small sharp image takes minutes (a 100 m, 0.5 m image at
    zoom 8: about 2 minutes measured here, against milliseconds this way).
    """
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"zoom must be 0..{MAX_ZOOM}", where="z")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInput(f"tile {x}/{y} does not exist at zoom {z}", where="x,y")
    style = style_for(layer)
    with open_layer(layer) as src, Reader(None, dataset=src) as reader:
        mercator = reader.tms.rasterio_crs
        tw, _, te, tn = reader.tms.xy_bounds(x, y, z)
        iw, is_, ie, in_ = transform_bounds(src.crs, mercator, *src.bounds, densify_pts=21)
        res = (te - tw) / TILE_SIZE
        c0, c1 = max(0, math.floor((iw - tw) / res)), min(TILE_SIZE, math.ceil((ie - tw) / res))
        r0, r1 = max(0, math.floor((tn - in_) / res)), min(TILE_SIZE, math.ceil((tn - is_) / res))
        if c1 <= c0 or r1 <= r0:
            return None
        part = reader.part(
            (tw + c0 * res, tn - r1 * res, tw + c1 * res, tn - r0 * res),
            dst_crs=mercator,
            bounds_crs=mercator,
            indexes=style.indexes,
            width=c1 - c0,
            height=r1 - r0,
        )
    if np.ma.getmaskarray(part.array).all():
        return None
    array = np.ma.masked_all((part.count, TILE_SIZE, TILE_SIZE), dtype=part.array.dtype)
    array[:, r0:r1, c0:c1] = part.array
    return _render(ImageData(array, crs=mercator, bounds=(tw, tn - TILE_SIZE * res, te, tn)), style)


def chip_png(
    layer: ImageryLayer,
    bbox: tuple[float, float, float, float],
    crs: str,
    outline: shapely.Geometry,
    *,
    value_range: tuple[float, float] | None = None,
    size: int = CHIP_SIZE,
) -> bytes:
    """A small picture of ``layer`` over ``bbox`` (in ``crs``) with ``outline`` (in ``crs``) drawn on it.

    ``value_range`` overrides the layer's own, so that two epochs are drawn alike.
    """
    w, s, e, n = bbox
    scale = size / max(e - w, n - s)
    width, height = max(1, round((e - w) * scale)), max(1, round((n - s) * scale))
    style = style_for(layer, value_range)
    dst_crs = CRS.from_user_input(crs)
    with open_layer(layer) as src, Reader(None, dataset=src) as reader:
        img = reader.part(
            bbox, dst_crs=dst_crs, bounds_crs=dst_crs, indexes=style.indexes, width=width, height=height
        )
    picture = Image.open(io.BytesIO(_render(img, style))).convert("RGBA")
    canvas = Image.new("RGBA", picture.size, CHIP_BACKGROUND)
    canvas.alpha_composite(picture)
    draw = ImageDraw.Draw(canvas)
    polygons = getattr(outline, "geoms", [outline])
    for polygon in polygons:
        for ring in [polygon.exterior, *polygon.interiors]:
            xy = [((px - w) * scale, (n - py) * scale) for px, py in ring.coords]
            draw.line(xy, fill=OUTLINE_COLOUR, width=2, joint="curve")
    out = io.BytesIO()
    canvas.convert("RGB").save(out, format="PNG")
    return out.getvalue()
