"""Binned spectrophotometric SEDs: per-bin photometry and spectra, and their covariance between bins
against a dense numpy T C T^T."""

import numpy as np
import pytest
import scipy.sparse as sp
from astropy import units as u

import bayesifu as bi
from bayesifu.errors import InputError
from bayesifu.imaging import PhotometricCube, degrade_cube, load_band
from bayesifu.imaging.sed import binned_seds

pytest.importorskip("speclite.filters")

NY, NX, NWAVE = 5, 6, 7
UNIT = "1e-20 erg / (s cm2 Angstrom)"


def _small_cube(seed=0):
    rng = np.random.default_rng(seed)
    flux = 10 + rng.standard_normal((NWAVE, NY, NX))
    var = rng.uniform(0.5, 2.0, (NWAVE, NY, NX))
    mask = np.zeros((NWAVE, NY, NX), bool)
    mask[2, 1, 1] = True  # one spaxel masked in one channel
    return bi.Cube(
        flux, var, np.linspace(6900, 7300, NWAVE), mask=mask, spaxel_scale=0.2, unit=UNIT
    )


def _small_photometry(seed=1, n_band=2):
    """A photometric cube whose covariance factors F_j are random sparse matrices (correlated
    neighbours), in a unit 1000 times the cube's."""
    rng = np.random.default_rng(seed)
    n = NY * NX
    factors = []
    for _ in range(n_band):
        f = sp.random_array((n, n), density=0.1, random_state=rng) + sp.eye_array(n)
        factors.append(sp.csr_array(f))
    data = rng.uniform(1, 2, (n_band, NY, NX))
    var = np.array([(f.multiply(f)).sum(axis=1).reshape(NY, NX) for f in factors])
    mask = np.zeros(data.shape, bool)
    mask[1, 3, 4] = True
    band = load_band("suprime-IB709")
    return PhotometricCube(
        data, var, mask, [band] * n_band, None, u.Unit("1e-17 erg / (s cm2 Angstrom)"), None,
        factors,
    )  # fmt: skip


def _binid():
    binid = (np.arange(NY * NX).reshape(NY, NX) // 4).astype(int)
    binid[0, 0] = -1
    return binid


def _dense_t(binid, mask=None, weights="sum"):
    ids = np.unique(binid[binid >= 0])
    t = np.zeros((ids.size, binid.size))
    flat = binid.ravel()
    keep = np.ones(binid.size, bool) if mask is None else ~mask.ravel()
    for i, b in enumerate(ids):
        t[i, (flat == b) & keep] = 1.0
    if weights == "mean":
        t /= np.maximum(t.sum(axis=1, keepdims=True), 1)
    return t


@pytest.mark.parametrize("weights", ["sum", "mean"])
def test_binned_photometry_and_spectra_covariance_is_dense_tct(weights):
    cube, pc, binid = _small_cube(), _small_photometry(), _binid()
    corr = bi.SpatialCorrelation.gaussian((NY, NX), sigma=1.0, rlim=3.0)
    seds = binned_seds(pc, cube, binid, correlation=corr, weights=weights)
    assert seds.photometry.shape == (8, 2) and seds.spectra.flux.shape == (8, NWAVE)
    # photometry: 1e-17 -> 1e-20 is a factor 1000 in value, 1e6 in covariance
    assert seds.unit_factor == pytest.approx(1000.0)
    for j in range(2):
        t = _dense_t(binid, pc.mask[j], weights)
        f = pc.factors[j].toarray()
        ref = 1e6 * t @ (f @ f.T) @ t.T
        np.testing.assert_allclose(seds.photometry_covariance(j).toarray(), ref, rtol=1e-10)
        np.testing.assert_allclose(seds.photometry[:, j], 1000 * t @ pc.data[j].ravel())
    assert seds.photometry_mask[:, 1].sum() == 1 and not seds.photometry_mask[:, 0].any()
    # spectra: T_k S_k rho S_k T_k^T, with the spaxel masked in channel 2 left out
    rho = corr.matrix.toarray()
    for k in range(NWAVE):
        t = _dense_t(binid, cube.mask[k], weights)
        s = np.diag(np.sqrt(cube.variance[k].ravel()))
        ref = t @ s @ rho @ s @ t.T
        np.testing.assert_allclose(seds.spectra_covariance(k).toarray(), ref, rtol=1e-10)
        np.testing.assert_allclose(seds.spectra.variance[:, k], np.diag(ref), rtol=1e-10)
    # the joint covariance is block-diagonal over bands and channels, bin-major
    full = seds.covariance()
    n_el = 2 + NWAVE
    assert full.shape == (8 * n_el, 8 * n_el)
    blk = full.reshape(8, n_el, 8, n_el)
    np.testing.assert_allclose(blk[:, 0, :, 0], seds.photometry_covariance(0).toarray())
    np.testing.assert_allclose(blk[:, 3, :, 3], seds.spectra_covariance(1).toarray())
    assert np.all(blk[:, 0, :, 1] == 0) and np.all(blk[:, 2, :, 3] == 0)
    assert seds.values().shape == (8, n_el)


def test_degraded_cube_uses_the_convolved_covariance():
    cube, pc, binid = _small_cube(), _small_photometry(), _binid()
    cube.mask[:] = False
    corr = bi.SpatialCorrelation.gaussian((NY, NX), sigma=0.8, rlim=2.5)
    deg = degrade_cube(cube, 0.4, 0.7, correlation=corr, edge_tol=1.0)
    seds = binned_seds(pc, deg, binid)
    k_op = deg.operator.toarray()
    rho = corr.matrix.toarray()
    for k in (0, 3):
        t = _dense_t(binid)
        s = np.diag(np.sqrt(cube.variance[k].ravel()))
        ref = t @ k_op @ s @ rho @ s @ k_op.T @ t.T
        np.testing.assert_allclose(seds.spectra_covariance(k).toarray(), ref, rtol=1e-10)
        np.testing.assert_allclose(seds.spectra.variance[:, k], np.diag(ref), rtol=1e-10)
        np.testing.assert_allclose(seds.spectra.flux[:, k], t @ deg.cube.flux[k].ravel())
    with pytest.raises(InputError, match="carries its own correlation"):
        binned_seds(pc, deg, binid, correlation=corr)


def test_bad_input_is_named():
    cube, pc = _small_cube(), _small_photometry()
    with pytest.raises(InputError, match="PhotometricCube"):
        binned_seds(cube, cube, _binid())
    with pytest.raises(bi.errors.ShapeError, match="one grid"):
        binned_seds(pc, cube, np.zeros((3, 3), int))
    pc.unit = u.Unit("Jy")
    with pytest.raises(InputError, match="cannot be converted"):
        binned_seds(pc, cube, _binid())
    unitless = _small_cube()
    unitless.unit = None  # no BUNIT: the photometry cannot be put on the spectra's scale
    with pytest.raises(InputError, match="no flux unit"):
        binned_seds(_small_photometry(), unitless, _binid())


def test_muse_cutout_seds_from_sed_bins(data_dir):
    """Synthetic IB709 images of the real MUSE cut-out, matched to the cube, binned by SED
    similarity (one band: the cut-out covers one speclite band, and ``to_cube`` needs distinct
    pivots); the binned photometry's covariance is exact against the dense full-grid one."""
    from bayesifu.imaging import match_images, synthetic_image

    muse = bi.read_cube(data_dir / "muse-abell478-cutout.fits.gz")
    ims = [
        synthetic_image(
            muse, "suprime-IB709", pixel_scale=p, psf_fwhm=f, cube_psf_fwhm=0.8, noise=0.005,
            seed=s, unit_factor=1e-3,
        )[0]
        for p, f, s in ((0.396, 1.2, 1),)
    ]  # fmt: skip
    pc = match_images(ims, muse, 1.4)
    deg = degrade_cube(muse, 0.8, 1.4)
    with pytest.warns(bi.binning.BinningWarning, match="left unbinned"):
        bins = bi.sed_bins(pc.to_cube(), 150.0, min_diameter=3)
    seds = binned_seds(pc, deg, bins)
    assert seds.n_bins == bins.n_bins > 3
    assert seds.unit_factor == pytest.approx(1e3)
    # the binned synthetic photometry of the degraded cube agrees with the binned images
    from bayesifu.imaging import band_weights

    w = band_weights(muse.wave, "suprime-IB709", medium="air")
    ok = seds.complete
    assert 3 < ok.sum() < seds.n_bins  # the degraded cube's edge is masked
    ratio = seds.photometry[ok, 0] / (seds.spectra.flux[ok] @ w)
    assert np.median(np.abs(ratio - 1)) < 0.03
    for j in range(1):
        t = seds.photometry_operator(j).toarray()
        ref = t @ pc.covariance(j).toarray() @ t.T * seds.unit_factor**2
        np.testing.assert_allclose(seds.photometry_covariance(j).toarray(), ref, rtol=1e-8)
