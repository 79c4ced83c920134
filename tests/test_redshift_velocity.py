"""Redshift summaries as velocity maps with the full spatial covariance."""

import numpy as np
import pytest
from scipy import stats

import bayesifu as bi
from bayesifu.errors import EmptyDataError, InputError
from bayesifu.likelihood import MapLikelihood
from bayesifu.redshift import log_z_grid, summarize, velocity_map
from bayesifu.templates import C_KMS

ZG = log_z_grid(0.08, 0.09, 1e-5)
U = np.log10(1 + ZG)
Z_SYS = 0.085


def synthetic_summary(rng):
    ny, nx = 6, 7
    yy, xx = np.mgrid[:ny, :nx]
    v_true = 120 * np.tanh((xx - 3) / 2.0)  # km/s
    z_true = Z_SYS + v_true / C_KMS * (1 + Z_SYS)
    sig_u = rng.uniform(3, 6, (ny, nx)) * (U[1] - U[0])
    logp = -0.5 * ((U[None, None] - np.log10(1 + z_true)[..., None]) / sig_u[..., None]) ** 2
    logp = logp.reshape(ny * nx, -1)
    logp[0] = np.logaddexp(logp[0], -0.5 * ((U - U[380]) / sig_u[0, 0]) ** 2)  # bimodal
    logp[5] = np.nan  # no data
    s = summarize(ZG, logp, np.zeros_like(logp)).reshaped((ny, nx))
    sigma_v = np.log(10) * sig_u * C_KMS * (1 + z_true) / (1 + Z_SYS)
    return s, v_true, sigma_v


def test_velocity_map_values_variances_and_mask():
    s, v_true, sigma_v = synthetic_summary(np.random.default_rng(0))
    m = velocity_map(s, Z_SYS)
    assert m.mask[0, 0] and m.mask[0, 5] and m.mask.sum() == 2
    good = ~m.mask
    np.testing.assert_allclose(m.data[good], v_true[good], atol=0.05 * sigma_v[good].max())
    np.testing.assert_allclose(np.sqrt(m.variance[good]), sigma_v[good], rtol=0.05)
    floor = velocity_map(s, Z_SYS, min_sigma_kms=10.0)
    np.testing.assert_allclose(floor.variance[good], m.variance[good] + 100.0)
    clipped = velocity_map(s, Z_SYS, max_abs_kms=100.0)
    np.testing.assert_array_equal(clipped.mask, m.mask | (np.abs(m.data) > 100.0))


def test_likelihood_combines_spatial_correlation_and_widths():
    s, v_true, _ = synthetic_summary(np.random.default_rng(1))
    m = velocity_map(s, Z_SYS)
    corr = bi.SpatialCorrelation.gaussian(m.shape, sigma=1.2, rlim=4.0)
    lik = MapLikelihood(m, corr)
    good = ~m.mask.ravel()
    rho = corr.matrix.toarray()[np.ix_(good, good)]
    sd = np.sqrt(m.variance.ravel()[good])
    cov = rho * np.outer(sd, sd)
    ref = stats.multivariate_normal(m.data.ravel()[good], cov).logpdf(v_true.ravel()[good])
    assert float(lik.log_prob(v_true)) == pytest.approx(ref, rel=1e-8)


def test_velocity_map_bad_input():
    s, _, _ = synthetic_summary(np.random.default_rng(2))
    with pytest.raises(InputError, match="z_sys"):
        velocity_map(s, -2.0)
    flat = summarize(ZG, np.zeros((3, ZG.size)), np.zeros((3, ZG.size)))
    with pytest.raises(InputError, match=r"\(ny, nx\)"):
        velocity_map(flat, Z_SYS)
    nodata = summarize(ZG, np.full((4, ZG.size), np.nan), np.zeros((4, ZG.size))).reshaped((2, 2))
    with pytest.raises(EmptyDataError, match="every spaxel"):
        velocity_map(nodata, Z_SYS)
