"""BinnedMapLikelihood (binned DAP maps, e.g. STELLAR_VEL) against a dense numpy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import stats

import bayesifu as bi
from bayesifu.errors import CovarianceError, InputError, ShapeError

MAPS = "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
SNRG = "manga-7815-3702-SNRG.fits.gz"


def binned_map(seed=0):
    """10 x 10 map: single-spaxel bins in the middle, 2x2 blocks outside, shuffled sparse ids."""
    rng = np.random.default_rng(seed)
    y, x = np.indices((10, 10))
    block = (y // 2) * 5 + x // 2
    centre = (abs(y - 4.5) < 2) & (abs(x - 4.5) < 2)
    binid = np.where(centre, 100 + y * 10 + x, block)
    ids = np.unique(binid)
    relabel = dict(zip(ids, rng.permutation(ids.size) * 3 + 1, strict=True))
    binid = np.vectorize(relabel.get)(binid)
    binid[0, :3] = -1  # spaxels in no bin
    values = {b: rng.normal(50.0, 20.0) for b in np.unique(binid)}
    vari = {b: rng.uniform(4.0, 25.0) for b in np.unique(binid)}
    data = np.vectorize(values.get)(binid).astype(float)
    var = np.vectorize(vari.get)(binid).astype(float)
    mask = np.zeros((10, 10), bool)
    mask[9, 9] = True  # one member of a 2x2 bin masked: the bin keeps its other three
    return bi.Map(data, var, mask=mask, binid=binid, name="synthetic binned")


def dense_reference(m, corr, flux, gvar):
    """Per-bin values, W (model average) and the covariance D R D, with dense numpy."""
    good = m.good.ravel()
    ids = np.unique(m.binid[m.good])
    binid = m.binid.ravel()
    n_grid = binid.size
    stack = np.zeros((ids.size, n_grid))
    w = np.zeros((ids.size, n_grid))
    values, sig = np.zeros(ids.size), np.zeros(ids.size)
    for i, b in enumerate(ids):
        members = np.flatnonzero((binid == b) & good)
        stack[i, members] = 1.0 / members.size
        w[i, members] = flux.ravel()[members] / flux.ravel()[members].sum()
        values[i] = m.data.ravel()[members[0]]
        sig[i] = np.sqrt(m.variance.ravel()[members[0]])
    g = np.sqrt(np.where(good, gvar.ravel(), 0.0))
    k = stack @ (g[:, None] * corr.matrix.toarray() * g[None, :]) @ stack.T
    r = k / np.sqrt(np.outer(np.diag(k), np.diag(k)))
    return values, w, sig[:, None] * r * sig[None, :]


@pytest.fixture
def setup():
    m = binned_map()
    corr = bi.SpatialCorrelation.gaussian(m.shape, sigma=1.0, rlim=3.0)
    rng = np.random.default_rng(5)
    flux = rng.uniform(1.0, 10.0, m.shape)
    gvar = rng.uniform(0.5, 2.0, m.shape)
    return m, corr, flux, gvar


@pytest.mark.parametrize("method", ["auto", "eigen"])
def test_log_prob_matches_dense_reference(setup, method):
    m, corr, flux, gvar = setup
    lik = bi.BinnedMapLikelihood(m, corr, flux=flux, spaxel_variance=gvar, method=method)
    values, w, cov = dense_reference(m, corr, flux, gvar)
    assert lik.n == values.size and lik.n_spaxels == m.n_good
    np.testing.assert_array_equal(lik.data, values)
    np.testing.assert_allclose(lik.operator.toarray(), w[:, lik.index], atol=1e-15)
    vmap = 30.0 + 2.0 * np.indices(m.shape)[1] - 1.5 * np.indices(m.shape)[0]  # a gradient
    mu = w @ vmap.ravel()
    expect = stats.multivariate_normal(mu, cov).logpdf(values)
    for model in (vmap, vmap.ravel()[lik.index], mu):  # full map, per member spaxel, per bin
        assert float(lik.log_prob(model)) == pytest.approx(expect, rel=1e-9)
    res = values - mu
    assert float(lik.chi2(vmap)) == pytest.approx(res @ np.linalg.solve(cov, res), rel=1e-8)
    # error scale and scatter: the covariance of the chosen path, independently
    s = 1.4
    expect_s = stats.multivariate_normal(mu, s**2 * cov).logpdf(values)
    assert float(lik.log_prob(vmap, scale=s)) == pytest.approx(expect_s, rel=1e-9)


def test_independent_bins_and_uniform_weights(setup):
    m = setup[0]
    lik = bi.BinnedMapLikelihood(m)
    values, w, cov = dense_reference(m, setup[1], np.ones(m.shape), np.ones(m.shape))
    assert lik.method == "diagonal" and lik.dof == lik.n
    vmap = np.arange(100.0).reshape(10, 10)
    expect = stats.norm.logpdf(values, w @ vmap.ravel(), np.sqrt(np.diag(cov))).sum()
    assert float(lik.log_prob(vmap)) == pytest.approx(expect, rel=1e-10)
    # a map reconstructed from bins round-trips
    back = lik.to_map(lik.data)
    np.testing.assert_array_equal(back[m.good], m.data[m.good])
    assert np.isnan(back[~m.good]).all()


def test_single_spaxel_bins_are_identity():
    y, x = np.indices((5, 6))
    binid = (y * 6 + x)[::-1]  # one spaxel per bin, ids decreasing along the grid
    data = np.random.default_rng(1).normal(size=(5, 6))
    lik = bi.BinnedMapLikelihood(bi.Map(data, np.ones((5, 6)), binid=binid))
    np.testing.assert_array_equal(lik.operator.toarray(), np.eye(30))
    np.testing.assert_array_equal(lik.data, data.ravel()[lik.index])


def test_gradient_and_jit(setup):
    m, corr, flux, gvar = setup
    lik = bi.BinnedMapLikelihood(m, corr, flux=flux, spaxel_variance=gvar)
    v = jnp.asarray(np.linspace(20.0, 80.0, lik.n_spaxels))
    f = jax.jit(lambda v, s, t: lik.log_prob(v, scale=s, scatter=t))
    assert float(f(v, 1.0, 0.0)) == pytest.approx(float(lik.log_prob(v)), rel=1e-12)
    check_grads(f, (v, 1.2, 0.5), 1, modes=["rev"])


def chi2_draws(lik, cov, n_draws, seed):
    lam, vec = np.linalg.eigh(cov)
    lam = np.clip(lam, 0.0, None)
    z = np.random.default_rng(seed).standard_normal((n_draws, lam.size))
    noise = (z * np.sqrt(lam)) @ vec.T
    models = jnp.asarray(lik.data[None, :] - noise)
    return np.asarray(jax.jit(jax.vmap(lik.chi2))(models))


def test_chi2_of_noise_from_the_stated_covariance_is_chi2_dof(setup):
    m, corr, flux, gvar = setup
    lik = bi.BinnedMapLikelihood(m, corr, flux=flux, spaxel_variance=gvar)
    cov = dense_reference(m, corr, flux, gvar)[2]
    chi2 = chi2_draws(lik, cov, 4000, seed=2)
    assert stats.kstest(chi2, stats.chi2(lik.dof).cdf).pvalue > 1e-3
    # and it can fail: the same draws scored as independent bins are not chi2(dof)
    ind = bi.BinnedMapLikelihood(m)
    assert stats.kstest(chi2_draws(ind, cov, 4000, seed=2), stats.chi2(ind.dof).cdf).pvalue < 1e-6


@pytest.fixture(scope="module")
def real(request):
    from pathlib import Path

    data = Path(__file__).parent / "data"
    assert (data / MAPS).exists() and (data / SNRG).exists(), "committed MaNGA test files missing"
    m = bi.read_map(data / MAPS, "STELLAR_VEL")
    corr = bi.SpatialCorrelation.from_fits(data / SNRG, "CORREL")
    flux = bi.read_map(data / MAPS, "SPX_MFLUX")
    return m, corr, flux


@pytest.mark.slow
def test_real_stellar_vel_with_correl_is_calibrated(real):
    m, corr, flux = real
    lik = bi.BinnedMapLikelihood(
        m, corr, flux=flux.data, spaxel_variance=flux.variance, method="eigen"
    )
    assert lik.n == m.bins.size == 497 and lik.n_spaxels == m.n_good
    assert lik.dof <= lik.n
    values, w, cov = dense_reference(m, corr, flux.data, flux.variance)
    np.testing.assert_array_equal(lik.data, values)
    chi2 = chi2_draws(lik, cov, 1000, seed=3)
    assert stats.kstest(chi2, stats.chi2(lik.dof).cdf).pvalue > 1e-3
    lp = float(lik.log_prob(np.full(lik.n_spaxels, np.median(lik.data))))
    assert np.isfinite(lp)


def test_bad_input(setup):
    m, corr, _, _ = setup
    with pytest.raises(InputError, match="no bin ids"):
        bi.BinnedMapLikelihood(bi.Map(m.data, m.variance))
    with pytest.raises(ShapeError, match="flux"):
        bi.BinnedMapLikelihood(m, flux=np.ones((3, 3)))
    with pytest.raises(InputError, match="spaxel_variance"):
        bi.BinnedMapLikelihood(m, corr, spaxel_variance=np.zeros(m.shape))
    with pytest.raises(InputError, match="different values"):
        data = m.data.copy()
        data[9, 8] += 1.0
        bi.BinnedMapLikelihood(bi.Map(data, m.variance, binid=m.binid))
    n = m.data.size
    small = bi.SpatialCorrelation(m.shape, np.eye(n) * (np.arange(n) > 50))  # half undefined
    with pytest.raises(CovarianceError, match="footprint"):
        bi.BinnedMapLikelihood(m, small)
    with pytest.raises(ShapeError):
        bi.BinnedMapLikelihood(m).log_prob(np.ones(7))
