"""Reading the lines and polygons planners have — districts, red lines, centre lines — from their files.

The parcel importer streams millions of rows; these files hold a handful to a few thousand features,
so they are read whole (pyogrio) and brought into the working CRS here, for districts and projects alike.
Formats: whatever the parcel import reads (GeoPackage, zipped Shapefile in GBK or UTF-8, GeoJSON, KML,
FlatGeobuf) and DXF, the design institutes' CAD drawings. A DXF holds one GDAL layer whose ``Layer``
field is the CAD layer; ``cad_layer`` picks from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry.base import BaseGeometry

from gis.domain.geometry import transformer
from gis.io import crs as crs_mod
from gis.io.readers import TABLE_FORMATS, detect_format, open_source, unpacked
from gis.platform.errors import InvalidInput

LINES = "line"
POLYGONS = "polygon"
_TYPE_IDS = {LINES: (1, 5), POLYGONS: (3, 6)}  # LineString/MultiLineString, Polygon/MultiPolygon
_WORDS = {LINES: "line", POLYGONS: "polygon"}
CAD_LAYER_FIELD = "Layer"


@dataclass
class Features:
    """The features of one file of the wanted kind, in the working CRS, with their attributes."""

    geoms: np.ndarray  # shapely geometries (LineString/MultiLineString or Polygon/MultiPolygon)
    attrs: pd.DataFrame
    source_srid: int
    notes: list[str] = field(default_factory=list)
    # Each feature's position in the file (1 = first; with ``where``, among the features it keeps), as a
    # person counts them: what a message about one feature names.
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def union(self) -> BaseGeometry:
        return shapely.union_all(self.geoms)


def dxf_encoding(path: Path) -> str:
    """The text encoding of a DXF drawing's layer names and texts.

    The header's $DWGCODEPAGE is often wrong (ANSI_1252 written by tools that store UTF-8), so the bytes
    decide: strict UTF-8 when they decode as such, else GBK (CP936), what Chinese CAD software writes.
    """
    try:
        Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return "CP936"
    return "UTF-8"


def file_layers(path: Path) -> list[dict[str, Any]]:
    """What a planner can choose from before reading a file: each layer (in a DXF drawing, each CAD layer) with
    how many lines and polygons it holds, closed CAD polylines counted as polygons."""
    with unpacked(Path(path)) as inner:
        fmt = detect_format(inner)
        if inner.suffix.lower() in TABLE_FORMATS:
            raise InvalidInput(f"{Path(path).name} is a table, not a map file", "file")
        try:
            if fmt == "dxf":
                pyogrio.set_gdal_config_options({"DXF_ENCODING": dxf_encoding(inner)})
                frame = pyogrio.read_dataframe(str(inner), columns=[CAD_LAYER_FIELD])
                return _layer_counts(frame[CAD_LAYER_FIELD].fillna("").astype(str).to_numpy(),
                                     np.asarray(frame.geometry.values, dtype=object), cad=True)
            names, geoms = [], []
            for name, _gtype in pyogrio.list_layers(str(inner)):
                frame = pyogrio.read_dataframe(str(inner), layer=str(name), columns=[])
                names += [str(name)] * len(frame)
                geoms += list(frame.geometry.values)
        except pyogrio.errors.DataSourceError as exc:
            raise InvalidInput(f"cannot read {Path(path).name}: {exc}", "file") from None
        return _layer_counts(np.asarray(names, dtype=object), np.asarray(geoms, dtype=object), cad=False)


def _layer_counts(names: np.ndarray, geoms: np.ndarray, *, cad: bool) -> list[dict[str, Any]]:
    lines = np.isin(shapely.get_type_id(geoms), _TYPE_IDS[LINES])
    polygons = np.isin(shapely.get_type_id(_close_rings(geoms) if cad else geoms), _TYPE_IDS[POLYGONS])
    return [{"name": name, "features": int((names == name).sum()), "lines": int(lines[names == name].sum()),
             "polygons": int(polygons[names == name].sum())} for name in sorted(set(names.tolist()))]


def read_features(
    path: Path,
    kind: str,
    *,
    working_srid: int,
    layer: str | None = None,
    cad_layer: str | None = None,
    where: str | None = None,
    crs: int | None = None,
) -> Features:
    """The lines or polygons of a file in the working CRS; anything else in the file is left aside.

    ``where`` is an attribute filter in OGR SQL (``mode IN ('TRAIN', 'RER')``) applied by GDAL to the
    caller's own file. ``crs`` declares the coordinates' CRS where the file states none (DXF) or states it
    wrongly. Closed DXF polylines count as polygons.
    """
    if kind not in _TYPE_IDS:
        raise ValueError(kind)
    with open_source(Path(path), layer=layer) as source:
        if source.is_table:
            raise InvalidInput(f"{Path(path).name} is a table, not a map file: give GeoPackage, zipped Shapefile, "
                               "GeoJSON, KML or DXF", "file")
        if source.format == "dxf":
            pyogrio.set_gdal_config_options({"DXF_ENCODING": dxf_encoding(source.path)})
        try:
            frame = pyogrio.read_dataframe(str(source.path), layer=source.layer, where=where or None,
                                           encoding=source.encoding)
        except pyogrio.errors.DataSourceError as exc:
            raise InvalidInput(f"cannot read {Path(path).name}: {exc}", "file") from None
        except Exception as exc:  # noqa: BLE001 - GDAL reports a bad where clause as a generic error
            raise InvalidInput(f"the filter cannot be applied: {exc}", "where") from None
        file_srid = crs_mod.epsg_of(source.crs_text) if source.crs_text else None
        notes = list(source.notes)
    rows = np.arange(1, len(frame) + 1)
    if cad_layer is not None:
        if CAD_LAYER_FIELD not in frame.columns:
            raise InvalidInput("a CAD layer can only be chosen in a DXF drawing", "cad_layer")
        known = sorted(str(v) for v in frame[CAD_LAYER_FIELD].dropna().unique())
        if cad_layer not in known:
            raise InvalidInput(f"no CAD layer {cad_layer!r} in the drawing; layers: {', '.join(known)}", "cad_layer")
        on_layer = (frame[CAD_LAYER_FIELD] == cad_layer).to_numpy()
        frame, rows = frame[on_layer], rows[on_layer]
    geoms = np.asarray(frame.geometry.values, dtype=object) if len(frame) else np.empty(0, dtype=object)
    if kind == POLYGONS:
        geoms = _close_rings(geoms)
    geoms = shapely.force_2d(geoms)
    wanted = np.isin(shapely.get_type_id(geoms), _TYPE_IDS[kind]) & ~shapely.is_empty(geoms)
    if not wanted.any():
        raise InvalidInput(f"{Path(path).name} holds no {_WORDS[kind]}s"
                           + (" (after the filter)" if where or cad_layer else ""), "file")
    if (~wanted).any():
        notes.append(f"{int((~wanted).sum())} features that are not {_WORDS[kind]}s were left aside")
    geoms, attrs, rows = geoms[wanted], frame.drop(columns="geometry")[wanted].reset_index(drop=True), rows[wanted]
    srid = _source_srid(crs, file_srid, geoms, working_srid, notes)
    if srid != working_srid:
        t = transformer(srid, working_srid)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
    if not np.isfinite(shapely.get_coordinates(geoms)).all():
        raise InvalidInput(f"the coordinates do not fit {crs_mod.describe(srid)}: declare the right CRS (--crs)",
                           "crs")
    return Features(geoms, attrs, srid, notes, rows)


def _source_srid(declared: int | None, file_srid: int | None, geoms: np.ndarray, working_srid: int,
                 notes: list[str]) -> int:
    srid = declared if declared is not None else file_srid
    if declared is not None and file_srid is not None and file_srid != declared:
        notes.append(f"the file says {crs_mod.describe(file_srid)}; the declared {crs_mod.describe(declared)} is used")
    if srid is None:
        srid = crs_mod.guess(shapely.get_coordinates(geoms))
        if srid is None:
            raise InvalidInput("the file states no CRS and its coordinates do not show it: declare it (--crs)", "crs")
        notes.append(f"the file states no CRS: {crs_mod.describe(srid)} assumed from the coordinates")
    return crs_mod.check(srid, working_srid)


def _close_rings(geoms: np.ndarray) -> np.ndarray:
    """Closed lines (a CAD boundary is a closed polyline) as polygons; other geometries as they are."""
    out = geoms.copy()
    lines = shapely.get_type_id(out) == 1
    closed = np.zeros(len(out), dtype=bool)
    closed[lines] = shapely.is_closed(out[lines]) & (shapely.get_num_coordinates(out[lines]) >= 4)
    out[closed] = shapely.polygons(shapely.linearrings(
        [shapely.get_coordinates(g) for g in out[closed]])) if closed.any() else out[closed]
    return out
