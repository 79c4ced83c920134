"""One factor interface (issue 15): the diagonal, banded and eigen factors answer the same
questions (whiten, chi2, logdet, precision, precision diagonal, back) for a covariance with an
error-scale factor and an intrinsic scatter, checked against dense numpy; and the scatter model
is an explicit option of the likelihood, checked against scipy.stats."""

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import scipy.stats as st

import bayesifu as bi
from bayesifu.errors import InputError
from bayesifu.likelihood.factors import BandedFactor, DiagonalFactor, EigenFactor


def _correlation(n, ell=1.5):
    x = np.arange(n)
    r = np.exp(-0.5 * ((x[:, None] - x[None, :]) / ell) ** 2)
    r[np.abs(x[:, None] - x[None, :]) > 6] = 0.0
    return r


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    n = 40
    r = _correlation(n) + 0.05 * np.eye(n)
    r /= 1.05
    sigma = rng.uniform(0.5, 2.0, n)
    return r, sigma, rng.normal(size=n)


def _dense(r, sigma, scale, scatter, model):
    if model == "correlated":
        d = np.sqrt(scale**2 * sigma**2 + scatter**2)
        return d[:, None] * r * d[None, :]
    return scale**2 * sigma[:, None] * r * sigma[None, :] + scatter**2 * np.eye(len(sigma))


@pytest.mark.parametrize("kind", ["diagonal", "banded", "eigen"])
@pytest.mark.parametrize(("scale", "scatter"), [(1.0, 0.0), (1.3, 0.7)])
def test_every_factor_matches_the_dense_covariance(problem, kind, scale, scatter):
    r, sigma, res = problem
    if kind == "diagonal":
        r = np.eye(len(sigma))
        f = DiagonalFactor(len(sigma), sigma)
    elif kind == "banded":
        f = BandedFactor(sp.csr_array(r), sigma=sigma)
    else:
        f = EigenFactor(r, sigma)
    model = "white" if kind == "eigen" else "correlated"
    assert f.scatter_model.startswith(model)
    cov = _dense(r, sigma, scale, scatter, model)
    prec = np.linalg.inv(cov)
    chi2 = res @ prec @ res
    w = np.asarray(f.whiten(res, scale, scatter))
    np.testing.assert_allclose(np.sum(w**2), chi2, rtol=1e-9)
    np.testing.assert_allclose(float(f.chi2(res, scale, scatter)), chi2, rtol=1e-9)
    np.testing.assert_allclose(
        float(f.logdet(scale, scatter)), np.linalg.slogdet(cov)[1], rtol=1e-9
    )
    np.testing.assert_allclose(np.asarray(f.precision(res, scale, scatter)), prec @ res, rtol=1e-8)
    np.testing.assert_allclose(
        np.asarray(f.precision_diagonal(scale, scatter)), np.diag(prec), rtol=1e-8
    )
    # back() puts whitened values in the data order: |back(w)|^2 = chi2 as well.
    np.testing.assert_allclose(np.sum(np.asarray(f.back(w)) ** 2), chi2, rtol=1e-9)
    # Several right-hand sides at once (the cube path).
    both = np.stack([res, 2 * res], axis=1)
    np.testing.assert_allclose(
        np.asarray(f.chi2(both, scale, scatter)), [chi2, 4 * chi2], rtol=1e-9
    )


def test_scatter_model_is_an_explicit_option_of_the_likelihood(problem):
    r, sigma, res = problem
    data = res * sigma
    mu = np.zeros_like(data)
    for model, method in (("white", "eigen"), ("correlated", "banded")):
        lik = bi.CorrelatedNormal(data, sigma, sp.csr_array(r), scatter_model=model)
        assert lik.method == method and lik.settings["scatter_model"].startswith(model)
        for scale, scatter in ((1.0, 0.0), (0.8, 1.1)):
            cov = _dense(r, sigma, scale, scatter, model)
            ref = st.multivariate_normal(mu, cov).logpdf(data)
            got = float(lik.log_prob(mu, scale=scale, scatter=scatter))
            np.testing.assert_allclose(got, ref, rtol=1e-10)
    white = bi.CorrelatedNormal(data, sigma, sp.csr_array(r), scatter_model="white")
    corr = bi.CorrelatedNormal(data, sigma, sp.csr_array(r), scatter_model="correlated")
    assert abs(float(white.log_prob(mu, scatter=1.0)) - float(corr.log_prob(mu, scatter=1.0))) > 1
    with pytest.raises(InputError, match="scatter_model"):
        bi.CorrelatedNormal(data, sigma, sp.csr_array(r), scatter_model="pink")
    with pytest.raises(InputError, match="needs method='eigen'"):
        bi.CorrelatedNormal(data, sigma, sp.csr_array(r), method="banded", scatter_model="white")
    assert bi.CorrelatedNormal(data, sigma, scatter_model="white").method == "diagonal"


def _rank_deficient(n, rank, seed=1):
    a = np.random.default_rng(seed).normal(size=(n, rank))
    c = a @ a.T
    d = 1 / np.sqrt(np.diag(c))
    return d[:, None] * c * d[None, :]


@pytest.mark.parametrize("kind", ["diagonal", "banded", "banded-scan", "eigen", "eigen-deficient"])
@pytest.mark.parametrize(("scale", "scatter"), [(1.0, 0.0), (1.3, 0.7)])
def test_colour_is_the_inverse_of_whiten_and_gives_the_covariance(problem, kind, scale, scatter):
    """colour(w) for standard normal w has exactly the covariance of the factor (its columns
    for unit vectors multiply out to the dense matrix), and whiten(colour(w)) = w."""
    r, sigma, _ = problem
    n = len(sigma)
    if kind == "diagonal":
        r, f = np.eye(n), DiagonalFactor(n, sigma)
    elif kind.startswith("banded"):
        f = BandedFactor(
            sp.csr_array(r), sigma=sigma, solver="scan" if "scan" in kind else "lapack"
        )
    else:
        r = _rank_deficient(n, 15) if kind == "eigen-deficient" else r
        f = EigenFactor(r, sigma)
    cov = _dense(r, sigma, scale, scatter, "white" if kind.startswith("eigen") else "correlated")
    if kind == "eigen-deficient":  # white scatter on the range space only: tau^2 P
        assert f.rank == 15
        q = scipy.linalg.orth(sigma[:, None] * r * sigma[None, :])  # range of C_0
        assert q.shape[1] == 15
        cov = scale**2 * sigma[:, None] * r * sigma[None, :] + scatter**2 * q @ q.T
    colour = np.asarray(f.colour(np.eye(f.rank), scale, scatter))  # (n, rank)
    np.testing.assert_allclose(colour @ colour.T, cov, atol=1e-10 * np.abs(cov).max())
    w = np.random.default_rng(3).normal(size=f.rank)
    np.testing.assert_allclose(np.asarray(f.whiten(f.colour(w, scale, scatter), scale, scatter)), w,
                               atol=1e-9)  # fmt: skip
