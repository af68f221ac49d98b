"""A deterministic synthetic demo city.

Districts and projects are committed layers (``layers/demo_city``, EPSG:4326). Parcels, their
stage history, payments and archive documents are generated from a seed, with a handful of data
errors planted on purpose (``DemoCity.planted``) so that the inspection queries have something to
find. Nothing reads the clock: ``today`` is an argument, so the same seed gives the same city.
Every name, ID number and phone number is synthetic.

``python -m gis.demo.generator`` rewrites the committed layer files from the shapes defined here.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from shapely import Geometry, STRtree

from gis.demo.disclosures import demo_disclosures
from gis.domain.geometry import corridor
from gis.domain.schema import PARCEL_ATTRIBUTES, PARCEL_FLAGS
from gis.domain.stages import STAGES
from gis.domain.workflow import DATE_COLUMNS as STAGE_DATE_COLUMNS
from gis.platform.config import DEFAULT_TIMEZONE, SQM_PER_MU
from gis.platform.errors import InvalidInput
from gis.records.standards import BASE_ITEM
from gis.records.targets import HOUSE_DECIMALS, LAND_DECIMALS, pace_share, period, quarter_of

LAYER_DIR = Path(__file__).resolve().parents[2] / "layers" / "demo_city"
DEFAULT_SRID = 4549
DEFAULT_TODAY = date(2026, 11, 26)
ACTOR = "demo"

SURVEYED, APPRAISED, SIGNED, PAID, DEMOLISHED, CLEARED = range(len(STAGES))
DATE_COLUMNS = tuple(STAGE_DATE_COLUMNS[stage] for stage in STAGES)
# The archive each stage adds to a parcel's file; 'cleared' adds none.
DOCUMENT_KINDS = ("survey_record", "appraisal_report", "contract", "payment_receipt", "demolition_acceptance")
HISTORY_START = np.datetime64("2024-01-01", "D")

PARCEL_COLUMNS = ("id", "code", *PARCEL_ATTRIBUTES, "stage", "stage_since", *PARCEL_FLAGS, *DATE_COLUMNS, "geometry")
DISTRICT_PREFIX = {"xijin": "XJ", "nanshan": "NS", "helixi": "HL", "wangxi": "WX"}
# Compensation standard per district: yuan per m² of house floor area, yuan per mu of land.
STANDARD_RATES = {
    "xijin": (4200.0, 80000.0),
    "nanshan": (3100.0, 52000.0),
    "helixi": (3600.0, 64000.0),
    "wangxi": (2500.0, 45000.0),
}

# Parcel geometry.
TARGET_PARCEL_M2 = 700.0  # study area per requested parcel, until the study area is the whole city
MIN_MARGIN_M = 50.0  # the study area always reaches this far beyond the footprints
MIN_PIECE_M2 = 20.0
HOUSE_M2 = (30.0, 600.0)  # a village cell outside this range is a yard or field: land
HOUSE_CELL_M2 = 180.0
HOUSE_SHARE = 0.6  # of all cells
VILLAGE_THINNING = 0.15  # lattice points dropped, so cell sizes vary
LAND_THINNING = 0.3
LAND_ASPECT = 1.6  # fields are longer than wide
CHUNK_CELLS = 100_000

# History.
DEMOLITION_GAP_DAYS = (3, 28)  # demolition follows payment within the month, so 'paid' stays recent
HOLDOUT_RATE = 0.015
NEARBY_M = 150.0  # how far outside a footprint incidental acquisition happens
HOLDOUT_NOTES = (
    "对评估价格有异议，要求提高补偿",
    "要求原地安置",
    "家庭成员意见不一，继承尚未分割",
    "户主长期在外务工，无法联系",
    "违建面积认定有争议",
    "要求增加安置房面积",
)
LEGACY_OWNER = "焦某某"
LEGACY_NOTE = "焦氏姊妹历史遗留问题"
MISSING_DOCUMENT_CASES = (
    ("contract",),
    ("appraisal_report",),
    ("contract", "payment_receipt"),
    ("demolition_acceptance",),
    ("survey_record", "appraisal_report"),
)
PAYMENT_NOTES = {"house": "房屋征收补偿款", "land": "土地征收补偿款"}

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许沈曾彭吕汪詹方章潘余叶江鲍查储葛")
GIVEN_CHARS = list("建国华明军平海伟芳英秀兰玉红桂金春林文德志荣生永福强丽霞云峰"
                   "勇杰涛斌敏静燕萍娟梅宏刚辉庆成长胜祥贵友")
ID_REGION = "341881"  # an area code under 3418 (Xuancheng)
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
ID_CHECK = np.array(list("10X98765432"))


@dataclass
class DemoCity:
    """The generated city, every geometry in the working CRS ``srid``.

    ``parcels`` has ``PARCEL_COLUMNS``; ``planted`` lists the planted errors and facts by parcel code
    (overlapping_pair, paid_twice, paid_not_demolished, paid_not_demolished_days, above_standard,
    missing_documents, holdouts, legacy, incidental) and the parcel counts per stage and kind.
    """

    srid: int
    seed: int
    districts: gpd.GeoDataFrame
    projects: gpd.GeoDataFrame
    parcels: gpd.GeoDataFrame
    events: pd.DataFrame
    payments: pd.DataFrame
    standards: pd.DataFrame
    documents: pd.DataFrame
    document_requirements: pd.DataFrame
    planted: dict
    targets: pd.DataFrame
    disclosures: pd.DataFrame = field(default_factory=pd.DataFrame)  # gis.demo.disclosures


# ---------------------------------------------------------------------------------------------
# Layers


def load_layers(srid: int = DEFAULT_SRID) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The committed districts and projects, in the working CRS ``srid``, with project footprints.

    A line project's footprint is its corridor (``gis.domain.geometry.corridor``, the one rule).
    """
    _check_srid(srid)
    props, geoms = _read_features(LAYER_DIR / "districts.geojson")
    districts = gpd.GeoDataFrame(
        {
            "id": np.array([p["id"] for p in props], dtype=np.int64),
            "code": [p["code"] for p in props],
            "name": [p["name"] for p in props],
        },
        geometry=_multi(_reproject(geoms, 4326, srid)),
        crs=srid,
    )
    props, geoms = _read_features(LAYER_DIR / "projects.geojson")
    geoms = _reproject(geoms, 4326, srid)
    is_line = shapely.get_type_id(geoms) == shapely.GeometryType.LINESTRING
    width = pd.array([p["corridor_width_m"] for p in props], dtype="Float64")
    lines, areas = np.where(is_line, geoms, None), np.where(is_line, None, geoms)
    widths = width.to_numpy(float, na_value=np.nan)
    footprints = np.array([corridor(ln, w) if ln is not None else None for ln, w in zip(lines, widths)], dtype=object)
    projects = gpd.GeoDataFrame(
        {
            "id": np.array([p["id"] for p in props], dtype=np.int64),
            "code": [p["code"] for p in props],
            "name": [p["name"] for p in props],
            "kind": [p["kind"] for p in props],
            "centerline": gpd.GeoSeries(_multi(lines), crs=srid),
            "corridor_width_m": width,
            "boundary": gpd.GeoSeries(_multi(areas), crs=srid),
            "footprint": gpd.GeoSeries(_multi(np.where(is_line, footprints, geoms)), crs=srid),
            "freeze_date": [date.fromisoformat(p["freeze_date"]) for p in props],
            "deadline": [date.fromisoformat(p["deadline"]) for p in props],
        },
        geometry="footprint",
        crs=srid,
    )
    return districts, projects


def _check_srid(srid: int) -> None:
    crs = CRS.from_epsg(srid)
    if not crs.is_projected or any(axis.unit_name not in ("metre", "meter") for axis in crs.axis_info):
        raise InvalidInput(f"EPSG:{srid} is not a projected CRS in metres", where="srid")


def _read_features(path: Path) -> tuple[list[dict], np.ndarray]:
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in features])
    return [f["properties"] for f in features], geoms


def _reproject(geoms: np.ndarray, source: int, target: int) -> np.ndarray:
    transformer = Transformer.from_crs(source, target, always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def _multi(geoms: np.ndarray) -> np.ndarray:
    """Polygons as MultiPolygons, lines as MultiLineStrings; None stays None."""
    out = np.full(len(geoms), None, dtype=object)
    present = ~shapely.is_missing(geoms)
    parts, index = shapely.get_parts(geoms[present], return_index=True)
    polygonal = shapely.get_dimensions(parts) == 2
    make = shapely.multipolygons if polygonal.all() else shapely.multilinestrings
    out[np.flatnonzero(present)] = make(parts, indices=index)
    return out


# ---------------------------------------------------------------------------------------------
# The city's parcels


def generate_city(
    n_parcels: int = 5000,
    seed: int = 42,
    srid: int = DEFAULT_SRID,
    today: date = DEFAULT_TODAY,
    progress: Callable[[int], None] | None = None,
) -> DemoCity:
    """Generate ``n_parcels`` parcels around the demo projects, with their history as of ``today``.

    Everything is drawn from ``numpy.random.default_rng(seed)``: the same arguments give the same city.
    ``progress`` is called with the number of parcels done so far.
    """
    if n_parcels < 1:
        raise InvalidInput("n_parcels must be at least 1", where="n_parcels")
    rng = np.random.default_rng(seed)
    districts, projects = load_layers(srid)
    footprints = projects.geometry.to_numpy()
    geoms, district, village = _parcel_cells(n_parcels, districts, projects, rng, progress)
    order = _reading_order(geoms, district)
    draft = _Draft.start(geoms[order], district[order], village[order], footprints)
    draft.codes = _codes(draft.district, districts["code"].to_numpy())
    today64 = np.datetime64(today, "D")
    _plan_history(draft, projects, rng, today64)
    planted = _plant(draft, projects, rng, today64)
    draft.truncate_history()

    parcels = _parcel_frame(draft, districts, rng, srid)
    planted["counts"] = _counts(parcels)
    event_times = _event_times(draft, rng)
    standards = _standards(districts)
    city = DemoCity(
        srid=srid,
        seed=seed,
        districts=districts,
        projects=projects,
        parcels=parcels,
        events=_events(draft, parcels, event_times),
        payments=_payments(draft, parcels, standards, projects),
        standards=standards,
        documents=_documents(draft, event_times, rng),
        document_requirements=pd.DataFrame({"stage": STAGES[: len(DOCUMENT_KINDS)], "kind": DOCUMENT_KINDS}),
        planted=planted,
        targets=pd.DataFrame(),
    )
    city.targets = _targets(districts, parcels, city.events, today)
    city.disclosures = demo_disclosures(projects, city.payments)
    if progress:
        progress(n_parcels)
    return city


def _parcel_cells(
    n: int, districts: gpd.GeoDataFrame, projects: gpd.GeoDataFrame, rng: np.random.Generator,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voronoi cells of village and field points over the study area, cut by districts; exactly ``n``."""
    district_geoms = districts.geometry.to_numpy()
    city = shapely.union_all(district_geoms)
    footprint = shapely.union_all(projects.geometry.to_numpy())
    anchors = _anchors(projects)
    study = _study_area(city, footprint, anchors, n * TARGET_PARCEL_M2)
    shapely.prepare(study)
    regions = shapely.intersection(district_geoms, study)
    # Lattice counts land within a fraction of a percent of the target (more for few parcels),
    # and dropped slivers must not make the count fall short.
    oversample = 1.01 + 1 / math.sqrt(n)
    while True:
        points, village = _generator_points(study, math.ceil(n * oversample) + 10, anchors, district_geoms, rng)
        geoms, district, village = _clip_cells(points, village, study, regions, n, progress)
        if len(geoms) >= n:
            break
        oversample *= 1.05
    # Drop the surplus farthest from the projects, so that holes open only at the study area's rim.
    keep = np.sort(np.argsort(_distance_to(geoms, footprint), kind="stable")[:n])
    return geoms[keep], district[keep], village[keep]


def _anchors(projects: gpd.GeoDataFrame) -> np.ndarray:
    """One point in the middle of each project: along a line, or inside a polygon."""
    points = []
    for line, area in zip(projects["centerline"], projects["boundary"]):
        if line is not None:
            points.append(shapely.line_interpolate_point(shapely.get_geometry(line, 0), 0.5, normalized=True))
        else:
            points.append(shapely.point_on_surface(area))
    return np.array(points, dtype=object)


def _study_area(city: Geometry, footprint: Geometry, anchors: np.ndarray, target_m2: float) -> Geometry:
    """The footprints grown until the area is ``target_m2``; the whole city when that is bigger."""
    if target_m2 >= city.area:
        return city

    def around(base: Geometry, distance: float) -> Geometry:
        return shapely.intersection(shapely.buffer(base, distance), city)

    reach = math.dist(city.bounds[:2], city.bounds[2:])
    if around(footprint, MIN_MARGIN_M).area <= target_m2:
        distance = _solve_increasing(lambda d: around(footprint, d).area, target_m2, MIN_MARGIN_M, reach)
        return around(footprint, distance)

    # Too few parcels to cover every footprint: keep the stretch of each project around its middle.
    def focus(radius: float) -> Geometry:
        near = shapely.union_all(shapely.buffer(anchors, radius))
        return around(shapely.intersection(footprint, near), MIN_MARGIN_M)

    return focus(_solve_increasing(lambda r: focus(r).area, target_m2, 1.0, reach))


def _solve_increasing(f: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """Bisection on an increasing ``f`` to 0.2 %; clamps to the interval."""
    for _ in range(60):
        mid = (lo + hi) / 2
        value = f(mid)
        if abs(value - target) <= 0.002 * target:
            return mid
        lo, hi = (mid, hi) if value < target else (lo, mid)
    return (lo + hi) / 2


def _generator_points(
    study: Geometry, count: int, anchors: np.ndarray, districts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """About ``count`` points: dense lattices in villages (houses), sparse ones in the fields (land)."""
    cell = study.area / count
    house_cell = min(HOUSE_CELL_M2, 0.5 * cell)
    village_share = min(HOUSE_SHARE * house_cell / cell, 0.5)
    villages = _villages(study, village_share * study.area, house_cell, anchors, rng)
    houses = _village_points(villages, house_cell, rng)
    fields = shapely.difference(study, shapely.union_all(villages))
    land = _field_points(fields, fields.area / max(count - len(houses), 1), districts, rng)
    village = np.concatenate([np.ones(len(houses), bool), np.zeros(len(land), bool)])
    return np.concatenate([houses, land]), village


def _villages(
    study: Geometry, target_m2: float, house_cell: float, anchors: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Irregular, non-overlapping village outlines inside the study area, one on each project's middle."""
    scale = math.sqrt(house_cell / HOUSE_CELL_M2)
    expected = math.ceil(3 * target_m2 / (math.pi * (110 * scale) ** 2)) + 1
    centres = np.vstack([shapely.get_coordinates(anchors), _random_points(study, expected, rng)])
    # Small study areas get small villages, or the ones on the anchors alone would fill them.
    radii = np.minimum(rng.uniform(60, 160, len(centres)) * scale, math.sqrt(target_m2 / len(anchors) / math.pi))
    blobs = _blobs(centres, radii, rng)
    tree = STRtree(blobs)
    first, second = tree.query(blobs, predicate="intersects")
    keep = np.ones(len(blobs), bool)
    keep[second[first < second]] = False
    villages = shapely.intersection(blobs[keep], study)
    areas = shapely.area(villages)
    count = max(int(np.searchsorted(np.cumsum(areas), target_m2)) + 1, len(anchors))
    villages = villages[:count]
    return villages[shapely.area(villages) > 0]


def _random_points(area: Geometry, count: int, rng: np.random.Generator) -> np.ndarray:
    xmin, ymin, xmax, ymax = area.bounds
    hit_rate = max(area.area / ((xmax - xmin) * (ymax - ymin)), 1e-3)
    found: list[np.ndarray] = []
    have = 0
    while have < count:
        xy = rng.uniform((xmin, ymin), (xmax, ymax), (math.ceil((count - have) / hit_rate * 1.2) + 16, 2))
        xy = xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])]
        found.append(xy)
        have += len(xy)
    return np.vstack(found)[:count]


def _blobs(centres: np.ndarray, radii: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    angle = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    phase = rng.uniform(0, 2 * np.pi, (len(centres), 2, 1))
    wobble = (
        1
        + 0.18 * np.sin(2 * angle + phase[:, 0])
        + 0.1 * np.sin(3 * angle + phase[:, 1])
        + rng.uniform(-0.06, 0.06, (len(centres), len(angle)))
    )
    r = radii[:, None] * wobble
    ring = np.stack([centres[:, :1] + r * np.cos(angle), centres[:, 1:] + r * np.sin(angle)], axis=-1)
    return shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1))


def _lattice(
    area: Geometry, spacing: tuple[float, float], jitter: float, thinning: float, rng: np.random.Generator
) -> np.ndarray:
    """A jittered, thinned, randomly turned brick lattice of points inside ``area``."""
    sx, sy = spacing
    xmin, ymin, xmax, ymax = area.bounds
    cx, cy, half = (xmin + xmax) / 2, (ymin + ymax) / 2, math.dist((xmin, ymin), (xmax, ymax)) / 2
    i, j = np.meshgrid(np.arange(-(half // sx) - 1, half // sx + 2), np.arange(-(half // sy) - 1, half // sy + 2))
    u = (i.ravel() + 0.5 * (j.ravel() % 2) + rng.uniform(-jitter, jitter, i.size)) * sx
    v = (j.ravel() + rng.uniform(-jitter, jitter, i.size)) * sy
    turn = rng.uniform(0, np.pi)
    x = cx + u * math.cos(turn) - v * math.sin(turn)
    y = cy + u * math.sin(turn) + v * math.cos(turn)
    shapely.prepare(area)
    keep = (rng.random(i.size) >= thinning) & shapely.contains_xy(area, x, y)
    return np.column_stack([x[keep], y[keep]])


def _village_points(villages: np.ndarray, house_cell: float, rng: np.random.Generator) -> np.ndarray:
    sx = math.sqrt(house_cell * (1 - VILLAGE_THINNING) / (math.sqrt(3) / 2))
    spacing = (sx, sx * math.sqrt(3) / 2)
    points = [_lattice(v, spacing, 0.3, VILLAGE_THINNING, rng) for v in villages]
    return np.vstack(points) if points else np.empty((0, 2))


def _field_points(
    fields: Geometry, land_cell: float, districts: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One lattice per district, each turned its own way, as field patterns differ from place to place."""
    sy = math.sqrt(land_cell * (1 - LAND_THINNING) / LAND_ASPECT)
    points = []
    for part in shapely.intersection(districts, fields):
        if not part.is_empty:
            points.append(_lattice(part, (LAND_ASPECT * sy, sy), 0.35, LAND_THINNING, rng))
    return np.vstack(points) if points else np.empty((0, 2))


def _clip_cells(
    points: np.ndarray, village: np.ndarray, study: Geometry, regions: np.ndarray, n: int,
    progress: Callable[[int], None] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voronoi cells cut to the study area and to districts; a cut cell becomes one parcel per piece."""
    xmin, ymin, xmax, ymax = study.bounds
    envelope = shapely.box(xmin - 1000, ymin - 1000, xmax + 1000, ymax + 1000)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points), extend_to=envelope, ordered=True))
    if len(cells) != len(points):
        raise RuntimeError("coincident generator points")
    home = np.full(len(points), -1)
    for d, region in enumerate(regions):
        shapely.prepare(region)
        home[shapely.contains_xy(region, points[:, 0], points[:, 1])] = d
    tree = STRtree(regions)
    geoms, district, from_village = [], [], []
    for start in range(0, len(cells), CHUNK_CELLS):
        chunk, chunk_home = cells[start : start + CHUNK_CELLS], home[start : start + CHUNK_CELLS]
        chunk_village = village[start : start + CHUNK_CELLS]
        # Most cells lie inside their region and need no overlay at all.
        inside = np.zeros(len(chunk), bool)
        for d, region in enumerate(regions):
            mine = chunk_home == d
            inside[mine] = shapely.contains_properly(region, chunk[mine])
        cut = np.flatnonzero(~inside)
        cell_of, region_of = tree.query(chunk[cut], predicate="intersects")
        pieces, piece_of = shapely.get_parts(
            shapely.intersection(chunk[cut[cell_of]], regions[region_of]), return_index=True
        )
        polygon = shapely.get_type_id(pieces) == shapely.GeometryType.POLYGON
        geoms += [chunk[inside], pieces[polygon]]
        district += [chunk_home[inside], region_of[piece_of[polygon]]]
        from_village += [chunk_village[inside], chunk_village[cut[cell_of[piece_of[polygon]]]]]
        if progress:
            progress(min(start + len(chunk), n))
    geoms = np.concatenate(geoms)
    big = shapely.area(geoms) >= MIN_PIECE_M2
    return _multi(geoms[big]), np.concatenate(district)[big], np.concatenate(from_village)[big]


def _distance_to(geoms: np.ndarray, area: Geometry) -> np.ndarray:
    """Distance from each geometry's centroid to ``area`` (0 inside), via a tree of its edges."""
    xy = shapely.get_coordinates(shapely.centroid(geoms))
    shapely.prepare(area)
    distance = np.zeros(len(xy))
    outside = np.flatnonzero(~shapely.contains_xy(area, xy[:, 0], xy[:, 1]))
    coords, ring = shapely.get_coordinates(shapely.get_rings(shapely.get_parts(area)), return_index=True)
    same_ring = ring[:-1] == ring[1:]
    edges = shapely.linestrings(np.stack([coords[:-1], coords[1:]], axis=1)[same_ring])
    _, distance[outside] = STRtree(edges).query_nearest(
        shapely.points(xy[outside]), return_distance=True, all_matches=False
    )
    return distance


def _reading_order(geoms: np.ndarray, district: np.ndarray) -> np.ndarray:
    """By district, then in 250 m rows from north to south, west to east: neighbours get near ids."""
    xy = shapely.get_coordinates(shapely.centroid(geoms))
    row = np.floor((xy[:, 1].max() - xy[:, 1]) / 250)
    return np.lexsort((xy[:, 0], row, district))


def _codes(district: np.ndarray, district_codes: np.ndarray) -> np.ndarray:
    codes = np.empty(len(district), dtype=object)
    for d, code in enumerate(district_codes):
        mine = np.flatnonzero(district == d)
        if not len(mine):
            continue
        numbers = np.char.zfill(np.arange(1, len(mine) + 1).astype(str), 6)
        codes[mine] = np.char.add(DISTRICT_PREFIX[code] + "-", numbers).astype(object)
    return codes


# ---------------------------------------------------------------------------------------------
# Stage history


@dataclass
class _Draft:
    """Parcels under construction: geometry, footprint overlap, planned dates and the stage reached."""

    geoms: np.ndarray
    district: np.ndarray  # row in districts
    house: np.ndarray
    share: np.ndarray  # largest share of the parcel's area inside one footprint
    project: np.ndarray  # row in projects of that footprint, -1 if none
    touches: np.ndarray  # intersects some footprint, if only along an edge
    nearby: np.ndarray  # row in projects of a footprint within NEARBY_M, -1 if none
    codes: np.ndarray | None = None
    # Set by _plan_history:
    dates: np.ndarray | None = None  # (n, 6) datetime64[D]: planned stage dates, NaT past the stage
    stage: np.ndarray | None = None
    holdout_note: np.ndarray | None = None
    legacy: np.ndarray | None = None
    taken: np.ndarray | None = None  # used by a planted case already
    # Set by _plant, for the payments and documents:
    rate_factor: np.ndarray | None = None
    second_paid_on: dict[int, np.datetime64] = field(default_factory=dict)
    missing_documents: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def start(cls, geoms: np.ndarray, district: np.ndarray, village: np.ndarray, footprints: np.ndarray) -> _Draft:
        areas = shapely.area(geoms)
        shares = np.zeros((len(geoms), len(footprints)))
        touches = np.zeros(len(geoms), bool)
        nearby = np.full(len(geoms), -1)
        tree = STRtree(geoms)
        for j, footprint in enumerate(footprints):
            shapely.prepare(footprint)
            nearby[tree.query(footprint, predicate="dwithin", distance=NEARBY_M)] = j
            hit = tree.query(footprint, predicate="intersects")
            touches[hit] = True
            inside = shapely.contains_properly(footprint, geoms[hit])
            partial = hit[~inside]
            shares[hit[inside], j] = 1.0
            shares[partial, j] = shapely.area(shapely.intersection(geoms[partial], footprint)) / areas[partial]
        share = shares.max(axis=1)
        return cls(
            geoms=geoms,
            district=district,
            house=village & (areas >= HOUSE_M2[0]) & (areas <= HOUSE_M2[1]),
            share=share,
            project=np.where(share > 0, shares.argmax(axis=1), -1),
            touches=touches,
            nearby=nearby,
        )

    @property
    def ids(self) -> np.ndarray:
        return np.arange(1, len(self.geoms) + 1, dtype=np.int64)

    def truncate_history(self) -> None:
        self.dates[np.arange(len(STAGES)) > self.stage[:, None]] = np.datetime64("NaT")


def _plan_history(draft: _Draft, projects: gpd.GeoDataFrame, rng: np.random.Generator, today: np.datetime64) -> None:
    """Plan each parcel's stage dates and take the stage reached by ``today``.

    A project's parcels are surveyed after its freeze notice and cleared around its deadline, so
    projects due earlier are further along. Parcels mostly inside a footprint can go all the way;
    parcels only partly inside stop at signing; parcels outside are surveyed, some appraised.
    """
    n = len(draft.geoms)
    freeze = projects["freeze_date"].to_numpy().astype("datetime64[D]")
    deadline = projects["deadline"].to_numpy().astype("datetime64[D]")
    in_project = draft.project >= 0
    p = np.maximum(draft.project, 0)
    start = np.where(
        in_project,
        freeze[p] + rng.integers(3, 61, n),
        HISTORY_START + rng.integers(0, max(int((today - HISTORY_START).astype(int)) - 7, 1), n),
    )
    start = np.clip(start, HISTORY_START, today)
    finish = np.where(
        in_project,
        deadline[p] + np.round(rng.normal(-60, 120, n)).astype(int),
        start + rng.integers(200, 900, n),
    )
    draft.dates = _plan_dates(start, finish, rng)
    cap = np.select(
        [draft.share > 0.5, draft.share > 0, rng.random(n) < 0.25], [CLEARED, SIGNED, APPRAISED], SURVEYED
    )
    draft.stage = np.minimum(cap, (draft.dates <= today).sum(axis=1) - 1)
    draft.holdout_note = np.full(n, None, dtype=object)
    draft.legacy = np.zeros(n, bool)
    draft.taken = np.zeros(n, bool)
    draft.rate_factor = np.ones(n)


def _plan_dates(start: np.ndarray, finish: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stage dates from survey on ``start`` to clearance by ``finish`` (or on ``start``), non-decreasing."""
    n = len(start)
    available = np.maximum((finish - start).astype(int), 0)
    demolition = rng.integers(DEMOLITION_GAP_DAYS[0], DEMOLITION_GAP_DAYS[1] + 1, n)
    clearance = rng.integers(5, 46, n)
    # A short plan shortens every step alike.
    shrink = np.minimum(1.0, available / (demolition + clearance + 3))
    demolition, clearance = np.floor(demolition * shrink).astype(int), np.floor(clearance * shrink).astype(int)
    span = available - demolition - clearance
    # Appraising and signing take the most time, paying the least.
    gaps = np.floor(rng.dirichlet([2.0, 3.0, 1.0], n) * span[:, None]).astype(int)
    offsets = np.cumsum(np.column_stack([np.zeros(n, int), gaps, demolition, clearance]), axis=1)
    return start[:, None] + offsets


def _plant(draft: _Draft, projects: gpd.GeoDataFrame, rng: np.random.Generator, today: np.datetime64) -> dict:
    """Plant the data errors and cases the inspection queries must find; returns them by parcel code."""
    codes = draft.codes
    road = int(np.flatnonzero(projects["code"].to_numpy() == "xinan_road")[0])
    legacy = _plant_legacy(draft, road, rng)
    pair = _plant_overlap(draft, rng)
    late = _plant_paid_not_demolished(draft, rng, today, 5)
    twice = _pick(draft, rng, 1, (draft.stage >= DEMOLISHED) & (draft.dates[:, PAID] <= today - 45))
    above = _pick(draft, rng, 3, draft.stage >= PAID)
    missing = _pick(draft, rng, len(MISSING_DOCUMENT_CASES), draft.stage >= DEMOLISHED)
    incidental = _plant_incidental(draft, projects, rng, today, 3)
    _plant_holdouts(draft, rng)
    draft.second_paid_on = {int(i): draft.dates[i, PAID] + rng.integers(14, 43) for i in twice}
    draft.rate_factor[above] = rng.uniform(1.2, 1.5, len(above))
    draft.missing_documents = {int(i): case for i, case in zip(missing, MISSING_DOCUMENT_CASES)}
    return {
        "overlapping_pair": [codes[i] for i in pair],
        "paid_twice": [codes[i] for i in twice],
        "paid_not_demolished": [codes[i] for i in late],
        "paid_not_demolished_days": {codes[i]: int((today - draft.dates[i, PAID]).astype(int)) for i in late},
        "above_standard": [codes[i] for i in above],
        "missing_documents": {codes[i]: list(case) for i, case in zip(missing, MISSING_DOCUMENT_CASES)},
        "holdouts": [codes[i] for i in np.flatnonzero(pd.notna(draft.holdout_note))],
        "legacy": [codes[i] for i in legacy],
        "incidental": [codes[i] for i in incidental],
    }


def _pick(draft: _Draft, rng: np.random.Generator, count: int, eligible: np.ndarray) -> np.ndarray:
    """Up to ``count`` parcels from ``eligible`` not used by another planted case, in code order."""
    pool = np.flatnonzero(eligible & ~draft.taken)
    chosen = np.sort(rng.choice(pool, size=min(count, len(pool)), replace=False))
    draft.taken[chosen] = True
    return chosen


def _plant_legacy(draft: _Draft, road: int, rng: np.random.Generator) -> np.ndarray:
    """A house on Xin'an Road, surveyed in 2019 and stuck there ever since."""
    chosen = _pick(draft, rng, 1, draft.house & (draft.project == road) & (draft.share > 0.5))
    for i in chosen:
        draft.dates[i, SURVEYED] = np.datetime64("2019-01-01") + rng.integers(60, 300)
        draft.stage[i] = SURVEYED
        draft.legacy[i] = True
        draft.holdout_note[i] = LEGACY_NOTE
    return chosen


def _plant_overlap(draft: _Draft, rng: np.random.Generator) -> list[int]:
    """Grow one paid field 100–300 m² into a paid neighbour: the city's only overlap, paid for twice."""
    areas = shapely.area(draft.geoms)
    fit = np.flatnonzero(
        ~draft.house & (draft.share >= 0.999) & (draft.stage >= PAID) & (areas >= 800) & ~draft.taken
    )
    tree = STRtree(draft.geoms[fit])
    for a in rng.permutation(fit):
        grown = draft.geoms[a]
        neighbours = fit[tree.query(grown, predicate="intersects")]
        neighbours = neighbours[(draft.district[neighbours] == draft.district[a]) & (neighbours != a)]
        if not len(neighbours):
            continue
        shared = shapely.length(shapely.intersection(shapely.boundary(grown), draft.geoms[neighbours]))
        b = neighbours[np.argmax(shared)]
        if shared.max() < 15:
            continue
        target = draft.geoms[b]
        piece = _strip_along(grown, target, 200.0)
        if 100 <= piece.area <= 300 and target.area - piece.area >= 300:
            draft.geoms[a] = _multi(np.array([shapely.union(grown, piece)]))[0]
            draft.taken[[a, b]] = True
            return sorted([int(a), int(b)])
    return []


def _strip_along(edge_of: Geometry, inside: Geometry, area_m2: float) -> Geometry:
    """The strip of ``inside`` within some distance of ``edge_of``, that distance chosen for ``area_m2``."""

    def strip(distance: float) -> Geometry:
        return shapely.intersection(inside, shapely.buffer(edge_of, distance))

    return strip(_solve_increasing(lambda d: strip(d).area, area_m2, 0.0, 100.0))


def _plant_paid_not_demolished(
    draft: _Draft, rng: np.random.Generator, today: np.datetime64, count: int
) -> np.ndarray:
    """Parcels paid more than a month ago whose demolition never happened."""
    paid_on = draft.dates[:, PAID]
    chosen = _pick(
        draft, rng, count, (draft.stage >= DEMOLISHED) & (paid_on <= today - 31) & (paid_on >= today - 180)
    )
    draft.stage[chosen] = PAID
    return chosen


def _plant_incidental(
    draft: _Draft, projects: gpd.GeoDataFrame, rng: np.random.Generator, today: np.datetime64, count: int
) -> np.ndarray:
    """Fields near a project but wholly outside every footprint, acquired and cleared anyway."""
    chosen = _pick(draft, rng, count, (draft.nearby >= 0) & ~draft.touches & ~draft.house)
    freeze = projects["freeze_date"].to_numpy().astype("datetime64[D]")[draft.nearby[chosen]]
    start = np.clip(freeze + rng.integers(3, 61, len(chosen)), HISTORY_START, today)
    draft.dates[chosen] = _plan_dates(start, today - rng.integers(5, 121, len(chosen)), rng)
    draft.stage[chosen] = CLEARED
    return chosen


def _plant_holdouts(draft: _Draft, rng: np.random.Generator) -> None:
    """About 1.5 % of the unfinished parcels in footprints refuse or stall before signing is done."""
    unfinished = (draft.share > 0.5) & (draft.stage < CLEARED)
    count = round(HOLDOUT_RATE * unfinished.sum())
    chosen = _pick(draft, rng, count, unfinished & (draft.stage <= SIGNED))
    notes = np.array(HOLDOUT_NOTES, dtype=object)
    draft.holdout_note[chosen] = notes[rng.integers(0, len(notes), len(chosen))]


# ---------------------------------------------------------------------------------------------
# Frames


def _parcel_frame(
    draft: _Draft, districts: gpd.GeoDataFrame, rng: np.random.Generator, srid: int
) -> gpd.GeoDataFrame:
    n = len(draft.geoms)
    areas = shapely.area(draft.geoms)
    house = draft.house
    floors = rng.choice([1, 2, 3, 4], size=n, p=[0.25, 0.4, 0.25, 0.1])
    households = np.where(house, rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1]), 1)
    owner_name = _names(rng, n)
    owner_name[draft.legacy] = LEGACY_OWNER
    stage_since = draft.dates[np.arange(n), draft.stage]
    frame = {
        "id": draft.ids,
        "code": draft.codes,
        "kind": np.where(house, "house", "land").astype(object),
        "district_id": districts["id"].to_numpy()[draft.district],
        "owner_name": owner_name,
        "owner_id_number": _id_numbers(rng, n),
        "owner_phone": _phones(rng, n),
        "households": households.astype(np.int64),
        "floor_area_m2": pd.array(np.where(house, np.round(areas * floors, 2), np.nan), dtype="Float64"),
        "land_area_mu": pd.array(np.where(house, np.nan, np.round(areas / SQM_PER_MU, 4)), dtype="Float64"),
        "stage": np.array(STAGES, dtype=object)[draft.stage],
        "stage_since": stage_since.astype(object),
        "holdout": pd.notna(draft.holdout_note),
        "legacy": draft.legacy,
        "holdout_note": draft.holdout_note,
    }
    for k, column in enumerate(DATE_COLUMNS):
        frame[column] = draft.dates[:, k].astype(object)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(draft.geoms, crs=srid), crs=srid)


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    surname = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), n)]
    given = np.array(GIVEN_CHARS)[rng.integers(0, len(GIVEN_CHARS), (n, 2))]
    second = np.where(rng.random(n) < 0.6, given[:, 1], "")
    return np.char.add(np.char.add(surname, given[:, 0]), second).astype(object)


def _id_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """18-character resident ID numbers with a birth date and a valid GB 11643 check character."""
    birth = np.datetime64("1940-01-01") + rng.integers(0, 22280, n)  # born 1940 to 2000
    body = np.char.add(
        np.char.add(ID_REGION, np.char.replace(birth.astype(str), "-", "")),
        np.char.zfill(rng.integers(0, 1000, n).astype(str), 3),
    )
    digits = body.astype("S17").view(np.uint8).reshape(n, 17) - ord("0")
    return np.char.add(body, ID_CHECK[(digits @ ID_WEIGHTS) % 11]).astype(object)


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = np.array(["13", "15", "18"])[rng.integers(0, 3, n)]
    return np.char.add(prefix, np.char.zfill(rng.integers(0, 10**9, n).astype(str), 9)).astype(object)


def _standards(districts: gpd.GeoDataFrame) -> pd.DataFrame:
    """The base standard of each district and kind (房屋价值补偿 per m², 土地补偿 per mu), from the history's start."""
    rows = []
    for district_id, code in zip(districts["id"], districts["code"]):
        house_rate, land_rate = STANDARD_RATES[code]
        rows.append((int(district_id), "house", BASE_ITEM["house"], "m2", house_rate))
        rows.append((int(district_id), "land", BASE_ITEM["land"], "mu", land_rate))
    frame = pd.DataFrame(rows, columns=["district_id", "kind", "item", "unit", "rate_yuan"])
    frame["valid_from"] = date(2024, 1, 1)
    frame["recorded_by"] = ACTOR
    return frame


# How far ahead (below 1) or behind (above 1) of its year's targets each demo district runs, in district order:
# the landing page then shows districts on pace and behind. A year's target is what the district has cleared
# so far this year, scaled to the whole year, times this; its quarter's target is a quarter of it.
TARGET_PACE = (0.8, 1.3, 0.9, 1.6)
TARGET_MINIMUM = {"house_m2": 500, "land_mu": 5, "parcels": 5}


def _targets(districts: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame, events: pd.DataFrame, today: date) -> pd.DataFrame:
    """Each district's targets (年度任务) for ``today``'s year, from its own clearances so far this year (the
    history) scaled to the whole year by TARGET_PACE, and a quarter of that for ``today``'s quarter:
    deterministic, with districts on pace and behind."""
    cleared = events[events["stage_to"] == "cleared"][["parcel_id", "at"]].copy()
    cleared["day"] = cleared["at"].dt.tz_convert(DEFAULT_TIMEZONE).dt.date
    areas = parcels[["id", "district_id", "floor_area_m2", "land_area_mu"]].rename(columns={"id": "parcel_id"})
    cleared = cleared.merge(areas, on="parcel_id")
    first, _last = period(today.year, None)
    rows = []
    for k, district_id in enumerate(districts["id"]):
        done = cleared[(cleared["district_id"] == district_id) & (cleared["day"] >= first) & (cleared["day"] <= today)]
        scale = TARGET_PACE[k % len(TARGET_PACE)] / pace_share(today.year, None, today)
        year = {
            "house_m2": math.ceil(max(float(done["floor_area_m2"].sum()) * scale, TARGET_MINIMUM["house_m2"]) / 100)
            * 100,  # whole hundreds of m²
            "land_mu": math.ceil(max(float(done["land_area_mu"].sum()) * scale, TARGET_MINIMUM["land_mu"])),
            "parcels": max(math.ceil(len(done) * scale), TARGET_MINIMUM["parcels"]),
        }
        for quarter, share in ((None, 1), (quarter_of(today), 4)):
            rows.append({"district_id": int(district_id), "year": today.year, "quarter": quarter,
                         "house_m2": round(year["house_m2"] / share, HOUSE_DECIMALS),
                         "land_mu": round(year["land_mu"] / share, LAND_DECIMALS),
                         "parcels": math.ceil(year["parcels"] / share), "recorded_by": ACTOR})
    frame = pd.DataFrame(rows)
    frame["quarter"] = frame["quarter"].astype("Int64")
    return frame


def _payments(
    draft: _Draft, parcels: gpd.GeoDataFrame, standards: pd.DataFrame, projects: gpd.GeoDataFrame
) -> pd.DataFrame:
    """One payment per paid parcel, on its paid date, at its district's standard rate; except the planted ones."""
    paid = np.flatnonzero(draft.stage >= PAID)
    house = draft.house[paid]
    rates = standards.pivot(index="district_id", columns="kind", values="rate_yuan")
    rates = rates.reindex(parcels["district_id"].to_numpy()[paid])
    rate = np.round(np.where(house, rates["house"], rates["land"]) * draft.rate_factor[paid], 0)
    basis = np.where(
        house,
        parcels["floor_area_m2"].to_numpy(float, na_value=np.nan)[paid],
        parcels["land_area_mu"].to_numpy(float, na_value=np.nan)[paid],
    )
    project = draft.project[paid]
    frame = pd.DataFrame(
        {
            "parcel_id": parcels["id"].to_numpy()[paid],
            "project_id": pd.Series(projects["id"].to_numpy()[np.maximum(project, 0)], dtype="Int64").mask(
                project < 0
            ),
            "paid_on": draft.dates[paid, PAID].astype(object),
            "amount_yuan": np.round(basis * rate, 2),
            "item": np.where(house, "house_value", "land"),
            "basis_area": basis,
            "basis_unit": np.where(house, "m2", "mu"),
            "rate_yuan": rate,
            "note": np.where(house, PAYMENT_NOTES["house"], PAYMENT_NOTES["land"]),
        }
    )
    again = frame.iloc[np.searchsorted(paid, list(draft.second_paid_on))].copy()
    again["paid_on"] = [d.astype(object) for d in draft.second_paid_on.values()]
    return pd.concat([frame, again]).sort_values(["parcel_id", "paid_on"], kind="stable").reset_index(drop=True)


def _event_times(draft: _Draft, rng: np.random.Generator) -> np.ndarray:
    """Local time of each stage change, (n, 6): office hours, later stages later in the day."""
    minutes = 8 * 60 + 30 + np.arange(len(STAGES)) * 75 + rng.integers(0, 70, (len(draft.geoms), len(STAGES)))
    return draft.dates.astype("datetime64[m]") + minutes


def _events(draft: _Draft, parcels: gpd.GeoDataFrame, times: np.ndarray) -> pd.DataFrame:
    """One event per stage reached, so replaying them gives a parcel's stage on any date."""
    ids = parcels["id"].to_numpy()
    last_note = parcels["holdout_note"].to_numpy()
    parts = []
    for k, stage in enumerate(STAGES):
        rows = np.flatnonzero(draft.stage >= k)
        parts.append(
            pd.DataFrame(
                {
                    "parcel_id": ids[rows],
                    "at": times[rows, k],
                    "actor": ACTOR,
                    "kind": "created" if k == 0 else "stage",
                    "stage_from": None if k == 0 else STAGES[k - 1],
                    "stage_to": stage,
                    "note": np.where(draft.stage[rows] == k, last_note[rows], None),
                }
            )
        )
    events = pd.concat(parts).sort_values("parcel_id", kind="stable").reset_index(drop=True)
    events["at"] = events["at"].dt.tz_localize(DEFAULT_TIMEZONE)
    return events


def _documents(draft: _Draft, times: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Every archive document each reached stage requires, uploaded the same day; the planted gaps left out."""
    parts = []
    for k, kind in enumerate(DOCUMENT_KINDS):
        lacking = [i for i, kinds in draft.missing_documents.items() if kind in kinds]
        rows = np.setdiff1d(np.flatnonzero(draft.stage >= k), lacking)
        parts.append(
            pd.DataFrame({"parcel_id": draft.ids[rows], "code": draft.codes[rows], "kind": kind, "at": times[rows, k]})
        )
    docs = pd.concat(parts).sort_values("parcel_id", kind="stable").reset_index(drop=True)
    docs["sha256"] = [hashlib.sha256(f"{c}/{k}".encode()).hexdigest() for c, k in zip(docs["code"], docs["kind"])]
    docs["filename"] = docs["code"] + "_" + docs["kind"] + ".pdf"
    # The size a scanned file would have, derived from its hash so that it is stable.
    docs["size_bytes"] = np.array([int(h[:6], 16) for h in docs["sha256"]], dtype=np.int64) % 2_000_000 + 40_000
    docs["uploaded_by"] = ACTOR
    upload = docs["at"].to_numpy() + rng.integers(5, 41, len(docs)).astype("timedelta64[m]")
    docs["uploaded_at"] = pd.DatetimeIndex(upload).tz_localize(DEFAULT_TIMEZONE)
    return docs[["parcel_id", "kind", "filename", "sha256", "size_bytes", "uploaded_by", "uploaded_at"]]


def _counts(parcels: gpd.GeoDataFrame) -> dict[str, dict[str, int]]:
    table = pd.crosstab(parcels["stage"], parcels["kind"])
    return {
        stage: {kind: int(table.at[stage, kind]) if stage in table.index and kind in table.columns else 0
                for kind in ("house", "land")}
        for stage in STAGES
    }


# ---------------------------------------------------------------------------------------------
# The committed layer files


BUILD_SRID = 4549
CITY_CENTRE_LONLAT = (118.98, 30.63)
LAYER_DISTRICTS = (  # id, code, name, quadrant (west?, north?)
    (1, "xijin", "西津", (True, True)),
    (2, "nanshan", "南山", (True, False)),
    (3, "helixi", "河沥溪", (False, False)),
    (4, "wangxi", "汪溪", (False, True)),
)


def build_layers() -> tuple[dict, dict]:
    """The districts and projects as GeoJSON FeatureCollections in EPSG:4326.

    Shapes are built in CGCS2000 / GK CM 120E around the city centre. The districts come from
    polygonizing one outline with two wavy boundary lines, so neighbours share exactly the same
    vertices, and stay gap- and overlap-free through any reprojection.
    """
    cx, cy = _reproject(np.array([shapely.Point(CITY_CENTRE_LONLAT)]), 4326, BUILD_SRID)[0].coords[0]
    outline, north_south, west_east = _district_lines(cx, cy)
    cells = shapely.get_parts(shapely.polygonize([shapely.union_all([outline.exterior, north_south, west_east])]))
    crossing = shapely.intersection(north_south, west_east)
    district_features = []
    for district_id, code, name, (west, north) in LAYER_DISTRICTS:
        cell = next(
            c for c in cells
            if (c.representative_point().x < crossing.x) == west and (c.representative_point().y > crossing.y) == north
        )
        district_features.append(_feature({"id": district_id, "code": code, "name": name}, cell))
    project_features = [_feature(props, geom) for props, geom in zip(LAYER_PROJECTS, _project_shapes(cx, cy))]
    return (
        {"type": "FeatureCollection", "features": district_features},
        {"type": "FeatureCollection", "features": project_features},
    )


LAYER_PROJECTS = (
    {"id": 1, "code": "hsr", "name": "高铁项目", "kind": "rail", "corridor_width_m": 60,
     "freeze_date": "2025-03-01", "deadline": "2026-12-31"},
    {"id": 2, "code": "xinan_road", "name": "新安路", "kind": "road", "corridor_width_m": 40,
     "freeze_date": "2026-02-10", "deadline": "2027-06-30"},
    {"id": 3, "code": "devzone", "name": "开发区专项债项目", "kind": "zone", "corridor_width_m": None,
     "freeze_date": "2025-06-15", "deadline": "2027-03-31"},
)


def _district_lines(cx: float, cy: float) -> tuple[Geometry, Geometry, Geometry]:
    t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    wobble = 1 + 0.05 * np.sin(3 * t + 0.7) + 0.035 * np.sin(5 * t + 2.1) + 0.02 * np.sin(9 * t + 0.3)
    outline = shapely.Polygon(np.column_stack([cx + 11500 * wobble * np.cos(t), cy + 9600 * wobble * np.sin(t)]))
    # Gentle slopes, so the two lines cross exactly once.
    s = np.arange(-13000.0, 13001.0, 400.0)
    north_south = shapely.LineString(
        np.column_stack([cx + 300 * np.sin(s / 2300 + 0.4) + 250 * np.sin(s / 900 + 1.3), cy + s])
    )
    west_east = shapely.LineString(
        np.column_stack([cx + s, cy - 200 + 350 * np.sin(s / 2700 + 1.0) + 200 * np.sin(s / 1100 + 0.2)])
    )
    return outline, north_south, west_east


def _project_shapes(cx: float, cy: float) -> list[Geometry]:
    def bezier(p0: tuple, p1: tuple, p2: tuple, n: int) -> np.ndarray:
        t = np.linspace(0, 1, n)[:, None]
        return (1 - t) ** 2 * np.array(p0) + 2 * t * (1 - t) * np.array(p1) + t**2 * np.array(p2)

    # The rail passes through its middle point: the control point is pulled out to make it so.
    start, middle, end = np.array([-8000.0, -3800.0]), np.array([-900.0, 2300.0]), np.array([7200.0, 4600.0])
    rail = bezier(start, 2 * middle - (start + end) / 2, end, 90)
    corner = np.array([600.0, -2250.0])
    road = np.vstack([
        [[-1800.0, -2000.0]],
        bezier(corner + [-350.0, 35.0], corner, corner + [190.0, -290.0], 12),
        [[1500.0, -3700.0]],
    ])
    angle = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    radius = np.array([1.0, 1.15, 0.9, 1.2, 1.05, 0.8, 0.95, 1.1, 0.85, 1.0, 1.2, 0.9, 1.05, 0.95])
    zone = np.column_stack([1.3 * radius * np.cos(angle), 0.9 * radius * np.sin(angle + 0.3)])
    zone *= math.sqrt(1_500_000 / shapely.Polygon(zone).area)
    offset = np.array([cx, cy])
    return [
        shapely.LineString(rail + offset),
        shapely.LineString(road + offset),
        shapely.Polygon(zone + offset + [5200.0, -3600.0]),
    ]


def _feature(properties: dict, geom: Geometry) -> dict:
    transformer = Transformer.from_crs(BUILD_SRID, 4326, always_xy=True)
    # RFC 7946: exterior rings counterclockwise. Both CRSs point x east and y north, so it survives.
    lonlat = shapely.transform(
        shapely.orient_polygons(geom),
        lambda xy: np.round(np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])), 7),
    )
    return {"type": "Feature", "properties": properties, "geometry": json.loads(shapely.to_geojson(lonlat))}


def write_layers(directory: Path = LAYER_DIR) -> None:
    """Write the committed layer files, one feature per line so diffs stay readable."""
    districts, projects = build_layers()
    for name, collection in (("districts", districts), ("projects", projects)):
        lines = ",\n".join(json.dumps(f, ensure_ascii=False) for f in collection["features"])
        text = '{"type": "FeatureCollection", "features": [\n' + lines + "\n]}\n"
        (directory / f"{name}.geojson").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_layers()
