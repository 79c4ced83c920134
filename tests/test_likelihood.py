"""Tests of bayesifu.likelihood against dense numpy/scipy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.stats as st
from jax.test_util import check_grads

import bayesifu as bi
from bayesifu import likelihood as lk
from bayesifu.errors import (
    BayesifuError,
    CovarianceError,
    EmptyDataError,
    InputError,
    ShapeError,
    VarianceError,
)
from bayesifu.likelihood import CorrelatedNormal, CubeLikelihood, MapLikelihood
from bayesifu.likelihood.factors import BandedFactor, CovarianceRepairWarning

SHAPE = (8, 10)


def grid_correlation(shape, sigma=0.9, rlim=3.0, nugget=0.05):
    """A positive-definite correlation over a grid, built densely (independent of the package)."""
    yy, xx = np.divmod(np.arange(shape[0] * shape[1]), shape[1])
    dist = np.hypot(yy[:, None] - yy[None], xx[:, None] - xx[None])
    rho = np.exp(-(dist**2) / (2 * sigma**2)) * (dist <= rlim)
    return (1 - nugget) * rho + nugget * np.eye(dist.shape[0])


def low_rank_correlation(n, rank, seed=0):
    """A rank-deficient correlation matrix ``T T^T`` normalised to unit diagonal."""
    rng = np.random.default_rng(seed)
    t = rng.standard_normal((n, rank))
    cov = t @ t.T
    d = 1 / np.sqrt(np.diag(cov))
    return d[:, None] * cov * d[None]


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    dense = grid_correlation(SHAPE)
    mask = np.zeros(SHAPE, bool)
    mask[0, :3] = True
    mask[5, 6] = True
    corr = bi.SpatialCorrelation(SHAPE, sp.csr_array(dense), source="test", params={"s": 0.9})
    variance = rng.uniform(0.5, 3.0, SHAPE)
    data = rng.normal(size=SHAPE) * np.sqrt(variance)
    m = bi.Map(data, variance, mask=mask, name="testmap")
    good = ~mask.ravel()
    model = 0.1 * rng.normal(size=SHAPE)
    return {
        "map": m,
        "corr": corr,
        "dense": dense[np.ix_(good, good)],
        "sigma": np.sqrt(variance.ravel()[good]),
        "y": data.ravel()[good],
        "model": model,
        "mu": model.ravel()[good],
    }


def reference_cov(p, method, scale, scatter):
    """The covariance each path documents (banded: scatter correlated like the noise)."""
    sigma, r = p["sigma"], p["dense"]
    if method == "banded":
        d = np.sqrt(scale**2 * sigma**2 + scatter**2)
        return d[:, None] * r * d[None]
    return scale**2 * sigma[:, None] * r * sigma[None] + scatter**2 * np.eye(sigma.size)


@pytest.mark.parametrize("method", ["banded", "eigen"])
@pytest.mark.parametrize(("scale", "scatter"), [(1.0, 0.0), (1.4, 0.0), (0.8, 0.6)])
def test_log_prob_and_chi2_match_scipy(problem, method, scale, scatter):
    lik = MapLikelihood(problem["map"], problem["corr"], method=method)
    cov = reference_cov(problem, method, scale, scatter)
    ref = st.multivariate_normal(problem["mu"], cov).logpdf(problem["y"])
    res = problem["y"] - problem["mu"]
    np.testing.assert_allclose(lik.log_prob(problem["model"], scale, scatter), ref, rtol=1e-10)
    np.testing.assert_allclose(
        lik.chi2(problem["mu"], scale, scatter), res @ np.linalg.solve(cov, res), rtol=1e-10
    )
    assert lik.method == method and lik.dof == lik.n


def test_diagonal_path_matches_scipy(problem):
    lik = MapLikelihood(problem["map"])
    cov = np.diag(1.3**2 * problem["sigma"] ** 2 + 0.4**2)
    ref = st.multivariate_normal(problem["mu"], cov).logpdf(problem["y"])
    np.testing.assert_allclose(lik.log_prob(problem["mu"], 1.3, 0.4), ref, rtol=1e-12)
    assert lik.method == "diagonal" and lik.settings["method"] == "diagonal"


def test_scan_solver_matches_lapack(problem):
    r = sp.csr_array(problem["dense"])
    z = np.random.default_rng(0).normal(size=(r.shape[0], 3))
    lap = BandedFactor(r, solver="lapack")
    scan = BandedFactor(r, solver="scan", block=8)
    for f in (lap, scan):
        np.testing.assert_allclose(
            jax.jit(f.quad)(jnp.asarray(z)), np.sum(z * np.linalg.solve(r.toarray(), z), 0)
        )
        u = jax.jit(lambda v, f=f: f.solve_lt(f.solve_l(v)))(jnp.asarray(z))
        np.testing.assert_allclose(u, np.linalg.solve(r.toarray(), z), atol=1e-12)
        np.testing.assert_allclose(f.inverse_diagonal(), np.diag(np.linalg.inv(r.toarray())))
    with pytest.raises(ValueError, match="solver"):
        BandedFactor(r, solver="magic")


@pytest.mark.parametrize("method", ["banded", "eigen", "diagonal"])
def test_gradients(problem, method):
    lik = MapLikelihood(problem["map"], problem["corr"], method=method)

    def f(model, scale, scatter):
        return lik.log_prob(model, scale, scatter)

    args = (jnp.asarray(problem["mu"]), 1.2, 0.3)
    check_grads(jax.jit(f), args, order=1, modes=["rev"])


def test_banded_gradient_equals_dense_formula(problem):
    lik = MapLikelihood(problem["map"], problem["corr"], method="banded")
    cov = reference_cov(problem, "banded", 1.0, 0.0)
    grad = jax.grad(lambda m: lik.log_prob(m))(jnp.asarray(problem["mu"]))
    np.testing.assert_allclose(grad, np.linalg.solve(cov, problem["y"] - problem["mu"]))


def test_numpyro_factor(problem):
    import numpyro
    from numpyro.infer.util import log_density

    lik = MapLikelihood(problem["map"], problem["corr"])

    def model():
        scale = numpyro.sample("scale", numpyro.distributions.LogNormal(0.0, 0.1))
        numpyro.factor("lik", lik.log_prob(jnp.asarray(problem["mu"]), scale))

    lp, _ = log_density(model, (), {}, {"scale": 1.1})
    prior = st.lognorm(0.1).logpdf(1.1)
    np.testing.assert_allclose(lp, prior + lik.log_prob(problem["mu"], 1.1), rtol=1e-12)


def test_model_as_map_and_positions(problem):
    lik = MapLikelihood(problem["map"], problem["corr"])
    good = problem["map"].good
    np.testing.assert_array_equal(lik.index, np.flatnonzero(good.ravel()))
    yy, xx = np.nonzero(good)
    np.testing.assert_array_equal(lik.x, xx)
    np.testing.assert_array_equal(lik.y, yy)
    np.testing.assert_allclose(lik.data, problem["y"])
    np.testing.assert_allclose(lik.sigma, problem["sigma"])
    assert lik.n == good.sum()
    np.testing.assert_allclose(lik.log_prob(problem["model"]), lik.log_prob(problem["mu"]))
    s = lik.settings
    assert s["correlation_source"] == "test" and s["correlation_params"] == {"s": 0.9}
    assert s["nugget"] == 0.0 and s["rank"] == lik.n
    with pytest.raises(ShapeError, match="testmap"):
        lik.log_prob(np.zeros(3))


@pytest.mark.parametrize("method", ["banded", "eigen"])
def test_whiten_is_standard_normal(problem, method):
    lik = MapLikelihood(problem["map"], problem["corr"], method=method)
    cov = reference_cov(problem, method, 1.0, 0.0)
    chol = np.linalg.cholesky(cov)
    noise = chol @ np.random.default_rng(1).standard_normal((lik.n, 60))
    w = np.asarray(jax.jit(jax.vmap(lik.whiten))(jnp.asarray(noise.T))).ravel()
    assert w.size == 60 * lik.dof
    assert st.kstest(w, "norm").pvalue > 1e-3
    np.testing.assert_allclose(
        np.sum(np.asarray(lik.whiten(noise[:, 0])) ** 2),
        noise[:, 0] @ np.linalg.solve(cov, noise[:, 0]),
    )


@pytest.mark.parametrize("method", ["banded", "eigen", "diagonal"])
def test_pointwise_loo_matches_dense(problem, method):
    lik = MapLikelihood(problem["map"], problem["corr"], method=method)
    scale, scatter = 1.1, 0.2
    if method == "diagonal":
        cov = np.diag(scale**2 * problem["sigma"] ** 2 + scatter**2)
    else:
        cov = reference_cov(problem, method, scale, scatter)
    prec = np.linalg.inv(cov)
    g = prec @ (problem["y"] - problem["mu"])
    q = np.diag(prec)
    ref = -0.5 * np.log(2 * np.pi) + 0.5 * np.log(q) - 0.5 * g**2 / q
    np.testing.assert_allclose(lik.pointwise_loo(problem["mu"], scale, scatter), ref, atol=1e-10)
    # definition check: log N(y_i | conditional mean, conditional variance) from the covariance
    i = 4
    rest = np.delete(np.arange(lik.n), i)
    c12 = cov[i, rest]
    sol = np.linalg.solve(
        cov[np.ix_(rest, rest)], np.stack([c12, (problem["y"] - problem["mu"])[rest]], 1)
    )
    mean = problem["mu"][i] + c12 @ sol[:, 1]
    var = cov[i, i] - c12 @ sol[:, 0]
    np.testing.assert_allclose(ref[i], st.norm(mean, np.sqrt(var)).logpdf(problem["y"][i]))


def test_reduced_rank_matches_scipy_allow_singular():
    rng = np.random.default_rng(5)
    n, rank = 40, 25
    r = low_rank_correlation(n, rank)
    sigma = rng.uniform(0.5, 2.0, n)
    c0 = sigma[:, None] * r * sigma[None]
    u, _, _ = np.linalg.svd(c0)
    mu = rng.normal(size=n)
    on_support = mu + u[:, :rank] @ rng.normal(size=rank)  # scipy gives -inf off the support
    y = on_support + 0.3 * u[:, rank:] @ rng.normal(size=n - rank)
    lik = CorrelatedNormal(y, sigma, r, method="auto", name="lowrank")
    lik_on = CorrelatedNormal(on_support, sigma, r, method="auto", name="lowrank")
    assert lik.method == "eigen" and lik.dof == rank
    proj = u[:, :rank] @ u[:, :rank].T
    for scale, scatter in [(1.0, 0.0), (1.3, 0.0), (0.9, 0.5)]:
        # documented model: s^2 C0 + tau^2 P, P the projector on the range of C0
        cov = scale**2 * c0 + scatter**2 * proj
        ref = st.multivariate_normal(mu, cov, allow_singular=True).logpdf(on_support)
        np.testing.assert_allclose(lik_on.log_prob(mu, scale, scatter), ref, rtol=1e-8)
        # off the support the null-space component of the residual is ignored
        np.testing.assert_allclose(lik.log_prob(mu, scale, scatter), ref, rtol=1e-8)
        res = y - mu
        np.testing.assert_allclose(
            lik.chi2(mu, scale, scatter), res @ np.linalg.pinv(cov, rtol=1e-10) @ res, rtol=1e-8
        )
    noise = np.linalg.cholesky(c0 + 1e-12 * np.eye(n))[:, :] @ rng.standard_normal((n, 1))
    assert lik.whiten(noise[:, 0]).shape == (rank,)
    check_grads(jax.jit(lik.log_prob), (jnp.asarray(mu), 1.1, 0.2), order=1, modes=["rev"])


def test_auto_method_choice(monkeypatch):
    rng = np.random.default_rng(0)
    pd = grid_correlation((5, 6))
    lik = CorrelatedNormal(rng.normal(size=30), np.ones(30), pd)
    assert lik.method == "banded" and lik.settings["bandwidth"] >= 1
    low = low_rank_correlation(30, 12)
    assert CorrelatedNormal(rng.normal(size=30), np.ones(30), low).method == "eigen"
    monkeypatch.setattr(lk.normal, "EIGEN_MAX_N", 10)  # where choose_factor reads it
    with pytest.raises(CovarianceError, match="nugget='auto'"):
        CorrelatedNormal(rng.normal(size=30), np.ones(30), low)
    lik = CorrelatedNormal(rng.normal(size=30), np.ones(30), low, nugget="auto")
    assert lik.method == "banded" and 0 < lik.nugget < 1e-4
    assert lik.settings["condition"] < 2e6


def test_nugget_changes_the_model_as_documented():
    rng = np.random.default_rng(2)
    r = grid_correlation((5, 6), nugget=0.0)
    y, sigma = rng.normal(size=30), rng.uniform(1, 2, 30)
    nu = 0.2
    lik = CorrelatedNormal(y, sigma, r, nugget=nu, method="banded")
    cov = sigma[:, None] * ((1 - nu) * r + nu * np.eye(30)) * sigma[None]
    np.testing.assert_allclose(
        lik.log_prob(0.0), st.multivariate_normal(np.zeros(30), cov).logpdf(y)
    )
    assert lik.settings["nugget"] == nu
    auto = CorrelatedNormal(y, sigma, r, nugget="auto", method="banded")
    lam_max = np.abs(r).sum(1).max()
    np.testing.assert_allclose(auto.nugget, lam_max / (1e6 - 1 + lam_max))


def test_from_covariance():
    rng = np.random.default_rng(4)
    r = grid_correlation((4, 5))
    sigma = rng.uniform(1, 3, 20)
    cov = sigma[:, None] * r * sigma[None]
    y = rng.normal(size=20)
    lik = CorrelatedNormal.from_covariance(y, sp.csr_array(cov))
    np.testing.assert_allclose(
        lik.log_prob(0.0), st.multivariate_normal(np.zeros(20), cov).logpdf(y)
    )
    bad = cov.copy()
    bad[3, 3] = 0.0
    with pytest.raises(VarianceError, match="diagonal"):
        CorrelatedNormal.from_covariance(y, bad)


def test_bad_input(problem):
    y, sigma, r = problem["y"], problem["sigma"], problem["dense"]
    n = y.size
    for bad_value, what in [(np.nan, "NaN"), (0.0, "zero"), (-1.0, "zero or negative")]:
        s = sigma.copy()
        s[2] = bad_value
        with pytest.raises(VarianceError, match=what):
            CorrelatedNormal(y, s, r, name="vec")
    with pytest.raises(ShapeError, match="vec"):
        CorrelatedNormal(y, sigma, r[:-1, :-1], name="vec")
    with pytest.raises(ShapeError):
        CorrelatedNormal(y, sigma[:-1], r)
    with pytest.raises(EmptyDataError):
        CorrelatedNormal([], [], None)
    with pytest.raises(InputError, match="NaN"):
        CorrelatedNormal(np.full(n, np.nan), sigma, r)
    with pytest.raises(CovarianceError, match="unit diagonal"):
        CorrelatedNormal(y, sigma, 2 * r)
    asym = r.copy()
    asym[0, 1] += 0.1
    with pytest.raises(CovarianceError, match="symmetric"):
        CorrelatedNormal(y, sigma, asym)
    with pytest.raises(InputError, match="method"):
        CorrelatedNormal(y, sigma, r, method="cholesky")
    with pytest.raises(InputError, match="nugget"):
        CorrelatedNormal(y, sigma, r, nugget=1.5)
    with pytest.raises(InputError, match="nugget"):
        CorrelatedNormal(y, sigma, r, nugget="big")
    with pytest.raises(ShapeError, match="testmap"):
        MapLikelihood(problem["map"], bi.SpatialCorrelation((4, 4), sp.eye_array(16)))
    small = bi.SpatialCorrelation(SHAPE, sp.eye_array(80), defined=np.eye(8, 10, dtype=bool) | True)
    small.defined[7, 9] = False
    with pytest.raises(CovarianceError, match="footprint"):
        MapLikelihood(problem["map"], small)


def test_not_positive_definite():
    # the hard-truncated Gaussian is indefinite (as in mangadap's approximation)
    r = grid_correlation((9, 9), sigma=1.92, rlim=3.0, nugget=0.0)
    assert np.linalg.eigvalsh(r).min() < -1e-3
    y, sigma = np.zeros(81), np.ones(81)
    with pytest.raises(CovarianceError, match="not positive-definite|numerically singular"):
        CorrelatedNormal(y, sigma, r, method="banded")
    with pytest.warns(CovarianceRepairWarning, match="relative Frobenius change"):
        lik = CorrelatedNormal(y, sigma, r, method="eigen")
    assert lik.settings["n_negative_clipped"] > 0
    lam = np.linalg.eigvalsh(r)
    expect = np.sqrt(np.sum(lam[lam < 0] ** 2) / np.sum(lam**2))
    np.testing.assert_allclose(lik.settings["relative_change"], expect, rtol=1e-6)
    assert lik.dof == np.sum(lam > 1e-8 * lam.max())


def test_requires_x64(problem):
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(BayesifuError, match="float64"):
            CorrelatedNormal(problem["y"], problem["sigma"], problem["dense"])
    finally:
        jax.config.update("jax_enable_x64", True)


# ----------------------------------------------------------------------------------- cubes
def make_cube(corr_dense, shape=(6, 7), nwave=5, seed=0):
    rng = np.random.default_rng(seed)
    var = rng.uniform(0.5, 2.0, (nwave,) + shape)
    chol = np.linalg.cholesky(corr_dense)
    noise = np.einsum("ij,wj->wi", chol, rng.standard_normal((nwave, shape[0] * shape[1])))
    flux = noise.reshape((nwave,) + shape) * np.sqrt(var)
    var[2, 1, 1] = np.inf  # channel 2 has one more masked spaxel
    return bi.Cube(flux, var, np.arange(nwave) + 5000.0, name="testcube")


def _cube_reference(cube, corr_dense, model, scale=1.0):
    total, chi2, grad = 0.0, [], np.zeros(cube.shape)
    for k in range(cube.shape[0]):
        good = ~cube.channel_mask(k).ravel()
        sig = np.sqrt(cube.variance[k].ravel()[good]) * scale
        cov = sig[:, None] * corr_dense[np.ix_(good, good)] * sig[None]
        y, mu = cube.flux[k].ravel()[good], model[k].ravel()[good]
        total += st.multivariate_normal(mu, cov).logpdf(y)
        chi2.append((y - mu) @ np.linalg.solve(cov, y - mu))
        grad.reshape(cube.shape[0], -1)[k, good] = np.linalg.solve(cov, y - mu)
    return total, np.array(chi2), grad


def test_cube_banded_matches_scipy():
    shape = (6, 7)
    r = grid_correlation(shape)
    cube = make_cube(r, shape)
    corr = bi.SpatialCorrelation(shape, sp.csr_array(r))
    lik = CubeLikelihood(cube, corr)
    assert len(lik.groups) == 2 and lik.methods == ["banded"]
    model = np.full(cube.shape, 0.05)
    ref, chi2, grad = _cube_reference(cube, r, model, 1.2)
    val_grad = jax.jit(jax.value_and_grad(lambda m: lik.log_prob(m, 1.2)))
    value, gradient = val_grad(jnp.asarray(model))
    np.testing.assert_allclose(value, ref, rtol=1e-10)
    np.testing.assert_allclose(gradient, grad, atol=1e-10)
    np.testing.assert_allclose(jax.jit(lambda m: lik.chi2(m, 1.2))(model), chi2, rtol=1e-10)
    assert lik.dof_per_channel[2] == 41 and lik.dof_per_channel[0] == 42
    check_grads(jax.jit(lambda s, t: lik.log_prob(model, s, t)), (1.1, 0.2), 1, modes=["rev"])


def test_cube_reduced_rank():
    shape = (5, 6)
    r = low_rank_correlation(30, 18, seed=1)
    cube = make_cube(r + 1e-12 * np.eye(30), shape, nwave=4)
    corr = bi.SpatialCorrelation(shape, sp.csr_array(r))
    lik = CubeLikelihood(cube, corr, method="eigen")
    model = np.zeros(cube.shape)
    chi2 = np.asarray(jax.jit(lambda m: lik.chi2(m, 1.3))(model))
    for k in range(4):
        good = ~cube.channel_mask(k).ravel()
        z = cube.flux[k].ravel()[good] / (1.3 * np.sqrt(cube.variance[k].ravel()[good]))
        rr = r[np.ix_(good, good)]
        np.testing.assert_allclose(
            chi2[k], z @ np.linalg.pinv(rr, rtol=1e-8, hermitian=True) @ z, rtol=1e-6
        )
    assert np.all(lik.dof_per_channel == 18)
    assert np.isfinite(jax.jit(lambda m: lik.log_prob(m, 1.3))(model))
    with pytest.raises(InputError, match="scatter"):
        lik.log_prob(model, 1.0, 0.5)


def test_cube_bad_input():
    shape = (6, 7)
    r = grid_correlation(shape)
    cube = make_cube(r, shape)
    with pytest.raises(ShapeError, match="testcube"):
        CubeLikelihood(cube, bi.SpatialCorrelation((3, 3), sp.eye_array(9)))
    cube.variance[:] = np.nan
    with pytest.raises(EmptyDataError, match="testcube"):
        CubeLikelihood(cube, None)


@pytest.mark.parametrize("method", ["eigen", "banded", "independent"])
def test_whiten_spaxels_is_standard_normal_with_data_order(method):
    """Per-spaxel whitening: unit variance on noise drawn from the model, and data order kept."""
    rng = np.random.default_rng(7)
    n = 60
    xy = np.stack(np.divmod(np.arange(n), 10), axis=1).astype(float)
    d2 = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    corr = np.exp(-d2 / (2 * 0.8**2)) * (d2 <= 9)
    corr = 0.9 * corr + 0.1 * np.eye(n)  # positive-definite
    sigma = rng.uniform(0.5, 2.0, n)
    matrix = None if method == "independent" else sp.csr_array(corr)
    m = "auto" if method == "independent" else method
    lik = bi.CorrelatedNormal(np.zeros(n), sigma, matrix, method=m)
    cov = (corr if matrix is not None else np.eye(n)) * np.outer(sigma, sigma)
    draws = rng.multivariate_normal(np.zeros(n), cov, size=3000)
    white = np.array([np.asarray(lik.whiten_spaxels(-r)) for r in draws[:400]])
    assert white.shape == (400, n)
    assert abs(white.var() - 1.0) < 0.05
    # a residual concentrated on one spaxel whitens to a value concentrated near that spaxel
    spike = np.zeros(n)
    spike[23] = 5.0 * sigma[23]
    w = np.abs(np.asarray(lik.whiten_spaxels(-spike)))
    assert np.argmax(w) == 23
