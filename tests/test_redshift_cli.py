"""`bayesifu redshift` on the MUSE Abell 478 cut-out, and the real-data redshift."""

import re

import numpy as np
import pytest
from astropy.io import fits

import bayesifu as bi
from bayesifu.cli import main
from bayesifu.cli.redshift import check_binid
from bayesifu.errors import InputError
from bayesifu.redshift import FLAGS, log_z_grid
from bayesifu.templates import air_to_vacuum, emission_line_templates

#: H-alpha (vacuum) [Angstrom]; the cut-out's brightest line is [NII] 6585.27 (vacuum).
HALPHA, NII = 6564.61, 6585.27


@pytest.fixture(scope="module")
def cutout(data_dir):
    return data_dir / "muse-abell478-cutout.fits.gz"


@pytest.fixture(scope="module")
def tpl_paths(data_dir):
    return sorted(str(p) for p in (data_dir / "sdss-templates").glob("spDR2-02[3-7].fit"))


@pytest.fixture(scope="module")
def cube(cutout):
    c = bi.read_cube(cutout)
    sl = (slice(None), slice(8, 20), slice(8, 20))  # the bright centre, 12x12 spaxels
    return bi.Cube(
        np.asarray(c.flux)[sl],
        np.asarray(c.variance)[sl],
        c.wave,
        mask=None if c.mask is None else np.asarray(c.mask)[sl],
        wave_medium="air",
    )


def test_central_galaxy_redshift_and_noise_spaxels_flagged(cube, tpl_paths):
    tpl = bi.read_templates(tpl_paths).independent()
    tpl = tpl.concatenate(emission_line_templates(tpl, sigma_kms=200.0))
    # Replace two spaxels by pure noise with the real variances: no signal.
    rng = np.random.default_rng(0)
    flux = np.array(cube.flux, copy=True)
    for y, x in ((0, 0), (11, 11)):
        flux[:, y, x] = rng.normal(size=flux.shape[0]) * np.sqrt(cube.variance[:, y, x])
    noisy = bi.Cube(flux, cube.variance, cube.wave, mask=cube.mask, wave_medium="air")
    post = bi.redshift_posterior(noisy, tpl, log_z_grid(0.05, 0.12, 1e-4))
    s = post.summary()
    z_med = np.nanmedian(s.z_map[2:10, 2:10])
    # Independent reference: the brightest channel of the summed spectrum is [NII] 6583.
    spec = np.nansum(np.asarray(cube.flux), axis=(1, 2))
    z_line = air_to_vacuum(cube.wave[np.argmax(spec)]) / NII - 1
    assert abs(z_med - z_line) < 1.5e-4  # the channel width is 1.25 A = 1.7e-4 in z
    assert abs(z_med - 0.0859) < 1e-3
    assert (s.flags[2:10, 2:10] == 0).mean() > 0.95
    assert s.flags[0, 0] != 0 and s.flags[11, 11] != 0
    width = (s.z_hi68 - s.z_lo68)[2:10, 2:10] / 2 * 299792.458 / (1 + z_med)
    assert np.all((width > 0.5) & (width < 40))  # km/s: resolved below the 69 km/s grid step


def test_cli_writes_fits_and_pngs(cutout, tpl_paths, tmp_path, capsys):
    out = tmp_path / "redshift.fits"
    args = [
        "redshift",
        str(cutout),
        "--templates",
        *tpl_paths,
        "--zmin",
        "0.07",
        "--zmax",
        "0.10",
        "--out",
        str(out),
        "--pdf",
        "--no-progress",
        "--spaxel",
        "15,15",
    ]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    with fits.open(out) as hdul:
        names = [h.name for h in hdul]
        for ext in ("Z_MAP", "Z_LO68", "Z_HI95", "FLAGS", "PEAK_Z", "PEAK_PROB", "PDF", "ZGRID"):
            assert ext in names
        zmap = hdul["Z_MAP"].data
        assert zmap.shape == (30, 30)
        assert hdul["PDF"].data.shape[0] == len(hdul["ZGRID"].data)
        assert hdul["Z_MAP"].header["CTYPE1"] == "RA---TAN"
        np.testing.assert_allclose(np.nansum(hdul["PDF"].data, axis=0)[15, 15], 1, rtol=1e-5)
    assert (tmp_path / "redshift_map.png").stat().st_size > 1000
    assert (tmp_path / "redshift_pz.png").stat().st_size > 1000
    assert main(args) == 1  # exists: refuses without --overwrite
    assert "exists" in capsys.readouterr().err


def test_cli_bins_and_bad_input(cutout, tpl_paths, tmp_path, capsys, cube):
    binid = -np.ones((30, 30), int)
    binid[10:20, 10:15] = 0
    binid[10:20, 15:20] = 1
    bins = tmp_path / "bins.fits"
    fits.PrimaryHDU(binid).writeto(bins)
    out = tmp_path / "z.fits"
    args = [
        "redshift",
        str(cutout),
        "--templates",
        *tpl_paths,
        "--zmin",
        "0.07",
        "--zmax",
        "0.10",
        "--bins",
        str(bins),
        "--out",
        str(out),
        "--no-progress",
        "-j",
        "1",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "spectra summed with the correlation measured on the cube's noise" in printed
    n_ok = int(re.search(r"\((\d+) of 900 unflagged", printed).group(1))
    assert n_ok <= 100  # only the 100 binned spaxels can have a redshift
    with fits.open(out) as hdul:
        flags = hdul["FLAGS"].data
        assert np.all(flags[binid < 0] & FLAGS["NO_DATA"])  # in no bin: no redshift
        assert n_ok == int(np.sum(flags == 0))
        z = hdul["Z_MAP"].data
        assert np.isnan(z[0, 0]) and z[12, 12] == z[19, 14] and abs(z[12, 12] - 0.0859) < 1e-3
        width = (hdul["Z_HI68"].data - hdul["Z_LO68"].data)[12, 12]
        assert hdul[0].header["BINCORR"] == "measured"
    # The bins' spectra summed as if spaxels were independent: narrower, too-confident p(z).
    indep = tmp_path / "z_indep.fits"
    indep_args = [str(indep) if a == str(out) else a for a in args]
    assert main([*indep_args, "--correlation", "none"]) == 0
    with fits.open(indep) as hdul:
        assert (hdul["Z_HI68"].data - hdul["Z_LO68"].data)[12, 12] < width / 1.1
    bad = [
        "redshift",
        str(cutout),
        "--templates",
        *tpl_paths,
        "--zmin",
        "1.5",
        "--zmax",
        "2",
        "--out",
        str(tmp_path / "x.fits"),
    ]
    assert main(bad) == 1
    assert "do not reach" in capsys.readouterr().err
    assert main([*args[:-2], "--workers", "0", "--overwrite"]) == 1
    assert "workers must be -1 or >= 1" in capsys.readouterr().err
    with pytest.raises(InputError, match="shape"):
        check_binid(np.zeros((3, 3), int), cube.spatial_shape)
    with pytest.raises(InputError, match="0..nbins-1"):
        check_binid(np.full(cube.spatial_shape, 3), cube.spatial_shape)
    assert FLAGS["NO_DATA"] == 1


@pytest.mark.slow
def test_readme_call_with_every_shipped_template_gives_the_true_redshift(
    cutout, data_dir, tmp_path, capsys
):
    """Case 2 of issue 12, run as written: all six SDSS templates (spDR2-028 stops at 6800 A)
    on the default grid 0 < z < 1. It used to report z = 0.2128 for 709 unflagged spaxels,
    because requiring every template to cover every channel cut the grid to z > 0.1036 and so
    removed the true redshift (0.0858). The header records every template, whole."""
    every = sorted(str(p) for p in (data_dir / "sdss-templates").glob("spDR2-*.fit"))
    assert len(every) == 6
    out = tmp_path / "all.fits"
    args = ["redshift", str(cutout), "--templates", *every, "--out", str(out), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "proper amplitude prior" in printed
    with fits.open(out) as hdul:
        z, flags = hdul["Z_MAP"].data, hdul["FLAGS"].data
        assert hdul[0].header["TEMPLAT"] == ",".join(every)
        assert hdul[0].header["CUBE"] == str(cutout)
        from bayesifu.io.provenance import read_provenance

        records = dict(read_provenance(hdul[0].header))
        assert hdul[0].header["BIFUCMD"] == "redshift" and "spDR2-028.fit" in str(records)
    ok = flags == 0
    assert ok.sum() > 600
    dv = 299792.458 * (z[ok] - 0.0858) / 1.0858
    assert np.mean(np.abs(dv) > 1000) < 0.01  # no wrong-peak redshifts among the unflagged


def test_z_grid_file_linear_grid(cutout, tpl_paths, tmp_path):
    grid = tmp_path / "z.txt"
    np.savetxt(grid, np.arange(0.07, 0.10, 2e-5))  # linear: the package builds its own grid
    out = tmp_path / "lin.fits"
    args = ["redshift", str(cutout), "--templates", *tpl_paths, "--z-grid", str(grid)]
    assert main([*args, "--out", str(out), "--no-progress", "--pdf"]) == 0
    with fits.open(out) as hdul:
        zg = hdul["ZGRID"].data["Z"]
        assert zg[0] == pytest.approx(0.07) and zg[-1] <= 0.1
        np.testing.assert_allclose(np.diff(np.log10(1 + zg)), 1e-4, rtol=1e-6)
        assert abs(np.nanmedian(hdul["Z_MAP"].data) - 0.0859) < 1e-3
    np.savetxt(grid, [0.1, 0.05])
    assert main([*args, "--out", str(tmp_path / "bad.fits")]) == 1


def test_one_faint_bin_every_spaxel_flagged_is_said_plainly(cutout, tpl_paths, tmp_path, capsys):
    """One bin of one faint corner spaxel: its redshift is flagged, so no spaxel is unflagged.
    The command says so instead of printing a NaN median (numpy's empty-slice warning, an
    error under this suite), and the p(z) figure shows that bin although the default spaxels
    lie in no bin (it raised a matplotlib ValueError after writing the FITS file)."""
    bins = tmp_path / "bins.fits"
    fits.PrimaryHDU(np.where(np.arange(900).reshape(30, 30) == 0, 0, -1)).writeto(bins)
    out = tmp_path / "z.fits"
    args = ["redshift", str(cutout), "--templates", *tpl_paths, "--zmin", "0.07", "--zmax",
            "0.10", "--bins", str(bins), "--correlation", "none", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "(0 of 900 unflagged)" in captured.out
    assert "nan" not in captured.out
    assert "no spaxel is unflagged" in captured.err
    with fits.open(out) as hdul:
        assert np.all(hdul["FLAGS"].data != 0)
    assert (tmp_path / "z_pz.png").exists() and (tmp_path / "z_map.png").exists()


@pytest.mark.slow
def test_grid_that_misses_the_galaxy_is_flagged_not_reported(cutout, tpl_paths, tmp_path, capsys):
    """The cut-out (z 0.086) on a 0.20-0.22 grid: 701 of 900 spaxels came out unflagged at
    z 0.213. The range check (default 0-1) finds that a redshift outside the grid fits better,
    flags BETTER_OUTSIDE and says so; a grid that holds the redshift loses no good spaxel."""
    out = tmp_path / "z.fits"
    base = ["redshift", str(cutout), "--templates", *tpl_paths, "--no-progress"]
    assert main([*base, "--zmin", "0.20", "--zmax", "0.22", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "(0 of 900 unflagged)" in captured.out
    assert "BETTER_OUTSIDE" in captured.err and "widen --zmin/--zmax" in captured.err
    with fits.open(out) as hdul:
        flags = hdul["FLAGS"].data
        assert hdul[0].header["ZCHECK"] == "0 1"
    has_data = (flags & FLAGS["NO_DATA"]) == 0
    assert np.mean((flags[has_data] & FLAGS["BETTER_OUTSIDE"]) != 0) > 0.9

    def unflagged(*opts):
        path = tmp_path / f"z{len(opts)}.fits"
        assert main([*base, "--zmin", "0.05", "--zmax", "0.12", "--out", str(path), *opts]) == 0
        return fits.getdata(path, "FLAGS") == 0

    checked, unchecked = unflagged(), unflagged("--no-range-check")
    assert unchecked.sum() > 600
    assert np.array_equal(checked, unchecked)
    assert "BETTER_OUTSIDE" not in capsys.readouterr().err
