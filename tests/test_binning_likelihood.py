"""Likelihoods of binned values and binned spectra against scipy.stats, gradients, calibration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import stats

import bayesifu as bi
from bayesifu.binning import Binning, bin_spectra
from bayesifu.errors import EmptyDataError, InputError, ShapeError
from bayesifu.likelihood import BinnedLikelihood, BinnedSpectraLikelihood


def make_cube(ny=6, nx=6, nwave=5, seed=0):
    rng = np.random.default_rng(seed)
    flux = rng.normal(10.0, 1.0, (nwave, ny, nx))
    var = rng.uniform(0.5, 2.0, (nwave, ny, nx))
    return bi.Cube(flux, var, np.linspace(5000, 5100, nwave))


def binid(ny=6, nx=6):
    y, x = np.indices((ny, nx))
    return (y // 2) * 3 + x // 2


@pytest.fixture
def binned_spectra():
    corr = bi.SpatialCorrelation.gaussian((6, 6), sigma=1.0, rlim=3.0)
    return bin_spectra(make_cube(), binid(), corr, weights="mean")


def test_spectra_log_prob_matches_scipy(binned_spectra):
    lik = BinnedSpectraLikelihood(binned_spectra)
    model = np.full(binned_spectra.flux.shape, 9.8)
    expect = 0.0
    for k in range(binned_spectra.wave.size):
        cov = binned_spectra.covariance(k).toarray()
        expect += stats.multivariate_normal(model[:, k], cov, allow_singular=True).logpdf(
            binned_spectra.flux[:, k]
        )
    assert float(lik.log_prob(model)) == pytest.approx(expect, rel=1e-10)
    assert lik.dof == binned_spectra.flux.size
    # error-scale factor: the same as scaling the covariance by s^2
    s = 1.3
    expect_s = sum(
        stats.multivariate_normal(
            model[:, k], s**2 * binned_spectra.covariance(k).toarray()
        ).logpdf(binned_spectra.flux[:, k])
        for k in range(binned_spectra.wave.size)
    )
    assert float(lik.log_prob(model, scale=s)) == pytest.approx(expect_s, rel=1e-10)


def test_spectra_gradient_and_jit(binned_spectra):
    lik = BinnedSpectraLikelihood(binned_spectra, channels=[0, 2, 4])
    model = jnp.asarray(binned_spectra.flux[:, [0, 2, 4]] * 0.97)
    check_grads(lik.log_prob, (model,), order=1, modes=["rev"])
    f = jax.jit(lambda m: lik.log_prob(m))
    assert float(f(model)) == pytest.approx(float(lik.log_prob(model)))
    full = np.asarray(binned_spectra.flux) * 0.97
    assert float(lik.log_prob(full)) == pytest.approx(float(lik.log_prob(model)))


def test_spectra_masked_entries_left_out():
    cube = make_cube()
    cube.flux[2, 0:2, 0:2] = np.nan  # bin 0 empty in channel 2
    corr = bi.SpatialCorrelation.gaussian((6, 6), sigma=1.0, rlim=3.0)
    b = bin_spectra(cube, binid(), corr)
    lik = BinnedSpectraLikelihood(b)
    assert lik.n == b.flux.size - 1 and lik.dof == lik.n
    model = np.nan_to_num(b.flux) * 0.9
    sub = b.covariance(2).toarray()[1:, 1:]
    expect = stats.multivariate_normal(model[1:, 2], sub).logpdf(b.flux[1:, 2])
    one = BinnedSpectraLikelihood(b, channels=[2])
    assert float(one.log_prob(model)) == pytest.approx(expect, rel=1e-10)


@pytest.mark.calibration
def test_spectra_chi2_calibrated(binned_spectra):
    """chi2 of noise drawn from the true per-channel covariances follows chi2(dof)."""
    lik = BinnedSpectraLikelihood(binned_spectra)
    rng = np.random.default_rng(5)
    truth = binned_spectra.flux
    chol = [np.linalg.cholesky(binned_spectra.covariance(k).toarray()) for k in range(5)]
    chi2 = []
    for _ in range(400):
        noise = np.column_stack([c @ rng.standard_normal(c.shape[0]) for c in chol])
        chi2.append(float(lik.chi2(truth - noise)))
    assert stats.kstest(chi2, stats.chi2(lik.dof).cdf).pvalue > 1e-3


def test_binned_values_likelihood_matches_scipy():
    rng = np.random.default_rng(2)
    m = bi.Map(rng.normal(3, 1, (8, 8)), rng.uniform(0.5, 1.5, (8, 8)))
    corr = bi.SpatialCorrelation.gaussian((8, 8), sigma=1.2, rlim=4.0)
    y, x = np.indices((8, 8))
    res = Binning((y // 2) * 4 + x // 2).aggregate(m, corr, weights="mean")
    lik = BinnedLikelihood(res)
    model = np.full(res.values.size, 2.9)
    ref = stats.multivariate_normal(model, res.covariance.toarray(), allow_singular=True)
    assert float(lik.log_prob(model)) == pytest.approx(ref.logpdf(res.values), rel=1e-8)
    check_grads(lik.log_prob, (jnp.asarray(model),), order=1, modes=["rev"])


def test_bad_inputs(binned_spectra):
    with pytest.raises(InputError):
        BinnedSpectraLikelihood(np.zeros(3))
    with pytest.raises(InputError):
        BinnedSpectraLikelihood(binned_spectra, channels=[99])
    lik = BinnedSpectraLikelihood(binned_spectra)
    with pytest.raises(ShapeError):
        lik.log_prob(np.zeros((2, 2)))
    with pytest.raises(InputError):
        BinnedLikelihood(np.zeros(3))
    cube = make_cube()
    cube.flux[1] = np.nan
    b = bin_spectra(cube, binid())
    with pytest.raises(EmptyDataError):
        BinnedSpectraLikelihood(b, channels=[1])
