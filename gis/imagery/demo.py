"""Two synthetic imagery epochs for the demo city, with buildings and planting added after a freeze.

Heights above ground at 1 m in UTM 50N (EPSG:32650, deliberately not the working
CRS) over a square around the densest stretch of one project's footprint: the
houses of the loaded city as blocks, orchards on some fields, and noise. The
after epoch adds, on parcels of the footprint that are not yet paid, a few new
buildings and one new orchard (the planted cases), plus changes the check must
ignore: a shed too small to count, trees grown less than the threshold, houses
demolished between the epochs. Clearly synthetic; written as COGs and registered.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.features import rasterize
from shapely import STRtree
from sqlalchemy import Connection, text

from gis.domain.stages import DISPUTE_STAGES, STAGES
from gis.imagery.change import FOOTPRINT_MEMBER_SQL, member_params
from gis.imagery.layers import delete_layers_under, register_layer, to_cog, transform_geom, working_crs
from gis.platform.config import Settings
from gis.platform.db import working_srid
from gis.platform.errors import InvalidInput

DEMO_CRS = "EPSG:32650"
NOTE_KEY = "demo_imagery"
NODATA = -9999.0
BEFORE_DAYS = 25  # the before epoch is flown this long before the freeze, the after epoch ...
AFTER_DAYS = 180  # ... this long after it
NEW_BUILDINGS = 3
NEW_ORCHARDS = 1
INSET_M = 2.0  # new structures keep this far inside their parcel, so no pixel of them reaches a neighbour
NOISE_M = 0.05
TREE_GROWTH_M = (0.3, 1.0)  # below the default change threshold of 2 m
NOT_YET_PAID = (*STAGES[: STAGES.index("paid")], *DISPUTE_STAGES)

PROJECT_SQL = """
SELECT id, code, freeze_date FROM projects
WHERE freeze_date IS NOT NULL AND (CAST(:id AS integer) IS NULL OR id = :id)
ORDER BY freeze_date DESC, id
LIMIT 1
"""
MEMBER_CENTROIDS_SQL = f"""
SELECT ST_X(ST_Centroid(m.geom)) AS x, ST_Y(ST_Centroid(m.geom)) AS y
FROM ({FOOTPRINT_MEMBER_SQL}) m
ORDER BY m.id
"""
BOX_PARCELS_SQL = f"""
SELECT pa.id, pa.code, pa.kind, pa.stage, pa.demolished_on, ST_AsBinary(pa.geom) AS wkb,
       pa.id IN (SELECT m.id FROM ({FOOTPRINT_MEMBER_SQL}) m) AS in_footprint
FROM parcels pa
WHERE pa.geom && ST_GeomFromWKB(:box, :srid) AND ST_Intersects(pa.geom, ST_GeomFromWKB(:box, :srid))
ORDER BY pa.code
"""
UPSERT_NOTE_SQL = """
INSERT INTO dataset_notes (key, value) VALUES (:key, CAST(:value AS jsonb))
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
"""


def _densest_centre(xy: np.ndarray, size_m: float, candidates: int = 500) -> np.ndarray:
    """Of up to ``candidates`` evenly spread member centroids, the one with the most members in a square of
    side ``size_m`` around it (a spatial index keeps this fast for a million-parcel city)."""
    tree = STRtree(shapely.points(xy))
    picks = np.unique(np.linspace(0, len(xy) - 1, min(candidates, len(xy))).astype(int))
    half = size_m / 2
    counts = [len(tree.query(shapely.box(*(xy[i] - half), *(xy[i] + half)))) for i in picks]
    return xy[picks[int(np.argmax(counts))]]


def _structure(parcel: shapely.Geometry, side_m: float) -> shapely.Geometry | None:
    """A square of about ``side_m`` inside ``parcel``, at least INSET_M from its edge; None if it does not fit."""
    inner = parcel.buffer(-INSET_M)
    if inner.is_empty:
        return None
    c = inner.point_on_surface()
    shape = shapely.box(c.x - side_m / 2, c.y - side_m / 2, c.x + side_m / 2, c.y + side_m / 2).intersection(inner)
    return shape if shape.area >= 0.8 * side_m**2 else None


def write_demo_imagery(
    conn: Connection,
    out_dir: Path,
    settings: Settings,
    *,
    seed: int = 42,
    project_id: int | None = None,
    size_m: float = 600.0,
    pixel_m: float = 1.0,
) -> dict:
    """Write and register the two epochs for ``project_id`` (default: the latest freeze); returns the manifest.

    Replaces the layers registered from ``out_dir`` before; the manifest is also stored in dataset_notes.
    """
    rng = np.random.default_rng(seed)
    project = conn.execute(text(PROJECT_SQL), {"id": project_id}).first()
    if project is None:
        raise InvalidInput("no project with a freeze date to fly the demo imagery over", where="project")
    srid = working_srid(conn)
    work = working_crs(srid)
    members_of = {"project_id": project.id, **member_params(settings)}
    members = np.array(conn.execute(text(MEMBER_CENTROIDS_SQL), members_of).all(), dtype=float)
    if members.size == 0:
        raise InvalidInput(f"project {project.code} has no parcels to fly over", where="project")
    cx, cy = transform_geom(shapely.Point(_densest_centre(members, size_m)), work, DEMO_CRS).coords[0]
    n = int(round(size_m / pixel_m))
    x0, y0 = np.floor(cx - size_m / 2), np.ceil(cy + size_m / 2)
    transform = Affine(pixel_m, 0.0, x0, 0.0, -pixel_m, y0)
    grid = shapely.box(x0, y0 - n * pixel_m, x0 + n * pixel_m, y0)
    box_work = transform_geom(shapely.segmentize(grid, size_m / 16), DEMO_CRS, work)
    rows = conn.execute(
        text(BOX_PARCELS_SQL), {"box": shapely.to_wkb(box_work), "srid": srid, **members_of}
    ).all()
    geoms = transform_geom(shapely.from_wkb([r.wkb for r in rows]), work, DEMO_CRS)
    tree = STRtree(geoms)
    before_on = project.freeze_date - timedelta(days=BEFORE_DAYS)
    after_on = project.freeze_date + timedelta(days=AFTER_DAYS)

    def alone(i: int, shape: shapely.Geometry) -> bool:
        """No other parcel within reach of the structure's pixels (the generator plants overlapping parcels)."""
        return all(j == i for j in tree.query(shape.buffer(1.5), predicate="intersects"))

    inner_grid = grid.buffer(-5 * pixel_m)
    candidates = [
        i for i, r in enumerate(rows)
        if r.in_footprint and r.kind == "land" and r.stage in NOT_YET_PAID and inner_grid.contains(geoms[i])
    ]
    rng.shuffle(candidates)
    planted: dict[str, list[int]] = {"new_building": [], "new_planting": [], "small_shed": []}
    wanted = {"new_building": NEW_BUILDINGS, "new_planting": NEW_ORCHARDS, "small_shed": 1}
    new_shapes: list[tuple[shapely.Geometry, float]] = []
    for i in candidates:
        case = next((k for k in wanted if len(planted[k]) < wanted[k]), None)
        if case is None:
            break
        area = geoms[i].area
        side = {"new_building": float(np.clip(np.sqrt(0.08 * area), 8, 16)), "new_planting": 14.0}.get(case, 3.0)
        shape = _structure(geoms[i], side)
        if shape is None or not alone(i, shape):
            continue
        height = {"new_building": rng.uniform(4, 8), "new_planting": rng.uniform(2.8, 3.5)}.get(case, 2.8)
        planted[case].append(i)
        new_shapes.append((shape, height))

    taken = {i for ids in planted.values() for i in ids}
    houses, demolished_between, trees = [], [], []
    for i, r in enumerate(rows):
        if r.kind == "house":
            block = geoms[i].buffer(-1.0)
            if block.is_empty or (r.demolished_on is not None and r.demolished_on <= before_on):
                continue
            height = 3.0 * rng.integers(1, 5)
            gone = r.demolished_on is not None and r.demolished_on <= after_on
            houses.append((block, height, gone))
            if gone:
                demolished_between.append(i)
        elif i not in taken and rng.random() < 0.3:
            c = geoms[i].point_on_surface()
            trees.append((c.buffer(rng.uniform(3, 6)).intersection(geoms[i]), rng.uniform(3, 9)))

    def epoch(after: bool) -> np.ndarray:
        stack = [(s, h + (rng.uniform(*TREE_GROWTH_M) if after else 0.0)) for s, h in trees if not s.is_empty]
        stack += [(s, h) for s, h, gone in houses if not (after and gone)]
        stack += new_shapes if after else []
        heights = rasterize(stack, out_shape=(n, n), transform=transform, fill=0.0, dtype="float32")
        return np.maximum(heights + rng.normal(0, NOISE_M, heights.shape).astype("float32"), 0.0)

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    delete_layers_under(conn, out_dir)
    paths = {}
    for name, after, acquired_on in (("before", False, before_on), ("after", True, after_on)):
        plain = out_dir / f"_plain_{name}.tif"
        with rasterio.open(
            plain, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32",
            crs=DEMO_CRS, transform=transform, nodata=NODATA,
        ) as dst:
            dst.write(epoch(after), 1)
        paths[name] = out_dir / f"demo_hag_{name}_{acquired_on.isoformat()}.tif"
        paths[name].unlink(missing_ok=True)
        to_cog(plain, paths[name], kind="hag")
        plain.unlink()
    layers = {
        name: register_layer(conn, paths[name], acquired_on=on, kind="hag", name=f"demo-hag-{name}",
                             attribution="合成演示数据（非真实影像）")
        for name, on in (("before", before_on), ("after", after_on))
    }
    codes = {k: sorted(rows[i].code for i in ids) for k, ids in planted.items()}
    manifest = {
        "synthetic": True,
        "seed": seed,
        "project_id": project.id,
        "project_code": project.code,
        "freeze_date": project.freeze_date.isoformat(),
        "crs": DEMO_CRS,
        "pixel_m": pixel_m,
        "layers": {
            k: {"id": v.id, "acquired_on": v.acquired_on.isoformat(), "path": v.path} for k, v in layers.items()
        },
        # What the post-freeze check must flag, and what it must not.
        "planted": {"new_building": codes["new_building"], "new_planting": codes["new_planting"]},
        "below_threshold": {
            "small_shed": codes["small_shed"],
            "demolished_between": sorted(rows[i].code for i in demolished_between),
        },
    }
    conn.execute(text(UPSERT_NOTE_SQL), {"key": NOTE_KEY, "value": json.dumps(manifest, ensure_ascii=False)})
    return manifest


def planted_codes(manifest: dict) -> set[str]:
    """The parcel codes where the demo imagery plants a change the check must flag (new buildings, new planting); the
    small sheds are below its threshold and not listed."""
    return {code for codes in manifest["planted"].values() for code in codes}

