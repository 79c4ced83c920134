"""Levenberg-Marquardt baseline: covariance against a dense linear-algebra reference; seed 004."""

import jax.numpy as jnp
import numpy as np
import pytest
from bayesifu.models.polynomial_surface import SEED004_NAMES, seed004_data

from bayesifu.errors import EmptyDataError, InputError, SamplingError
from bayesifu.lmfit import lm_fit
from bayesifu.surfaces import PolynomialBasis


def test_linear_fit_matches_normal_equations():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 40)
    sigma = 0.1 + 0.05 * rng.random(40)
    y = 1.0 + 2.0 * x + sigma * rng.standard_normal(40)
    res = lm_fit(
        lambda p: p["a"] + p["b"] * jnp.asarray(x), {"a": 0.0, "b": 0.0}, data=y, sigma=sigma
    )
    a_mat = np.column_stack([np.ones(40), x]) / sigma[:, None]
    best, *_ = np.linalg.lstsq(a_mat, y / sigma, rcond=None)
    chi2 = np.sum((a_mat @ best - y / sigma) ** 2)
    cov = np.linalg.inv(a_mat.T @ a_mat) * chi2 / 38
    np.testing.assert_allclose([res.values["a"], res.values["b"]], best, rtol=1e-8)
    np.testing.assert_allclose(res.covariance, cov, rtol=1e-6)
    assert res.errors["b"] == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-6)
    unscaled = lm_fit(
        lambda p: p["a"] + p["b"] * jnp.asarray(x),
        {"a": 0.0, "b": 0.0},
        data=y,
        sigma=sigma,
        scale_covar=False,
        jac="2-point",
    )
    np.testing.assert_allclose(unscaled.covariance, cov * 38 / chi2, rtol=1e-4)
    assert res.dof == 38 and res.success


def test_whitened_residuals_from_a_likelihood():
    from bayesifu.likelihood import CorrelatedNormal

    rng = np.random.default_rng(1)
    n = 25
    corr = 0.5 ** np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    y = 3.0 + np.linalg.cholesky(corr) @ rng.standard_normal(n)
    lik = CorrelatedNormal(y, np.ones(n), corr, method="eigen")
    res = lm_fit(lambda p: p["m"] * jnp.ones(n), {"m": 0.0}, lik=lik, scale_covar=False)
    prec = np.linalg.inv(corr)
    gls = np.sum(prec @ y) / np.sum(prec)
    assert res.values["m"] == pytest.approx(gls, rel=1e-8)
    assert res.errors["m"] == pytest.approx(1 / np.sqrt(np.sum(prec)), rel=1e-6)


def test_seed004_power_series_has_no_covariance():
    """The user's 16 power-series coefficients: J^T J is singular, like lmfit says (None)."""
    u, v, z = seed004_data()
    pd = PolynomialBasis(u, v, (3, 3)).power_design(u, v)
    start = dict(zip(SEED004_NAMES, np.linalg.lstsq(pd, z, rcond=None)[0], strict=True))
    res = lm_fit(
        lambda p: jnp.asarray(pd) @ jnp.stack([p[k] for k in SEED004_NAMES]), start, data=z
    )
    assert res.covariance is None and res.errors is None
    assert "singular" in res.note and "bayesifu.sample" in res.note


def test_bad_input():
    f = lambda p: p["a"] * jnp.ones(3)  # noqa: E731
    with pytest.raises(InputError, match="no parameters"):
        lm_fit(f, {}, data=np.ones(3))
    with pytest.raises(InputError, match="finite"):
        lm_fit(f, {"a": np.nan}, data=np.ones(3))
    with pytest.raises(InputError, match="either lik"):
        lm_fit(f, {"a": 1.0})
    with pytest.raises(EmptyDataError, match="cannot constrain"):
        lm_fit(lambda p: p["a"] + p["b"] * jnp.ones(2), {"a": 1.0, "b": 1.0}, data=np.ones(2))
    with pytest.raises(SamplingError, match="non-finite"):
        lm_fit(lambda p: jnp.log(p["a"] - 5.0) * jnp.ones(3), {"a": 1.0}, data=np.ones(3))


def test_disk_residual_scatter_against_scipy_stats():
    """RMS of the disk residuals and the white scatter that maximises the independent normal
    density, against numpy and scipy.stats on the same residuals."""
    from types import SimpleNamespace

    from scipy import optimize, stats

    import bayesifu as bi
    from bayesifu.kinematics import DiskParams, disk_velocity
    from bayesifu.lmfit import disk_residual_scatter

    rng = np.random.default_rng(3)
    truth = dict(x0=10.0, y0=9.0, pa=40.0, inc=55.0, vsys=20.0, vmax=180.0, rt=3.0)
    yy, xx = np.mgrid[0:20, 0:20].astype(float)
    sigma = 4.0 + 2.0 * rng.random((20, 20))
    mu = np.asarray(disk_velocity(xx, yy, DiskParams(**truth)))
    data = mu + rng.normal(size=mu.shape) * np.sqrt(sigma**2 + 7.0**2)
    lik = bi.MapLikelihood(bi.Map(data, sigma**2), None)
    rms, tau = disk_residual_scatter(lik, SimpleNamespace(values=truth))
    resid = (data - mu).ravel()
    assert rms == pytest.approx(np.sqrt(np.mean(resid**2)), rel=1e-10)

    def nll(t):
        return -stats.norm.logpdf(resid, scale=np.sqrt(sigma.ravel() ** 2 + t**2)).sum()

    ref = optimize.minimize_scalar(nll, bounds=(1e-3 * rms, rms), method="bounded").x
    assert tau == pytest.approx(ref, rel=1e-3)
    assert 5.0 < tau < 9.0  # near the 7 that made the data
