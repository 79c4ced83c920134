"""``bayesifu match``: synthetic images of the MUSE cut-out matched to its grid from the command
line, read back and compared with the library; bad calls exit 1 with a one-line reason."""

import numpy as np
import pytest
from astropy.io import fits

import bayesifu as bi
from bayesifu.cli import main
from bayesifu.imaging import match_images, read_image, synthetic_image
from bayesifu.imaging.fitsio import read_photometric_cube

BAND = "suprime-IB709"


@pytest.fixture(scope="module")
def files(data_dir, tmp_path_factory):
    cube_path = data_dir / "muse-abell478-cutout.fits.gz"
    cube = bi.read_cube(cube_path)
    folder = tmp_path_factory.mktemp("match")
    paths = []
    for k, (scale, fwhm, rot) in enumerate([(0.396, 1.2, 20.0), (0.3, 1.0, -35.0)]):
        im, _ = synthetic_image(
            cube,
            BAND,
            pixel_scale=scale,
            psf_fwhm=fwhm,
            cube_psf_fwhm=0.8,
            noise=0.05,
            rotation=rot,
            seed=k,
        )
        header = im.wcs.to_header()
        header["BUNIT"] = "1e-20 erg/(s cm2 Angstrom)"
        header["FILTER"] = BAND
        header["PSF_FWHM"] = fwhm
        path = folder / f"img{k}.fits"
        fits.HDUList(
            [fits.PrimaryHDU(im.data, header=header), fits.ImageHDU(im.variance, name="VARIANCE")]
        ).writeto(path)
        paths.append(path)
    return cube_path, paths, folder


def test_match_command_writes_what_the_library_computes(files, capsys):
    cube_path, paths, folder = files
    out = folder / "matched.fits"
    rc = main(
        [
            "match",
            *map(str, paths),
            "--cube",
            str(cube_path),
            "--out",
            str(out),
            "--target-fwhm",
            "1.4",
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    back = read_photometric_cube(out)
    cube = bi.read_cube(cube_path)
    unit = "1e-20 erg/(s cm2 Angstrom)"
    ref = match_images([read_image(p, out_unit=unit) for p in paths], cube, 1.4)
    np.testing.assert_allclose(back.data, ref.data, rtol=1e-12)
    np.testing.assert_allclose(back.variance, ref.variance, rtol=1e-12)
    np.testing.assert_array_equal(back.mask, ref.mask)
    assert [b.name for b in back.bands] == [BAND, BAND]
    assert (back.covariance(1) - ref.covariance(1)).count_nonzero() == 0 or np.allclose(
        back.covariance(1).toarray(), ref.covariance(1).toarray(), rtol=1e-12
    )
    with fits.open(out) as hdul:
        assert hdul["FLUX"].header["CTYPE1"].startswith("RA")
        assert hdul[0].header["BIFUCMD"] == "match"


def test_full_covariance_layout(files, capsys):
    cube_path, paths, folder = files
    out = folder / "full.fits"
    assert (
        main(
            [
                "match",
                str(paths[0]),
                "--cube",
                str(cube_path),
                "--out",
                str(out),
                "--covariance",
                "full",
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    with fits.open(out) as hdul:
        t = hdul["COVAR0"].data
        assert set(t.columns.names) == {"INDXI", "INDXJ", "COVARIJ"}
        assert np.all(t["INDXJ"] >= t["INDXI"])
        var = hdul["VARIANCE"].data[0].ravel()
        diag = t["INDXI"] == t["INDXJ"]
        np.testing.assert_allclose(t["COVARIJ"][diag], var[t["INDXI"][diag]], rtol=1e-10)


def test_bad_calls_exit_1_naming_the_input(files, tmp_path, capsys):
    cube_path, paths, _ = files
    out = str(tmp_path / "x.fits")
    no_wcs = tmp_path / "nowcs.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(np.ones((5, 5)), header=fits.Header({"BUNIT": "nmgy"})),
            fits.ImageHDU(np.ones((5, 5)), name="VARIANCE"),
        ]
    ).writeto(no_wcs)
    far = tmp_path / "far.fits"
    with fits.open(paths[0]) as hdul:
        hdul[0].header["CRVAL1"] += 0.1
        hdul.writeto(far)
    neg = tmp_path / "neg.fits"
    with fits.open(paths[0]) as hdul:
        hdul["VARIANCE"].data[3, 3] = -1.0
        hdul.writeto(neg)
    cases = [
        ([str(neg)], "neg.fits.*negative variance"),
        ([str(no_wcs), "--band", "sdss-r", "--psf-fwhm", "1"], "nowcs.fits.*no celestial WCS"),
        ([str(paths[0]), "--target-fwhm", "0.9"], "broader than the target"),
        ([str(paths[0]), "--band", "sdss-q"], "'sdss-q' has no filter curve"),
        ([str(far), "--psf-fwhm", "1"], "far.fits.*no pixel of the image overlaps"),
        ([str(paths[0]), str(paths[1]), "--psf-fwhm", "1", "2", "3"], "--psf-fwhm: give one"),
    ]
    import re

    for extra, pattern in cases:
        rc = main(["match", *extra, "--cube", str(cube_path), "--out", out, "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 1, (extra, err)
        assert err.startswith("bayesifu match: error:") and len(err.strip().splitlines()) == 1
        assert re.search(pattern, err), (pattern, err)


def test_degraded_cube_is_written_and_reads_back(files, capsys):
    cube_path, paths, folder = files
    out, deg = folder / "m2.fits", folder / "degraded.fits"
    rc = main(
        [
            "match",
            *map(str, paths),
            "--cube",
            str(cube_path),
            "--out",
            str(out),
            "--cube-fwhm",
            "0.8",
            "--degraded-cube",
            str(deg),
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    back = bi.read_cube(deg)
    cube = bi.read_cube(cube_path)
    ref = bi.imaging.degrade_cube(cube, 0.8, 1.2)  # the broadest image PSF is the target
    assert back.shape == cube.shape and back.wave_medium == cube.wave_medium
    good = ~back.mask[100]
    np.testing.assert_allclose(back.flux[100][good], ref.cube.flux[100][good], rtol=1e-5)
    np.testing.assert_allclose(back.variance[100][good], ref.cube.variance[100][good], rtol=1e-5)
    with fits.open(deg) as hdul:
        np.testing.assert_allclose(hdul["KERNEL"].data, ref.kernel)
    # a cube PSF broader than the target is refused, naming the cube
    rc = main(
        [
            "match",
            str(paths[0]),
            "--cube",
            str(cube_path),
            "--out",
            str(folder / "m3.fits"),
            "--cube-fwhm",
            "1.5",
            "--target-fwhm",
            "1.3",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "muse-abell478-cutout.fits.gz: its PSF" in err and "broader" in err
