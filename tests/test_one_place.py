"""Each rule is written once: a second copy of one of these, however short, fails here.

The copies a duplicate-code finder cannot see (a line of SQL, a time zone name, a message) are found by their
text in the core's and the API's sources. Which wing may import which is tests/test_layers.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _sources(*folders: str) -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))
            if "migrations" not in p.parts}


@pytest.mark.parametrize(("rule", "pattern", "home"), [
    ("the sliver tolerance", r">=\s*:min_m2\b", "gis/domain/tolerance.py"),
    ("the city's default time zone", r"Asia/Shanghai", "gis/platform/config.py"),
    ("the wording of an unknown project", r"no project with id", "gis/platform/errors.py"),
    ("the history's columns", r"INSERT\s+INTO\s+parcel_events", "gis/records/history.py"),
    ("the findings' history", r"INSERT\s+INTO\s+finding_events", "gis/records/history.py"),
    ("the CJK font lookup", r"CJK_FAMILIES\s*=", "gis/maps/fonts.py"),
    ("the parcel's field list", r"\"owner_name\",\s*\"owner_id_number\",\s*\"owner_phone\"",
     "gis/domain/schema.py"),
    ("the switch between the streamed export formats", r"stream_geojson\(", "gis/io/export.py"),
    ("the stage list", r"\(\s*\"surveyed\",\s*\"appraised\"", "gis/domain/stages.py"),
    ("the spreadsheet formula triggers", r"\"=\",\s*\"\+\",\s*\"-\",\s*\"@\"", "gis/io/export.py"),
    ("reading a zip's directory (checked against the limits)", r"\.infolist\(\)", "gis/io/archives.py"),
    ("where an upload is saved", r"mkdtemp\(prefix=\"pb-upload-", "api/uploads.py"),
    ("the pages' security headers", r"frame-ancestors", "api/security.py"),
])
def test_a_rule_lives_in_one_module(rule, pattern, home):
    found = sorted(path for path, text in _sources("gis", "api", "cli").items() if re.search(pattern, text))
    assert found == [home], f"{rule} is written in {found}, not only in {home}"
