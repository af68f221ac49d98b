"""Ad hoc overlap queries: what would a line or polygon hit, near-and-far bands, and alignment comparison.

Compensation is estimated item by item by the engine of ``gis.analysis.compensation`` (the same as a parcel's
own calculation and the public calculator): a house hit at all is taken whole (its floor area and survey facts),
land only for the part inside the footprint (the overlap's area, with the parcel's counted crops and attachments).
The standards are those in force on the parcel's contract date (its compensation decision, else its contract), or
today for a parcel without one: ``gis.records.standards`` states the rule once, for these estimates and the
above-standard check alike. The base rate (房屋价值补偿 or 土地补偿) is listed beside each parcel.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis.analysis.compensation import estimate_hits
from gis.domain.geometry import QueryGeometry
from gis.domain.privacy import mask_name
from gis.domain.tolerance import Tolerance, tolerance_sql
from gis.io.export import EXTRA_COLUMNS, PARCEL_COLUMNS, Column
from gis.platform.config import SQM_PER_MU
from gis.platform.errors import InvalidInput
from gis.records.footprints import measured_overlaps_sql
from gis.records.standards import base_item_sql, contract_date_sql, standard_in_force_sql

_QUERY_FOOTPRINT = "SELECT 0 AS key, ST_GeomFromWKB(:wkb, :srid) AS footprint"
_STANDARD_JOIN = standard_in_force_sql(district="pa.district_id", kind="pa.kind", item=base_item_sql("pa.kind"),
                                       on=contract_date_sql("pa", "CAST(:today AS date)"), alias="std")
# A str.format template ({geometry}), so the standard's fragment joins it with any braces escaped.
_HIT_SQL = """
SELECT m.parcel_id, pa.code, pa.kind, pa.district_id, d.code AS district, d.name AS district_name, pa.stage,
       pa.holdout, """ + contract_date_sql("pa", "CAST(:today AS date)") + """ AS priced_on,
       pa.legacy, pa.households, pa.floor_area_m2, pa.land_area_mu, pa.owner_name,
       m.parcel_m2, m.overlap_m2, std.rate_yuan, std.unit AS rate_unit, std.valid_from AS standard_from {geometry}
FROM measured m
-- Each parcel fetched by its key (OFFSET 0 keeps it so): the planner, which cannot tell how few pieces and hits a
-- footprint has, would otherwise read every parcel into a hash.
JOIN LATERAL (SELECT * FROM parcels p WHERE p.id = m.parcel_id OFFSET 0) pa ON TRUE
JOIN districts d ON d.id = pa.district_id
""" + _STANDARD_JOIN.replace("{", "{{").replace("}", "}}") + """
WHERE """ + tolerance_sql("m") + """
ORDER BY pa.code
"""
_BANDS_SQL = """
WITH line AS (SELECT ST_GeomFromWKB(:wkb, :srid) AS g),
near AS (
    SELECT pa.id, ST_Distance(pa.geom, line.g) AS distance_m
    FROM parcels pa, line
    WHERE ST_DWithin(pa.geom, line.g, :max_distance)
)
SELECT n.id AS parcel_id, n.distance_m, width_bucket(n.distance_m, CAST(:edges AS double precision[])) AS band,
       pa.code, pa.kind, d.code AS district, d.name AS district_name, pa.stage, pa.holdout, pa.legacy,
       pa.households, pa.floor_area_m2, pa.land_area_mu, ST_Area(pa.geom) AS parcel_m2, pa.owner_name {geometry}
FROM near n
JOIN LATERAL (SELECT * FROM parcels p WHERE p.id = n.id OFFSET 0) pa ON TRUE  -- by key, as in _HIT_SQL
JOIN districts d ON d.id = pa.district_id
WHERE n.distance_m < :max_distance
ORDER BY n.distance_m, pa.code
"""


@dataclass(frozen=True)
class Totals:
    parcels: int
    households: int
    house_m2: float
    land_mu: float
    overlap_m2: float
    holdouts: int
    estimated_compensation_yuan: float | None

    @classmethod
    def of(cls, hits: Sequence[dict[str, Any]]) -> Totals:
        comp = [h["estimated_compensation_yuan"] for h in hits]
        return cls(
            parcels=len(hits),
            households=sum(h["households"] or 0 for h in hits),
            house_m2=round(sum(h["floor_area_m2"] or 0 for h in hits if h["kind"] == "house"), 2),
            land_mu=round(sum(h["overlap_mu"] for h in hits if h["kind"] == "land"), 4),
            overlap_m2=round(sum(h["overlap_m2"] for h in hits), 2),
            holdouts=sum(1 for h in hits if h["holdout"]),
            estimated_compensation_yuan=round(sum(c for c in comp if c is not None), 2) if hits else 0.0,
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _hit(row: Any, reveal_personal: bool, estimate: Decimal | None, *, geometry: bool, wkb: bool) -> dict[str, Any]:
    overlap_mu = row["overlap_m2"] / SQM_PER_MU
    rate = float(row["rate_yuan"]) if row["rate_yuan"] is not None else None
    hit = {
        "parcel_id": row["parcel_id"], "code": row["code"], "kind": row["kind"], "district": row["district"],
        "district_name": row["district_name"], "stage": row["stage"], "holdout": row["holdout"],
        "legacy": row["legacy"], "households": row["households"], "floor_area_m2": row["floor_area_m2"],
        "land_area_mu": row["land_area_mu"], "parcel_area_m2": round(row["parcel_m2"], 3),
        "overlap_m2": round(row["overlap_m2"], 3), "overlap_mu": round(overlap_mu, 6),
        "share": round(row["overlap_m2"] / row["parcel_m2"], 6) if row["parcel_m2"] else 0.0,
        "standard_rate_yuan": rate, "standard_unit": row["rate_unit"],
        "standard_valid_from": row["standard_from"].isoformat() if row["standard_from"] else None,
        "estimated_compensation_yuan": float(estimate) if estimate is not None else None,
        "owner_name": row["owner_name"] if reveal_personal else mask_name(row["owner_name"]),
    }
    if geometry:
        hit["geometry"] = json.loads(row["geometry"])
    if wkb:  # WKB in the working CRS, for a download
        hit["geom"] = bytes(row["geom"])
    return hit


def _by_district(hits: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for h in hits:
        groups.setdefault(h["district"], []).append(h)
    return [{"district": k, "district_name": v[0]["district_name"]} | Totals.of(v).as_dict()
            for k, v in sorted(groups.items())]


def _geom_params(geom: BaseGeometry, srid: int) -> dict[str, Any]:
    return {"wkb": shapely.to_wkb(geom), "srid": srid}


def footprint_geojson(conn: Connection, footprint: BaseGeometry, srid: int) -> dict[str, Any]:
    """A footprint in the working CRS as GeoJSON in WGS 84, as the maps draw it."""
    gj = conn.execute(text("SELECT ST_AsGeoJSON(ST_Transform(ST_GeomFromWKB(:wkb, :srid), 4326), 7)"),
                      _geom_params(footprint, srid)).scalar_one()
    return json.loads(gj)


def overlap_hits(conn: Connection, query: QueryGeometry, srid: int, tolerance: Tolerance, today: date, *,
                 reveal_personal: bool = False, with_geometry: bool = False,
                 with_wkb: bool = False) -> list[dict[str, Any]]:
    """Every parcel the query footprint overlaps beyond the tolerance, with area, share and estimate.

    ``with_geometry`` adds each parcel as GeoJSON in WGS 84; ``with_wkb`` its WKB in the working CRS (``geom``),
    which the file downloads write."""
    sql, params = overlap_statement(query, srid, tolerance, today, with_geometry=with_geometry, with_wkb=with_wkb)
    rows = conn.execute(text(sql), params).mappings().all()
    estimates = estimate_hits(conn, rows)  # the itemised engine, as for a parcel's own calculation
    return [_hit(r, reveal_personal, estimates[r["parcel_id"]], geometry=with_geometry, wkb=with_wkb) for r in rows]


def overlap_statement(query: QueryGeometry, srid: int, tolerance: Tolerance, today: date, *,
                      with_geometry: bool = False, with_wkb: bool = False) -> tuple[str, dict[str, Any]]:
    """The overlap query's SQL and its bound parameters (for ``overlap_hits``, and for a benchmark's EXPLAIN)."""
    geometry = ", ST_AsGeoJSON(ST_Transform(pa.geom, 4326), 7) AS geometry" if with_geometry else ""
    if with_wkb:
        geometry += ", ST_AsBinary(pa.geom) AS geom"
    sql = measured_overlaps_sql(_QUERY_FOOTPRINT) + _HIT_SQL.format(geometry=geometry)
    return sql, _geom_params(query.footprint, srid) | {**tolerance.params, "today": today}


def overlap_report(conn: Connection, query: QueryGeometry, srid: int, tolerance: Tolerance, today: date, *,
                   reveal_personal: bool = False, with_geometry: bool = False) -> dict[str, Any]:
    """The overlap query's answer: the parcels, the totals, and the totals by district."""
    hits = overlap_hits(conn, query, srid, tolerance, today, reveal_personal=reveal_personal,
                        with_geometry=with_geometry)
    return {
        "query": _query_facts(conn, query, srid),
        "tolerance": tolerance.as_dict(),
        "totals": Totals.of(hits).as_dict(),
        "by_district": _by_district(hits),
        "parcels": hits,
    }


def _query_facts(conn: Connection, query: QueryGeometry, srid: int) -> dict[str, Any]:
    return {
        "type": query.geometry.geom_type,
        "width_m": query.width_m,
        "crs": f"EPSG:{query.source_srid}",
        "footprint_m2": round(query.footprint.area, 2),
        "footprint_mu": round(query.footprint.area / SQM_PER_MU, 4),
        "footprint": footprint_geojson(conn, query.footprint, srid),
    }


def parse_bands(edges: Sequence[float]) -> list[float]:
    """Band edges in metres from the centre line, strictly increasing and starting at 0."""
    values = [float(e) for e in edges]
    if len(values) < 2:
        raise InvalidInput("give at least two band edges, for example 0,30,60,120,300", "bands")
    if values[0] != 0 or any(b <= a for a, b in zip(values, values[1:])):
        raise InvalidInput("band edges must start at 0 and increase strictly", "bands")
    if values[-1] > 5000:
        raise InvalidInput("the outermost band may reach at most 5000 m", "bands")
    return values


def distance_bands(conn: Connection, query: QueryGeometry, srid: int, edges: Sequence[float], *,
                   reveal_personal: bool = False, with_wkb: bool = False) -> dict[str, Any]:
    """Parcels near a line, by their distance from the centre line, in bands with totals.

    A parcel belongs to the band of its nearest point; one crossing the line is at distance 0.
    """
    if not query.is_line:
        raise InvalidInput("distance bands are measured from a centre line: give a LineString", "geometry")
    edges = parse_bands(edges)
    params = _geom_params(query.geometry, srid) | {"max_distance": edges[-1], "edges": edges}
    bands: list[list[dict[str, Any]]] = [[] for _ in edges[:-1]]
    sql = _BANDS_SQL.format(geometry=", ST_AsBinary(pa.geom) AS geom" if with_wkb else "")
    for row in conn.execute(text(sql), params).mappings():
        item = {
            "parcel_id": row["parcel_id"], "code": row["code"], "kind": row["kind"], "district": row["district"],
            "district_name": row["district_name"], "stage": row["stage"], "holdout": row["holdout"],
            "households": row["households"], "floor_area_m2": row["floor_area_m2"],
            "land_area_mu": row["land_area_mu"], "parcel_area_m2": round(row["parcel_m2"], 3),
            "distance_m": round(row["distance_m"], 3),
            "owner_name": row["owner_name"] if reveal_personal else mask_name(row["owner_name"]),
        }
        if with_wkb:
            item["geom"] = bytes(row["geom"])
        bands[row["band"] - 1].append(item)
    return {
        "bands": [
            {"from_m": lo, "to_m": hi, "parcels": len(items),
             "households": sum(i["households"] or 0 for i in items),
             "house_m2": round(sum(i["floor_area_m2"] or 0 for i in items if i["kind"] == "house"), 2),
             "land_mu": round(sum(i["parcel_area_m2"] for i in items if i["kind"] == "land") / SQM_PER_MU, 4),
             "holdouts": sum(1 for i in items if i["holdout"]),
             "items": items}
            for lo, hi, items in zip(edges, edges[1:], bands)
        ],
    }


_CROSSINGS_SQL = """
WITH drawn AS (SELECT ST_GeomFromWKB(:wkb, :srid) AS g)
SELECT p.id, p.code, p.name, p.kind,
       ST_Length(ST_Intersection(drawn.g, p.footprint)) AS inside_m,
       ST_Area(ST_Intersection(drawn.g, p.footprint)) AS inside_m2,
       ST_AsGeoJSON(ST_Transform(ST_CollectionExtract(ST_Intersection(drawn.g, ST_Boundary(p.footprint)), 1), 4326),
                    7) AS points
FROM projects p, drawn
WHERE p.archived_at IS NULL AND ST_Intersects(p.footprint, drawn.g)
ORDER BY p.id
"""


def crossings(conn: Connection, query: QueryGeometry, srid: int) -> dict[str, Any]:
    """Which active projects' red lines (footprints) a drawn line or polygon meets, and the drawn line's length.

    Measured in the working CRS (projected metres), on the drawn geometry itself, not on a corridor around it:
    a line's length, and per project the length of the line inside its footprint and the points where the line
    crosses its red line (WGS 84); a polygon's area, and per project the area it shares with the footprint.
    """
    rows = conn.execute(text(_CROSSINGS_SQL), _geom_params(query.geometry, srid)).mappings().all()
    projects = []
    for r in rows:
        item: dict[str, Any] = {"id": r["id"], "code": r["code"], "name": r["name"], "kind": r["kind"]}
        if query.is_line:
            points = json.loads(r["points"])["coordinates"] if r["points"] else []
            item |= {"inside_m": round(r["inside_m"], 2),
                     "crossing_points": [points] if points and not isinstance(points[0], list) else points}
        else:
            item["overlap_m2"] = round(r["inside_m2"], 2)
        projects.append(item)
    shape_facts = ({"length_m": round(query.geometry.length, 2)} if query.is_line else
                   {"area_m2": round(query.geometry.area, 2), "area_mu": round(query.geometry.area / SQM_PER_MU, 4)})
    return {"type": query.geometry.geom_type, **shape_facts, "projects": projects}


def compare_alignments(conn: Connection, candidates: Sequence[tuple[str, QueryGeometry]], srid: int,
                       tolerance: Tolerance, today: date, *, reveal_personal: bool = False) -> dict[str, Any]:
    """Candidate alignments side by side (比选): totals, holdouts hit, and the parcels every one hits."""
    hits_by = _candidate_hits(conn, candidates, srid, tolerance, today, reveal_personal=reveal_personal)
    results = [{
        "name": name,
        "query": _query_facts(conn, query, srid),
        "totals": Totals.of(hits).as_dict(),
        "by_district": _by_district(hits),
        "holdouts": [{k: h[k] for k in ("code", "district_name", "stage", "owner_name", "overlap_m2")}
                     for h in hits if h["holdout"]],
    } for (name, query), hits in zip(candidates, hits_by)]
    common = _hit_by_all(hits_by)
    return {"tolerance": tolerance.as_dict(), "candidates": results, "hit_by_all": common,
            "hit_by_all_count": len(common)}


def _candidate_hits(conn: Connection, candidates: Sequence[tuple[str, QueryGeometry]], srid: int,
                    tolerance: Tolerance, today: date, *, reveal_personal: bool,
                    with_wkb: bool = False) -> list[list[dict[str, Any]]]:
    if len(candidates) < 2:
        raise InvalidInput("compare at least two candidates", "candidates")
    return [overlap_hits(conn, query, srid, tolerance, today, reveal_personal=reveal_personal, with_wkb=with_wkb)
            for _, query in candidates]


def _hit_by_all(hits_by: Sequence[Sequence[dict[str, Any]]]) -> list[str]:
    return sorted(set.intersection(*({h["code"] for h in hits} for hits in hits_by)))


# ---------------------------------------------------------------------------------------------
# Downloads: the same answers as rows for gis.io.export (every format), in the order a planner reads them.

_PARCEL = {c.key: c for c in PARCEL_COLUMNS}
_STANDARD_RATE = Column("standard_rate_yuan", "补偿标准(元/单位)", "float", shp="std_rate")
_STANDARD_UNIT = Column("standard_unit", "标准单位", values={"m2": "㎡", "mu": "亩"}, shp="std_unit")
_BAND = Column("band", "距离带", shp="band", width=12)
OVERLAP_EXPORT_COLUMNS: tuple[Column, ...] = (
    *(_PARCEL[k] for k in ("code", "kind", "district_code", "district_name", "owner_name", "households",
                           "floor_area_m2", "land_area_mu", "stage", "holdout", "legacy")),
    *(EXTRA_COLUMNS[k] for k in ("overlap_m2", "overlap_mu", "share")),
    _PARCEL["area_m2"], _PARCEL["area_mu"], _STANDARD_RATE, _STANDARD_UNIT, EXTRA_COLUMNS["compensation_yuan"],
)
BAND_EXPORT_COLUMNS: tuple[Column, ...] = (
    _BAND, EXTRA_COLUMNS["distance_m"],
    *(_PARCEL[k] for k in ("code", "kind", "district_code", "district_name", "owner_name", "households",
                           "floor_area_m2", "land_area_mu", "stage", "holdout")),
    _PARCEL["area_m2"], _PARCEL["area_mu"],
)


def overlap_export_rows(hits: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``overlap_hits`` (with ``with_wkb``) as rows of ``OVERLAP_EXPORT_COLUMNS``."""
    return [h | {"district_code": h["district"], "area_m2": h["parcel_area_m2"],
                 "area_mu": h["parcel_area_m2"] / SQM_PER_MU, "compensation_yuan": h["estimated_compensation_yuan"]}
            for h in hits]


def band_export_rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """``distance_bands`` (with ``with_wkb``) as rows of ``BAND_EXPORT_COLUMNS``, nearest band first."""
    return [item | {"band": f"{band['from_m']:g}–{band['to_m']:g} m", "district_code": item["district"],
                    "area_m2": item["parcel_area_m2"], "area_mu": item["parcel_area_m2"] / SQM_PER_MU}
            for band in answer["bands"] for item in band["items"]]


COMPARE_SUMMARY_COLUMNS: tuple[Column, ...] = (
    Column("candidate", "方案", width=16),
    Column("parcels", "占用地块(宗)", "int"),
    Column("households", "户数", "int"),
    Column("house_m2", "房屋建筑面积(㎡)", "m2"),
    Column("land_mu", "占用土地(亩)", "mu"),
    Column("overlap_m2", "占用面积(㎡)", "m2"),
    Column("holdouts", "钉子户(户)", "int"),
    Column("estimated_compensation_yuan", "估算补偿(元)", "float"),
    Column("footprint_m2", "用地范围(㎡)", "m2"),
    Column("hit_by_all", "各方案共同占用(宗)", "int"),
)
COMPARE_EXPORT_COLUMNS: tuple[Column, ...] = (Column("candidate", "方案", width=16), *OVERLAP_EXPORT_COLUMNS)


def compare_export(conn: Connection, candidates: Sequence[tuple[str, QueryGeometry]], srid: int,
                   tolerance: Tolerance, today: date) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """The comparison for a download: the side-by-side rows (``COMPARE_SUMMARY_COLUMNS``, one per candidate)
    and each candidate's parcels (``COMPARE_EXPORT_COLUMNS``, with WKB; personal data left to the writer)."""
    hits_by = _candidate_hits(conn, candidates, srid, tolerance, today, reveal_personal=True, with_wkb=True)
    common = len(_hit_by_all(hits_by))
    summary = [{"candidate": name, **Totals.of(hits).as_dict(), "footprint_m2": query.footprint.area,
                "hit_by_all": common} for (name, query), hits in zip(candidates, hits_by)]
    parcels = [[row | {"candidate": name} for row in overlap_export_rows(hits)]
               for (name, _), hits in zip(candidates, hits_by)]
    return summary, parcels
