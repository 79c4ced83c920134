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
