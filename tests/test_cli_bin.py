"""``bayesifu bin`` on the real MaNGA files and on bad input."""

import warnings

import numpy as np
import pytest
from astropy.io import fits

import bayesifu as bi
from bayesifu.cli import main

SNRG = "manga-7815-3702-SNRG.fits.gz"
MAPS = "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"


@pytest.fixture
def snrg(data_dir):
    path = data_dir / SNRG
    assert path.exists(), f"committed test data missing: {path}"
    return path


def test_bin_snrg_with_real_correl(snrg, tmp_path, capsys):
    out = tmp_path / "bins.fits"
    rc = main(
        ["bin", str(snrg), "--target-sn", "30", "--correlation", str(snrg), "--out", str(out)]
    )
    assert rc == 0
    assert "bins" in capsys.readouterr().out
    assert (tmp_path / "bins.png").stat().st_size > 10_000
    m = bi.read_map(snrg)
    corr = bi.SpatialCorrelation.from_fits(snrg)
    with fits.open(out) as h:
        binid = h["BINID"].data.astype(int)
        np.testing.assert_array_equal(binid >= 0, m.good & corr.defined)
        table = h["BINS"].data
        # the S/N written is the exact covariant S/N of those bins, recomputed independently
        good = m.good & corr.defined
        mm = bi.Map(m.data, m.variance, mask=~good)
        ref = bi.Binning(binid).aggregate(mm, corr)
        np.testing.assert_allclose(table["SN"], ref.sn, rtol=1e-8)
        np.testing.assert_allclose(table["SN_INDEP"], ref.sn_independent, rtol=1e-8)
        assert np.all(np.isnan(h["SN_COVAR"].data[binid < 0]))
        assert h[0].header["NBINS"] == len(table)
    # refuses to overwrite without --overwrite
    rc = main(["bin", str(snrg), "--target-sn", "30", "--out", str(out)])
    assert rc == 1
    assert "exists" in capsys.readouterr().err


def test_bin_maps_channel_gaussian(data_dir, tmp_path, capsys):
    path = data_dir / MAPS
    assert path.exists(), f"committed test data missing: {path}"
    out = tmp_path / "hda.fits"
    rc = main(
        ["bin", str(path), "--ext", "SPECINDEX", "--channel", "HDeltaA", "--target-sn", "8",
         "--correlation", "gaussian", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0 and out.exists()
    # the binning's warnings become notes on standard error
    err = capsys.readouterr().err
    assert "warning: " in err and "negative signal" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--target-sn", "1e9"], "cannot be reached"),
        (["--target-sn", "-5"], "positive"),
        (["--target-sn", "10", "--correlation", "nofile.fits"], "not 'none'"),
        (["--target-sn", "10", "--correlation", "measured"], "needs a cube"),
    ],
)
def test_bad_input_exits_one(snrg, tmp_path, capsys, extra, message):
    rc = main(["bin", str(snrg), *extra, "--out", str(tmp_path / "x.fits")])
    assert rc == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.fits").exists()


def _write_cube(path, seed=0, level=8.0, n=14, nband=5):
    rng = np.random.default_rng(seed)
    sed = np.linspace(0.5, 1.5, nband)
    flux = level * sed[:, None, None] + rng.normal(0, 1, (nband, n, n))
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(flux, name="FLUX"),
            fits.ImageHDU(np.ones_like(flux), name="VAR"),
            fits.ImageHDU(np.linspace(3000.0, 9000.0, nband), name="WAVE"),
        ]
    ).writeto(path)


def test_bin_cube_sed_and_voronoi(tmp_path, capsys):
    cube = tmp_path / "cube.fits"
    _write_cube(cube)
    out = tmp_path / "sed.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bi.binning.BinningWarning)
        rc = main(["bin", str(cube), "--method", "sed", "--target-sn", "15", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    with fits.open(out) as h:
        assert np.all(h["BINS"].data["SN"] >= 15 - 1e-9)
    out2 = tmp_path / "vor.fits"
    rc = main(
        ["bin", str(cube), "--target-sn", "15", "--wave-range", "2000", "7000",
         "--correlation", "gaussian", "--out", str(out2)]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    with fits.open(out2) as h:
        assert np.all(h["BINID"].data >= 0)
    rc = main(["bin", str(cube), "--target-sn", "5", "--wave-range", "1", "2", "--out",
               str(tmp_path / "none.fits")])  # fmt: skip
    assert rc == 1 and "--wave-range" in capsys.readouterr().err


def test_bin_correlation_by_default_and_provenance(snrg, tmp_path, capsys):
    """Without --correlation, an SNRG file's own CORREL table is used, and the output says so
    (stdout and CORRSRC); the header records the command line and the input whole."""
    from bayesifu.io.provenance import read_provenance

    out = tmp_path / "auto.fits"
    assert main(["bin", str(snrg), "--target-sn", "30", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"correlation: CORREL table of {snrg} (FILE's own)" in text
    assert "with the covariance" in text
    with fits.open(out) as h:
        assert h[0].header["CORRSRC"] == "file"
        records = dict(read_provenance(h[0].header))
    assert records["input"] == str(snrg.resolve())
    assert records["command"] == "bin" and "--target-sn 30" in records["cmdline"]
    # the same bins as with the table named explicitly
    ref = tmp_path / "explicit.fits"
    rc = main(["bin", str(snrg), "--target-sn", "30", "--correlation", str(snrg),
               "--out", str(ref)])  # fmt: skip
    assert rc == 0
    np.testing.assert_array_equal(fits.getdata(out, "BINID"), fits.getdata(ref, "BINID"))


def test_bin_correlation_none_says_so(snrg, tmp_path, capsys):
    out = tmp_path / "none.fits"
    rc = main(["bin", str(snrg), "--target-sn", "30", "--correlation", "none", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "correlation: none (spaxels independent" in text
    assert "with the covariance" not in text and "(spaxels independent)" in text
    assert fits.getheader(out)["CORRSRC"] == "none"


def test_bin_cube_without_table_measures_or_falls_back(tmp_path, capsys):
    """A cube with no CORREL table: the correlation measured from its noise, or (when the noise
    cannot be measured) the Gaussian approximation, and the output names the one used."""
    cube = tmp_path / "cube.fits"
    _write_cube(cube, n=20)
    out = tmp_path / "c.fits"
    assert main(["bin", str(cube), "--target-sn", "15", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    source = fits.getheader(out)["CORRSRC"]
    assert source in ("measured", "gaussian")
    if source == "measured":
        assert "correlation: measured from the cube's noise" in text
    else:
        assert "correlation: Gaussian (sigma 1.92, rlim 6.4 spaxel) (FILE has no" in text


def test_every_bin_and_info_option_has_help_and_its_default():
    from bayesifu.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("bin", "info"):
        for action in commands[name]._actions:
            if action.dest in ("help", "file") or action.const is not None:
                continue  # --help, the positional FILE, and flags have no value
            assert action.help, (name, action.dest)
            assert "default" in action.help or "required" in action.help, (name, action.help)
        assert "FILE" in commands[name].format_help()
