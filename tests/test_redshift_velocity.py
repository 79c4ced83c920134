"""Redshift summaries as velocity maps with the full spatial covariance."""

import dataclasses

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


def correlated_disk_map(truth, shape=(14, 15), noise=5.0, corr_sigma=0.8, seed=0):
    """A disk velocity map with correlated noise drawn from the exact dense covariance."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    v = np.asarray(bi.disk_velocity(xx.ravel(), yy.ravel(), truth)).reshape(shape)
    corr = bi.SpatialCorrelation.gaussian(shape, sigma=corr_sigma, rlim=4 * corr_sigma)
    chol = np.linalg.cholesky(corr.matrix.toarray() + 1e-10 * np.eye(v.size))
    draw = chol @ np.random.default_rng(seed).standard_normal(v.size)
    m = bi.Map(v + noise * draw.reshape(shape), np.full(shape, noise**2))
    return m, corr


@pytest.mark.slow
def test_disk_lm_fits_multistart_finds_the_disk():
    from bayesifu.lmfit import disk_lm_fit, disk_lm_fits

    truth = bi.DiskParams(x0=7.2, y0=6.6, pa=300.0, inc=55.0, vsys=-20.0, vmax=150.0, rt=2.5)
    m, corr = correlated_disk_map(truth)
    lik = MapLikelihood(m, corr)
    fits = disk_lm_fits(lik, pa_starts=np.arange(0.0, 360.0, 45.0))
    chi2 = [f.chi2 for f in fits]
    assert chi2 == sorted(chi2) and all(0 <= f.values["pa"] < 360 for f in fits)
    best = fits[0]
    assert disk_lm_fit(lik, pa_starts=np.arange(0.0, 360.0, 45.0)).chi2 == best.chi2
    for name in ("x0", "y0", "pa", "inc", "vsys", "vmax"):
        err = best.errors[name]
        assert abs(best.values[name] - getattr(truth, name)) < 5 * err, name
    assert best.chi2 < stats.chi2(lik.dof - 7).ppf(0.999)
    v_true = bi.disk_velocity(lik.x, lik.y, truth)
    for same in (  # the equivalences that disk_lm_fits uses to normalise its fits
        dataclasses.replace(truth, inc=180.0 - truth.inc),
        dataclasses.replace(truth, inc=-truth.inc, vmax=-truth.vmax),
        dataclasses.replace(truth, pa=truth.pa - 180.0, vmax=-truth.vmax),
    ):
        np.testing.assert_allclose(bi.disk_velocity(lik.x, lik.y, same), v_true, atol=1e-9)
    every = disk_lm_fits(lik, pa_starts=(0.0, 180.0), domain=False)
    assert every and all(f.values["vmax"] >= 0 and 0 <= f.values["inc"] <= 90 for f in every)


def test_constant_model_log_density_is_the_correlated_normal():
    """Prior plus the multivariate normal with C = rho sigma sigma^T + tau^2 rho (scatter
    correlated like the noise), checked against scipy on the dense matrix."""
    import numpyro.distributions as dist
    from bayesifu.models import constant
    from numpyro.infer.util import log_density

    truth = bi.DiskParams(x0=7.0, y0=6.5, pa=0.0, inc=30.0, vsys=12.0, vmax=0.0, rt=2.0)
    m, corr = correlated_disk_map(truth, shape=(8, 9), noise=3.0, corr_sigma=1.0, seed=3)
    lik = MapLikelihood(m, corr, scatter_model="correlated")
    prior, scatter = dist.Normal(0.0, 100.0), dist.HalfNormal(10.0)
    kwargs = {"v0": prior, "scatter": scatter}
    point = {"v0": 11.0, "scatter": 2.0}
    logp, _ = log_density(constant.model, (lik.x, lik.y, lik), kwargs, point)
    cov = (9.0 + 4.0) * corr.matrix.toarray()
    ref = stats.multivariate_normal(np.full(lik.n, 11.0), cov).logpdf(lik.data)
    ref += stats.norm(0, 100).logpdf(11.0) + stats.halfnorm(scale=10.0).logpdf(2.0)
    assert float(logp) == pytest.approx(ref, rel=1e-9)
