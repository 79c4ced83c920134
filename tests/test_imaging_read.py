"""Reading images: filter curves from speclite, units, variance maps, and the bad-input errors."""

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits

from bayesifu.errors import FileFormatError, InputError, VarianceError
from bayesifu.imaging import filter_names, load_band, pivot_wavelength, read_image, tan_wcs

speclite_filters = pytest.importorskip("speclite.filters")


def test_load_band_names_aliases_and_pivot():
    assert "sdss2010-r" in filter_names() and "wise2010-W1" in filter_names()
    r = load_band("sdss-r", psf_fwhm=1.3)
    assert r.name == "sdss2010-r" and r.psf_fwhm == 1.3
    assert load_band("2mass-ks").name == "twomass-Ks"
    assert load_band("WISE-W1").name == "wise2010-W1"
    curve = speclite_filters.load_filter("sdss2010-r")
    lam, resp = np.asarray(curve.wavelength), np.asarray(curve.response)
    # pivot from the definition on a fine grid, independently of the trapezoid on speclite's grid
    fine = np.linspace(lam[0], lam[-1], 200_001)
    rf = np.interp(fine, lam, resp)
    pivot = np.sqrt(np.sum(rf * fine) / np.sum(rf / fine))
    assert r.pivot == pytest.approx(pivot, rel=1e-6)
    assert pivot_wavelength(lam, resp) == pytest.approx(r.pivot)
    assert r.meta()["filter"] == "sdss2010-r"


def test_unknown_band_names_the_band():
    with pytest.raises(InputError, match="'sdss-q' has no filter curve"):
        load_band("sdss-q")
    with pytest.raises(InputError, match="PSF FWHM"):
        load_band("sdss-r", psf_fwhm=-1)


def _write(path, data, unit="nanomaggy", wcs=True, extra=(), **header):
    hdr = tan_wcs((150.0, 2.0), 0.4, data.shape).to_header() if wcs else fits.Header()
    if unit is not None:
        hdr["BUNIT"] = unit
    for k, v in header.items():
        hdr[k] = v
    hdus = [fits.PrimaryHDU(data, header=hdr)]
    hdus += [fits.ImageHDU(a, name=n) for n, a in extra]
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.fixture
def image_data():
    rng = np.random.default_rng(1)
    return rng.uniform(1, 2, (6, 7)), rng.uniform(0.1, 0.2, (6, 7))


def test_nanomaggies_to_flambda(tmp_path, image_data):
    data, var = image_data
    path = _write(
        tmp_path / "a.fits", data, extra=[("IVAR", 1 / var)], FILTER="sdss2010-r", PSF_FWHM=1.4
    )
    im = read_image(path)
    band = load_band("sdss2010-r")
    # 1 nanomaggy = 3.631e-6 Jy; f_lambda = f_nu c / lambda_p^2
    expect = (3.631e-6 * u.Jy).to(
        u.erg / u.s / u.cm**2 / u.AA, u.spectral_density(band.pivot * u.AA)
    ).value / 1e-17
    np.testing.assert_allclose(im.data, data * expect, rtol=1e-10)
    np.testing.assert_allclose(im.variance, var * expect**2, rtol=1e-10)
    assert im.band.psf_fwhm == 1.4 and im.pixel_scale == pytest.approx(0.4)
    assert im.meta["variance"] == "IVAR"


def test_mjy_per_sr_uses_pixel_solid_angle(tmp_path, image_data):
    data, var = image_data
    path = _write(tmp_path / "b.fits", data, unit="MJy/sr", extra=[("ERR", np.sqrt(var))])
    im = read_image(path, band="wise2010-W1")
    omega = ((0.4 * u.arcsec) ** 2).to(u.sr).value
    band = load_band("wise2010-W1")
    per_pix = (1e6 * u.Jy * omega).to(
        u.erg / u.s / u.cm**2 / u.AA, u.spectral_density(band.pivot * u.AA)
    ).value / 1e-17
    np.testing.assert_allclose(im.data, data * per_pix, rtol=1e-6)
    np.testing.assert_allclose(im.variance, var * per_pix**2, rtol=1e-6)


def test_counts_with_zero_point(tmp_path, image_data):
    data, var = image_data
    path = _write(
        tmp_path / "c.fits",
        data,
        unit="counts",
        extra=[("VARIANCE", var)],
        MAGZP=22.5,
        FILTER="sdss-g",
    )
    im = read_image(path)
    nmgy = read_image(_write(tmp_path / "d.fits", data, extra=[("VARIANCE", var)]), band="sdss-g")
    # ZP 22.5: one count is one nanomaggy
    np.testing.assert_allclose(im.data, nmgy.data, rtol=1e-12)
    with pytest.raises(InputError, match="needs an AB zero point"):
        read_image(
            _write(tmp_path / "e.fits", data, unit="DN", extra=[("VARIANCE", var)]), band="sdss-g"
        )


def test_bad_images_name_the_input(tmp_path, image_data):
    data, var = image_data
    no_wcs = _write(tmp_path / "nowcs.fits", data, wcs=False, extra=[("VARIANCE", var)])
    with pytest.raises(FileFormatError, match="nowcs.fits.*no celestial WCS"):
        read_image(no_wcs, band="sdss-r")
    no_unit = _write(tmp_path / "nounit.fits", data, unit=None, extra=[("VARIANCE", var)])
    with pytest.raises(FileFormatError, match="nounit.fits.*no unit"):
        read_image(no_unit, band="sdss-r")
    neg = var.copy()
    neg[2, 3] = -0.1
    negative = _write(tmp_path / "neg.fits", data, extra=[("VARIANCE", neg)])
    with pytest.raises(VarianceError, match="neg.fits.*negative variance"):
        read_image(negative, band="sdss-r")
    with pytest.raises(VarianceError, match="negative"):
        read_image(_write(tmp_path / "negw.fits", data, extra=[("WHT", neg)]), band="sdss-r")
    with pytest.raises(InputError, match="no filter curve"):
        read_image(negative, band="johnson-q")
    novar = _write(tmp_path / "novar.fits", data)
    with pytest.raises(FileFormatError, match=r"novar.fits\[PRIMARY\]: no variance map"):
        read_image(novar, band="sdss-r")
    with pytest.raises(InputError, match="not a flux density"):
        read_image(novar, band="sdss-r", unit="km/s", variance=var)


def test_psf_image_from_a_file_drives_the_matching(tmp_path):
    from bayesifu.imaging import GaussianPSF, ImagePSF, match_image, read_psf

    rng = np.random.default_rng(3)
    data, var = rng.uniform(1, 2, (30, 30)), np.full((30, 30), 0.1)
    psf_path = tmp_path / "psf.fits"
    hdr = fits.Header({"PIXSCALE": 0.2})
    fits.PrimaryHDU(GaussianPSF(1.0).image(0.2, 41), header=hdr).writeto(psf_path)
    img = _write(tmp_path / "p.fits", data, extra=[("VARIANCE", var)])
    im = read_image(img, band="sdss-r", psf=psf_path)
    assert isinstance(im.meta["psf"], ImagePSF)
    assert im.band.psf_fwhm == pytest.approx(1.0, rel=0.02)
    target = tan_wcs((150.0, 2.0), 0.2, (8, 8))
    by_image = match_image(im, target, (8, 8), 1.6)
    by_fwhm = match_image(read_image(img, band="sdss-r", psf_fwhm=1.0), target, (8, 8), 1.6)
    np.testing.assert_allclose(by_image.data, by_fwhm.data, rtol=0.02)
    no_scale = tmp_path / "noscale.fits"
    fits.PrimaryHDU(GaussianPSF(1.0).image(0.2, 41)).writeto(no_scale)
    with pytest.raises(FileFormatError, match="noscale.fits: the PSF image has no pixel scale"):
        read_psf(no_scale)
