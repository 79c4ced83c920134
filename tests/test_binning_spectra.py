"""Binned spectra from a cube: exact per-channel covariance, seed 001's three bugs, FITS output."""

import numpy as np
import pytest
import scipy.sparse as sp
from astropy.io import fits
from astropy.nddata import Covariance
from astropy.wcs import WCS

import bayesifu as bi
from bayesifu.binning import Binning, bin_spectra
from bayesifu.errors import EmptyDataError, InputError, ShapeError


def make_cube(ny=6, nx=9, nwave=12, seed=0):
    rng = np.random.default_rng(seed)
    flux = rng.normal(10.0, 1.0, (nwave, ny, nx))
    var = rng.uniform(0.5, 2.0, (nwave, ny, nx))
    wave = np.linspace(5000.0, 5100.0, nwave)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-1e-4, 1e-4]
    return bi.Cube(flux, var, wave, wcs=wcs, name="synthetic")


def block_binid(ny, nx):
    y, x = np.indices((ny, nx))
    binid = (y // 3) * 10 + x // 3
    binid[0, 0] = -1
    return binid


def dense_reference(cube, binid, rho, weights):
    """Channel-by-channel dense T C_k T^T with numpy and astropy."""
    b = Binning(binid)
    nwave = cube.shape[0]
    flux = np.zeros((b.n_bins, nwave))
    var = np.zeros_like(flux)
    for k in range(nwave):
        good = np.isfinite(cube.flux[k]) & np.isfinite(cube.variance[k]) & (cube.variance[k] > 0)
        t = b.operator("sum", mask=~good).toarray()
        if weights == "mean":
            t = t / t.sum(axis=1, keepdims=True)
        sd = np.where(good, np.sqrt(np.where(good, cube.variance[k], 0)), 0).ravel()
        cov = rho * np.outer(sd, sd)
        flux[:, k] = t @ np.where(good, cube.flux[k], 0).ravel()
        ref = Covariance.from_matrix_multiplication(t, cov).to_dense()
        np.testing.assert_allclose(ref, t @ cov @ t.T, rtol=1e-12, atol=1e-14)
        var[:, k] = np.diag(ref)
    return flux, var


@pytest.mark.parametrize("weights", ["sum", "mean"])
def test_exact_variance_matches_dense(weights):
    cube = make_cube()
    binid = block_binid(6, 9)
    corr = bi.SpatialCorrelation.gaussian((6, 9), sigma=1.5, rlim=4.0)
    out = bin_spectra(cube, binid, corr, weights=weights, chunk=5)
    flux, var = dense_reference(cube, binid, corr.matrix.toarray(), weights)
    np.testing.assert_allclose(out.flux, flux, rtol=1e-12)
    np.testing.assert_allclose(out.variance, var, rtol=1e-10)
    # seed 001 added variances as if independent: that underestimates the errors here
    assert np.all(out.variance > out.variance_independent)
    k = 4
    t = Binning(binid).operator(weights).toarray()
    sd = np.sqrt(cube.variance[k]).ravel()
    full = t @ (corr.matrix.toarray() * np.outer(sd, sd)) @ t.T
    np.testing.assert_allclose(out.covariance(k).toarray(), full, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(out.correlation_between_bins(k).diagonal(), 1.0)


def test_x_and_y_not_swapped():
    """Seed 001 read cube[:, x, y]; on a non-square cube with a bin in one corner that differs."""
    cube = make_cube(ny=4, nx=7)
    value = np.arange(4 * 7, dtype=float).reshape(4, 7)
    cube.flux[:] = value
    binid = np.full((4, 7), -1)
    binid[0, 5:7] = 0  # y = 0, x = 5 and 6: only valid as [y, x]
    out = bin_spectra(cube, binid)
    np.testing.assert_allclose(out.flux[0], value[0, 5] + value[0, 6])


def test_nan_are_masked_not_faked():
    """Seed 001's `spectra != np.nan` never fires; here NaN spaxels are left out per channel."""
    cube = make_cube()
    binid = block_binid(6, 9)
    cube.flux[3, 4, 4] = np.nan
    cube.variance[5, 1, 1] = np.nan
    cube.flux[7, 3:6, 3:6] = np.nan  # a whole bin in channel 7
    out = bin_spectra(cube, binid, weights="sum")
    b = Binning(binid)
    row = np.searchsorted(b.bin_ids, binid[4, 4])
    expect = np.nansum(np.where(binid == binid[4, 4], cube.flux[3], 0.0))
    assert out.flux[row, 3] == pytest.approx(expect)
    assert np.all(np.isfinite(out.flux[:, 3]))
    empty = np.searchsorted(b.bin_ids, binid[4, 4])
    assert out.mask[empty, 7] and np.isnan(out.flux[empty, 7]) and np.isinf(out.variance[empty, 7])
    assert out.mask.sum() == 1
    assert out.sn()[empty, 7] == 0.0
    # negative fluxes are kept, not clipped to 1e-15 as in seed 001
    cube.flux[:] = -1.0
    assert np.all(bin_spectra(cube, binid).flux < 0)


def test_write_fits_roundtrip(tmp_path):
    cube = make_cube()
    binid = block_binid(6, 9)
    corr = bi.SpatialCorrelation.gaussian((6, 9), sigma=1.5, rlim=4.0)
    out = bin_spectra(cube, binid, corr)
    path = out.write(tmp_path / "binned.fits", reference_channel=2)
    with fits.open(path) as h:
        np.testing.assert_allclose(h["FLUX"].data, out.flux)
        np.testing.assert_allclose(h["VAR"].data, out.variance)
        np.testing.assert_allclose(h["VAR_INDEP"].data, out.variance_independent)
        np.testing.assert_array_equal(h["BINID"].data, binid)
        assert WCS(h["BINID"].header).naxis == 2
        np.testing.assert_allclose(h["WAVE"].data, cube.wave)
        t = h["CORREL"].data
        rho = sp.coo_array(
            (t["RHOIJ"].astype(float), (t["INDXI"].astype(int), t["INDXJ"].astype(int))),
            shape=(out.n_bins, out.n_bins),
        ).toarray()
        rho = rho + np.triu(rho, 1).T
        np.testing.assert_allclose(rho, out.correlation_between_bins(2).toarray(), atol=1e-12)
        assert h["CORREL"].header["REFCHAN"] == 2
    with pytest.raises(InputError, match="exists"):
        out.write(path)
    out.write(path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["binned.fits"]  # no temporary left over


def test_write_is_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves neither a partial file nor a temporary."""
    cube = make_cube()
    out = bin_spectra(cube, block_binid(6, 9))

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", boom)
    with pytest.raises(OSError, match="disk full"):
        out.write(tmp_path / "x.fits")
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs():
    cube = make_cube()
    with pytest.raises(InputError, match="Cube"):
        bin_spectra(np.zeros((3, 3, 3)), np.zeros((3, 3), int))
    with pytest.raises(InputError, match="weights"):
        bin_spectra(cube, block_binid(6, 9), weights="ivar")
    with pytest.raises(ShapeError):
        bin_spectra(cube, np.zeros((3, 3), int))
    cube.flux[:] = np.nan
    with pytest.raises(EmptyDataError):
        bin_spectra(cube, block_binid(6, 9))
    out = bin_spectra(make_cube(), block_binid(6, 9))
    with pytest.raises(InputError, match="reference_channel"):
        out.write("never.fits", reference_channel=99)


@pytest.mark.slow
def test_summed_spectra_are_bin_spectras_sums(data_dir):
    """The lean sums of a whole field's bins equal bin_spectra's, masked channels included."""
    from bayesifu.binning import summed_spectra
    from bayesifu.correlation import SpatialCorrelation

    c = bi.read_cube(data_dir / "muse-abell478-cutout.fits.gz")
    flux = np.array(c.flux, dtype=float)
    flux[10:20, 5, 5] = np.nan  # bin 40, its only spaxel, has no data in channels 10-19
    cube = bi.Cube(flux, np.asarray(c.variance), c.wave, wave_medium="air")
    binid = (np.arange(900).reshape(30, 30) // 7) % 40
    binid[:3] = -1
    binid[5, 5] = 40
    corr = SpatialCorrelation.gaussian(cube.spatial_shape, sigma=0.8, rlim=3.0)
    ref = bi.bin_spectra(cube, binid, correlation=corr, chunk=50)
    flux, var = summed_spectra(cube, binid, correlation=corr, chunk=37)
    assert ref.mask.any()  # masked bin-channels are compared too
    np.testing.assert_array_equal(np.isnan(flux), ref.mask)
    np.testing.assert_allclose(flux[~ref.mask], ref.flux[~ref.mask], rtol=1e-12)
    np.testing.assert_allclose(var[~ref.mask], ref.variance[~ref.mask], rtol=1e-12)
    assert np.all(np.isinf(var[ref.mask]))
