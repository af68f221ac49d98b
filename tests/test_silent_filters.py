"""A misspelt filter or an unknown parameter is a 422 naming it, never a silent "everything" or "nothing"."""

from __future__ import annotations

import pytest

CASES = [
    ("/projects/hsr/blockers", {"district": "无此片区"}, "district"),
    ("/projects/hsr/blockers", {"stage": "singed"}, "stage"),
    ("/projects/hsr/blockers", {"projet": "hsr"}, "projet"),
    ("/projects", {"geometry": "true", "limt": "5"}, "limt"),
    ("/parcels/export", {"projet": "xinan_road"}, "projet"),  # project= is a filter now (466fa12); a misspelling is not
    ("/parcels/export", {"project": "no_such_road"}, "project"),  # xinan_road is a demo project now
    ("/parcels/export", {"district": "无此片区"}, "district"),
    ("/parcels/export", {"stage": "cleard"}, "stage"),
    ("/districts/progress", {"project": "hsr"}, "project"),
    ("/checks/stalled", {"day": "30"}, "day"),
    ("/reports/daily", {"fromat": "json"}, "fromat"),
    ("/health", {"verbose": "1"}, "verbose"),
]


@pytest.mark.parametrize("path, params, where", CASES)
def test_unknown_filters_and_parameters_are_refused(client, path, params, where):
    r = client.get(path, params=params)
    assert r.status_code == 422, (path, r.status_code, r.text[:200])
    body = r.json()
    assert body["where"] == where and where in body["detail"]


def test_known_filters_still_answer(client, demo_city):
    district = demo_city.districts.iloc[0]
    by_code = client.get("/projects/hsr/blockers", params={"district": district["code"], "limit": 10000}).json()
    by_name = client.get("/projects/hsr/blockers", params={"district": district["name"], "limit": 10000}).json()
    assert by_code["total"] == by_name["total"] > 0
    assert client.get("/parcels/export", params={"district": district["code"], "format": "csv",
                                                 "stage": "signed"}).status_code == 200
