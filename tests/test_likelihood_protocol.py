"""Every likelihood class implements bayesifu.Likelihood and works inside a NumPyro model.

References: dense numpy/scipy (conditional normal densities for leave-one-out, the generalised
least-squares posterior of a linear amplitude).
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import scipy.sparse as sp
from scipy import stats

import bayesifu as bi
from bayesifu import _arviz
from bayesifu.binning import Binning, bin_spectra
from bayesifu.likelihood import (
    BinnedLikelihood,
    BinnedMapLikelihood,
    BinnedSpectraLikelihood,
    CorrelatedNormal,
    CubeLikelihood,
    Likelihood,
    MapLikelihood,
)
from bayesifu.sampling import observe, sample

SHAPE = (6, 6)
PRIOR_SD = 100.0


def grid_correlation(shape, sigma=0.9, rlim=3.0, nugget=0.05):
    """A positive-definite correlation over a grid, built densely."""
    yy, xx = np.divmod(np.arange(shape[0] * shape[1]), shape[1])
    d = np.hypot(yy[:, None] - yy[None], xx[:, None] - xx[None])
    rho = np.exp(-(d**2) / (2 * sigma**2)) * (d <= rlim)
    return (1 - nugget) * rho + nugget * np.eye(d.shape[0])


def binid():
    y, x = np.indices(SHAPE)
    return (y // 2) * 3 + x // 2


def make_cube(nwave=4, seed=0, amplitude=2.0):
    """Flux = amplitude * shape + correlated noise; one spaxel of channel 1 masked."""
    rng = np.random.default_rng(seed)
    var = rng.uniform(0.5, 2.0, (nwave, *SHAPE))
    shape_ = 1.0 + rng.random((nwave, *SHAPE))
    chol = np.linalg.cholesky(grid_correlation(SHAPE))
    noise = np.einsum("ij,wj->wi", chol, rng.standard_normal((nwave, SHAPE[0] * SHAPE[1])))
    flux = amplitude * shape_ + noise.reshape(var.shape) * np.sqrt(var)
    var[1, 2, 3] = np.inf
    return bi.Cube(flux, var, 5000.0 + np.arange(nwave), name="testcube"), shape_


def correlation():
    return bi.SpatialCorrelation(SHAPE, sp.csr_array(grid_correlation(SHAPE)))


def cube_blocks(cube):
    """Per channel: (used flat index, dense covariance) from the cube, independently."""
    r = grid_correlation(SHAPE)
    out = []
    for k in range(cube.shape[0]):
        good = ~cube.channel_mask(k).ravel()
        sig = np.sqrt(cube.variance[k].ravel()[good])
        out.append((np.flatnonzero(good), sig[:, None] * r[np.ix_(good, good)] * sig[None]))
    return out


def loo_reference(y, mu, cov):
    """log p(y_i | y_-i) of N(mu, cov) by conditioning, one point at a time."""
    out = []
    for i in range(y.size):
        rest = np.delete(np.arange(y.size), i)
        gain = np.linalg.solve(cov[np.ix_(rest, rest)], cov[rest, i])
        m = mu[i] + gain @ (y[rest] - mu[rest])
        v = cov[i, i] - cov[i, rest] @ gain
        out.append(stats.norm(m, np.sqrt(v)).logpdf(y[i]))
    return np.array(out)


@pytest.fixture(scope="module")
def binned():
    cube, _ = make_cube(nwave=5, seed=1)
    return bin_spectra(cube, binid(), correlation(), weights="mean")


def all_likelihoods(binned):
    rng = np.random.default_rng(2)
    data, var = rng.normal(size=SHAPE), rng.uniform(0.5, 1.5, SHAPE)
    m = bi.Map(data, var, name="testmap")
    per_bin = Binning(binid()).aggregate(m)
    binned_map = bi.Map(
        per_bin.values[binid()],
        per_bin.covariance.diagonal()[binid()],
        name="binned",
        binid=binid(),
    )
    cube, _ = make_cube()
    return [
        CorrelatedNormal(data.ravel(), np.sqrt(var.ravel()), grid_correlation(SHAPE)),
        MapLikelihood(m, correlation()),
        BinnedLikelihood(Binning(binid()).aggregate(m, correlation())),
        BinnedMapLikelihood(binned_map, correlation()),
        BinnedSpectraLikelihood(binned),
        CubeLikelihood(cube, correlation()),
    ]


def test_every_likelihood_class_is_a_likelihood(binned):
    for lik in all_likelihoods(binned):
        assert isinstance(lik, Likelihood), type(lik).__name__
        assert lik.data.shape == (lik.n,)
        assert 0 < lik.dof <= lik.n and isinstance(lik.dof, int)
        assert lik.settings["n"] == lik.n
        assert np.asarray(lik.pointwise_loo(_zero_model(lik))).shape == (lik.n,)
    assert not isinstance(np.zeros(3), Likelihood)


def _zero_model(lik):
    if isinstance(lik, CubeLikelihood):
        return jnp.zeros((lik.nwave, *lik.shape))
    if isinstance(lik, BinnedSpectraLikelihood):
        return jnp.zeros(lik.shape)
    return jnp.zeros(lik.n)


def test_cube_loo_whiten_and_to_map_against_dense():
    cube, _ = make_cube()
    lik = CubeLikelihood(cube, correlation())
    model = np.full(cube.shape, 0.3)
    s, t = 1.2, 0.4
    loo = np.asarray(jax.jit(lambda m: lik.pointwise_loo(m, s, t))(model))
    back = lik.to_map(loo)
    white = np.asarray(lik.whiten(cube.flux - model, s, t))
    assert white.size == lik.dof
    chi2 = 0.0
    for k, (idx, cov) in enumerate(cube_blocks(cube)):
        sig = np.sqrt(np.diag(cov))
        d = np.sqrt(s**2 * sig**2 + t**2)
        cov_k = d[:, None] * (cov / np.outer(sig, sig)) * d[None]  # scatter correlated like noise
        y, mu = cube.flux[k].ravel()[idx], model[k].ravel()[idx]
        np.testing.assert_allclose(back[k].ravel()[idx], loo_reference(y, mu, cov_k), rtol=1e-9)
        chi2 += (y - mu) @ np.linalg.solve(cov_k, y - mu)
        # to_map puts the data back where they came from; the rest is the fill value
        np.testing.assert_array_equal(lik.to_map(lik.data)[k].ravel()[idx], y)
        assert np.all(np.isnan(np.delete(back[k].ravel(), idx)))
    assert float(white @ white) == pytest.approx(chi2, rel=1e-10)


def test_binned_spectra_scatter_and_loo_against_dense(binned):
    lik = BinnedSpectraLikelihood(binned)
    model = np.full(binned.flux.shape, 9.7)
    s, t = 1.1, 0.3
    expect, loo_expect = 0.0, []
    for k in range(binned.wave.size):
        cov = s**2 * binned.covariance(k).toarray() + t**2 * np.eye(binned.n_bins)
        y, mu = binned.flux[:, k], model[:, k]
        expect += stats.multivariate_normal(mu, cov).logpdf(y)
        loo_expect.append(loo_reference(y, mu, cov))
    assert float(jax.jit(lambda m: lik.log_prob(m, s, t))(model)) == pytest.approx(expect, 1e-10)
    loo = np.asarray(lik.pointwise_loo(model, s, t))
    np.testing.assert_allclose(loo, np.concatenate(loo_expect), rtol=1e-9)
    np.testing.assert_array_equal(lik.to_map(lik.data), binned.flux)
    grad = jax.grad(lambda tau: lik.log_prob(model, s, tau))(t)
    assert np.isfinite(grad) and grad != 0


def amplitude_model(template, lik=None):
    """``mu = a * template`` with ``a ~ Normal(0, PRIOR_SD)``: a conjugate linear model."""
    a = numpyro.sample("a", dist.Normal(0.0, PRIOR_SD))
    observe(lik, a * jnp.asarray(template))


def gls_posterior(pairs):
    """Mean and sd of ``a`` from (template vector, data vector, covariance) blocks."""
    prec, lin = 1 / PRIOR_SD**2, 0.0
    for t, y, cov in pairs:
        ct = np.linalg.solve(cov, t)
        prec, lin = prec + t @ ct, lin + y @ ct
    return lin / prec, 1 / np.sqrt(prec)


def _check_posterior(idata, lik, mean, sd):
    a = np.asarray(_arviz.group(idata, "posterior")["a"]).ravel()
    # 2 x 1000 draws: the Monte Carlo error of the mean is about sd / sqrt(ESS) < 0.1 sd
    assert abs(a.mean() - mean) < 0.15 * sd
    assert a.std() == pytest.approx(sd, rel=0.12)
    pointwise = _arviz.group(idata, "log_likelihood")["obs"]
    assert pointwise.shape[-1] == lik.n
    np.testing.assert_array_equal(np.asarray(_arviz.group(idata, "observed_data")["obs"]), lik.data)


@pytest.mark.slow
def test_cube_likelihood_in_a_model():
    cube, template = make_cube(amplitude=2.0)
    lik = CubeLikelihood(cube, correlation())
    idata = sample(amplitude_model, template, lik, chains=2, draws=1000, warmup=400, seed=1)
    blocks = [(template[k].ravel()[i], cube.flux[k].ravel()[i], c)
              for k, (i, c) in enumerate(cube_blocks(cube))]  # fmt: skip
    _check_posterior(idata, lik, *gls_posterior(blocks))


@pytest.mark.slow
def test_binned_spectra_likelihood_in_a_model(binned):
    lik = BinnedSpectraLikelihood(binned)
    template = np.ones(binned.flux.shape)
    idata = sample(amplitude_model, template, lik, chains=2, draws=1000, warmup=400, seed=2)
    blocks = [(template[:, k], binned.flux[:, k], binned.covariance(k).toarray())
              for k in range(binned.wave.size)]  # fmt: skip
    _check_posterior(idata, lik, *gls_posterior(blocks))


def _as_residual(lik, values):
    """Values in data order as the likelihood's model shape (for whiten)."""
    if isinstance(lik, CubeLikelihood | BinnedSpectraLikelihood):
        return lik.to_map(values, fill=0.0)
    return values


def test_every_likelihood_is_a_numpyro_distribution(binned):
    """numpyro's own log_likelihood and Predictive see each likelihood: the log-likelihood per
    draw is lik.log_prob, and replicated data (handlers.uncondition) have the model as mean and
    the likelihood's covariance (chi-square of the whitened draws ~ chi2(dof), KS)."""
    from numpyro import handlers
    from numpyro.infer import Predictive, log_likelihood

    for lik in all_likelihoods(binned):
        name = type(lik).__name__
        template = jnp.ones_like(_zero_model(lik))
        a = jnp.array([0.5, 1.5])
        ll = np.asarray(log_likelihood(amplitude_model, {"a": a}, template, lik)["obs"])
        expect = [float(lik.log_prob(v * template)) for v in a]
        np.testing.assert_allclose(ll, expect, rtol=1e-12, err_msg=name)

        ndraw = 1000
        pred = Predictive(handlers.uncondition(amplitude_model), {"a": jnp.full(ndraw, 1.5)})
        draws = np.asarray(pred(jax.random.PRNGKey(0), template, lik)["obs"])
        assert draws.shape == (ndraw, lik.n), name
        mean = np.asarray(lik.simulate(jax.random.PRNGKey(1), 1.5 * template, 0.0, 0.0))
        back = lik.to_map(mean)  # the noiseless draw is the model, placed where the data are
        np.testing.assert_allclose(back[np.isfinite(back)], 1.5, rtol=1e-12, err_msg=name)
        chi2 = [float(jnp.sum(lik.whiten(_as_residual(lik, d - mean)) ** 2)) for d in draws]
        assert stats.kstest(chi2, stats.chi2(lik.dof).cdf).pvalue > 1e-3, name
        # and the test can fail: noise that ignores the correlation is not that distribution
        white = mean + np.sqrt(np.mean((draws - mean) ** 2, axis=0)) * np.random.default_rng(
            0
        ).standard_normal(draws.shape)
        chi2_white = [float(jnp.sum(lik.whiten(_as_residual(lik, d - mean)) ** 2)) for d in white]
        assert stats.kstest(chi2_white, stats.chi2(lik.dof).cdf).pvalue < 1e-6, name


def test_distribution_refuses_other_data():
    rng = np.random.default_rng(5)
    data = rng.normal(size=10)
    lik = CorrelatedNormal(data, np.ones(10), np.eye(10))
    d = lik.distribution(jnp.zeros(10))
    assert float(d.log_prob(data)) == pytest.approx(stats.norm.logpdf(data).sum(), rel=1e-12)
    with pytest.raises(bi.errors.InputError, match="not the likelihood's data"):
        d.log_prob(data + 1.0)
    with pytest.raises(NotImplementedError, match="traced"):
        jax.jit(d.log_prob)(data)
