"""SED-similarity binning: similar shapes only, per-band thresholds met, covariance-aware."""

import warnings

import numpy as np
import pytest
from scipy import ndimage

import bayesifu as bi
from bayesifu.binning import BinningWarning, reduced_chi2, sed_bins
from bayesifu.errors import EmptyDataError, InputError


def two_population_cube(n=16, nband=5, seed=0, level=3.0):
    """Left half has a rising SED, right half a falling one; low S/N per spaxel."""
    rng = np.random.default_rng(seed)
    rising = np.linspace(0.5, 1.5, nband)
    shape = np.where(np.arange(n)[None, :, None] < n // 2, rising[:, None, None],
                     rising[::-1, None, None])  # fmt: skip
    shape = np.broadcast_to(shape, (nband, n, n))
    flux_true = level * shape
    var = np.ones((nband, n, n))
    flux = flux_true + rng.normal(0, 1, flux_true.shape)
    return bi.Cube(flux, var, np.linspace(3000, 9000, nband))


def test_reduced_chi2_against_direct():
    rng = np.random.default_rng(1)
    f, g = rng.uniform(1, 2, (3, 4)), rng.uniform(1, 2, 4)
    sf2, sg2 = rng.uniform(0.1, 0.2, (3, 4)), rng.uniform(0.1, 0.2, 4)
    out = reduced_chi2(f, sf2, g, sg2)
    for i in range(3):
        a = np.sum(f[i] * g / sf2[i]) / np.sum(g * g / sf2[i])
        ref = np.sum((f[i] - a * g) ** 2 / (sf2[i] + a**2 * sg2)) / 3
        assert out[i] == pytest.approx(ref)
    assert reduced_chi2(2 * g[None], sf2[:1], g, sg2)[0] == pytest.approx(0.0)


def test_bins_keep_populations_apart_and_meet_thresholds():
    cube = two_population_cube(level=8.0)
    thr = np.array([15.0, 15.0, 15.0, 15.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinningWarning)  # noisy spaxels may stay unbinned
        bins = sed_bins(cube, thr, min_diameter=2, redchi2_limit=2.5)
    n = cube.shape[1]
    left = np.broadcast_to(np.arange(n)[:, None] < n // 2, (n, n))  # rows (y) split
    for b in bins.bin_ids:
        sel = bins.binid == b
        assert not (np.any(sel & left) and np.any(sel & ~left)), f"bin {b} mixes SED shapes"
        assert ndimage.label(sel)[1] == 1
    # per-band S/N recomputed independently with Binning.aggregate
    for k in range(cube.shape[0]):
        m = bi.Map(cube.flux[k], cube.variance[k], mask=bins.binid < 0)
        ref = bi.Binning(bins.binid).aggregate(m).sn
        np.testing.assert_allclose(bins.sn_bands[:, k], ref, rtol=1e-10)
        assert np.all(ref >= thr[k] - 1e-9)
    assert np.mean(bins.binid >= 0) > 0.8


def test_covariance_makes_bins_larger_and_exact():
    cube = two_population_cube(seed=2, level=4.0)
    corr = bi.SpatialCorrelation.gaussian(cube.spatial_shape, sigma=1.2, rlim=4.0)
    with pytest.warns(BinningWarning):
        indep = sed_bins(cube, 6.0, redchi2_limit=3.0)
    with pytest.warns(BinningWarning):
        cov = sed_bins(cube, 6.0, redchi2_limit=3.0, correlation=corr)
    assert np.median(cov.n_spaxels) > np.median(indep.n_spaxels)
    k = 1
    m = bi.Map(cube.flux[k], cube.variance[k], mask=cov.binid < 0)
    ref = bi.Binning(cov.binid).aggregate(m, corr).sn
    np.testing.assert_allclose(cov.sn_bands[:, k], ref, rtol=1e-8)
    assert np.all(cov.sn_bands >= 6.0 - 1e-9)


def test_spectral_cube():
    rng = np.random.default_rng(3)
    nwave, n = 40, 10
    spec = 1 + 0.5 * np.sin(np.linspace(0, 6, nwave))
    flux = 2.0 * spec[:, None, None] + rng.normal(0, 1, (nwave, n, n))
    cube = bi.Cube(flux, np.ones((nwave, n, n)), np.linspace(4000, 5000, nwave))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinningWarning)
        bins = sed_bins(cube, target_sn=5.0, redchi2_limit=3.0, min_diameter=2)
    assert np.mean(bins.binid >= 0) > 0.5
    assert np.all(bins.sn_bands[bins.n_spaxels > 0] >= 5.0 - 1e-9)
    assert bins.sn_map().shape == (n, n)


def test_bad_inputs():
    cube = two_population_cube()
    with pytest.raises(InputError, match="Cube"):
        sed_bins(np.zeros((2, 3, 3)), 5.0)
    with pytest.raises(InputError, match="sn_thresholds"):
        sed_bins(cube)
    with pytest.raises(InputError, match="not all zero"):
        sed_bins(cube, 0.0)
    with pytest.raises(InputError, match="ref_band"):
        sed_bins(cube, 5.0, ref_band=9)
    with pytest.raises(InputError, match="cannot be reached"):
        sed_bins(cube, 1e5)
    with pytest.raises(InputError, match="min_diameter"):
        sed_bins(cube, 5.0, min_diameter=0)
    cube.flux[:] = np.nan
    with pytest.raises(EmptyDataError):
        sed_bins(cube, 5.0)
