"""Each rule is written once: a second copy of one of these, however short, fails here.

The copies a duplicate-code finder cannot see (a line of SQL, a time zone name, a message) are found by their
text in the core's sources; the faces (``api/``, the CLI) reach the core's rules, and the core never reaches them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "gis"
FACES = ("api", "cli", "gis.cli")


def _sources(*folders: str) -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))
            if "migrations" not in p.parts}


@pytest.mark.parametrize(("rule", "pattern", "home"), [
    ("the sliver tolerance", r">=\s*:min_m2\b", "gis/project_overlaps.py"),
    ("the city's default time zone", r"Asia/Shanghai", "gis/config.py"),
    ("the wording of an unknown project", r"no project with id", "gis/errors.py"),
    ("the history's columns", r"INSERT\s+INTO\s+parcel_events", "gis/history.py"),
    ("the CJK font lookup", r"CJK_FAMILIES\s*=", "gis/fonts.py"),
    ("the stage list", r"\(\s*\"surveyed\",\s*\"appraised\"", "gis/stages.py"),
    ("the spreadsheet formula triggers", r"\"=\",\s*\"\+\",\s*\"-\",\s*\"@\"", "gis/io/export.py"),
    ("reading a zip's directory (checked against the limits)", r"\.infolist\(\)", "gis/io/archives.py"),
    ("where an upload is saved", r"mkdtemp\(prefix=\"pb-upload-", "api/uploads.py"),
    ("the pages' security headers", r"frame-ancestors", "api/security.py"),
])
def test_a_rule_lives_in_one_module(rule, pattern, home):
    found = sorted(path for path, text in _sources("gis", "api").items() if re.search(pattern, text))
    assert found == [home], f"{rule} is written in {found}, not only in {home}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_core_never_imports_a_face():
    offenders = {
        str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if n.split(".")[0] in FACES or n.startswith("gis.cli"))
        for p in CORE.rglob("*.py") if "cli" not in p.relative_to(CORE).parts[:1]
    }
    assert {k: v for k, v in offenders.items() if v} == {}
