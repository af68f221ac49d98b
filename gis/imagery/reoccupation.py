"""Cleared land occupied again (再次占用): a structure or planting appearing on land after it was handed over.

For each parcel at stage cleared at the end of the as-of day, the imagery of one kind (heights above ground, a
surface model, or a classification) acquired after the day it was cleared and by the as-of day, covering the
parcel: the first such epoch shows the land as cleared, the latest shows it now. When there are at least two,
they are compared cell by cell with the rule of the post-freeze check (``gis.imagery.change.parcel_change``:
a rise above the threshold, or newly built or vegetated cells), and the parcel is flagged when the changed area
and share reach the rule's minimums. With a single later epoch there is nothing to compare against: the parcel
is counted as not checkable. This is the early warning of a second compensation claim (二次补偿).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import shapely
from sqlalchemy import Connection, text

from gis.domain.stages import STAGE_AT_SQL, end_of_day
from gis.imagery.change import CHANGE_KINDS, ChangeRule, aligned_epochs, parcel_change
from gis.imagery.layers import get_layer, transform_geom, working_crs
from gis.platform.db import working_srid

# Per cleared parcel and kind: the first and the latest epoch after its clearance day covering it.
EPOCHS_SQL = f"""
WITH cleared AS (
    SELECT pa.id, pa.geom, ST_Area(pa.geom) AS area_m2,
           (SELECT CAST(timezone(:tz, max(e.at)) AS date) FROM parcel_events e
            WHERE e.parcel_id = pa.id AND e.stage_to = 'cleared' AND e.at < :end) AS cleared_on
    FROM parcels pa
    WHERE {STAGE_AT_SQL.format(parcel="pa.id", end=":end")} = 'cleared'
      AND EXISTS (SELECT 1 FROM imagery_layers l WHERE l.footprint && pa.geom AND l.acquired_on <= :as_of)
),
later AS (
    SELECT c.id, c.area_m2, c.cleared_on, l.kind, l.id AS layer_id, l.acquired_on
    FROM cleared c JOIN imagery_layers l
      ON l.footprint && c.geom AND ST_Covers(l.footprint, c.geom)
     AND l.acquired_on > c.cleared_on AND l.acquired_on <= :as_of AND l.kind = ANY(:kinds)
)
SELECT id, area_m2, cleared_on, kind, count(*) AS epochs,
       (array_agg(layer_id ORDER BY acquired_on, layer_id))[1] AS first_id,
       (array_agg(layer_id ORDER BY acquired_on DESC, layer_id DESC))[1] AS latest_id,
       ST_AsBinary((SELECT geom FROM parcels WHERE parcels.id = later.id)) AS wkb
FROM later
GROUP BY id, area_m2, cleared_on, kind
ORDER BY id, array_position(CAST(:kinds AS text[]), kind)
"""


def reoccupation(conn: Connection, rule_of: Any, *, as_of: date,
                 tz: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The cleared parcels compared (each once, on the first kind in CHANGE_KINDS order with two later epochs),
    their changed area and share and the flag; and counts: checked, single epoch (not checkable).

    ``rule_of(kind)`` gives the ChangeRule for a layer kind."""
    rows = conn.execute(text(EPOCHS_SQL), {"as_of": as_of, "end": end_of_day(as_of, tz), "tz": tz,
                                          "kinds": list(CHANGE_KINDS)}).all()
    chosen: dict[int, Any] = {}
    single: set[int] = set()
    for r in rows:
        if r.epochs >= 2 and r.id not in chosen:
            chosen[r.id] = r
        elif r.epochs < 2:
            single.add(r.id)
    by_pair: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for r in chosen.values():
        by_pair[(r.first_id, r.latest_id)].append(r)
    area_crs = working_crs(working_srid(conn))
    out: list[dict[str, Any]] = []
    for (first_id, latest_id), parcels in by_pair.items():
        first, latest = get_layer(conn, first_id), get_layer(conn, latest_id)
        rule: ChangeRule = rule_of(latest.kind)
        geoms = transform_geom(shapely.from_wkb([p.wkb for p in parcels]), area_crs, latest.crs)
        with aligned_epochs(first, latest) as (a, b):
            for p, geom in zip(parcels, geoms, strict=True):
                change = parcel_change(a, b, geom, rule, raster_crs=latest.crs, area_crs=area_crs)
                share = change.changed_m2 / p.area_m2 if p.area_m2 > 0 else 0.0
                out.append({
                    "parcel_id": p.id, "cleared_on": p.cleared_on, "kind": latest.kind,
                    "cleared_epoch": first.acquired_on, "latest_epoch": latest.acquired_on,
                    "changed_m2": change.changed_m2, "changed_share": share, "built_m2": change.built_m2,
                    "vegetation_m2": change.vegetation_m2, "max_gain_m": change.max_gain_m,
                    "flagged": rule.flags(change.changed_m2, share),
                })
    return out, {"parcels_compared": len(out), "parcels_single_epoch": len(single - set(chosen))}
