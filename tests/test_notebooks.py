"""Execute every tutorial notebook in notebooks/ (outputs are stripped in git).

Each notebook runs in a fresh kernel from the notebooks/ folder with a time limit, so a failure
names the notebook and the cell. The notebooks are sized to run in about a minute each on two
CPU cores (few draws, short chains, said so in their text).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
TIMEOUT_S = 600  # per cell; a loaded 2-core machine needs the margin


def test_notebooks_exist():
    names = [p.name for p in PATHS]
    assert names[:5] == [
        "01_spatial_covariance.ipynb",
        "02_velocity_field.ipynb",
        "03_redshift.ipynb",
        "04_binning.ipynb",
        "05_imaging_sed.ipynb",
    ]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_stripped(path):
    """Committed notebooks carry no outputs or execution counts (run strip_outputs.py)."""
    nb = json.loads(path.read_text())
    for k, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {k} has outputs"
            assert cell.get("execution_count") is None, f"{path.name}: cell {k} was executed"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
@pytest.mark.slow
def test_notebook_runs(path, monkeypatch):
    # conftest sets MPLBACKEND=Agg for the test process; the kernel must use the inline backend
    # so that the figures become outputs.
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name} failed:\n{err}", pytrace=False)
    figures = sum(
        "image/png" in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert figures >= 1, f"{path.name} drew no figure"
