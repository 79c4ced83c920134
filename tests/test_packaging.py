"""Installed layout: models/ is bayesifu.models; a wheel carries every subpackage."""

import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _declared_packages():
    with open(ROOT / "pyproject.toml", "rb") as f:
        return set(tomllib.load(f)["tool"]["setuptools"]["packages"])


def _source_packages():
    found = {"bayesifu.models"}
    for init in (ROOT / "bayesifu").rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        found.add(".".join(rel.parts))
    return found


def test_every_subpackage_is_declared():
    assert _source_packages() == _declared_packages()


def test_models_import_as_subpackage():
    import bayesifu.models

    assert Path(bayesifu.models.__file__).parent == ROOT / "models"


@pytest.mark.packaging
def test_wheel_contains_every_subpackage(tmp_path):
    subprocess.run(
        ["uv", "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("bayesifu-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for pkg in _declared_packages():
        assert pkg.replace(".", "/") + "/__init__.py" in names, pkg
    for model in (ROOT / "models").glob("*.py"):
        assert f"bayesifu/models/{model.name}" in names
    assert (
        any(n.startswith("bayesifu/data/") for n in names) or not (ROOT / "bayesifu/data").exists()
    )
