"""Imagery layers: GeoTIFFs on disk, registered with their date, kind and footprint.

A layer is validated before anything is written: a file GDAL cannot read as a
GeoTIFF, a raster without a CRS, or one that does not reach the city's districts
is refused with ``InvalidInput``. The footprint (the raster's extent, in the
working CRS) is what selects layers for a parcel or a project; the file itself is
opened only to read pixels.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import shapely
from pyproj import Transformer
from pyproj.exceptions import CRSError, ProjError
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rio_tiler.io import Reader
from sqlalchemy import Connection, text

from gis.platform.db import working_srid
from gis.platform.errors import InvalidInput, NotFound

KINDS = {
    "orthophoto": "正射影像",
    "dsm": "数字表面模型",
    "hag": "地表以上高度",
    "classification": "地物分类",
}
HEIGHT_KINDS = ("hag", "dsm")
# Edges of the footprint are densified before reprojection so that curved
# transformations (UTM to Gauss-Krüger, say) keep the footprint faithful.
FOOTPRINT_EDGE_POINTS = 16
# Value ranges for rendering are taken from a decimated read, never the full raster.
RANGE_SAMPLE_PX = 1024
RANGE_PERCENTILES = (1.0, 99.0)

_COLUMNS = """
    l.id, l.name, l.kind, l.acquired_on, l.path, l.crs, l.width, l.height, l.band_count, l.dtype, l.nodata,
    l.resolution, l.value_range, l.is_cog, l.size_bytes, l.min_zoom, l.max_zoom, l.attribution, l.registered_at,
    ST_XMin(b.box) AS west, ST_YMin(b.box) AS south, ST_XMax(b.box) AS east, ST_YMax(b.box) AS north
"""
_FROM = "FROM imagery_layers l CROSS JOIN LATERAL (SELECT Box2D(ST_Transform(l.footprint, 4326)) AS box) b"
SELECT_LAYERS_SQL = f"SELECT {_COLUMNS} {_FROM}"
INSERT_LAYER_SQL = """
INSERT INTO imagery_layers (name, kind, acquired_on, path, crs, width, height, band_count, dtype, nodata,
    resolution, value_range, is_cog, size_bytes, min_zoom, max_zoom, attribution, footprint)
VALUES (:name, :kind, :acquired_on, :path, :crs, :width, :height, :band_count, :dtype, :nodata,
    :resolution, :value_range, :is_cog, :size_bytes, :min_zoom, :max_zoom, :attribution,
    ST_Multi(ST_GeomFromWKB(:footprint, :srid)))
RETURNING id
"""
OVERLAPS_DISTRICTS_SQL = """
SELECT EXISTS (SELECT 1 FROM districts d WHERE d.geom && ST_GeomFromWKB(:footprint, :srid)
               AND ST_Intersects(d.geom, ST_GeomFromWKB(:footprint, :srid)))
"""


@dataclass(frozen=True)
class ImageryLayer:
    id: int
    name: str
    kind: str
    acquired_on: date
    path: str
    crs: str
    width: int
    height: int
    band_count: int
    dtype: str
    nodata: float | None
    resolution: tuple[float, float]
    value_range: tuple[float, float] | None
    is_cog: bool
    size_bytes: int
    min_zoom: int
    max_zoom: int
    attribution: str | None
    registered_at: datetime
    bounds: tuple[float, float, float, float]  # west, south, east, north in EPSG:4326

    @property
    def label(self) -> str:
        """The people-facing name: kind and date in Chinese, then the layer's own name."""
        return f"{KINDS[self.kind]} {self.acquired_on.isoformat()}（{self.name}）"

    @property
    def tile_url_template(self) -> str:
        return f"/imagery/{self.id}/tiles/{{z}}/{{x}}/{{y}}.png"

    def as_dict(self) -> dict:
        out = asdict(self)
        out.update(
            acquired_on=self.acquired_on.isoformat(),
            registered_at=self.registered_at.isoformat(),
            kind_label=KINDS[self.kind],
            label=self.label,
            tiles=self.tile_url_template,
        )
        return out


@dataclass(frozen=True)
class RasterFacts:
    """What registration learns by opening a file: everything but the database's part."""

    path: Path
    crs: str
    width: int
    height: int
    band_count: int
    dtype: str
    nodata: float | None
    resolution: tuple[float, float]
    value_range: tuple[float, float] | None
    is_cog: bool
    size_bytes: int
    min_zoom: int
    max_zoom: int
    outline: shapely.Polygon  # the raster's extent in its own CRS


def crs_string(crs: rasterio.crs.CRS) -> str:
    """``EPSG:n`` when the CRS is exactly an EPSG code, else its WKT: a string pyproj and GDAL both read."""
    epsg = crs.to_epsg(confidence_threshold=100)
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


@lru_cache(maxsize=128)
def _transformer(src: str, dst: str, _thread: int) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def transform_geom(geom: shapely.Geometry, src: str, dst: str) -> shapely.Geometry:
    """``geom`` from CRS ``src`` to ``dst`` (strings pyproj reads), x/y order whatever the axis order."""
    if src == dst:
        return geom
    # A pyproj Transformer is not to be shared between threads (the API renders in a thread pool).
    t = _transformer(src, dst, threading.get_ident())
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1], errcheck=True)))


def working_crs(srid: int) -> str:
    """The working SRID as a CRS string for rasterio (``EPSG:<srid>``)."""
    return f"EPSG:{srid}"


def inspect_raster(path: Path | str, kind: str) -> RasterFacts:
    """Open ``path`` and check it can be a layer of ``kind``; raises ``InvalidInput`` saying why not."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown imagery kind {kind!r}; one of {', '.join(KINDS)}", where="kind")
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", where="file")
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise InvalidInput(f"{path.name} is not a raster GDAL can read ({exc})", where="file") from exc
    with src:
        if src.driver != "GTiff":
            raise InvalidInput(
                f"{path.name} is a {src.driver} raster, not a GeoTIFF; convert it with `gis imagery cog`", where="file"
            )
        if src.crs is None:
            raise InvalidInput(
                f"{path.name} has no coordinate reference system (CRS); set one (gdal_edit.py -a_srs) first",
                where="file",
            )
        t = src.transform
        if t.b != 0 or t.d != 0:
            raise InvalidInput(f"{path.name} has a rotated grid; warp it north-up (gdalwarp) first", where="file")
        if kind == "orthophoto" and src.count not in (1, 3, 4):
            raise InvalidInput(f"an orthophoto has 1, 3 or 4 bands; {path.name} has {src.count}", where="file")
        if kind == "classification" and not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
            raise InvalidInput(f"a classification holds integer class codes; {path.name} is {src.dtypes[0]}", "file")
        crs = crs_string(src.crs)
        w, s, e, n = src.bounds
        outline = shapely.box(w, s, e, n)
        value_range = None if kind == "classification" else _value_range(src, kind)
        with Reader(None, dataset=src) as reader:  # the native zoom range, as the tiles will be cut
            min_zoom, max_zoom = reader.minzoom, reader.maxzoom
        return RasterFacts(
            path=path,
            crs=crs,
            width=src.width,
            height=src.height,
            band_count=src.count,
            dtype=src.dtypes[0],
            nodata=None if src.nodata is None or np.isnan(src.nodata) else float(src.nodata),
            resolution=(abs(t.a), abs(t.e)),
            value_range=value_range,
            is_cog=src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG",
            size_bytes=path.stat().st_size,
            min_zoom=int(min_zoom),
            max_zoom=int(max_zoom),
            outline=outline,
        )


def _value_range(src: rasterio.DatasetReader, kind: str) -> tuple[float, float]:
    indexes = [1, 2, 3] if kind == "orthophoto" and src.count >= 3 else [1]
    scale = max(src.width, src.height) / RANGE_SAMPLE_PX
    shape = (len(indexes), max(1, round(src.height / max(scale, 1))), max(1, round(src.width / max(scale, 1))))
    data = src.read(indexes, out_shape=shape, masked=True, resampling=Resampling.nearest)
    values = np.ma.masked_invalid(data).compressed()
    if values.size == 0:
        raise InvalidInput(f"{Path(src.name).name} holds no valid pixel (all nodata)", where="file")
    lo, hi = np.percentile(values, RANGE_PERCENTILES)
    return float(lo), float(hi)


def footprint_in(facts: RasterFacts, srid: int) -> shapely.MultiPolygon:
    """The raster's extent in EPSG:``srid``, edges densified so a curved reprojection stays faithful."""
    w, s, e, n = facts.outline.bounds
    step = max(e - w, n - s) / FOOTPRINT_EDGE_POINTS
    try:
        geom = transform_geom(shapely.segmentize(facts.outline, step), facts.crs, working_crs(srid))
    except (CRSError, ProjError) as exc:
        message = f"{facts.path.name}: its extent cannot be transformed to EPSG:{srid} ({exc})"
        raise InvalidInput(message, where="file") from exc
    if geom.is_empty or not geom.is_valid or not np.isfinite(geom.bounds).all():
        raise InvalidInput(f"{facts.path.name}: its extent has no valid shape in EPSG:{srid}", where="file")
    return shapely.MultiPolygon([geom])


def register_layer(
    conn: Connection,
    path: Path | str,
    *,
    acquired_on: date,
    kind: str,
    name: str | None = None,
    attribution: str | None = None,
) -> ImageryLayer:
    """Validate ``path`` and register it as a layer; nothing is written when it is refused."""
    facts = inspect_raster(path, kind)
    existing = conn.execute(text("SELECT id FROM imagery_layers WHERE path = :p"), {"p": str(facts.path)}).scalar()
    if existing is not None:
        raise InvalidInput(f"{facts.path} is already registered as imagery layer {existing}", where="file")
    srid = working_srid(conn)
    footprint = footprint_in(facts, srid)
    wkb = shapely.to_wkb(footprint)
    if not conn.execute(text(OVERLAPS_DISTRICTS_SQL), {"footprint": wkb, "srid": srid}).scalar_one():
        w, s, e, n = transform_geom(footprint, working_crs(srid), "EPSG:4326").bounds
        raise InvalidInput(
            f"{facts.path.name} does not overlap the city's districts (it covers lon {w:.5f}..{e:.5f},"
            f" lat {s:.5f}..{n:.5f})",
            where="file",
        )
    layer_id = conn.execute(
        text(INSERT_LAYER_SQL),
        {
            "name": name or facts.path.stem,
            "kind": kind,
            "acquired_on": acquired_on,
            "path": str(facts.path),
            "crs": facts.crs,
            "width": facts.width,
            "height": facts.height,
            "band_count": facts.band_count,
            "dtype": facts.dtype,
            "nodata": facts.nodata,
            "resolution": list(facts.resolution),
            "value_range": list(facts.value_range) if facts.value_range else None,
            "is_cog": facts.is_cog,
            "size_bytes": facts.size_bytes,
            "min_zoom": facts.min_zoom,
            "max_zoom": facts.max_zoom,
            "attribution": attribution,
            "footprint": wkb,
            "srid": srid,
        },
    ).scalar_one()
    return get_layer(conn, layer_id)


def _layer(row) -> ImageryLayer:  # noqa: ANN001 - a SQLAlchemy Row
    m = row._mapping
    return ImageryLayer(
        **{k: m[k] for k in ImageryLayer.__dataclass_fields__ if k in m and k not in ("resolution", "value_range")},
        resolution=tuple(m["resolution"]),
        value_range=tuple(m["value_range"]) if m["value_range"] else None,
        bounds=(m["west"], m["south"], m["east"], m["north"]),
    )


def get_layer(conn: Connection, layer_id: int) -> ImageryLayer:
    """One imagery layer by id; NotFound otherwise."""
    row = conn.execute(text(SELECT_LAYERS_SQL + " WHERE l.id = :id"), {"id": layer_id}).first()
    if row is None:
        raise NotFound(f"no imagery layer {layer_id}")
    return _layer(row)


def open_layer(layer: ImageryLayer) -> rasterio.DatasetReader:
    """The layer's file, opened for reading; a layer whose file is gone is reported, not a crash."""
    try:
        return rasterio.open(layer.path)
    except RasterioIOError as exc:
        raise NotFound(f"the file of imagery layer {layer.id} ({layer.name}) cannot be read any more") from exc


def list_layers(conn: Connection, kind: str | None = None) -> list[ImageryLayer]:
    """Every registered layer (of ``kind`` when given), orthophotos first, then newest first."""
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown imagery kind {kind!r}; one of {', '.join(KINDS)}", where="kind")
    rows = conn.execute(
        text(
            SELECT_LAYERS_SQL
            + " WHERE CAST(:kind AS text) IS NULL OR l.kind = :kind"
            + " ORDER BY l.kind <> 'orthophoto', l.acquired_on DESC, l.id DESC"
        ),
        {"kind": kind},
    )
    return [_layer(r) for r in rows]


def delete_layer(conn: Connection, layer_id: int) -> None:
    """Forget a layer; its file stays on disk."""
    if conn.execute(text("DELETE FROM imagery_layers WHERE id = :id RETURNING id"), {"id": layer_id}).first() is None:
        raise NotFound(f"no imagery layer {layer_id}")


def delete_layers_under(conn: Connection, folder: Path) -> int:
    """Forget the layers whose files lie under ``folder`` (a demo re-load replaces its own layers only)."""
    prefix = str(Path(folder).resolve()) + "/"
    rows = conn.execute(
        text("DELETE FROM imagery_layers WHERE starts_with(path, :prefix) RETURNING id"), {"prefix": prefix}
    )
    return len(rows.all())


def imagery_basemaps(conn: Connection) -> list[dict]:
    """Each registered layer as a basemap choice for the maps: served by this service, so offline.

    Keys ``name``, ``url_template`` (relative to the service root) and ``attribution``;
    also ``id``, ``kind``, ``acquired_on``, ``bounds`` ([[south, west], [north, east]], Leaflet's order)
    and ``min_zoom``/``max_zoom`` (the native range; tiles are served at any zoom).
    """
    return [
        {
            "name": layer.label,
            "url_template": layer.tile_url_template,
            "attribution": layer.attribution or f"{KINDS[layer.kind]} {layer.acquired_on.isoformat()}",
            "id": layer.id,
            "kind": layer.kind,
            "acquired_on": layer.acquired_on.isoformat(),
            "bounds": [[layer.bounds[1], layer.bounds[0]], [layer.bounds[3], layer.bounds[2]]],
            "min_zoom": layer.min_zoom,
            "max_zoom": layer.max_zoom,
        }
        for layer in list_layers(conn)
    ]


def to_cog(src_path: Path | str, dst_path: Path | str, *, kind: str | None = None) -> Path:
    """Write ``src_path`` as a Cloud-Optimized GeoTIFF with internal overviews (GDAL's COG driver).

    Overviews average continuous values; a classification's class codes are never averaged.
    """
    src_path, dst_path = Path(src_path), Path(dst_path)
    if not src_path.is_file():
        raise InvalidInput(f"no such file: {src_path}", where="file")
    if dst_path.resolve() == src_path.resolve():
        raise InvalidInput("the COG must be written to a new file, not over its source", where="out")
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown imagery kind {kind!r}; one of {', '.join(KINDS)}", where="kind")
    try:
        with rasterio.open(src_path) as src:
            dst_path.parent.mkdir(parents=True, exist_ok=True)
            rasterio.shutil.copy(
                src,
                dst_path,
                driver="COG",
                COMPRESS="DEFLATE",
                PREDICTOR="YES",
                BLOCKSIZE=512,
                OVERVIEWS="IGNORE_EXISTING",
                RESAMPLING="NEAREST" if kind == "classification" else "AVERAGE",
            )
    except RasterioIOError as exc:
        raise InvalidInput(f"{src_path.name} is not a raster GDAL can read ({exc})", where="file") from exc
    return dst_path

