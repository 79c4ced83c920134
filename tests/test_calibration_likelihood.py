"""Calibration of the likelihoods by simulation: for noise drawn from the true covariance, the
chi-square the package reports follows chi2(dof) and whitened residuals are standard normal.

Each case draws 500 noise vectors from a covariance built independently of the package's
factorisations (dense numpy), evaluates them through the package and applies Kolmogorov-Smirnov
tests (p > 0.01). benchmarks/calibration_report.py prints the same cases side by side with what
``numpy.linalg.inv`` (the seed recipe) gives on the same draws.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from astropy.table import Table

import bayesifu as bi
from bayesifu import simulate
from bayesifu.likelihood import MapLikelihood

N_DRAWS = 500
P_MIN = 0.01

pytestmark = pytest.mark.calibration


def whitened_draws(lik, noise):
    """Whitened residuals (n_draws, dof) of noise vectors (n_draws, n) on the used spaxels."""
    return np.asarray(jax.vmap(lik.whiten)(jnp.asarray(noise)))


def assert_calibrated(lik, noise):
    w = whitened_draws(lik, noise)
    assert w.shape == (noise.shape[0], lik.dof)
    chi2 = np.sum(w**2, axis=1)
    p_chi2 = st.kstest(chi2, st.chi2(lik.dof).cdf).pvalue
    p_norm = st.kstest(w.ravel(), "norm").pvalue
    assert p_chi2 > P_MIN, f"chi2 not chi2({lik.dof}): KS p = {p_chi2:.3g}"
    assert p_norm > P_MIN, f"whitened residuals not N(0,1): KS p = {p_norm:.3g}"
    # chi2() of the package agrees with the whitening for the first draw
    np.testing.assert_allclose(lik.chi2(lik.data - noise[0]), chi2[0], rtol=1e-8)


def draws_from(cov, n_draws, seed):
    """Noise from a positive semi-definite covariance (negative round-off eigenvalues clipped)."""
    lam, vec = np.linalg.eigh(cov)
    root = vec * np.sqrt(np.clip(lam, 0, None))
    return (root @ np.random.default_rng(seed).standard_normal((cov.shape[0], n_draws))).T


@pytest.mark.slow
def test_simulator_exact_rank_deficient_covariance():
    sim = simulate.manga_like(n_fibres=19, n_exposures=9, seed=11)
    noise_sigma = 2.0
    variance = sim.variance_map(noise_sigma)
    good = sim.footprint
    m = bi.Map(np.zeros(sim.shape), np.where(good, variance, 1.0), mask=~good, name="sim")
    lik = MapLikelihood(m, sim.correlation())
    cov = sim.covariance(noise_sigma, dense=True)[np.ix_(good.ravel(), good.ravel())]
    assert lik.method == "eigen"
    assert lik.dof == np.linalg.matrix_rank(cov) <= sim.n_native < lik.n
    noise = sim.draw_noise(noise_sigma, seed=5, size=N_DRAWS).reshape(N_DRAWS, -1)
    assert_calibrated(lik, noise[:, lik.index])


@pytest.mark.slow
def test_real_correl_matrix_with_real_g_band_variance(data_dir):
    path = data_dir / "manga-7815-3702-SNRG.fits.gz"
    corr = bi.SpatialCorrelation.from_fits(path, ext="CORREL")
    spec = Table.read(path, hdu="SPECTRUM")
    xy = np.asarray(spec["DRP_INDEX"])  # (x, y) = (column, row), like CORREL's (C1, C2)
    variance = np.zeros(corr.shape)
    variance[xy[:, 1], xy[:, 0]] = spec["VARIANCE"]
    good = corr.defined
    assert good.sum() == 863 and np.array_equal(variance > 0, good)
    m = bi.Map(np.zeros(corr.shape), np.where(good, variance, 1.0), mask=~good, name="7815-3702")
    lik = MapLikelihood(m, corr)
    assert lik.method == "eigen" and 500 < lik.dof < 620
    r = corr.submatrix(good).toarray()
    sigma = np.sqrt(variance.ravel()[lik.index])
    cov = sigma[:, None] * r * sigma[None]
    assert_calibrated(lik, draws_from(cov, N_DRAWS, seed=7))


@pytest.fixture(scope="module")
def disk_gaussian():
    shape = (44, 44)
    yy, xx = np.indices(shape)
    good = np.hypot(yy - 21.5, xx - 21.5) < 20.5
    corr = bi.SpatialCorrelation.gaussian(shape, sigma=1.92, taper="kernel")
    variance = np.random.default_rng(3).uniform(0.5, 4.0, shape)
    m = bi.Map(np.zeros(shape), variance, mask=~good, name="disk")
    return m, corr


def test_tapered_gaussian_with_nugget_banded(disk_gaussian):
    m, corr = disk_gaussian
    lik = MapLikelihood(m, corr, nugget="auto", method="banded")
    assert lik.n > 1200 and lik.dof == lik.n and lik.nugget > 0
    r = corr.submatrix(m.good).toarray()
    r_nu = (1 - lik.nugget) * r + lik.nugget * np.eye(lik.n)
    cov = lik.sigma[:, None] * r_nu * lik.sigma[None]
    chol = np.linalg.cholesky(cov)
    noise = (chol @ np.random.default_rng(8).standard_normal((lik.n, N_DRAWS))).T
    assert_calibrated(lik, noise)


def test_tapered_gaussian_without_nugget(disk_gaussian):
    """The kernel-tapered Gaussian (sigma 1.92) on 1,304 spaxels is positive-definite with a
    condition number below 1e10, so ``method="auto"`` takes the exact banded path without a nugget
    (``scatter_model=None``: the factorisation's own choice; the map default ``"auto"`` prefers
    the eigen path's white scatter)."""
    m, corr = disk_gaussian
    lik = MapLikelihood(m, corr, scatter_model=None)
    assert lik.method == "banded" and lik.dof == lik.n and lik.settings["condition"] < 1e10
    r = corr.submatrix(m.good).toarray()
    cov = lik.sigma[:, None] * r * lik.sigma[None]
    assert_calibrated(lik, draws_from(cov, N_DRAWS, seed=9))
