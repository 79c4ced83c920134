"""``bayesifu sedfit``: a simulated cube fitted end to end; bad calls answer with one line."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from bayesifu.cli import main


def _write_cube(path, templates=None):
    from bayesifu.models import sed

    from bayesifu.sedmodel.simulate import simulate_binned_seds

    kw = {} if templates is None else {"templates": templates}
    _, basis, truth, corr = sed.simulated_data(spectral=True, sigma=0.005, **kw)
    yy, xx = np.indices((8, 8))
    binid = (yy // 2) * 4 + xx // 2
    _, cube = simulate_binned_seds(
        basis, binid, truth["weights"], truth["av"], truth["z"], sigma=0.005, correlation=corr
    )
    hdr = fits.Header()
    hdr["CTYPE1"], hdr["CTYPE2"] = "RA---TAN", "DEC--TAN"
    hdr["CRVAL1"], hdr["CRVAL2"], hdr["CRPIX1"], hdr["CRPIX2"] = 150.0, 2.0, 4.0, 4.0
    hdr["CDELT1"], hdr["CDELT2"] = -0.5 / 3600, 0.5 / 3600
    hdr["CUNIT1"], hdr["CUNIT2"] = "deg", "deg"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(cube.flux, header=hdr, name="FLUX"),
            fits.ImageHDU(cube.variance, name="VAR"),
            fits.ImageHDU(cube.wave, name="WAVE"),
        ]
    ).writeto(path)
    return truth


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayesifu.sampling.ConvergenceWarning")  # 30 draws only
def test_sedfit_writes_maps_with_wcs(tmp_path, capsys):
    cube = tmp_path / "cube.fits"
    _write_cube(cube)
    out = tmp_path / "maps.fits"
    rc = main(
        [
            "sedfit",
            str(cube),
            "--z",
            "0.03",
            "--block",
            "2",
            "--out",
            str(out),
            "--draws",
            "30",
            "--warmup",
            "30",
            "--chains",
            "1",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "16 bins" in capsys.readouterr().out
    with fits.open(out) as hdul:
        assert hdul[0].header["NBINS"] == 16 and hdul[0].header["BETWEEN"] == "exact"
        assert hdul[0].header["BIFUCMD"].startswith("sedfit")
        av = hdul["AV_MEDIAN"].data
        assert av.shape == (8, 8) and np.all(np.isfinite(av)) and np.all(av >= 0)
        assert WCS(hdul["FLUX_SD"].header).wcs.ctype[1] == "DEC--TAN"
        assert "WEIGHT1_P84" in hdul


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayesifu.sampling.ConvergenceWarning")  # r-hat 1.01 by chance
def test_sedfit_laplace_mass_recovers_one_template_fit(tmp_path, capsys):
    """``--mass laplace`` (dense Laplace mass, chains started in the Laplace approximation):
    one template, 16 bins; the A_V maps cover the truth."""
    from bayesifu import datasets

    cube = tmp_path / "cube.fits"
    truth = _write_cube(cube, templates=("spDR2-023.fit",))
    template = [p for p in datasets.sdss_templates() if p.name == "spDR2-023.fit"]
    out = tmp_path / "maps.fits"
    args = ["sedfit", str(cube), "--z", "0.03", "--block", "2", "--out", str(out)]
    args += ["--templates", str(template[0]), "--mass", "laplace", "--warmup", "100"]
    rc = main(args + ["--draws", "1000", "--chains", "2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    with fits.open(out) as hdul:
        med, sd = hdul["AV_MEDIAN"].data[::2, ::2], hdul["AV_SD"].data[::2, ::2]
    z = (med.ravel() - truth["av"]) / sd.ravel()
    assert np.all(np.abs(z) < 4), z


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--z-range", "0.1", "0.0"], "--z-range: ZMIN must be below ZMAX"),
        (["--z", "0.03", "--block", "0"], "--block must be > 0"),
        (["--z", "0.03", "--correlation", "nofile.fits"], "--correlation 'nofile.fits'"),
    ],
)
def test_sedfit_bad_calls(tmp_path, capsys, extra, message):
    cube = tmp_path / "cube.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.ones((3, 4, 4)), name="FLUX"),
            fits.ImageHDU(np.ones((3, 4, 4)), name="VAR"),
            fits.ImageHDU(np.array([5000.0, 5100.0, 5200.0]), name="WAVE"),
        ]
    ).writeto(cube)
    rc = main(["sedfit", str(cube), *extra, "--out", str(tmp_path / "x.fits")])
    assert rc == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayesifu.sampling.ConvergenceWarning")  # 60 draws only
def test_sedfit_free_redshift_starts_at_the_scan_and_records_z(tmp_path, capsys):
    """``--z-range``: the chains start at the profile-chi-square redshift (the free-z posterior
    has many local maxima) and the posterior of z is in the header and said; truth z = 0.03."""
    cube = tmp_path / "cube.fits"
    _write_cube(cube)
    out = tmp_path / "maps.fits"
    args = ["sedfit", str(cube), "--z-range", "0.02", "0.045", "--block", "2", "--out", str(out),
            "--draws", "60", "--warmup", "60", "--chains", "1"]  # fmt: skip
    assert main(args) == 0
    said = capsys.readouterr().out
    start = float(said.split("chains start at z = ")[1].split()[0])
    assert abs(start - 0.03) < 0.001
    hdr = fits.getheader(out)
    assert abs(hdr["ZMEDIAN"] - 0.03) < 0.001 and 0 < hdr["ZSD"] < 0.002
    assert hdr["ZP16"] <= hdr["ZMEDIAN"] <= hdr["ZP84"]
    assert f"free redshift z = {hdr['ZMEDIAN']:.5f}" in said
