"""Seed 000's worked example on the real MaNGA data of 7815-3702, and alpha of the real CORREL.

Bins the SPECINDEX HDeltaA map into about 3x3-spaxel boxes (the seed's ad hoc scheme) and compares
the binned errors with and without the spatial covariance, for the real DRP correlation matrix and
for the Gaussian approximation (sigma 1.92, rlim 6.4 spaxels; Westfall et al. 2019, Sect. 6.2).
Run with ``pytest -s`` to print the quantiles.
"""

import numpy as np
import pytest

import bayesifu as bi
from bayesifu.binning import Binning, calibrate_noise_ratio, noise_ratio

MAPS = "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
SNRG = "manga-7815-3702-SNRG.fits.gz"
QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]


def box_binid(shape, nbox=3):
    """Seed 000's bins: nbox x nbox boxes, offset by nbox // 2, roughly centred on the map."""
    n = shape[0]
    nbase = n // nbox + 1
    s = nbox // 2
    base = np.arange(nbase**2).reshape(nbase, nbase)
    return np.repeat(np.repeat(base, nbox, 0), nbox, 1)[s : s + n, s : s + shape[1]]


@pytest.fixture(scope="module")
def hdelta(data_dir):
    path = data_dir / MAPS
    assert path.exists(), f"committed test data missing: {path}"
    m = bi.read_map(path, "SPECINDEX", channel="HDeltaA")
    real = bi.SpatialCorrelation.from_fits(data_dir / SNRG)
    good = m.good & real.defined
    m = bi.Map(np.where(good, m.data, 0.0), np.where(good, m.variance, 1.0), mask=~good)
    gauss = bi.SpatialCorrelation.gaussian(m.shape, sigma=1.92, rlim=6.4)
    binid = np.where(good, box_binid(m.shape), -1)
    return m, Binning(binid), {"CORREL": real, "Gaussian": gauss}


@pytest.mark.parametrize("which", ["CORREL", "Gaussian"])
def test_hdelta_binned_errors(hdelta, which):
    m, bins, corrs = hdelta
    res = bins.aggregate(m, corrs[which], weights="mean")
    multi = res.n_spaxels > 1
    ratio = res.noise_ratio[multi]
    q = np.quantile(ratio, QUANTILES)
    full = res.n_spaxels == 9
    print(
        f"\nHDeltaA 3x3 bins, {which}: {bins.n_bins} bins ({multi.sum()} with >1 spaxel, "
        f"{full.sum()} full 3x3); sigma_covar / sigma_no_covar quantiles "
        f"{dict(zip(QUANTILES, q.round(3).tolist(), strict=True))}; full 3x3 bins median "
        f"{np.median(res.noise_ratio[full]):.3f}"
    )
    # Errors with the (non-negative) correlation exceed the independent ones in every bin ...
    assert np.all(res.error[multi] > res.error_independent[multi])
    # ... but never beyond full correlation, sigma_covar / sigma_no_covar <= sqrt(N)
    assert np.all(res.noise_ratio <= np.sqrt(res.n_spaxels) + 1e-9)
    # A 3x3 box is about 1.5 correlation lengths (sigma 1.92 spaxels) across: the ratio must lie
    # well between 1 (independent) and 3 (fully correlated); Westfall et al. give
    # 1 + 1.62 log10(9) = 2.55 and the seed reports about 2.5.
    med = np.median(res.noise_ratio[full])
    assert 2.0 < med < 2.9
    assert abs(med - noise_ratio(9)) < 0.3


def test_hdelta_binned_values_match_dense(hdelta):
    m, bins, corrs = hdelta
    res = bins.aggregate(m, corrs["CORREL"], weights="mean")
    t = bins.operator("mean", mask=m.mask).toarray()
    sd = np.where(m.mask, 0.0, np.sqrt(m.variance)).ravel()
    cov = corrs["CORREL"].matrix.toarray() * np.outer(sd, sd)
    np.testing.assert_allclose(res.covariance.toarray(), t @ cov @ t.T, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(res.values, t @ np.where(m.mask, 0, m.data).ravel())


def test_alpha_of_real_correl(data_dir):
    path = data_dir / SNRG
    assert path.exists(), f"committed test data missing: {path}"
    real = bi.SpatialCorrelation.from_fits(path)
    cal = calibrate_noise_ratio(real, n_max=100, n_centres=40, seed=0)
    print(
        f"\nalpha fitted to the real 7815-3702 CORREL matrix: {cal.alpha:.3f} (rms {cal.rms:.3f})"
    )
    # Westfall et al. (2019) fitted 1.62 to MaNGA cubes; the same physics here.
    assert 1.3 < cal.alpha < 1.9
