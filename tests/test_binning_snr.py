"""S/N of bins with covariance: the calibrated 1 + alpha log10 N form and its fit."""

import numpy as np
import pytest
import scipy.sparse as sp

import bayesifu as bi
from bayesifu.binning import (
    WESTFALL_ALPHA,
    calibrate_noise_ratio,
    calibrated_sn,
    noise_ratio,
)
from bayesifu.errors import EmptyDataError, InputError


def test_noise_ratio_formula():
    n = np.array([1, 10, 100])
    np.testing.assert_allclose(noise_ratio(n), [1.0, 1 + WESTFALL_ALPHA, 1 + 2 * WESTFALL_ALPHA])
    np.testing.assert_allclose(calibrated_sn(10.0, 4.0, 10, alpha=1.0), 10.0 / (2.0 * 2.0))
    with pytest.raises(InputError):
        noise_ratio(0)


def test_calibration_identity_gives_zero():
    corr = bi.SpatialCorrelation((10, 10), sp.eye_array(100, format="csr"))
    cal = calibrate_noise_ratio(corr, n_max=30, n_centres=5)
    assert abs(cal.alpha) < 1e-12
    np.testing.assert_allclose(cal.ratio, 1.0)


def test_calibration_matches_dense_ratio():
    """Each recorded ratio equals sqrt(1' C 1 / tr C) of the N nearest spaxels, computed densely."""
    shape = (20, 20)
    corr = bi.SpatialCorrelation.gaussian(shape, sigma=1.92, rlim=6.4)
    cal = calibrate_noise_ratio(corr, n_max=25, n_centres=3, seed=1)
    rho = corr.matrix.toarray()
    y, x = np.indices(shape)
    rng = np.random.default_rng(1)
    good = np.flatnonzero(corr.defined.ravel())
    centre = rng.choice(good.size, size=3, replace=False)[0]
    d = np.hypot(x.ravel() - x.ravel()[good[centre]], y.ravel() - y.ravel()[good[centre]])
    order = np.argsort(d, kind="stable")
    for n in (1, 5, 9, 25):
        idx = order[:n]
        # ties at equal distance may order differently: compare only where the ring is complete
        if n < 25 and d[order[n]] == d[order[n - 1]]:
            continue
        expect = np.sqrt(rho[np.ix_(idx, idx)].sum() / n)
        np.testing.assert_allclose(cal.ratio[n - 1], expect, rtol=1e-10)
    # the fit: alpha minimises sum (ratio - 1 - alpha log10 N)^2 -- check against lstsq
    logn = np.log10(cal.n)
    ref = np.linalg.lstsq(logn[:, None], cal.ratio - 1, rcond=None)[0][0]
    assert cal.alpha == pytest.approx(ref, rel=1e-10)
    np.testing.assert_allclose(cal(cal.n), 1 + cal.alpha * logn)


def test_exact_sn_of_bin_with_covariance():
    """S/N of a bin from Binning.aggregate equals sum(s) / sqrt(1' C 1) computed densely."""
    shape = (12, 12)
    rng = np.random.default_rng(3)
    data = rng.uniform(1, 3, shape)
    var = rng.uniform(0.5, 1.5, shape)
    corr = bi.SpatialCorrelation.gaussian(shape, sigma=1.92, rlim=6.4)
    binid = np.zeros(shape, int)
    binid[:, 6:] = 1
    res = bi.Binning(binid).aggregate(bi.Map(data, var), corr)
    sd = np.sqrt(var).ravel()
    cov = corr.matrix.toarray() * np.outer(sd, sd)
    for b in (0, 1):
        sel = binid.ravel() == b
        expect = data.ravel()[sel].sum() / np.sqrt(cov[np.ix_(sel, sel)].sum())
        assert res.sn[b] == pytest.approx(expect, rel=1e-12)


def test_calibration_bad_inputs():
    with pytest.raises(InputError):
        calibrate_noise_ratio(np.eye(4))
    corr = bi.SpatialCorrelation((4, 4), sp.eye_array(16, format="csr"))
    with pytest.raises(InputError):
        calibrate_noise_ratio(corr, n_max=1)
    one = np.zeros((4, 4), bool)
    one[0, 0] = True
    lonely = bi.SpatialCorrelation((4, 4), sp.diags_array(one.ravel() * 1.0).tocsr(), defined=one)
    with pytest.raises(EmptyDataError):
        calibrate_noise_ratio(lonely)
