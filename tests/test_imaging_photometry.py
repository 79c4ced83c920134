"""Synthetic photometry through speclite filter curves, and matching synthetic images made from the
real MUSE cut-out back onto its own grid (where the truth is known)."""

import numpy as np
import pytest
from astropy import units as u

import bayesifu as bi
from bayesifu.errors import InputError
from bayesifu.imaging import (
    ab_magnitude,
    band_weights,
    cube_photometry,
    degrade_cube,
    match_images,
    synthetic_image,
    synthetic_photometry,
)

speclite_filters = pytest.importorskip("speclite.filters")

#: The Subaru intermediate band IB709 (6788-7398 A) lies within the cut-out (6801-7500 A in air).
BAND = "suprime-IB709"
#: Assumed Gaussian PSF of the MUSE cut-out [arcsec] (the minicube's header gives none).
CUBE_FWHM = 0.8


@pytest.mark.parametrize("name", ["sdss2010-r", "galex-nuv", "twomass-J", BAND])
def test_ab_magnitude_agrees_with_speclite(name):
    wave = np.linspace(1000, 30000, 60001)
    flux = 1 + 0.5 * np.sin(wave / 300) + (wave / 5000) ** 2  # [1e-17 erg/s/cm2/A]
    value = synthetic_photometry(wave, flux, name)
    ref = speclite_filters.load_filter(name).get_ab_magnitude(
        flux * 1e-17 * u.erg / u.s / u.cm**2 / u.AA, wave * u.AA
    )
    # the two differ only in how the curve and the spectrum are interpolated (1e-5 mag)
    assert ab_magnitude(value, name) == pytest.approx(ref, abs=5e-5)


def test_flat_spectrum_and_variance_weights():
    wave = np.linspace(5000, 7500, 2001)
    w = band_weights(wave, "sdss2010-r")
    assert w.sum() == pytest.approx(1.0) and np.all(w >= 0)
    value, var = synthetic_photometry(
        wave, np.full((3, wave.size), 2.0), "sdss2010-r", variance=np.ones((3, wave.size))
    )
    np.testing.assert_allclose(value, 2.0)
    np.testing.assert_allclose(var, np.sum(w**2))


def test_band_outside_the_spectrum_is_an_error_naming_the_band():
    wave = np.linspace(6800, 7500, 561)
    with pytest.raises(InputError, match="band sdss2010-r .* is not covered by the spectrum"):
        band_weights(wave, "sdss-r")
    with pytest.raises(InputError, match="galex-fuv"):
        band_weights(wave, "galex-fuv")


@pytest.fixture(scope="module")
def muse(data_dir):
    return bi.read_cube(data_dir / "muse-abell478-cutout.fits.gz")


def test_cube_photometry_is_synthetic_photometry_per_spaxel(muse):
    data, var, mask = cube_photometry(muse, [BAND])
    flux = np.asarray(muse.flux[:, 10, 12], float)
    v = np.asarray(muse.variance[:, 10, 12], float)
    ref, ref_var = synthetic_photometry(muse.wave, flux, BAND, variance=v, medium="air")
    assert data[0, 10, 12] == pytest.approx(ref, rel=1e-12)
    assert var[0, 10, 12] == pytest.approx(ref_var, rel=1e-12)
    assert not mask.any()


def test_synthetic_images_of_the_muse_cutout_match_back(muse):
    """Two synthetic IB709 images of the real cube (0.396 and 0.3 arcsec pixels, rotated and
    shifted, PSF FWHM 1.2 and 1.0 arcsec, Gaussian noise 0.05 in the cube unit [1e-20
    erg/s/cm2/A]) matched onto the cube grid at FWHM 1.4 arcsec agree with the cube's own IB709
    image degraded to 1.4 arcsec: within 6 % per spaxel (the pixel windows of the two resamplings
    are the difference), and their noise has the propagated covariance. The images are in the
    imaging unit (1e-17), so they are compared in the cube's unit after conversion."""
    from astropy import units as u

    from bayesifu.imaging import DEFAULT_UNIT
    from bayesifu.imaging.synthetic import _cube_to_image_unit

    to_image = _cube_to_image_unit(muse)
    assert to_image == pytest.approx(1e-3, rel=1e-12)  # the cube is in 1e-20 erg/s/cm2/A
    im1, _ = synthetic_image(
        muse,
        BAND,
        pixel_scale=0.396,
        psf_fwhm=1.2,
        cube_psf_fwhm=CUBE_FWHM,
        noise=0.05 * to_image,
        rotation=20.0,
        offset=(0.3, -0.2),
        seed=1,
    )
    im2, _ = synthetic_image(
        muse,
        BAND,
        pixel_scale=0.3,
        psf_fwhm=1.0,
        cube_psf_fwhm=CUBE_FWHM,
        noise=0.05 * to_image,
        rotation=-35.0,
        seed=2,
    )
    pc = match_images([im1, im2], muse, 1.4)
    assert pc.shape == (2, 30, 30) and [b.name for b in pc.bands] == [BAND, BAND]
    ref, _, _ = cube_photometry(degrade_cube(muse, CUBE_FWHM, 1.4).cube, [BAND])
    edge = degrade_cube(muse, CUBE_FWHM, 1.4).cube.mask[0]
    for k in range(2):
        good = ~pc.mask[k] & ~edge
        assert good.sum() > 150
        assert u.Unit(pc.unit) == DEFAULT_UNIT
        ratio = pc.data[k][good] / to_image / ref[0][good]
        assert np.median(np.abs(ratio - 1)) < 0.03 and np.abs(ratio - 1).max() < 0.06
        # noise: matched minus noise-free matched, against the propagated variance
        clean = pc.operators[k] @ (im1 if k == 0 else im2).meta["truth"].ravel()
        resid = (pc.data[k].ravel() - clean)[good.ravel()]
        chi = resid / np.sqrt(pc.variance[k].ravel()[good.ravel()])
        assert 0.3 < np.std(chi) < 2.0
    # the photometric cube feeds sed_bins and the binned covariance is exact
    rho, var = pc.correlation(0)
    b = bi.Binning(np.arange(900).reshape(30, 30) // 90)
    np.testing.assert_allclose(
        pc.binned_covariance(b.operator(), 0).toarray(),
        b.aggregate(bi.Map(pc.data[0], np.nan_to_num(var, nan=1.0)), rho).covariance.toarray(),
        rtol=1e-8,
    )
