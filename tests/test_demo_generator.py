"""The synthetic demo city generator: pure Python, no database."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import date, timedelta
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import STRtree

from gis.demo.generator import (
    DOCUMENT_KINDS,
    PARCEL_COLUMNS,
    STAGES,
    DemoCity,
    generate_city,
    load_layers,
)
from gis.platform.config import SQM_PER_MU

N = 2000
SEED = 42
TODAY = date(2026, 11, 26)
PREFIX = {1: "XJ", 2: "NS", 3: "HL", 4: "WX"}
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate_city(N, seed=SEED)


@pytest.fixture(scope="module")
def parcels(city: DemoCity) -> pd.DataFrame:
    return city.parcels


def stage_index(parcels: pd.DataFrame) -> np.ndarray:
    return parcels["stage"].map({s: k for k, s in enumerate(STAGES)}).to_numpy()


def by_code(parcels: pd.DataFrame, codes: list[str]) -> pd.DataFrame:
    return parcels.set_index("code").loc[codes]


def footprint_shares(city: DemoCity) -> np.ndarray:
    """(parcels, projects) share of each parcel's area inside each project footprint."""
    geoms = city.parcels.geometry.to_numpy()
    shares = np.zeros((len(geoms), len(city.projects)))
    for j, footprint in enumerate(city.projects.geometry):
        shares[:, j] = shapely.area(shapely.intersection(geoms, footprint)) / shapely.area(geoms)
    return shares


# --- layers -------------------------------------------------------------------------------


def test_districts_tile_without_gaps_or_overlaps() -> None:
    districts, _ = load_layers()
    geoms = districts.geometry.to_numpy()
    assert list(districts["code"]) == ["xijin", "nanshan", "helixi", "wangxi"]
    assert list(districts["name"]) == ["西津", "南山", "河沥溪", "汪溪"]
    assert shapely.is_valid(geoms).all()
    for a, b in combinations(geoms, 2):
        assert shapely.intersection(a, b).area < 1.0
    city = shapely.union_all(geoms)
    assert city.geom_type == "Polygon" and not list(city.interiors)
    assert abs(city.area - shapely.area(geoms).sum()) < 1.0
    xmin, ymin, xmax, ymax = city.bounds
    assert 20_000 < xmax - xmin < 28_000 and 16_000 < ymax - ymin < 24_000
    # Irregular: no district is (nearly) its own bounding box.
    assert (shapely.area(geoms) / shapely.area(shapely.envelope(geoms)) < 0.95).all()


def test_projects_as_specified() -> None:
    districts, projects = load_layers()
    projects = projects.set_index("code")
    rail, road, zone = projects.loc["hsr"], projects.loc["xinan_road"], projects.loc["devzone"]
    assert 17_000 < rail["centerline"].length < 19_000 and rail["corridor_width_m"] == 60
    assert 3_500 < road["centerline"].length < 4_500 and road["corridor_width_m"] == 40
    assert 1.4e6 < zone["footprint"].area < 1.6e6 and pd.isna(zone["corridor_width_m"]) and zone["centerline"] is None
    assert rail["footprint"].area == pytest.approx(rail["centerline"].length * 60, rel=0.01)
    crossed = {p: int(districts.intersects(projects.loc[p, "centerline"]).sum()) for p in ("hsr", "xinan_road")}
    assert crossed["hsr"] >= 3 and crossed["xinan_road"] >= 2
    for footprint in projects.geometry:
        assert footprint.geom_type == "MultiPolygon" and footprint.is_valid
    assert all(date(2025, 1, 1) <= d <= date(2026, 3, 31) for d in projects["freeze_date"])
    assert all(date(2026, 1, 1) <= d <= date(2027, 12, 31) for d in projects["deadline"])


# --- determinism and shape of the output ---------------------------------------------------


def test_same_seed_same_city(city: DemoCity) -> None:
    again = generate_city(N, seed=SEED)
    assert (shapely.to_wkb(again.parcels.geometry.to_numpy()) == shapely.to_wkb(city.parcels.geometry.to_numpy())).all()
    pd.testing.assert_frame_equal(again.parcels.drop(columns="geometry"), city.parcels.drop(columns="geometry"))
    for name in ("events", "payments", "documents", "standards"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(city, name))
    assert again.planted == city.planted


def test_other_seed_other_city(city: DemoCity) -> None:
    other = generate_city(N, seed=SEED + 1)
    assert len(other.parcels) == N
    same = shapely.to_wkb(other.parcels.geometry.to_numpy()) == shapely.to_wkb(city.parcels.geometry.to_numpy())
    assert same.mean() < 0.01
    assert (other.parcels["owner_name"] != city.parcels["owner_name"]).mean() > 0.5


def test_exact_count_columns_and_codes(parcels: pd.DataFrame) -> None:
    assert list(parcels.columns) == list(PARCEL_COLUMNS)
    assert len(parcels) == N
    assert list(parcels["id"]) == list(range(1, N + 1))
    assert parcels["code"].is_unique
    for code, district_id in zip(parcels["code"], parcels["district_id"]):
        assert re.fullmatch(rf"{PREFIX[district_id]}-\d{{6}}", code)
    assert set(parcels["kind"]) == {"house", "land"}
    assert set(parcels["stage"]) <= set(STAGES)


def test_owners_are_plausible(parcels: pd.DataFrame) -> None:
    for name in parcels["owner_name"]:
        assert 2 <= len(name) <= 3
    for number in parcels["owner_id_number"]:
        assert re.fullmatch(r"3418\d{13}[\dX]", number)
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        assert date(1930, 1, 1) <= born <= date(2008, 1, 1)
        check = "10X98765432"[sum(int(c) * w for c, w in zip(number[:17], ID_WEIGHTS)) % 11]
        assert number[17] == check
    assert parcels["owner_phone"].str.fullmatch(r"1[358]\d{9}").all()
    houses = parcels["kind"] == "house"
    assert parcels.loc[houses, "households"].between(1, 3).all()
    assert (parcels.loc[~houses, "households"] == 1).all()


# --- geometry -----------------------------------------------------------------------------


def test_parcels_valid(parcels: pd.DataFrame) -> None:
    geoms = parcels.geometry.to_numpy()
    assert shapely.is_valid(geoms).all()
    assert not shapely.is_empty(geoms).any()
    assert (shapely.area(geoms) >= 20).all()
    assert (shapely.get_type_id(geoms) == shapely.GeometryType.MULTIPOLYGON).all()
    assert parcels.crs.to_epsg() == 4549


def test_each_parcel_lies_in_its_own_district(city: DemoCity) -> None:
    geoms = city.parcels.geometry.to_numpy()
    own = city.districts.set_index("id").geometry.loc[city.parcels["district_id"]].to_numpy()
    assert (shapely.area(shapely.intersection(geoms, own)) >= 0.999 * shapely.area(geoms)).all()


def test_only_the_planted_pair_overlaps(city: DemoCity) -> None:
    geoms = city.parcels.geometry.to_numpy()
    a, b = STRtree(geoms).query(geoms, predicate="intersects")
    a, b = a[a < b], b[a < b]
    overlap = shapely.area(shapely.intersection(geoms[a], geoms[b]))
    codes = city.parcels["code"].to_numpy()
    found = [sorted([codes[i], codes[j]]) for i, j in zip(a[overlap >= 0.01], b[overlap >= 0.01])]
    assert found == [sorted(city.planted["overlapping_pair"])]
    assert 100 <= overlap.max() <= 300
    pair = by_code(city.parcels, city.planted["overlapping_pair"])
    assert (stage_index(pair) >= STAGES.index("paid")).all()


def test_areas_realistic(parcels: pd.DataFrame) -> None:
    area = parcels.geometry.area
    houses = parcels["kind"] == "house"
    assert area[houses].between(30, 1000).all()
    assert (area[~houses] / SQM_PER_MU <= 30).all()
    assert 100 <= area[houses].median() <= 400
    floors = parcels.loc[houses, "floor_area_m2"].astype(float) / area[houses]
    assert np.allclose(floors, np.round(floors), atol=0.01) and floors.round().between(1, 4).all()
    assert np.allclose(parcels.loc[~houses, "land_area_mu"].astype(float), area[~houses] / SQM_PER_MU, atol=1e-4)
    assert parcels.loc[houses, "land_area_mu"].isna().all() and parcels.loc[~houses, "floor_area_m2"].isna().all()


def test_footprints_hold_hundreds_of_parcels_at_5000() -> None:
    city = generate_city(5000, seed=SEED)
    geoms = city.parcels.geometry.to_numpy()
    tree = STRtree(geoms)
    for footprint in city.projects.geometry:
        hit = tree.query(footprint, predicate="intersects")
        share = shapely.area(shapely.intersection(geoms[hit], footprint)) / shapely.area(geoms[hit])
        assert (share > 0.01).sum() >= 100
        assert ((share > 0.01) & (share < 0.99)).sum() >= 20  # some only partly inside
    # Most parcels lie in or near a project.
    near = shapely.dwithin(geoms[:, None], city.projects.geometry.to_numpy()[None, :], 100).any(axis=1)
    assert near.mean() > 0.9


# --- history ------------------------------------------------------------------------------


def test_stage_dates_consistent(city: DemoCity) -> None:
    parcels = city.parcels
    stages = stage_index(parcels)
    legacy = parcels["legacy"].to_numpy()
    for k, column in enumerate(f"{s}_on" for s in STAGES):
        dates = parcels[column]
        assert dates[stages >= k].notna().all() and dates[stages < k].isna().all()
        reached = dates[stages >= k]
        assert (reached <= TODAY).all()
        assert (reached[~legacy[stages >= k]] >= date(2024, 1, 1)).all()
        if k:
            previous = parcels[f"{STAGES[k - 1]}_on"][stages >= k]
            assert (reached >= previous).all()
    since = [row[f"{row['stage']}_on"] for _, row in parcels.iterrows()]
    assert list(parcels["stage_since"]) == since


def test_stage_mix(parcels: pd.DataFrame) -> None:
    share = parcels["stage"].value_counts(normalize=True)
    assert set(share.index) == set(STAGES)
    assert 0.15 <= share["cleared"] <= 0.4


def test_events_replay_to_the_stage(city: DemoCity) -> None:
    events, parcels = city.events, city.parcels.set_index("id")
    assert str(events["at"].dt.tz) == "Asia/Shanghai"
    local = events["at"].dt.tz_convert("Asia/Shanghai")
    assert local.dt.hour.between(8, 17).all()
    for parcel_id, history in events.groupby("parcel_id"):
        parcel = parcels.loc[parcel_id]
        assert list(history["kind"]) == ["created"] + ["stage"] * (len(history) - 1)
        assert list(history["stage_to"]) == list(STAGES[: STAGES.index(parcel["stage"]) + 1])
        assert history["stage_from"].iloc[0] is None or pd.isna(history["stage_from"].iloc[0])
        assert list(history["stage_from"].iloc[1:]) == list(history["stage_to"].iloc[:-1])
        assert history["at"].is_monotonic_increasing
        assert [t.date() for t in local[history.index]] == [parcel[f"{s}_on"] for s in history["stage_to"]]
    assert events["parcel_id"].nunique() == len(parcels)


def test_replay_gives_stage_on_any_date(city: DemoCity) -> None:
    on = date(2026, 6, 1)
    events = city.events[city.events["at"].dt.tz_convert("Asia/Shanghai").dt.date <= on]
    replayed = events.groupby("parcel_id")["stage_to"].last()
    parcels = city.parcels.set_index("id")
    for parcel_id, stage in replayed.items():
        dates = [parcels.at[parcel_id, f"{s}_on"] for s in STAGES]
        reached = [s for s, d in zip(STAGES, dates) if pd.notna(d) and d <= on]
        assert stage == reached[-1]


# --- payments, documents, planted cases ----------------------------------------------------


def test_payments_match_standards_except_planted(city: DemoCity) -> None:
    parcels = city.parcels.set_index("id")
    payments = city.payments
    paid = set(parcels.index[stage_index(city.parcels) >= STAGES.index("paid")])
    assert set(payments["parcel_id"]) == paid
    twice = set(parcels.index[parcels["code"].isin(city.planted["paid_twice"])])
    counts = payments["parcel_id"].value_counts()
    assert set(counts.index[counts > 1]) == twice and counts.max() == 2
    rates = city.standards.set_index(["district_id", "kind"])["rate_yuan"]
    above = set(city.planted["above_standard"])
    assert len(above) == 3
    for payment in payments.itertuples():
        parcel = parcels.loc[payment.parcel_id]
        standard = rates.loc[(parcel["district_id"], parcel["kind"])]
        basis = parcel["floor_area_m2"] if parcel["kind"] == "house" else parcel["land_area_mu"]
        assert payment.basis_area == basis and payment.basis_unit == ("m2" if parcel["kind"] == "house" else "mu")
        assert payment.amount_yuan == round(basis * payment.rate_yuan, 2)
        if parcel["code"] in above:
            assert 1.2 <= payment.rate_yuan / standard <= 1.5
        else:
            assert payment.rate_yuan == standard
    first = payments.drop_duplicates("parcel_id")
    assert (first["paid_on"].to_numpy() == parcels.loc[first["parcel_id"], "paid_on"].to_numpy()).all()
    second = payments[payments.duplicated("parcel_id")].iloc[0]
    original = first.set_index("parcel_id").loc[second["parcel_id"]]
    assert timedelta(days=7) <= second["paid_on"] - original["paid_on"] <= timedelta(days=60)
    assert second["amount_yuan"] == original["amount_yuan"] and second["paid_on"] <= TODAY


def test_standards_differ_by_district(city: DemoCity) -> None:
    standards = city.standards
    assert len(standards) == 8
    houses, land = standards[standards["kind"] == "house"], standards[standards["kind"] == "land"]
    assert houses["rate_yuan"].between(2500, 4200).all() and houses["rate_yuan"].nunique() == 4
    assert land["rate_yuan"].between(45000, 80000).all() and land["rate_yuan"].nunique() == 4
    assert (standards["valid_from"] == date(2024, 1, 1)).all()
    # One base standard per district and kind; a standard's end is derived from its successor, not stored.
    assert (standards["item"] == standards["kind"].map({"house": "house_value", "land": "land"})).all()
    assert "valid_to" not in standards


def test_paid_not_demolished_is_exact(city: DemoCity) -> None:
    parcels = city.parcels
    at_paid = parcels[parcels["stage"] == "paid"]
    days = {code: (TODAY - paid_on).days for code, paid_on in zip(at_paid["code"], at_paid["paid_on"])}
    late = {code: d for code, d in days.items() if d > 30}
    assert sorted(late) == sorted(city.planted["paid_not_demolished"])
    assert late == city.planted["paid_not_demolished_days"]
    assert len(late) == 5


def test_missing_documents_are_exact(city: DemoCity) -> None:
    requirements = dict(zip(city.document_requirements["stage"], city.document_requirements["kind"]))
    assert requirements == dict(zip(STAGES, DOCUMENT_KINDS))
    have = city.documents.groupby("parcel_id")["kind"].apply(set)
    missing = {}
    for parcel in city.parcels.itertuples():
        needed = {requirements[s] for s in STAGES[: STAGES.index(parcel.stage) + 1] if s in requirements}
        lacking = needed - have.get(parcel.id, set())
        if lacking:
            missing[parcel.code] = lacking
    assert missing == {code: set(kinds) for code, kinds in city.planted["missing_documents"].items()}
    assert len(missing) == 5
    docs = city.documents.merge(city.parcels[["id", "code"]], left_on="parcel_id", right_on="id")

    for doc in docs.head(200).itertuples():
        assert doc.sha256 == hashlib.sha256(f"{doc.code}/{doc.kind}".encode()).hexdigest()
    assert not city.documents.duplicated(["parcel_id", "kind"]).any()


def test_acquisition_stays_within_footprints_except_incidental(city: DemoCity) -> None:
    parcels = city.parcels
    shares = footprint_shares(city)
    stages = stage_index(parcels)
    incidental = parcels["code"].isin(city.planted["incidental"]).to_numpy()
    assert incidental.sum() == 3
    acquired = stages >= STAGES.index("paid")
    assert (shares.max(axis=1)[acquired & ~incidental] > 0.5).all()
    inc = parcels[incidental]
    assert (inc["kind"] == "land").all() and inc["stage"].isin(["demolished", "cleared"]).all()
    assert not shapely.intersects(inc.geometry.to_numpy()[:, None], city.projects.geometry.to_numpy()[None, :]).any()
    outside = (shares.max(axis=1) == 0) & ~incidental
    assert outside.any() and (stages[outside] <= STAGES.index("appraised")).all()
    payments = city.payments.set_index("parcel_id")
    assert payments.loc[inc["id"], "project_id"].isna().all()


def test_holdouts_and_the_legacy_case(city: DemoCity) -> None:
    parcels = city.parcels
    holdouts = parcels[parcels["holdout"]]
    assert sorted(holdouts["code"]) == sorted(city.planted["holdouts"])
    assert holdouts["holdout_note"].notna().all() and parcels.loc[~parcels["holdout"], "holdout_note"].isna().all()
    assert (holdouts["stage"] != "cleared").all()
    shares = footprint_shares(city)
    unfinished = ((shares.max(axis=1) > 0.5) & (parcels["stage"] != "cleared")).sum()
    assert 0.01 * unfinished <= len(holdouts) <= 0.03 * unfinished
    [code] = city.planted["legacy"]
    legacy = by_code(parcels, [code]).iloc[0]
    assert legacy["legacy"] and legacy["holdout"] and legacy["kind"] == "house"
    assert legacy["owner_name"] == "焦某某" and legacy["holdout_note"] == "焦氏姊妹历史遗留问题"
    assert legacy["stage"] == "surveyed" and legacy["surveyed_on"].year == 2019
    road = city.projects.set_index("code").geometry.loc["xinan_road"]
    assert legacy.geometry.intersection(road).area > 0.5 * legacy.geometry.area
    assert parcels["legacy"].sum() == 1


def test_planted_is_json_and_counts_add_up(city: DemoCity) -> None:
    planted = json.loads(json.dumps(city.planted, ensure_ascii=False))
    assert planted == city.planted
    assert set(planted) == {
        "overlapping_pair", "paid_twice", "paid_not_demolished", "paid_not_demolished_days", "above_standard",
        "missing_documents", "holdouts", "legacy", "incidental", "counts",
    }
    counts = planted["counts"]
    assert sum(n for by_kind in counts.values() for n in by_kind.values()) == N
    parcels = city.parcels
    assert counts["cleared"]["house"] == ((parcels["stage"] == "cleared") & (parcels["kind"] == "house")).sum()
    listed = ("overlapping_pair", "paid_twice", "paid_not_demolished", "above_standard", "holdouts", "legacy")
    for key in (*listed, "incidental"):
        assert set(planted[key]) <= set(parcels["code"])


def test_progress_reports_up_to_the_count() -> None:
    seen: list[int] = []
    generate_city(300, seed=1, progress=seen.append)
    assert seen and seen[-1] == 300 and seen == sorted(seen)


def test_other_working_crs() -> None:
    city = generate_city(300, seed=3, srid=4528)
    assert city.parcels.crs.to_epsg() == 4528 and len(city.parcels) == 300
    assert city.parcels.total_bounds[0] > 40_000_000  # the zone prefix
    with pytest.raises(Exception, match="metres"):
        generate_city(10, srid=4326)


@pytest.mark.slow
def test_200k_parcels_generate() -> None:
    started = time.perf_counter()
    city = generate_city(200_000, seed=SEED)
    elapsed = time.perf_counter() - started
    assert len(city.parcels) == 200_000 and city.parcels["code"].is_unique
    assert shapely.is_valid(city.parcels.geometry.to_numpy()).all()
    assert elapsed < 120
