"""拆除不到位 (demolition incomplete): parcels recorded as demolished that are not, as far as the records show.

Two rules, each a finding of its own (``rule``):
- ``standing``: the parcel's stage at the end of the day is demolished or later, and the latest layer of heights
  above ground (hag) or of a built/vegetation classification acquired after the day it was recorded demolished
  (and by the day) still shows a structure over it: cells higher than ``height_m`` (hag) or of a built class
  (classification), clipped by the parcel and measured in the working CRS, covering at least ``min_area_m2`` and
  ``min_share`` of the parcel. Parcels with no such imagery are not judged (counted in the summary). A surface
  model (dsm) is not used: without the ground it cannot tell a roof from a hill.
- ``no_evidence``: the same parcels with no demolition acceptance (拆除验收单, document kind
  ``demolition_acceptance``) uploaded by the end of the day: the demolition is recorded without its evidence.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, text

from gis.checks import (
    DOCUMENT_LABELS_ZH,
    HEADER_COLUMNS,
    MAX_AREA_M2,
    CheckParams,
    CheckResult,
    _day,
    _findings,
    _param,
    _stage_at,
)
from gis.domain.workflow import descendants
from gis.inspections.rows import rows_params, rows_sql
from gis.io.export import Column
from gis.platform.config import DEFAULT_TIMEZONE, Settings
from gis.platform.db import working_srid

EVIDENCE_KIND = "demolition_acceptance"
DEMOLISHED_OR_LATER = ("demolished", *sorted(descendants("demolished")))
STANDING_KINDS = ("hag", "classification")
RULES_ZH = {"standing": "影像显示拆除后仍有建筑", "no_evidence": f"拆除记录缺少{DOCUMENT_LABELS_ZH[EVIDENCE_KIND]}"}
_DEFAULTS = Settings.model_fields

# The parcels demolished by the day, when, the latest fitting layer over each, and whether the evidence is there.
_DEMOLISHED = f"""
WITH demolished AS (
    SELECT e.parcel_id, CAST(timezone(:tz, max(e.at)) AS date) AS demolished_on
    FROM parcel_events e WHERE e.stage_to = 'demolished' AND e.at < :end GROUP BY e.parcel_id
)
SELECT dm.parcel_id, dm.demolished_on, ST_AsBinary(pa.geom) AS wkb, ST_Area(pa.geom) AS area_m2, l.id AS layer_id,
       EXISTS (SELECT 1 FROM documents d WHERE d.parcel_id = dm.parcel_id AND d.kind = :evidence
               AND d.uploaded_at < :end) AS has_evidence
FROM demolished dm
JOIN parcels pa ON pa.id = dm.parcel_id
LEFT JOIN LATERAL (
    SELECT l.id FROM imagery_layers l
    WHERE l.kind = ANY(:kinds) AND l.acquired_on > dm.demolished_on AND l.acquired_on <= :as_of
      AND l.footprint && pa.geom AND ST_Intersects(l.footprint, pa.geom)
    ORDER BY l.acquired_on DESC, l.id DESC LIMIT 1
) l ON true
WHERE {_stage_at("dm.parcel_id")} = ANY(:later)
ORDER BY dm.parcel_id
"""
_FOUND = (("parcel_id", "bigint"), ("rule", "text"), ("demolished_on", "date"), ("imagery_on", "date"),
          ("standing_m2", "float8"), ("standing_share", "float8"))
DEMOLITION_COLUMNS = (
    Column("rule", "问题", values=RULES_ZH, width=20),
    Column("demolished_on", "拆除记录日期", "date", shp="demolished"),
    Column("imagery_on", "影像日期", "date", shp="imagery"),
    Column("standing_m2", "影像残留面积(㎡)", "m2", total=True, shp="stand_m2"),
    Column("standing_share", "残留比例", "share", shp="stand_shr"),
)


@dataclass(frozen=True)
class DemolitionIncomplete(CheckParams):
    height_m: float = _param(_DEFAULTS["imagery_height_threshold_m"].default, "残留高度阈值(m)",
                             "A cell higher than this above ground (hag layers) shows a structure.", ge=0.01, le=1000)
    min_area_m2: float = _param(_DEFAULTS["imagery_flag_min_m2"].default, "残留面积下限(㎡)",
                                "A structure covering at least this area (and min_share) is still standing.",
                                le=MAX_AREA_M2)
    min_share: float = _param(0.05, "残留比例下限", "A structure covering at least this share of the parcel (and "
                              "min_area_m2) is still standing.", le=1)


def standing_area(src: Any, geom: shapely.Geometry, kind: str, params: DemolitionIncomplete, *, raster_crs: str,
                  area_crs: str) -> float:
    """The area (m², in ``area_crs``) of ``geom`` (in the raster's CRS) under cells that show a structure."""
    from rasterio.features import geometry_mask  # only the imagery checks load rasterio: `gis` starts without it

    from gis.imagery.layers import transform_geom
    from gis.imagery.stats import cells_polygon, parcel_window

    window = parcel_window(src.transform, src.width, src.height, geom.bounds)
    if window is None:
        return 0.0
    data = np.ma.masked_invalid(src.read(1, window=window, masked=True))
    transform = src.window_transform(window)
    cells = ~np.ma.getmaskarray(data) & geometry_mask([geom], data.shape, transform, all_touched=True, invert=True)
    values = data.filled(0)
    standing = cells & (values > params.height_m if kind == "hag"
                        else np.isin(values, tuple(_DEFAULTS["imagery_built_classes"].default)))
    if not standing.any():
        return 0.0
    clipped = shapely.intersection(cells_polygon(standing, transform), geom)
    return 0.0 if clipped.is_empty else float(transform_geom(clipped, raster_crs, area_crs).area)


def demolition_incomplete(conn: Connection, params: DemolitionIncomplete = DemolitionIncomplete(), *,
                          as_of: date | None = None, tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False,
                          with_geometry: bool = False) -> CheckResult:
    """拆除不到位: demolished parcels whose later imagery still shows a structure, or with no demolition acceptance."""
    from gis.imagery.layers import get_layer, open_layer, transform_geom, working_crs

    params, day = params.validated(), _day(as_of, tz)
    rows = conn.execute(text(_DEMOLISHED), day.params | {
        "evidence": EVIDENCE_KIND, "kinds": list(STANDING_KINDS), "later": list(DEMOLISHED_OR_LATER)}).all()
    found: list[tuple] = []
    by_layer: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        if r.layer_id is not None:
            by_layer[r.layer_id].append(r)
        if not r.has_evidence:
            found.append((r.parcel_id, "no_evidence", r.demolished_on, None, None, None))
    area_crs = working_crs(working_srid(conn)) if by_layer else ""
    for layer_id, parcels in sorted(by_layer.items()):
        layer = get_layer(conn, layer_id)
        geoms = transform_geom(shapely.from_wkb([r.wkb for r in parcels]), area_crs, layer.crs)
        with open_layer(layer) as src:
            for r, geom in zip(parcels, geoms, strict=True):
                m2 = standing_area(src, geom, layer.kind, params, raster_crs=layer.crs, area_crs=area_crs)
                share = m2 / r.area_m2 if r.area_m2 > 0 else 0.0
                if m2 > 0 and m2 >= params.min_area_m2 and share >= params.min_share:
                    found.append((r.parcel_id, "standing", r.demolished_on, layer.acquired_on, m2, share))
    findings = _findings(conn, rows_sql(_FOUND), day.params | rows_params(_FOUND, found), "f.rule DESC, pa.code",
                         reveal_personal=reveal_personal, with_geometry=with_geometry)
    return CheckResult(
        "demolition_incomplete", "拆除不到位",
        f"截至{day.as_of}日终阶段为已拆除及以后的地块：拆除记录之后、当日以前获取的最新地表高度（高于{params.height_m}m）"
        f"或地物分类（建筑类）影像显示仍有建筑，面积不少于{params.min_area_m2}㎡且不少于地块面积的"
        f"{params.min_share:.0%}；或未上传{DOCUMENT_LABELS_ZH[EVIDENCE_KIND]}",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + DEMOLITION_COLUMNS,
        summary={rule: sum(f["rule"] == rule for f in findings) for rule in RULES_ZH}
        | {"demolished": len(rows), "demolished_with_imagery": sum(len(v) for v in by_layer.values())},
    )
