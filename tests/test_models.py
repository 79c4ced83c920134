"""Every model file runs with tiny sample counts; priors, bad input and the seed-004 surface."""

import importlib
import warnings

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro import handlers

from bayesifu import _arviz
from bayesifu.containers import Map
from bayesifu.correlation import SpatialCorrelation
from bayesifu.errors import EmptyDataError, InputError
from bayesifu.likelihood import MapLikelihood
from bayesifu.sampling import sample

MODELS = ["disk", "plane", "sersic", "polynomial_surface", "constant", "sed"]


def _small_lik(values, seed=0):
    ny, nx = values.shape
    rng = np.random.default_rng(seed)
    corr = SpatialCorrelation.gaussian((ny, nx), sigma=1.0, rlim=3.0)
    m = Map(values + 0.5 * rng.standard_normal(values.shape), np.full(values.shape, 0.25))
    return MapLikelihood(m, corr)


@pytest.fixture(scope="module")
def disk_lik():
    from bayesifu.kinematics import DiskParams, disk_velocity

    yy, xx = np.mgrid[0:12, 0:12].astype(float)
    p = DiskParams(x0=5.6, y0=6.2, pa=60.0, inc=50.0, vsys=10.0, vmax=120.0, rt=2.0)
    return _small_lik(np.asarray(disk_velocity(xx, yy, p)))


def _run(model, *args, **kwargs):
    return sample(model, *args, chains=1, draws=5, warmup=5, check="ignore", **kwargs)


def test_disk_model_records_parameters(disk_lik):
    from bayesifu.models import disk

    tr = handlers.trace(handlers.seed(disk.model, 0)).get_trace(
        disk_lik.x, disk_lik.y, disk_lik, scatter=dist.HalfNormal(5.0)
    )
    for name in (*disk.PARAMS, "v_proj", "scatter", "obs"):
        assert name in tr
    p = {k: float(tr[k]["value"]) for k in disk.PARAMS}
    assert float(tr["v_proj"]["value"]) == pytest.approx(p["vmax"] * np.sin(np.deg2rad(p["inc"])))


@pytest.mark.parametrize(
    "prior, reference",
    [
        (None, "halfnorm"),  # the default vmax ~ HalfNormal(300)
        (dist.Normal(200.0, 25.0), "norm"),
    ],
)
def test_disk_samples_v_proj_but_keeps_the_vmax_prior(disk_lik, prior, reference):
    """The sampler works in v_proj = vmax sin(inc); the prior of vmax (and of inc) is the one
    given: prior draws of the deterministic vmax pass a KS test against it (scipy.stats)."""
    from bayesifu.models import disk
    from scipy import stats

    priors = None if prior is None else {"vmax": prior}
    draws = numpyro.infer.Predictive(disk.model, num_samples=4000)(
        jax.random.PRNGKey(3), disk_lik.x, disk_lik.y, priors=priors
    )
    vmax, inc = np.asarray(draws["vmax"]), np.asarray(draws["inc"])
    np.testing.assert_allclose(draws["v_proj"], vmax * np.sin(np.deg2rad(inc)), rtol=1e-12)
    ref = stats.halfnorm(scale=300.0) if reference == "halfnorm" else stats.norm(200.0, 25.0)
    assert stats.kstest(vmax, ref.cdf).pvalue > 1e-3
    assert stats.kstest(inc, stats.uniform(5.0, 80.0).cdf).pvalue > 1e-3
    assert abs(stats.spearmanr(vmax, inc)[0]) < 0.05  # independent a priori, as given
    # and it can fail: v_proj itself is not distributed as the vmax prior
    assert stats.kstest(np.asarray(draws["v_proj"]), ref.cdf).pvalue < 1e-6


def test_disk_init_values_convert_vmax_to_v_proj():
    from bayesifu.models import disk

    start = disk.init_values({"inc": 30.0, "vmax": 200.0, "pa": 10.0})
    assert start == pytest.approx({"inc": 30.0, "v_proj": 100.0, "pa": 10.0})
    with pytest.raises(InputError, match="vmax needs one of inc"):
        disk.init_values({"vmax": 200.0})


def test_disk_model_smeared_and_binned(disk_lik):
    from bayesifu.models import disk

    tr = handlers.trace(handlers.seed(disk.model, 0)).get_trace(
        disk_lik.x, disk_lik.y, disk_lik, psf_sigma=1.0, curve="arctan"
    )
    assert np.isfinite(tr["obs"]["fn"].log_prob(tr["obs"]["value"]))
    operator = np.zeros((2, disk_lik.n))
    operator[0, : disk_lik.n // 2] = 1.0 / (disk_lik.n // 2)
    operator[1, disk_lik.n // 2 :] = 1.0 / (disk_lik.n - disk_lik.n // 2)
    tr = handlers.trace(handlers.seed(disk.model, 0)).get_trace(
        disk_lik.x, disk_lik.y, operator=operator
    )
    assert "obs" not in tr


def test_disk_prior_is_replaceable(disk_lik):
    from bayesifu.models import disk

    prior = {"inc": dist.Delta(42.0)}
    tr = handlers.trace(handlers.seed(disk.model, 1)).get_trace(
        disk_lik.x, disk_lik.y, disk_lik, priors=prior
    )
    assert float(tr["inc"]["value"]) == 42.0


def test_plane_and_sersic_models_record_parameters():
    from bayesifu.models import plane, sersic

    from bayesifu.surfaces import SersicParams
    from bayesifu.surfaces import sersic as sersic_fn

    yy, xx = np.mgrid[0:10, 0:10].astype(float)
    lik = _small_lik(1.0 + 0.1 * xx - 0.05 * yy)
    tr = handlers.trace(handlers.seed(plane.model, 0)).get_trace(
        lik.x, lik.y, lik, scale=dist.LogNormal(0.0, 0.3)
    )
    assert {"z0", "gx", "gy", "g", "g_angle", "error_scale", "obs"} <= set(tr)
    truth = SersicParams(x0=4.5, y0=4.8, pa=30.0, q=0.7, ie=5.0, re=3.0, n=1.0)
    lik = _small_lik(np.asarray(sersic_fn(xx, yy, truth)))
    tr = handlers.trace(handlers.seed(sersic.model, 0)).get_trace(lik.x, lik.y, lik, fix_n=1.0)
    assert "n" not in tr and "total_flux" in tr


def test_sersic_total_flux_matches_numerical_integral():
    from bayesifu.models import sersic

    from bayesifu.surfaces import SersicParams
    from bayesifu.surfaces import sersic as sersic_fn

    p = {"x0": 300.0, "y0": 300.0, "pa": 20.0, "q": 0.6, "ie": 2.0, "re": 25.0, "n": 1.5}
    tr = handlers.trace(handlers.substitute(handlers.seed(sersic.model, 0), p)).get_trace(
        np.zeros(3), np.zeros(3)
    )
    yy, xx = np.mgrid[0:601, 0:601].astype(float)
    total = float(np.sum(sersic_fn(xx, yy, SersicParams(**p))))
    assert float(tr["total_flux"]["value"]) == pytest.approx(total, rel=2e-3)


@pytest.mark.slow
def test_plane_recovers_truth_with_array_data():
    from bayesifu.models import plane

    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 10, 40), rng.uniform(0, 10, 40)
    z = 3.0 + 0.5 * (x - 5) - 0.25 * (y - 5) + 0.05 * rng.standard_normal(40)
    idata = sample(
        plane.model, x, y, z, x_ref=5.0, y_ref=5.0, chains=1, draws=300, warmup=300, check="ignore"
    )
    post = _arviz.group(idata, "posterior")
    assert abs(float(post["gx"].mean()) - 0.5) < 0.03
    assert abs(float(post["gy"].mean()) + 0.25) < 0.03


def test_too_few_spaxels_is_a_clear_error():
    from bayesifu.models import disk, plane

    values = np.zeros((3, 3))
    mask = np.ones((3, 3), bool)
    mask[1, :] = False
    m = Map(values, np.ones((3, 3)), mask=mask)
    lik = MapLikelihood(m)
    with pytest.raises(EmptyDataError, match="3 valid data point.*7 parameters"):
        sample(disk.model, lik.x, lik.y, lik)
    with pytest.raises(EmptyDataError, match="plane"):
        sample(plane.model, lik.x, lik.y, lik, scatter=dist.HalfNormal(1.0))
    with pytest.raises(InputError, match="beam smearing"):
        sample(disk.model, lik.x, lik.y, np.zeros(3), psf_sigma=1.0)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.slow
def test_main_runs(name, monkeypatch):
    """Each model file's example runs (sample() patched to tiny counts)."""
    module = importlib.import_module(f"bayesifu.models.{name}")
    import bayesifu.sampling as sampling

    real = sampling.sample

    def tiny(model, *args, **kwargs):
        kwargs.update(chains=1, draws=5, warmup=5, check="ignore")
        return real(model, *args, **kwargs)

    monkeypatch.setattr(sampling, "sample", tiny)
    monkeypatch.setattr(numpyro, "enable_x64", lambda: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # arviz summary of 5 draws
        idata = module.main([])
    groups = _arviz.group_names(idata)
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= set(groups)
    post = _arviz.group(idata, "posterior")
    assert np.all(np.isfinite(np.asarray(_arviz.group(idata, "log_likelihood")["obs"])))
    expected = {
        "disk": ("x0", "pa", "inc", "vmax", "rt", "v_proj"),
        "plane": ("z0", "gx", "gy", "g"),
        "sersic": ("x0", "re", "n", "total_flux"),
        "polynomial_surface": ("theta", "coef", "scatter"),
        "constant": ("v0",),
        "sed": ("av", "flux_obs", "fractions", "flux", "weights", "flux_total"),
    }[name]
    assert set(expected) <= set(post)
    assert jax.config.jax_enable_x64


@pytest.mark.slow
def test_seed004_surface_samples_well():
    """Seed 004: 16 coefficients on 66 points, singular for LM; NUTS in the orthonormal basis
    converges (check="raise": no divergences, r-hat <= 1.01, enough ESS) and the posterior mean
    surface is the least-squares surface."""
    from bayesifu.models.polynomial_surface import model, seed004_data

    from bayesifu.surfaces import PolynomialBasis

    u, v, z = seed004_data()
    basis = PolynomialBasis(u, v, (3, 3))
    idata = sample(model, u, v, z, basis=basis, chains=2, draws=2000, warmup=600, check="raise")
    coef = np.asarray(_arviz.group(idata, "posterior")["coef"]).reshape(-1, 16)
    assert int(np.asarray(_arviz.group(idata, "sample_stats")["diverging"]).sum()) == 0
    q = basis.design(u, v)
    ols = q @ np.linalg.lstsq(q, z, rcond=None)[0]
    resid_sd = np.sqrt(np.sum((z - ols) ** 2) / (z.size - 16))
    pred = basis.power_design(u, v) @ coef.mean(0)
    assert np.max(np.abs(pred - ols)) < 0.2 * resid_sd
    scatter = np.asarray(_arviz.group(idata, "posterior")["scatter"]).ravel()
    assert 0.7 < np.median(scatter) / resid_sd < 1.3
    assert np.all(coef.std(0) > 0)
