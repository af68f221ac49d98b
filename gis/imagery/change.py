"""Building or planting after a project's freeze (抢栽抢种、偷建私建), found between two imagery epochs.

For a project with a freeze date, one epoch of a layer before the freeze and one
after (same kind: heights above ground, a surface model, or a built/vegetation
classification) are compared parcel by parcel over the project's footprint:

- heights: a cell changed when it rose by more than ``threshold_m``; falls
  (demolition, felling) are not what the rule is after;
- classification: a cell changed when it became built (or vegetation) and was not
  before.

The changed cells of a parcel's window are turned into polygons, clipped by the
parcel and measured in the working CRS, so the area is right whatever CRS the
imagery is in. A parcel is flagged when its changed area reaches ``min_area_m2``
and its changed share reaches ``min_share``. The after epoch's grid is the one
compared on; the before epoch is warped onto it (nearest neighbour) when it differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import rasterio
import shapely
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.vrt import WarpedVRT
from sqlalchemy import Connection, text

from gis.domain.stages import KIND_LABELS_ZH, STAGE_LABELS_ZH
from gis.domain.tolerance import Tolerance, tolerance_sql
from gis.imagery.labels import SUSPECTED_ZH
from gis.imagery.layers import HEIGHT_KINDS, KINDS, ImageryLayer, get_layer, open_layer, transform_geom, working_crs
from gis.imagery.render import chip_png
from gis.imagery.stats import cells_polygon, covered_share, parcel_window
from gis.io.export import Column
from gis.platform.config import Settings
from gis.platform.db import working_srid
from gis.platform.errors import InvalidInput, NotFound, ProjectNotFound

CHANGE_KINDS = ("hag", "dsm", "classification")  # tried in this order when no kind is asked for
# Chips show the parcel with this much of its surroundings (share of its larger side), at least a few pixels.
CHIP_MARGIN = 0.3
CHIP_MIN_MARGIN_PX = 5

PROJECT_SQL = "SELECT id, code, name, freeze_date FROM projects WHERE id = :id AND archived_at IS NULL"
# The epoch closest before the freeze (the state the freeze protects) and the latest after it.
EPOCH_SQL = """
SELECT l.id
FROM imagery_layers l JOIN projects p ON p.id = :project_id
WHERE l.kind = :kind AND l.footprint && p.footprint AND ST_Intersects(l.footprint, p.footprint)
  AND CASE WHEN :before THEN l.acquired_on <= p.freeze_date ELSE l.acquired_on > p.freeze_date END
  AND (CAST(:as_of AS date) IS NULL OR l.acquired_on <= :as_of)
ORDER BY l.acquired_on DESC, l.id DESC
LIMIT 1
"""
# The parcels in a project's footprint, as the blockers see them: the kept overlaps, slivers left out.
FOOTPRINT_MEMBER_SQL = f"""
SELECT pa.id, pa.geom
FROM project_parcel_overlaps o JOIN parcels pa ON pa.id = o.parcel_id
WHERE o.project_id = :project_id AND {tolerance_sql()}
"""
# Those parcels, with the geometry of the ones both epochs reach.
FOOTPRINT_PARCELS_SQL = f"""
WITH cover AS (
    SELECT ST_Intersection(a.footprint, b.footprint) AS geom
    FROM imagery_layers a, imagery_layers b WHERE a.id = :before_id AND b.id = :after_id
)
SELECT pa.id, pa.code, pa.kind, pa.stage, d.name AS district, ST_Area(pa.geom) AS area_m2,
       CASE WHEN ST_Intersects(pa.geom, c.geom) THEN ST_AsBinary(pa.geom) END AS wkb
FROM ({FOOTPRINT_MEMBER_SQL}) m
JOIN parcels pa ON pa.id = m.id
JOIN districts d ON d.id = pa.district_id
CROSS JOIN cover c
ORDER BY pa.code
"""
PARCEL_SQL = "SELECT id, code, ST_AsBinary(geom) AS wkb FROM parcels WHERE id = :id"
GEOMETRY_SQL = "SELECT id, ST_AsBinary(geom) FROM parcels WHERE id = ANY(:ids)"


@dataclass(frozen=True)
class ChangeRule:
    kind: str
    threshold_m: float
    min_area_m2: float
    min_share: float
    built_classes: tuple[int, ...] = ()
    vegetation_classes: tuple[int, ...] = ()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        kind: str,
        *,
        threshold_m: float | None = None,
        min_area_m2: float | None = None,
        min_share: float | None = None,
    ) -> ChangeRule:
        rule = cls(
            kind=kind,
            threshold_m=settings.imagery_change_threshold_m if threshold_m is None else threshold_m,
            min_area_m2=settings.imagery_flag_min_m2 if min_area_m2 is None else min_area_m2,
            min_share=settings.imagery_flag_min_share if min_share is None else min_share,
            built_classes=tuple(settings.imagery_built_classes),
            vegetation_classes=tuple(settings.imagery_vegetation_classes),
        )
        if rule.threshold_m <= 0:
            raise InvalidInput("the height threshold must be positive", where="threshold_m")
        if rule.min_area_m2 < 0 or not 0 <= rule.min_share <= 1:
            raise InvalidInput("min_area_m2 must be ≥ 0 and min_share within 0..1", where="min_area_m2,min_share")
        return rule

    def flags(self, changed_m2: float, share: float) -> bool:
        return changed_m2 > 0 and changed_m2 >= self.min_area_m2 and share >= self.min_share


@dataclass(frozen=True)
class CellChange:
    """What changed inside one parcel."""

    changed_m2: float
    built_m2: float | None  # classification only
    vegetation_m2: float | None  # classification only
    max_gain_m: float | None  # heights only
    coverage: float  # share of the parcel's area under pixels valid in both epochs


def parcel_change(
    after: rasterio.DatasetReader,
    before: rasterio.DatasetReader | WarpedVRT,
    geom: shapely.Geometry,
    rule: ChangeRule,
    *,
    raster_crs: str,
    area_crs: str,
) -> CellChange:
    """Change inside ``geom`` (in the raster's CRS) between two epochs on the same grid."""
    window = parcel_window(after.transform, after.width, after.height, geom.bounds)
    if window is None:
        return CellChange(0.0, None, None, None, 0.0)
    a = np.ma.masked_invalid(after.read(1, window=window, masked=True))
    b = np.ma.masked_invalid(before.read(1, window=window, masked=True))
    transform = after.window_transform(window)
    both = ~np.ma.getmaskarray(a) & ~np.ma.getmaskarray(b)
    coverage = covered_share(both, transform, geom)
    # Every cell the parcel touches is a candidate: only its part inside the parcel is measured.
    cells = both & geometry_mask([geom], a.shape, transform, all_touched=True, invert=True)
    av, bv = a.filled(0), b.filled(0)

    def area(mask: np.ndarray) -> float:
        """Area in the working CRS of the ``mask`` cells clipped by the parcel."""
        if not mask.any():
            return 0.0
        clipped = shapely.intersection(cells_polygon(mask, transform), geom)
        return 0.0 if clipped.is_empty else float(transform_geom(clipped, raster_crs, area_crs).area)

    if rule.kind in HEIGHT_KINDS:
        gain = av.astype("float64") - bv
        changed = cells & (gain > rule.threshold_m)
        max_gain = float(gain[cells].max()) if cells.any() else None
        return CellChange(area(changed), None, None, max_gain, coverage)
    built = cells & np.isin(av, rule.built_classes) & ~np.isin(bv, rule.built_classes)
    vegetation = cells & np.isin(av, rule.vegetation_classes) & ~np.isin(bv, rule.vegetation_classes)
    built_m2, vegetation_m2 = area(built), area(vegetation)
    return CellChange(built_m2 + vegetation_m2, built_m2, vegetation_m2, None, coverage)


@contextmanager
def aligned_epochs(before: ImageryLayer, after: ImageryLayer) -> Iterator[tuple[rasterio.DatasetReader, object]]:
    """The after epoch, and the before epoch on the after epoch's grid (warped only when the grids differ)."""
    with open_layer(after) as a, open_layer(before) as b:
        if b.crs == a.crs and b.transform == a.transform and b.shape == a.shape:
            yield a, b
            return
        # Without a nodata value, the outside of the before epoch would read as zeros: an alpha band masks it.
        with WarpedVRT(
            b,
            crs=a.crs,
            transform=a.transform,
            width=a.width,
            height=a.height,
            resampling=Resampling.nearest,
            add_alpha=b.nodata is None,
        ) as vrt:
            yield a, vrt


@dataclass
class ParcelChange:
    parcel_id: int
    code: str
    kind: str
    stage: str
    district: str
    area_m2: float
    changed_m2: float
    changed_share: float
    built_m2: float | None
    vegetation_m2: float | None
    max_gain_m: float | None
    coverage: float
    flagged: bool
    suspected: str | None

    @property
    def suspected_label(self) -> str | None:
        return SUSPECTED_ZH.get(self.suspected) if self.suspected else None


@dataclass
class PostFreezeResult:
    project_id: int
    project_code: str
    project_name: str
    freeze_date: date
    before: ImageryLayer
    after: ImageryLayer
    rule: ChangeRule
    parcels_in_footprint: int
    parcels: list[ParcelChange] = field(default_factory=list)

    @property
    def flagged(self) -> list[ParcelChange]:
        return [p for p in self.parcels if p.flagged]

    def as_dict(self) -> dict:
        def epoch(layer: ImageryLayer) -> dict:
            return {"layer_id": layer.id, "name": layer.name, "acquired_on": layer.acquired_on.isoformat()}

        return {
            "project_id": self.project_id,
            "project_code": self.project_code,
            "project_name": self.project_name,
            "freeze_date": self.freeze_date.isoformat(),
            "kind": self.rule.kind,
            "before": epoch(self.before),
            "after": epoch(self.after),
            "rule": asdict(self.rule),
            "parcels_in_footprint": self.parcels_in_footprint,
            "parcels_checked": len(self.parcels),
            "flagged_count": len(self.flagged),
            "parcels": [{**asdict(p), "suspected_label": p.suspected_label} for p in self.parcels],
        }


def member_params(settings: Settings) -> dict[str, float]:
    """The bound parameters of FOOTPRINT_MEMBER_SQL: the blockers' sliver tolerance."""
    return Tolerance.from_settings(settings).params


def _project(conn: Connection, project_id: int):  # noqa: ANN202 - a Row
    project = conn.execute(text(PROJECT_SQL), {"id": project_id}).first()
    if project is None:
        raise ProjectNotFound(project_id)
    if project.freeze_date is None:
        raise InvalidInput(f"project {project.code} has no freeze date", where="freeze_date")
    return project


def select_epochs(
    conn: Connection,
    project_id: int,
    *,
    kind: str | None = None,
    before_id: int | None = None,
    after_id: int | None = None,
    as_of: date | None = None,
) -> tuple[ImageryLayer, ImageryLayer]:
    """The two epochs to compare for a project: given by id, or found by kind around the freeze date (among the
    layers acquired by ``as_of`` when given: a past day's check sees the imagery of that day)."""
    project = _project(conn, project_id)
    if kind is not None and kind not in CHANGE_KINDS:
        raise InvalidInput(f"change is measured on {', '.join(CHANGE_KINDS)} layers, not {kind!r}", where="kind")
    found: dict[str, ImageryLayer] = {}
    for role, layer_id in (("before", before_id), ("after", after_id)):
        if layer_id is not None:
            found[role] = get_layer(conn, layer_id)
    known_kinds = {layer.kind for layer in found.values()}
    if len(known_kinds) > 1:
        raise InvalidInput("the two epochs must be layers of the same kind", where="before,after")
    kinds = [kind] if kind else list(known_kinds) or list(CHANGE_KINDS)
    for k in kinds:
        epochs = dict(found)
        for role in ("before", "after"):
            if role not in epochs:
                layer_id = conn.execute(
                    text(EPOCH_SQL), {"project_id": project_id, "kind": k, "before": role == "before", "as_of": as_of}
                ).scalar()
                if layer_id is not None:
                    epochs[role] = get_layer(conn, layer_id)
        if len(epochs) == 2:
            break
    else:
        wanted = " or ".join(f"{KINDS[k]} ({k})" for k in kinds)
        raise InvalidInput(
            f"project {project.code} needs two epochs of {wanted} imagery over its footprint, one on or before"
            f" its freeze date {project.freeze_date} and one after it",
            where="imagery",
        )
    before, after = epochs["before"], epochs["after"]
    if before.kind != after.kind or before.kind not in CHANGE_KINDS:
        raise InvalidInput(f"change is measured on {', '.join(CHANGE_KINDS)} layers of one kind", where="kind")
    if not before.acquired_on <= project.freeze_date < after.acquired_on:
        raise InvalidInput(
            f"the before epoch ({before.acquired_on}) must be on or before the freeze date {project.freeze_date}"
            f" and the after epoch ({after.acquired_on}) after it",
            where="before,after",
        )
    return before, after


def post_freeze_check(
    conn: Connection,
    project_id: int,
    settings: Settings,
    *,
    kind: str | None = None,
    before_id: int | None = None,
    after_id: int | None = None,
    threshold_m: float | None = None,
    min_area_m2: float | None = None,
    min_share: float | None = None,
) -> PostFreezeResult:
    """Per parcel of the project's footprint that both epochs reach: the changed area and share, and the flag."""
    project = _project(conn, project_id)
    before, after = select_epochs(conn, project_id, kind=kind, before_id=before_id, after_id=after_id)
    rule = ChangeRule.from_settings(
        settings, after.kind, threshold_m=threshold_m, min_area_m2=min_area_m2, min_share=min_share
    )
    return compare_epochs(conn, project, before, after, rule, Tolerance.from_settings(settings))


def compare_epochs(conn: Connection, project, before: ImageryLayer, after: ImageryLayer,  # noqa: ANN001 - a Row
                   rule: ChangeRule, tolerance: Tolerance) -> PostFreezeResult:
    """The comparison itself: per parcel of the project's footprint (beyond ``tolerance``) that both epochs reach,
    the changed area and share by ``rule``, and the flag."""
    rows = conn.execute(
        text(FOOTPRINT_PARCELS_SQL),
        {"project_id": project.id, "before_id": before.id, "after_id": after.id, **tolerance.params},
    ).all()
    covered = [r for r in rows if r.wkb is not None]
    area_crs = working_crs(working_srid(conn))
    geoms = transform_geom(shapely.from_wkb([r.wkb for r in covered]), area_crs, after.crs) if covered else []
    result = PostFreezeResult(
        project.id, project.code, project.name, project.freeze_date, before, after, rule, len(rows)
    )
    with aligned_epochs(before, after) as (a, b):
        for row, geom in zip(covered, geoms, strict=True):
            change = parcel_change(a, b, geom, rule, raster_crs=after.crs, area_crs=area_crs)
            share = change.changed_m2 / row.area_m2 if row.area_m2 > 0 else 0.0
            flagged = rule.flags(change.changed_m2, share)
            result.parcels.append(
                ParcelChange(
                    parcel_id=row.id,
                    code=row.code,
                    kind=row.kind,
                    stage=row.stage,
                    district=row.district,
                    area_m2=row.area_m2,
                    changed_m2=change.changed_m2,
                    changed_share=share,
                    built_m2=change.built_m2,
                    vegetation_m2=change.vegetation_m2,
                    max_gain_m=change.max_gain_m,
                    coverage=change.coverage,
                    flagged=flagged,
                    suspected=_suspected(change) if flagged else None,
                )
            )
    return result


def _suspected(change: CellChange) -> str:
    if change.built_m2 is None:
        return "building_or_planting"  # a height gain alone does not tell a roof from a canopy
    return "building" if change.built_m2 >= (change.vegetation_m2 or 0.0) else "planting"


def post_freeze_chip(
    conn: Connection,
    project_id: int,
    parcel_id: int,
    epoch: str,
    *,
    kind: str | None = None,
    before_id: int | None = None,
    after_id: int | None = None,
) -> bytes:
    """A PNG crop of the ``epoch`` ('before' or 'after') layer around a parcel, with its outline.

    Both epochs are cut to the same box in the after epoch's CRS and drawn over the same value range.
    """
    if epoch not in ("before", "after"):
        raise InvalidInput("the epoch is 'before' or 'after'", where="epoch")
    before, after = select_epochs(conn, project_id, kind=kind, before_id=before_id, after_id=after_id)
    parcel = conn.execute(text(PARCEL_SQL), {"id": parcel_id}).first()
    if parcel is None:
        raise NotFound(f"no parcel {parcel_id}")
    outline = transform_geom(shapely.from_wkb(parcel.wkb), working_crs(working_srid(conn)), after.crs)
    w, s, e, n = outline.bounds
    margin = max(CHIP_MARGIN * max(e - w, n - s), CHIP_MIN_MARGIN_PX * max(after.resolution))
    bbox = (w - margin, s - margin, e + margin, n + margin)
    ranges = [layer.value_range for layer in (before, after) if layer.value_range]
    shared = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None
    layer = before if epoch == "before" else after
    return chip_png(layer, bbox, after.crs, outline, value_range=shared)


EXPORT_COLUMNS: tuple[Column, ...] = (
    Column("code", "地块编号", width=16),
    Column("kind", "类型", values=KIND_LABELS_ZH, width=6),
    Column("district", "片区", width=8),
    Column("stage", "阶段", values=STAGE_LABELS_ZH, width=12),
    Column("area_m2", "图形面积(㎡)", "m2", total=True),
    Column("changed_m2", "变化面积(㎡)", "m2", total=True, shp="chg_m2"),
    Column("changed_share", "变化占比", "share", shp="chg_share"),
    Column("built_m2", "新增建筑(㎡)", "m2", total=True),
    Column("vegetation_m2", "新增植被(㎡)", "m2", total=True, shp="veg_m2"),
    Column("max_gain_m", "最大增高(m)", "float", shp="max_gain"),
    Column("coverage", "影像覆盖率", "share"),
    Column("flagged", "疑似冻结后变化", "bool"),
    Column("suspected", "疑似情形", values=SUSPECTED_ZH, width=14),
)


def export_rows(conn: Connection, result: PostFreezeResult, *, flagged_only: bool = False) -> list[dict]:
    """The checked parcels as rows for ``gis.io.export`` (any of its formats), geometry as WKB."""
    parcels = result.flagged if flagged_only else result.parcels
    geoms = dict(conn.execute(text(GEOMETRY_SQL), {"ids": [p.parcel_id for p in parcels]}).all())
    return [{**asdict(p), "geom": geoms[p.parcel_id]} for p in parcels]
