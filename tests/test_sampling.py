"""Statistical checks of bayesifu.sample (NUTS and emcee) on a target with a known posterior."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import scipy.sparse as sp
import scipy.stats as st
from numpyro.diagnostics import effective_sample_size
from numpyro.infer import init_to_value

from bayesifu import _arviz
from bayesifu.errors import InputError, SamplingError
from bayesifu.likelihood import CorrelatedNormal
from bayesifu.sampling import (
    ConvergenceWarning,
    _finish,
    check_convergence,
    laplace_inverse_mass,
    observe,
    sample,
)

TAU = 3.0


def _problem(n=30, seed=1):
    """Linear model y = X b + e, e ~ N(0, C), AR(1)-like correlation: a conjugate posterior."""
    rng = np.random.default_rng(seed)
    t = np.linspace(-1, 1, n)
    design = np.column_stack([np.ones(n), t])
    sigma = 0.5 + 0.2 * rng.random(n)
    corr = 0.6 ** np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    corr[corr < 1e-3] = 0.0
    cov = sigma[:, None] * corr * sigma[None, :]
    y = design @ np.array([1.0, -2.0]) + np.linalg.cholesky(cov) @ rng.standard_normal(n)
    prec = design.T @ np.linalg.solve(cov, design) + np.eye(2) / TAU**2
    post_cov = np.linalg.inv(prec)
    post_mean = post_cov @ design.T @ np.linalg.solve(cov, y)
    lik = CorrelatedNormal(y, sigma, sp.csr_array(corr), method="eigen")
    return design, lik, post_mean, post_cov, cov, y


def linear_model(design, obs=None):
    b = numpyro.sample("b", dist.Normal(0.0, TAU).expand([2]).to_event(1))
    observe(obs, jnp.asarray(design) @ b)


@pytest.fixture(scope="module")
def problem():
    return _problem()


def _check_moments(idata, post_mean, post_cov):
    draws = np.asarray(_arviz.group(idata, "posterior")["b"]).reshape(-1, 2)
    ess = np.asarray(_arviz.summary(idata, var_names=["b"])["ess_bulk"])
    sd = np.sqrt(np.diag(post_cov))
    mcse = sd / np.sqrt(ess)
    assert np.all(np.abs(draws.mean(0) - post_mean) < 4 * mcse)
    # the sd of a normal sample has relative error ~ 1/sqrt(2 ess)
    assert np.all(np.abs(draws.std(0) / sd - 1) < 4 / np.sqrt(2 * ess))
    corr = np.corrcoef(draws.T)[0, 1]
    want = post_cov[0, 1] / np.prod(sd)
    assert abs(corr - want) < 4 * (1 - want**2) / np.sqrt(ess.min())


@pytest.mark.slow
def test_nuts_conjugate_posterior(problem):
    design, lik, post_mean, post_cov, cov, y = problem
    idata = sample(linear_model, design, lik, chains=2, draws=1500, warmup=500, seed=3)
    _check_moments(idata, post_mean, post_cov)
    groups = _arviz.group_names(idata)
    for g in ("posterior", "sample_stats", "observed_data", "log_likelihood"):
        assert g in groups
    np.testing.assert_array_equal(_arviz.group(idata, "observed_data")["obs"], y)
    attrs = _arviz.group(idata, "posterior").attrs
    assert attrs["sampler"] == "nuts" and "likelihood_obs" in attrs


def test_laplace_inverse_mass_is_the_gaussian_posterior_covariance(problem):
    """For a Gaussian posterior, L-BFGS from a start off the mode and the inverse Hessian there
    give exactly the posterior covariance (here against the closed form)."""
    design, lik, _, post_cov, _, _ = problem
    start = init_to_value(values={"b": jnp.array([3.0, 1.0])})
    key = jax.random.PRNGKey(0)
    dense = laplace_inverse_mass(linear_model, (design, lik), {}, start, key)
    np.testing.assert_allclose(dense, post_cov, rtol=1e-6, atol=1e-12)
    diag = laplace_inverse_mass(linear_model, (design, lik), {}, start, key, dense=False)
    np.testing.assert_allclose(diag, np.diag(post_cov), rtol=1e-6)


@pytest.mark.slow
def test_nuts_laplace_mass_short_warmup_conjugate_posterior(problem):
    """The preconditioned run (fixed Laplace mass, 100 warmup) samples the same posterior."""
    design, lik, post_mean, post_cov, _, _ = problem
    opts = {"dense_mass": True, "init_mass": "laplace", "adapt_mass": False}
    idata = sample(
        linear_model, design, lik, chains=2, draws=1500, warmup=100, seed=6, sampler_options=opts
    )
    _check_moments(idata, post_mean, post_cov)
    # 2 chains run in parallel over host devices where there are 2 (an earlier CLI test in this
    # process may have set the device count), else vectorised.
    expected = "parallel" if jax.local_device_count() >= 2 else "vectorized"
    assert _arviz.group(idata, "posterior").attrs["chain_method"] == expected


def test_nuts_laplace_starts_the_chains_in_the_posterior(problem):
    """With init_mass='laplace' the chains start at draws from the Laplace approximation, not at
    the given start: with no warmup at all, from a start 10^4 posterior sds away, the draws
    already have the posterior's moments (a chain left at that start, with a mass fitted to the
    posterior's width, loses only ~1 unit of potential energy per iteration there)."""
    design, lik, post_mean, post_cov, _, _ = problem
    far = post_mean + 1e4 * np.sqrt(np.diag(post_cov))
    opts = {
        "dense_mass": True,
        "init_mass": "laplace",
        "adapt_mass": False,
        "init_strategy": init_to_value(values={"b": jnp.asarray(far)}),
    }
    idata = sample(
        linear_model, design, lik, chains=2, draws=600, warmup=0, seed=2, sampler_options=opts,
        check="ignore",
    )  # fmt: skip
    _check_moments(idata, post_mean, post_cov)
    first = np.asarray(_arviz.group(idata, "posterior")["b"])[:, 0]
    z = (first - post_mean) / np.sqrt(np.diag(post_cov))
    assert np.all(np.abs(z) < 5)


def test_emcee_conjugate_posterior(problem):
    design, lik, post_mean, post_cov, _, _ = problem
    idata = sample(
        linear_model,
        design,
        lik,
        sampler="emcee",
        draws=1500,
        warmup=500,
        seed=4,
        sampler_options={"walkers": 16},
        check="ignore",
    )
    assert _arviz.group(idata, "posterior")["b"].shape[:2] == (16, 1500)
    _check_moments(idata, post_mean, post_cov)


@pytest.mark.slow
def test_pointwise_loo_matches_conditional_gaussian(problem):
    """The log_likelihood group holds log p(y_i | y_-i, b) of the multivariate normal."""
    design, lik, _, _, cov, y = problem
    idata = sample(linear_model, design, lik, chains=1, draws=4, warmup=20, seed=5, check="ignore")
    b = np.asarray(_arviz.group(idata, "posterior")["b"])[0]
    ll = np.asarray(_arviz.group(idata, "log_likelihood")["obs"])[0]
    assert ll.shape == (4, y.size)
    for k in range(4):
        mu = design @ b[k]
        for i in (0, 7, y.size - 1):
            rest = np.delete(np.arange(y.size), i)
            c_ri = cov[rest, i]
            w = np.linalg.solve(cov[np.ix_(rest, rest)], c_ri)
            m = mu[i] + w @ (y[rest] - mu[rest])
            v = cov[i, i] - c_ri @ w
            assert ll[k, i] == pytest.approx(st.norm(m, np.sqrt(v)).logpdf(y[i]), rel=1e-8)
    with pytest.raises(InputError, match="PSIS-LOO needs at least 20 posterior draws"):
        _arviz.loo(idata)  # 4 draws: PSIS cannot fit a tail (arviz 1.x: IndexError)
    more = sample(linear_model, design, lik, chains=1, draws=40, warmup=20, seed=5, check="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PSIS on 40 draws may warn about k-hat
        assert np.isfinite(_arviz.loo(more).elpd_loo)


@pytest.mark.slow
def test_array_observation_pointwise_is_independent_normal():
    x = np.linspace(0, 1, 12)
    y = 2 * x + 0.1 * np.sin(7 * x)

    def model(x, obs=None):
        a = numpyro.sample("a", dist.Normal(0, 5))
        s = numpyro.sample("s", dist.HalfNormal(1.0))
        observe(obs, a * x, scatter=s)

    idata = sample(model, x, y, chains=1, draws=3, warmup=10, check="ignore")
    post = _arviz.group(idata, "posterior")
    ll = np.asarray(_arviz.group(idata, "log_likelihood")["obs"])[0]
    a, s = np.asarray(post["a"])[0], np.asarray(post["s"])[0]
    want = st.norm(a[:, None] * x, s[:, None]).logpdf(y)
    np.testing.assert_allclose(ll, want, rtol=1e-10)


def test_convergence_problems_are_reported():
    rng = np.random.default_rng(0)
    stuck = {"m": np.stack([rng.normal(0, 1, 200), rng.normal(5, 1, 200)])}
    problems = check_convergence(stuck, {"m": 1}, np.zeros((2, 200), bool))
    assert any("r-hat" in p for p in problems)
    problems = check_convergence(stuck, {"m": 1}, np.ones((2, 200), bool))
    assert any("divergent" in p and "target_accept" in p for p in problems)
    good = {"m": rng.normal(0, 1, (4, 500))}
    assert check_convergence(good, {"m": 1}, np.zeros((4, 500), bool)) == []


def test_convergence_message_lists_as_many_names_as_it_counts():
    """Seven stuck parameters: the message counts 7 and names all 7 (it used to list 6)."""
    rng = np.random.default_rng(1)
    names = ["x0", "y0", "pa", "inc", "vsys", "vmax", "rt"]
    stuck = {k: np.stack([rng.normal(0, 1, 200), rng.normal(9, 1, 200)]) for k in names}
    (rhat,) = [p for p in check_convergence(stuck, dict.fromkeys(names, 1)) if "r-hat" in p]
    assert "for 7 parameter(s)" in rhat
    assert all(f"{k} " in rhat for k in names)
    many = {f"b{i:02d}": v for i, v in enumerate([stuck["x0"]] * 12)}
    (rhat,) = [p for p in check_convergence(many, dict.fromkeys(many, 1)) if "r-hat" in p]
    assert "for 12 parameter(s)" in rhat and "b09" in rhat and "and 2 more" in rhat


@pytest.mark.slow
def test_bad_runs_warn_raise_and_save(tmp_path, problem):
    design, lik, *_ = problem
    out = tmp_path / "bad.nc"
    with pytest.raises(SamplingError) as err:
        sample(linear_model, design, lik, chains=2, draws=5, warmup=5, check="raise", out=out)
    assert out.exists() and err.value.idata is not None
    assert str(out) in str(err.value)
    assert np.asarray(_arviz.group(_arviz.from_netcdf(out), "posterior")["b"]).shape == (2, 5, 2)
    with pytest.warns(ConvergenceWarning, match="run longer|effective sample size"):
        _finish(err.value.idata, {"lp": np.zeros((2, 5))}, {"b": np.arange(20.0).reshape(2, 10)},
                {"b": 1}, "nuts", "warn", None)  # fmt: skip
    with pytest.warns(ConvergenceWarning, match="not finite"):
        _finish(None, {"lp": np.full((1, 3), np.nan)}, {}, {}, "emcee", "warn", None)


def test_model_that_cannot_initialise():
    def broken(obs=None):
        numpyro.sample("a", dist.Normal(0, 1))
        raise ValueError("boom")

    with pytest.raises(SamplingError, match="cannot run.*boom"):
        sample(broken)

    def infinite(obs=None):
        a = numpyro.sample("a", dist.Normal(0, 1))
        numpyro.factor("bad", jnp.inf * a**2 * -1.0)

    with pytest.raises(SamplingError, match="initialise"):
        sample(infinite, chains=1, draws=5, warmup=5)
    with pytest.raises(SamplingError, match="initialise"):
        sample(infinite, sampler="emcee", draws=5, warmup=5)


def test_bad_arguments(problem):
    design, lik, *_ = problem
    with pytest.raises(InputError, match="sampler"):
        sample(linear_model, design, lik, sampler="hmc")
    with pytest.raises(InputError, match="check"):
        sample(linear_model, design, lik, check="maybe")
    with pytest.raises(InputError, match="draws"):
        sample(linear_model, design, lik, draws=0)
    with pytest.raises(InputError, match="warmup"):
        sample(linear_model, design, lik, warmup=-1)
    with pytest.raises(InputError, match="walkers"):
        sample(linear_model, design, lik, sampler="emcee", sampler_options={"walkers": 2})
    with pytest.raises(InputError, match="sampler_options"):
        sample(linear_model, design, lik, sampler_options={"foo": 1})
    with pytest.raises(InputError, match="init_mass"):
        sample(linear_model, design, lik, sampler_options={"init_mass": "hessian"})
    with pytest.raises(InputError, match="adapt_mass"):
        sample(linear_model, design, lik, sampler_options={"adapt_mass": False})
    with pytest.raises(SamplingError, match="no latent"):
        sample(lambda obs=None: numpyro.factor("f", 0.0))


def test_convergence_check_uses_the_bulk_ess_that_arviz_reports():
    """The check counts the rank-normalised split bulk ESS that the summary table prints; it
    used to count the raw ESS, which can be far from it either way (`bayesifu fit --ext
    STELLAR_VEL` printed ess_bulk 587 for vmax and refused it as 289)."""
    import bayesifu.sampling as smp
    from bayesifu import _arviz

    rng = np.random.default_rng(3)
    e = rng.normal(size=(4, 500))
    ar = np.empty_like(e)
    ar[:, 0] = e[:, 0]
    for t in range(1, 500):
        ar[:, t] = 0.9 * ar[:, t - 1] + np.sqrt(1 - 0.81) * e[:, t]
    x = np.exp(2.0 * ar)  # heavy right tail
    table = _arviz.summary(_arviz.to_inference_data({"v": x}))
    ess_bulk = float(np.asarray(table["ess_bulk"])[0])
    assert abs(float(effective_sample_size(x)) - ess_bulk) > 0.5 * ess_bulk  # raw: far off
    np.testing.assert_allclose(effective_sample_size(smp._rank_normalised(x)), ess_bulk, rtol=0.01)
    # r-hat: the rank-normalised split value (bulk and folded) that the table prints.
    rhat = float(np.asarray(table["r_hat"])[0])
    assert smp._rank_rhat(x) == pytest.approx(rhat, abs=2e-3)
    old = smp.diagnostics.ESS_PER_CHAIN_MIN  # check_convergence reads it there
    try:
        for per_chain, flagged in ((ess_bulk / 4 * 0.9, False), (ess_bulk / 4 * 1.1, True)):
            smp.diagnostics.ESS_PER_CHAIN_MIN = per_chain
            problems = check_convergence({"v": x}, {"v": 1})
            assert any("effective sample size" in p for p in problems) == flagged
    finally:
        smp.diagnostics.ESS_PER_CHAIN_MIN = old


def test_summary_has_the_same_columns_under_both_arviz_versions():
    """ArviZ 1.x names the HDI columns hdi94_lb/hdi94_ub and rounds by default; bayesifu's
    summary gives the 0.x columns, unrounded, under both (notebook 02 reads hdi_3%)."""
    rng = np.random.default_rng(0)
    idata = _arviz.to_inference_data(
        {"v": rng.normal(size=(2, 400)), "w": rng.normal(size=(2, 400, 2))}
    )
    table = _arviz.summary(idata)
    assert list(table.columns) == _arviz.SUMMARY_COLUMNS
    assert list(table.index) == ["v", "w[0]", "w[1]"]
    v = np.asarray(_arviz.group(idata, "posterior")["v"]).ravel()
    assert table.loc["v", "mean"] == pytest.approx(v.mean(), rel=1e-12)
    assert table.loc["v", "sd"] == pytest.approx(v.std(ddof=1), rel=1e-9)
    assert table.loc["v", "hdi_3%"] < np.quantile(v, 0.1) < table.loc["v", "hdi_97%"]
    assert _arviz.summary(idata, var_names=["v"], round_to=1).loc["v", "sd"] == round(
        v.std(ddof=1), 1
    )


def test_update_attrs_survives_netcdf(tmp_path):
    """Attributes reach every group and the file under both arviz versions (under 1.x,
    ``_arviz.group`` returns a copy, so attributes set on it were lost)."""
    rng = np.random.default_rng(0)
    idata = _arviz.to_inference_data({"a": rng.normal(size=(2, 10))})
    _arviz.update_attrs(idata, {"bayesifu_command": "fit", "inputs": ["a.fits", "b.fits"]})
    path = tmp_path / "post.nc"
    _arviz.to_netcdf(idata, path)
    back = _arviz.from_netcdf(path)
    for name in _arviz.group_names(back):
        attrs = _arviz.group(back, name).attrs
        assert attrs["bayesifu_command"] == "fit", name
        assert "b.fits" in str(attrs["inputs"])
