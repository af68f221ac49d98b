"""The layers of the code base, as CONTRIBUTING.md draws them: a module imports its own wing or a lower one.

The core (``gis/``) never imports a face (``api/``, ``cli/``); within the core, the wings are ordered from the
platform up to the products. Function-level imports count too: a late import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A product may use another product (reports draw maps); the demo city is built on the whole core;
# the CLI may start the API (`gis serve`), nothing in the core may reach either face. The migrations, kept beside the
# engine that runs them (by path, not by import), read the limits the records declare, so they rank above records.
WINGS: list[tuple[str, tuple[str, ...]]] = [
    ("platform", ("gis.platform",)),
    ("domain", ("gis.domain",)),
    ("io", ("gis.io",)),
    ("records", ("gis.records",)),
    ("migrations", ("gis.platform.migrations",)),
    ("analysis", ("gis.analysis",)),
    ("products", ("gis.checks", "gis.inspections", "gis.resettlement_checks", "gis.compensation_check",
                  "gis.public_compensation", "gis.reports", "gis.disclosure", "gis.maps", "gis.ogc", "gis.imagery",
                  "gis.report_sections", "gis.contest", "gis.rectification")),
    ("demo", ("gis.demo",)),
    ("api", ("api",)),
    ("cli", ("cli",)),
]


def wing_of(module: str) -> int:
    """The rank of the module's wing (the longest prefix decides), -1 outside the project (a library)."""
    matches = [(len(p), rank) for rank, (_, prefixes) in enumerate(WINGS) for p in prefixes
               if module == p or module.startswith(p + ".")]
    return max(matches)[1] if matches else -1


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def upward_imports(source: str, module: str) -> list[str]:
    """What ``source``, the text of ``module``, imports from a higher wing."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}  # `from gis import checks`
    rank = wing_of(module)
    return sorted(n for n in names if wing_of(n) > rank)


def test_every_module_is_in_a_wing():
    modules = [module_name(p) for folder in ("gis", "api", "cli") for p in (ROOT / folder).rglob("*.py")]
    assert [m for m in modules if wing_of(m) < 0 and m != "gis"] == []


def test_every_module_imports_only_its_own_wing_or_lower():
    found = {module_name(p): upward_imports(p.read_text(encoding="utf-8"), module_name(p))
             for folder in ("gis", "api", "cli") for p in sorted((ROOT / folder).rglob("*.py"))}
    assert {m: names for m, names in found.items() if names} == {}


@pytest.mark.parametrize(("module", "line"), [
    ("gis.domain.stages", "from gis.records.parcels import get_parcel"),
    ("gis.records.parcels", "from gis.analysis import blockers"),
    ("gis.analysis.blockers", "import api.app"),
    ("gis.io.export", "from cli import main"),
    ("gis.platform.db", "from gis import checks"),
    ("api.app", "from cli.serve import serve"),
])
def test_an_upward_import_is_found_even_late(module, line):
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    source = path.read_text(encoding="utf-8") + f"\n\ndef late():\n    {line}\n"
    assert upward_imports(source, module) != []
