"""The analysts' notebooks run as an analyst runs them: `jupyter nbconvert --execute` from the project's
environment, reading through the API of a live server with a token, never from the database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import nbformat
import openpyxl
import pytest

from api.app import create_app
from tests.conftest import live_server

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(scope="module")
def api(settings, demo_city, role_tokens):
    with live_server(create_app(settings)) as base:
        yield base, role_tokens["viewer"]


def run_notebook(name: str, api: tuple[str, str], folder: Path) -> tuple[str, int]:
    """Execute a copy of the notebook in ``folder`` (its downloads land there): the text it printed and the
    number of images it drew."""
    base, token = api
    shutil.copy(NOTEBOOKS / name, folder / name)
    # Nothing that would let the kernel reach the database: only the API's address and a token.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIS_")}
    env = {k: v for k, v in env.items() if k != "MPLBACKEND"}  # the kernel's inline backend shows the map
    env |= {"PB_API_URL": base, "PB_API_TOKEN": token}
    jupyter = Path(sys.executable).with_name("jupyter")
    proc = subprocess.run([str(jupyter), "nbconvert", "--to", "notebook", "--execute", "--inplace", name,
                           "--ExecutePreprocessor.timeout=300"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = nbformat.read(folder / name, as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = sum(o.output_type == "display_data" and "image/png" in o.get("data", {}) for o in outputs)
    return "".join(o.get("text", "") for o in outputs), images


def test_blockers_notebook_reads_through_the_api_and_exports(api, tmp_path):
    text, images = run_notebook("blockers.ipynb", api, tmp_path)
    assert images == 1  # the map
    base, token = api
    total = httpx.get(f"{base}/projects/xinan_road/blockers", headers={"Authorization": f"Bearer {token}"}
                      ).json()["total"]
    assert f"{total} blocking parcels" in text and f"exported {total} blocking parcels" in text
    [exported] = tmp_path.glob("*_阻碍地块_*.xlsx")
    sheet = openpyxl.load_workbook(exported, read_only=True).active
    assert sheet.max_row == total + 2  # the header, the parcels, the 合计 row


def test_compare_notebook_exports_the_difference(api, tmp_path):
    text, _ = run_notebook("compare_alignments.ipynb", api, tmp_path)
    [difference] = tmp_path.glob("方案差异_*.xlsx")
    rows = list(openpyxl.load_workbook(difference, read_only=True).active.iter_rows(values_only=True))[1:]
    only = {label: {code for kind, code, *_ in rows if kind == label} for label in {r[0] for r in rows}}
    assert set(only) == {"仅现线位", "仅北移80米"} and all(only.values())
    assert not only["仅现线位"] & only["仅北移80米"]
    assert f"'仅现线位': {len(only['仅现线位'])}" in text
    assert list(tmp_path.glob("方案比选_*.xlsx"))
