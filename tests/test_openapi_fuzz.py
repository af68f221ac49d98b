"""A short property-based run over the OpenAPI document (schemathesis): requests generated from each operation's
declared parameters and bodies, valid and not, must never get a server error.

Bounded to a few examples an operation over a chosen set (the reading routes people call most, the analysis
posts, the edits), on a database of its own so the generated writes touch no other test's data. The ranges the
document states (``api.params``, ``gis.domain.limits``) are what the generator aims at and just past.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from sqlalchemy import text

from gis.platform import cluster, migrate
from gis.platform.db import get_engine
from tests.conftest import add_parcel, bearer, make_role_tokens
from tests.worlds import WORLD_ORIGIN, insert_two_districts, settings_for

EXAMPLES = 6  # per operation and mode: a couple of minutes in all
GETS = (
    r"^/projects$", r"^/projects/\{project_id\}$", r"^/projects/\{project_id\}/blockers$", r"^/parcels/\{parcel_id\}",
    r"^/districts$", r"^/districts/progress$", r"^/checks", r"^/standards$", r"^/imagery$", r"^/imports/profiles",
    r"^/reports/", r"^/tiles/", r"^/users$", r"^/me$", r"^/document-requirements$", r"^/units", r"^/command-posts",
)
WRITES = (
    ("POST", r"^/overlaps"), ("PATCH", r"^/parcels/\{parcel_id\}$"), ("POST", r"^/parcels/\{parcel_id\}/payments$"),
    ("POST", r"^/imports/profiles$"), ("PATCH", r"^/projects/\{project_id\}$"), ("POST", r"^/users$"),
    ("PUT", r"^/standards$"), ("POST", r"^/units$"), ("POST", r"^/units/\{unit\}/assignments$"),
    ("PUT", r"^/standards$"), ("POST", r"^/compensation/estimate$"), ("PUT", r"^/parcels/\{parcel_id\}/survey$"),
)


@pytest.fixture(scope="module")
def fuzz_app(pg_dir):
    """Database 'fuzz': two districts, a zone project over them, a few parcels, an admin token."""
    s = settings_for(pg_dir, database_name="fuzz")
    cluster.start(s)
    migrate.upgrade(s)
    x, y = WORLD_ORIGIN
    with get_engine(s).begin() as conn:
        conn.execute(text("TRUNCATE users, project_parcel_overlaps, payments, parcel_events, parcels, projects, "
                          "districts CASCADE"))
        insert_two_districts(conn, s.srid)
        conn.execute(text(
            "INSERT INTO projects (id, code, name, kind, boundary, footprint) VALUES (1, 'z1', '测试园区', 'zone', "
            "ST_Multi(ST_MakeEnvelope(:x + 500, :y, :x + 1500, :y + 1000, :srid)), "
            "ST_Multi(ST_MakeEnvelope(:x + 500, :y, :x + 1500, :y + 1000, :srid)))"
        ), {"x": x, "y": y, "srid": s.srid})
    for district, stage in ((1, "surveyed"), (1, "signed"), (2, "paid"), (2, "demolished")):
        add_parcel(s, district, stage=stage, paid_yuan=1000 if stage in ("paid", "demolished") else None)
    token = make_role_tokens(get_engine(s), ["a"], prefix="fz")["admin"]
    from api.app import create_app

    app = create_app(s)
    with TestClient(app):  # runs the app's start-up once
        yield app, bearer(token)


def _chosen(ctx) -> bool:
    method, path = ctx.operation.method.upper(), ctx.operation.path
    return (method == "GET" and any(re.match(p, path) for p in GETS)) or any(
        method == m and re.match(p, path) for m, p in WRITES)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error(fuzz_app, mode):
    """Each chosen operation, a few examples (seeded: the run repeats); every server error is listed at the end."""
    app, headers = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(_chosen)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except Unsatisfiable:
            continue  # no parameter to make invalid (GET /me): the positive run covers it
        except Exception as exc:  # noqa: BLE001 - every operation's failure is collected, then all reported
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:500]}")
    assert failures == [], "\n".join(failures)
