"""Installed layout: models/ is bayesifu.models; a wheel carries every subpackage."""

import os
import subprocess
import sys
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


@pytest.mark.slow
def test_public_api_resolves_and_light_commands_do_not_import_jax():
    import bayesifu

    for name in bayesifu.__all__:
        assert getattr(bayesifu, name) is not None, name
    assert bayesifu.redshift.log_z_grid is not None  # subpackages are reachable as attributes
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        bayesifu.not_a_name  # noqa: B018
    # In a fresh interpreter: the package, the redshift code and the CLI parser need no JAX
    code = (
        "import sys, bayesifu, bayesifu.redshift, bayesifu.cli; bayesifu.cli.build_parser(); "
        "bayesifu.Cube; print(sorted(m for m in ('jax', 'numpyro', 'arviz') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    # ... and the CLI's JAX set-up still takes effect when JAX is imported later
    code = (
        "from bayesifu.cli import _setup_jax; _setup_jax(); import jax, os; "
        "print(jax.config.jax_enable_x64, jax.local_device_count() == max(4, os.cpu_count()))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_ENABLE_X64")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "True True"


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
    # Every shipped data file (bi.datasets: MaNGA, the MUSE cut-out, the SDSS templates and
    # their licences) is in the wheel, so the demo and the notebooks run from an installed package.
    shipped = [p for p in (ROOT / "bayesifu" / "data").rglob("*") if p.is_file()]
    assert len(shipped) >= 12
    for path in shipped:
        assert path.relative_to(ROOT).as_posix() in names, path


def test_datasets_name_existing_files():
    import bayesifu as bi

    manga = bi.datasets.manga_7815_3702()
    assert manga.maps.is_file() and manga.snrg.is_file()
    assert bi.datasets.muse_abell478().is_file()
    templates = bi.datasets.sdss_templates()
    assert [p.name for p in templates] == [f"spDR2-0{k}.fit" for k in range(23, 29)]
    cube = bi.read_cube(bi.datasets.muse_abell478())
    assert cube.shape == (560, 30, 30) and cube.wave_medium == "air"


def test_first_arviz_import_of_the_day_is_quiet(tmp_path):
    """arviz 0.x warns at its first import each day (a stamp in the user cache): bayesifu's import
    must stay silent, or a fresh machine's first test fails under warnings-as-errors."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), HOME=str(tmp_path))
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import bayesifu._arviz"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Warning" not in run.stderr
