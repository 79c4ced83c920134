"""One ``--correlation`` option for ``bayesifu fit``, ``bin``, ``redshift`` and ``sedfit`` (issue
15): the same keywords, help text and message for a bad value; and what each keyword resolves
to."""

import argparse

import numpy as np
import pytest
from astropy.io import fits

import bayesifu as bi
from bayesifu.cli import build_parser, main
from bayesifu.cli.correlation import HELP, correlation_keyword, resolve_correlation
from bayesifu.errors import InputError

MAPS = "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
SNRG = "manga-7815-3702-SNRG.fits.gz"
BAD = "--correlation 'nofile.fits': no such file, and not 'none', 'gaussian', 'measured' or 'auto'"


def _option(command, name):
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in sub.choices[command]._actions if name in a.option_strings)


def test_same_help_and_default_per_command():
    defaults = {"fit": "gaussian", "bin": "auto", "redshift": "measured", "sedfit": "gaussian"}
    core = HELP.split("{use}")[1]
    for command, default in defaults.items():
        action = _option(command, "--correlation")
        assert action.default == default
        assert action.help.endswith(core) and action.help.startswith(HELP.split("{use}")[0])
        assert _option(command, "--correlation-ext").default == "CORREL"


def _calls(data_dir, tmp_path):
    bins = tmp_path / "bins.fits"
    fits.PrimaryHDU(np.zeros((30, 30), np.int16)).writeto(bins)
    tpl = sorted(str(p) for p in (data_dir / "sdss-templates").glob("spDR2-02[3-7].fit"))[:1]
    return {
        "fit": ["fit", str(data_dir / MAPS), "--channel", "Ha-6564",
                "--out", str(tmp_path / "p.nc")],
        "bin": ["bin", str(data_dir / SNRG), "--target-sn", "10",
                "--out", str(tmp_path / "b.fits")],
        "redshift": ["redshift", str(data_dir / "muse-abell478-cutout.fits.gz"), "--templates",
                     *tpl, "--bins", str(bins), "--out", str(tmp_path / "z.fits")],
        "sedfit": ["sedfit", str(data_dir / "muse-abell478-cutout.fits.gz"), "--z", "0.0859",
                   "--out", str(tmp_path / "s.fits")],
    }  # fmt: skip


def test_same_message_for_a_bad_value(data_dir, tmp_path, capsys):
    for command, call in _calls(data_dir, tmp_path).items():
        assert main([*call, "--correlation", "nofile.fits"]) == 1, command
        err = capsys.readouterr().err
        assert err == f"bayesifu {command}: error: {BAD}\n", err


def test_measured_needs_a_cube(data_dir, tmp_path, capsys):
    calls = _calls(data_dir, tmp_path)
    for command in ("fit", "bin"):
        assert main([*calls[command], "--correlation", "Measured"]) == 1
        err = capsys.readouterr().err
        assert "--correlation measured needs a cube" in err and err.count("\n") == 1


def test_keywords_in_any_case_and_what_they_resolve_to(data_dir):
    assert [correlation_keyword(v) for v in ("AUTO", "None", "gaussian", "x.fits")] == [
        "auto", "none", "gaussian", None,
    ]  # fmt: skip
    shape = (74, 74)
    none = resolve_correlation("NONE", "CORREL", shape)
    assert none[0] is None and none[1] == "none"
    corr, source, desc = resolve_correlation("Gaussian", "CORREL", shape)
    ref = bi.SpatialCorrelation.gaussian(shape, sigma=1.92, rlim=6.4)
    assert source == "gaussian" and desc == "Gaussian (sigma 1.92, rlim 6.4 spaxel)"
    assert (corr.matrix != ref.matrix).nnz == 0
    # auto: the file's own table, else (a map) the Gaussian
    shape = bi.SpatialCorrelation.from_fits(data_dir / SNRG, ext="CORREL").shape
    own = resolve_correlation("auto", "CORREL", shape, file=data_dir / SNRG)
    assert own[1] == "file" and own[2].endswith("(FILE's own)")
    maps = resolve_correlation("auto", "CORREL", shape, file=data_dir / MAPS)
    assert maps[1] == "gaussian" and "FILE has no correlation table" in maps[2]
    with pytest.raises(InputError, match="measured needs a cube"):
        resolve_correlation("measured", "CORREL", shape)
    with pytest.raises(InputError, match="does not match the data"):
        resolve_correlation(str(data_dir / SNRG), "CORREL", (10, 10))
