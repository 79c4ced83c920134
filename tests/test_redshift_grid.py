"""The FFT grid posterior against a brute-force per-redshift numpy reference, and bad input."""

import numpy as np
import pytest
from numpy.polynomial import legendre

import bayesifu as bi
from bayesifu.containers import Cube
from bayesifu.errors import InputError, ShapeError, VarianceError
from bayesifu.redshift import FLAGS, log_z_grid
from bayesifu.redshift.grid import grid_step
from bayesifu.redshift.linalg import cholesky_logdet_quadratic
from bayesifu.templates import Templates, emission_line_templates


def smooth_templates(n_tpl=3, seed=0, lines=False):
    rng = np.random.default_rng(seed)
    loglam = 3.55 + 1e-4 * np.arange(4000)
    flux = []
    for _ in range(n_tpl):
        f = 1 + 0.2 * np.sin(loglam * rng.uniform(300, 900) + rng.uniform(0, 6))
        for c in rng.uniform(3.6, 3.9, 12):
            f -= rng.uniform(0.1, 0.5) * np.exp(-0.5 * ((loglam - c) / 3e-4) ** 2)
        flux.append(f)
    tpl = Templates(3.55, 1e-4, np.array(flux))
    if lines:
        tpl = tpl.concatenate(emission_line_templates(tpl, sigma_kms=150.0))
    return tpl


def brute_force(flux, ivar, wave, tpl, z_grid, npoly, line_prior_scale=10.0):
    """Per-redshift dense reference: A(z) by np.interp, normal equations by numpy.linalg."""
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    poly = [legendre.legval(x, np.eye(npoly)[q]) for q in range(npoly)]
    sw = ivar.sum()
    rms = np.sqrt(np.sum(ivar * flux**2) / sw)
    prec = np.zeros(tpl.ntemplates + npoly)
    for i in np.flatnonzero(tpl.is_line):
        prec[i] = (np.nanmax(tpl.flux[i]) / (line_prior_scale * rms)) ** 2
    logl, chi2 = [], []
    for z in z_grid:
        cols = [
            np.interp(np.log10(wave) - np.log10(1 + z), tpl.loglam, np.nan_to_num(f))
            for f in tpl.flux
        ]
        a = np.vstack(cols + poly).T
        m = a.T @ (ivar[:, None] * a) + np.diag(prec)
        b = a.T @ (ivar * flux)
        quad = b @ np.linalg.solve(m, b)
        logl.append(0.5 * quad - 0.5 * np.linalg.slogdet(m)[1] + np.log1p(z))
        chi2.append(np.sum(ivar * flux**2) - quad)
    logl = np.array(logl)
    p = np.exp(logl - logl.max())
    return p / p.sum(), np.array(chi2)


@pytest.mark.parametrize("npoly,lines", [(3, False), (0, False), (2, True)])
def test_grid_matches_brute_force(npoly, lines):
    tpl = smooth_templates(lines=lines)
    rng = np.random.default_rng(1)
    wave = np.linspace(5200.0, 6400.0, 500)
    z_grid = log_z_grid(0.02, 0.12, 1e-4)
    coef = np.r_[1.0, 0.4, -0.2, 0.3 * np.ones(tpl.ntemplates - 3)]
    z_true = 0.0731
    model = np.array([np.interp(np.log10(wave / (1 + z_true)), tpl.loglam, f) for f in tpl.flux])
    flux = np.tile(coef @ model, (3, 1)) + 0.05 * rng.normal(size=(3, wave.size))
    ivar = np.full(flux.shape, 1 / 0.05**2)
    ivar[1, 100:180] = 0.0  # a masked stretch
    ivar[2] *= rng.uniform(0.5, 2, wave.size)  # uneven weights
    post = bi.redshift_posterior(
        flux,
        tpl,
        z_grid,
        wave=wave,
        ivar=ivar,
        medium="vacuum",
        npoly=npoly,
        independent=False,
        dispersions=(0.0,),
    )
    assert post.valid_z.all()
    for s in range(3):
        pdf, chi2 = brute_force(flux[s], ivar[s], wave, tpl, z_grid, npoly)
        np.testing.assert_allclose(post.pdf[s], pdf, atol=1e-9)
        np.testing.assert_allclose(post.chi2[s], chi2, rtol=1e-5)
    summary = post.summary()
    assert np.all(np.abs(summary.z_map - z_true) < 3e-4)
    # Best-fit coefficients and model sum at the grid MAP, and the chi-square of the
    # polynomials alone, against dense weighted least squares.
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    poly = np.array([legendre.legval(x, np.eye(npoly)[q]) for q in range(npoly)])
    poly = poly.reshape(npoly, wave.size)
    for s in range(3):
        z = z_grid[np.argmax(post.logpdf[s])]
        shifted = np.log10(wave) - np.log10(1 + z)
        cols = [np.interp(shifted, tpl.loglam, np.nan_to_num(f)) for f in tpl.flux]
        a = np.vstack(cols + list(poly)).T
        prec = np.zeros(a.shape[1])
        rms = np.sqrt(np.sum(ivar[s] * flux[s] ** 2) / ivar[s].sum())
        prec[np.flatnonzero(tpl.is_line)] = (
            np.nanmax(tpl.flux[tpl.is_line], axis=1) / (10.0 * rms)
        ) ** 2
        m = a.T @ (ivar[s, :, None] * a) + np.diag(prec)
        coef_ref = np.linalg.solve(m, a.T @ (ivar[s] * flux[s]))
        np.testing.assert_allclose(post.coeffs[s], coef_ref, rtol=1e-6, atol=1e-9)
        good = ivar[s] > 0
        np.testing.assert_allclose(post.model_sum[s], (a @ coef_ref)[good].sum(), rtol=1e-8)
        null = (
            flux[s]
            - poly.T
            @ np.linalg.lstsq(
                poly.T * np.sqrt(ivar[s])[:, None], flux[s] * np.sqrt(ivar[s]), rcond=None
            )[0]
            if npoly
            else flux[s]
        )
        np.testing.assert_allclose(post.chi2_null[s], np.sum(ivar[s] * null**2), rtol=1e-9)


def test_threads_do_not_change_results_and_refinement_only_where_used():
    tpl = smooth_templates(2, seed=2)
    rng = np.random.default_rng(3)
    wave = np.linspace(5200.0, 6400.0, 400)
    model = np.interp(np.log10(wave / 1.0512), tpl.loglam, tpl.flux[0])
    amp = np.array([1.0, 0.0, 1.0, 0.3, 1.0, 0.0, 1.0])[:, None]  # 0: noise only
    flux = amp * model + 0.05 * rng.normal(size=(amp.size, wave.size))
    kw = dict(wave=wave, ivar=np.full(flux.shape, 400.0), medium="vacuum", chunk_size=3)
    z_grid = log_z_grid(0.0, 0.1, 1e-4)
    one = bi.redshift_posterior(flux, tpl, z_grid, workers=1, **kw)
    three = bi.redshift_posterior(flux, tpl, z_grid, workers=3, **kw)
    for name in ("logpdf", "chi2", "coeffs", "model_sum", "chi2_null", "local_u", "local_logp"):
        np.testing.assert_array_equal(getattr(one, name), getattr(three, name), err_msg=name)
    # The local grid is evaluated where the summary uses it: not for pure noise.
    noise = amp[:, 0] == 0
    assert np.isneginf(one.local_logp[noise]).all()
    assert np.isfinite(one.local_logp[~noise]).any(axis=1).all()
    with pytest.raises(InputError, match="workers"):
        bi.redshift_posterior(flux, tpl, z_grid, workers=0, **kw)


def test_cube_input_air_and_mask_match_arrays():
    tpl = smooth_templates(2, seed=3)
    rng = np.random.default_rng(2)
    wave = np.linspace(5200.0, 6400.0, 300)
    flux = 1 + 0.05 * rng.normal(size=(300, 2, 3))
    var = np.full(flux.shape, 0.05**2)
    mask = np.zeros(flux.shape, bool)
    mask[50:60, 0, 1] = True
    var[:, 1, 2] = np.nan  # a spaxel without data
    cube = Cube(flux, var, wave, mask=mask, wave_medium="air")
    z_grid = log_z_grid(0.0, 0.1, 2e-4)
    post = bi.redshift_posterior(cube, tpl, z_grid, chunk_size=4)
    spectra = flux.reshape(300, -1).T
    ivar = np.where(mask | ~np.isfinite(var), 0, 1 / np.nan_to_num(var, nan=1.0))
    ref = bi.redshift_posterior(
        spectra, tpl, z_grid, wave=wave, ivar=ivar.reshape(300, -1).T, medium="air"
    )
    np.testing.assert_allclose(post.pdf, ref.pdf, atol=1e-12)
    summary = post.summary()
    assert summary.z_map.shape == (2, 3)
    assert summary.flags[1, 2] & FLAGS["NO_DATA"]
    assert np.isnan(summary.z_map[1, 2]) and np.isnan(post.pdf[5]).all()
    assert post.reshaped("n_valid")[0, 1] == 290


def _dense_marginal(
    flux, ivar, wave, tpl, z_grid, npoly, partial, scale=10.0, flat_sd=1e3, unnormalised=False
):
    """Independent reference for templates that do not cover the data everywhere: at each z the
    log density of the same data under N(0, W^-1 + A S A^T) (dense Cholesky), with templates zero
    outside their range, a proper N(0, s^2) amplitude prior on the ``partial`` templates (s from
    ``scale`` times the weighted rms flux over the template's rms) and a very broad one
    (``flat_sd`` times the rms) standing in for the flat prior on the others."""
    from scipy.linalg import cho_factor, cho_solve

    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    poly = [legendre.legval(x, np.eye(npoly)[q]) for q in range(npoly)]
    rms = np.sqrt(np.sum(ivar * flux**2) / ivar.sum())
    trms = np.sqrt(np.nanmean(tpl.flux**2, axis=1))
    sd = [(scale if part else flat_sd) * rms / t for t, part in zip(trms, partial, strict=True)]
    sd += [flat_sd * rms] * npoly
    out = []
    for z in z_grid:
        shifted = np.log10(wave) - np.log10(1 + z)
        cols = [np.interp(shifted, tpl.loglam, f, left=0, right=0) for f in np.nan_to_num(tpl.flux)]
        a = np.vstack(cols + poly).T
        cov = np.diag(1 / ivar) + (a * np.square(sd)) @ a.T
        c = cho_factor(cov, lower=True)
        logdet = 2 * np.sum(np.log(np.diag(c[0])))
        out.append(-0.5 * (flux @ cho_solve(c, flux) + logdet) + np.log1p(z))
    out = np.array(out)
    if unnormalised:
        return out
    p = np.exp(out - out.max())
    return p / p.sum()


def test_templates_of_different_ranges_and_data_wider_than_templates_match_dense_reference():
    """Case 3 of issue 12: the observed range exceeds the templates' at some z (and one
    template is shorter than the other): every redshift of the grid is evaluated on the same
    pixels, and the posterior matches the dense marginal density of those pixels."""
    full = smooth_templates(2, seed=3)
    short = full.flux.copy()
    short[1, 2500:] = np.nan  # the second template stops at 10**(3.55 + 0.25) = 6310 A
    tpl = Templates(full.loglam0, full.dloglam, short, ["long", "short"])
    rng = np.random.default_rng(4)
    wave = np.linspace(4000.0, 7600.0, 240)  # 3548 A (rest) at z = 0 .. wider than both
    z_grid = log_z_grid(0.0, 0.25, 2e-3)
    z_true = 0.1
    model = np.interp(np.log10(wave / (1 + z_true)), tpl.loglam, np.nan_to_num(tpl.flux[0]))
    flux = (model + 0.05 * rng.normal(size=wave.size))[None]
    ivar = np.full(flux.shape, 1 / 0.05**2)
    post = bi.redshift_posterior(
        flux,
        tpl,
        z_grid,
        wave=wave,
        ivar=ivar,
        medium="vacuum",
        npoly=2,
        independent=False,
        dispersions=(0.0,),
    )
    assert post.valid_z.all()  # nothing is refused or cut from the grid
    ref = _dense_marginal(flux[0], ivar[0], wave, tpl, z_grid, 2, partial=[True, True])
    np.testing.assert_allclose(post.pdf[0], ref, atol=2e-4)
    assert abs(post.summary().z_map[0] - z_true) < 2e-3
    assert post.template_coverage[0] == 1  # at z = 0.1 the long template covers every pixel
    at_top = post.design.template_coverage([z_grid.size - 1], ivar > 0)[0]
    assert at_top == pytest.approx(np.mean(wave / 1.25 >= 10**3.55), abs=0.01)
    # The refined local grid uses the same likelihood (same normalisation as the coarse one).
    u = np.log10(1 + z_grid)
    k = int(np.argmax(post.logpdf[0]))
    on_grid = np.isclose(post.local_u[0], u[k])
    assert on_grid.any()
    coarse = post.logpdf[0, k] - post.logpdf[0, k - 1]
    fine = np.interp(u[[k, k - 1]], post.local_u[0], post.local_logp[0])
    np.testing.assert_allclose(fine[0] - fine[1], coarse, atol=1e-6)


def test_short_template_does_not_cut_the_grid_or_pull_the_redshift():
    """Case 2 of issue 12 in miniature: adding a template whose range stops short (SDSS
    spDR2-028) used to remove the true redshift from the grid (every template had to cover
    every pixel) and report a wrong, unflagged peak; now the true redshift stays in the grid
    and wins, and the short template's coefficient has a proper prior (dense reference)."""
    base = smooth_templates(2, seed=5)
    flux_t = np.vstack([base.flux, smooth_templates(1, seed=6).flux])
    flux_t[2, 1800:] = np.nan  # ends at 10**3.73 = 5370 A
    tpl = Templates(base.loglam0, base.dloglam, flux_t, ["a", "b", "short"])
    wave = np.linspace(5600.0, 6200.0, 150)
    z_grid = log_z_grid(0.0, 0.4, 1e-3)
    z_true = 0.03  # where the short template covers none of the data
    rng = np.random.default_rng(7)
    cols = [np.interp(np.log10(wave / (1 + z_true)), tpl.loglam, f) for f in base.flux]
    flux = (0.7 * cols[0] + 0.3 * cols[1] + 0.02 * rng.normal(size=wave.size))[None]
    ivar = np.full(flux.shape, 1 / 0.02**2)
    post = bi.redshift_posterior(
        flux,
        tpl,
        z_grid,
        wave=wave,
        ivar=ivar,
        medium="vacuum",
        npoly=1,
        independent=False,
        dispersions=(0.0,),
    )
    assert post.valid_z.all()
    ref = _dense_marginal(flux[0], ivar[0], wave, tpl, z_grid, 1, partial=[False, False, True])
    np.testing.assert_allclose(post.pdf[0], ref, atol=2e-4)
    s = post.summary()
    assert abs(s.z_map[0] - z_true) < 1e-3 and s.flags[0] == 0
    with pytest.raises(InputError, match="do not reach"):
        bi.redshift_posterior(
            flux, tpl, log_z_grid(3.0, 3.5, 1e-3), wave=wave, ivar=ivar, medium="vacuum"
        )


def test_grid_from_a_range_or_any_increasing_grid():
    tpl = smooth_templates(2)
    wave = np.linspace(5200.0, 6400.0, 200)
    flux = np.ones((1, wave.size))
    kw = dict(wave=wave, ivar=np.ones_like(flux), medium="vacuum", refine=False)
    ranged = bi.redshift_posterior(flux, tpl, (0.0, 0.3), **kw)
    linear = bi.redshift_posterior(flux, tpl, np.arange(0, 0.3, 2e-5), **kw)
    u0, step = grid_step(ranged.z_grid)
    assert u0 == 0 and step == pytest.approx(tpl.dloglam)
    assert ranged.z_grid[-1] <= 0.3 < ranged.z_grid[-1] * (1 + 1e-3) + 2 * step * np.log(10) * 1.3
    assert linear.z_grid[0] == 0 and linear.z_grid[-1] <= np.arange(0, 0.3, 2e-5)[-1]
    given = log_z_grid(0.01, 0.2, 3e-4)
    np.testing.assert_array_equal(bi.redshift_posterior(flux, tpl, given, **kw).z_grid, given)
    for bad, match in (([0.1, 0.05, 0.2], "increase"), ([0.1], "range"), ([[0, 1]], "range")):
        with pytest.raises(InputError, match=match):
            bi.redshift_posterior(flux, tpl, bad, **kw)


def test_bad_inputs():
    tpl = smooth_templates(1)
    wave = np.linspace(5200.0, 6400.0, 100)
    flux = np.ones((2, 100))
    zg = log_z_grid(0.0, 0.1, 1e-3)
    kw = dict(wave=wave, medium="vacuum")
    with pytest.raises(InputError, match="z_grid: redshifts must increase"):
        bi.redshift_posterior(flux, tpl, np.array([0.0, 0.05, 0.01]), ivar=flux, **kw)
    with pytest.raises(InputError, match="exactly one"):
        bi.redshift_posterior(flux, tpl, zg, **kw)
    with pytest.raises(InputError, match="wave="):
        bi.redshift_posterior(flux, tpl, zg, ivar=flux)
    with pytest.raises(ShapeError, match="last axis"):
        bi.redshift_posterior(flux[:, :50], tpl, zg, ivar=flux[:, :50], **kw)
    with pytest.raises(VarianceError, match=">= 0"):
        bi.redshift_posterior(flux, tpl, zg, ivar=-flux, **kw)
    with pytest.raises(InputError, match="npoly"):
        bi.redshift_posterior(flux, tpl, zg, ivar=flux, npoly=-1, **kw)
    with pytest.raises(InputError, match="chunk_size"):
        bi.redshift_posterior(flux, tpl, zg, ivar=flux, chunk_size=0, **kw)
    with pytest.raises(InputError, match="medium"):
        bi.redshift_posterior(flux, tpl, zg, ivar=flux, wave=wave, medium="glass")
    with pytest.raises(InputError, match="prior"):
        bi.redshift_posterior(flux, tpl, zg, ivar=flux, prior="jeffreys", **kw)
    with pytest.raises(ShapeError, match="prior"):
        bi.redshift_posterior(flux, tpl, zg, ivar=flux, prior=np.zeros(3), **kw)
    with pytest.raises(InputError, match="no usable"):
        bi.redshift_posterior(flux, tpl, zg, ivar=flux, wave_range=(1, 2), **kw)
    with pytest.raises(InputError, match="line_prior_scale"):
        bi.redshift_posterior(flux, tpl, zg, ivar=flux, line_prior_scale=0, **kw)
    with pytest.raises(InputError, match="template_prior_scale"):
        bi.redshift_posterior(flux, tpl, zg, ivar=flux, template_prior_scale=-1, **kw)
    with pytest.raises(InputError, match="z grid"):
        log_z_grid(0.5, 0.1)
    with pytest.raises(InputError, match="at least 3"):
        grid_step([0.1])


def test_all_zero_inverse_variance_is_flagged_not_an_error():
    tpl = smooth_templates(1)
    wave = np.linspace(5200.0, 6400.0, 100)
    flux = np.ones((2, 100))
    ivar = np.ones((2, 100))
    ivar[0] = 0
    post = bi.redshift_posterior(
        flux, tpl, log_z_grid(0.0, 0.1, 1e-3), wave=wave, ivar=ivar, medium="vacuum"
    )
    s = post.summary()
    assert s.flags[0] & FLAGS["NO_DATA"] and not s.flags[1] & FLAGS["NO_DATA"]
    ivar[1, 10:] = 0  # 10 pixels of 100
    s = bi.redshift_posterior(
        flux, tpl, log_z_grid(0.0, 0.1, 1e-3), wave=wave, ivar=ivar, medium="vacuum"
    ).summary()
    assert s.flags[1] & FLAGS["LITTLE_COVERAGE"]


def test_prior_options_shift_the_posterior_as_expected():
    tpl = smooth_templates(1)
    wave = np.linspace(5200.0, 6400.0, 100)
    flux, ivar = np.ones((1, 100)), np.full((1, 100), 1e-6)  # nearly no information
    zg = log_z_grid(0.0, 0.1, 1e-3)
    kw = dict(wave=wave, ivar=ivar, medium="vacuum")
    flat = bi.redshift_posterior(flux, tpl, zg, prior="uniform_log1pz", **kw)
    tilted = bi.redshift_posterior(flux, tpl, zg, prior=lambda z: -z / 0.01, **kw)
    ratio = tilted.pdf[0] / flat.pdf[0]
    expected = (1 + zg) * np.exp(-zg / 0.01)
    np.testing.assert_allclose(ratio / ratio[0], expected / expected[0], rtol=1e-8)


def logdet_and_quadratic(matrix, vector):
    """cholesky_logdet_quadratic for stacked [p, p, ...] matrices (lower triangle read)."""
    entries = [[matrix[i, j] for j in range(i + 1)] for i in range(matrix.shape[0])]
    return cholesky_logdet_quadratic(entries, list(vector))


def test_batched_linalg_against_numpy():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(50, 6, 6))
    m = a @ np.swapaxes(a, 1, 2) + 0.1 * np.eye(6)
    b = rng.normal(size=(50, 6))
    logdet, quad, dropped = logdet_and_quadratic(np.moveaxis(m, 0, -1), b.T)
    np.testing.assert_allclose(logdet, np.linalg.slogdet(m)[1], rtol=1e-10)
    np.testing.assert_allclose(
        quad, np.einsum("si,si->s", b, np.linalg.solve(m, b[..., None])[..., 0]), rtol=1e-8
    )
    assert not dropped.any()
    m[:, 5, :] = m[:, :, 5] = 0  # an empty direction is dropped, not inverted
    logdet, quad, dropped = logdet_and_quadratic(np.moveaxis(m, 0, -1), b.T)
    np.testing.assert_allclose(logdet, np.linalg.slogdet(m[:, :5, :5])[1], rtol=1e-10)
    assert dropped.all()


def test_manga_range_wider_than_the_templates_is_fitted_not_refused(data_dir):
    """Case 3 of issue 12: spectra over MaNGA's 3622-10357 A with the SDSS templates (rest
    3500-9197 A) on 0 < z < 0.3 were refused (no redshift lets the templates cover the whole
    range). Simulated spectra of 7815-3702's redshift, whose continuum beyond the templates'
    range is a smooth continuation, now give the right redshift with a few-km/s interval."""
    paths = sorted((data_dir / "sdss-templates").glob("spDR2-02[3-7].fit"))
    tpl = bi.read_templates(paths)
    wave = 10 ** (np.log10(3622.0) + 1e-4 * np.arange(4563))  # MaNGA LOGCUBE, vacuum
    z_true = 0.0294
    rng = np.random.default_rng(11)
    rest = np.log10(wave / (1 + z_true))
    cols = np.array([np.interp(rest, tpl.loglam, f, right=np.nan) for f in tpl.flux])
    flux = rng.dirichlet(np.ones(5), 4) @ cols
    red = np.isnan(flux[0])
    assert red.sum() > 350  # 9467-10357 A (890 A) beyond the templates
    level = np.nanmean(flux[:, ~red][:, -300:], axis=1, keepdims=True)
    flux[:, red] = level * (1 + 0.05 * np.linspace(0, 1, red.sum()))
    sigma = np.nanmedian(flux, axis=1, keepdims=True) / 10  # S/N 10 per pixel
    noisy = flux + sigma * rng.normal(size=flux.shape)
    ivar = np.broadcast_to(1 / sigma**2, flux.shape)
    post = bi.redshift_posterior(noisy, tpl, (0.0, 0.3), wave=wave, ivar=ivar, medium="vacuum")
    s = post.summary()
    dv = 299792.458 * (s.z_map - z_true) / (1 + z_true)
    half = 299792.458 * (s.z_hi68 - s.z_lo68) / 2 / (1 + z_true)
    assert np.all(np.abs(dv) < 4 * half + 5) and np.all(half < 30), (dv, half)
    assert np.all(s.flags == 0)
    assert np.all((post.template_coverage > 0.85) & (post.template_coverage < 0.95))


@pytest.mark.slow
def test_dispersion_mixture_is_the_average_of_proper_marginals():
    """The default posterior marginalises over template sets broadened by each dispersion with
    equal weight; each set's likelihood is the proper marginal density of the data (every
    continuum template with a proper prior), checked against the dense reference."""
    from bayesifu.redshift.batch import broaden_continuum

    tpl = smooth_templates(2, seed=8)
    rng = np.random.default_rng(9)
    wave = np.linspace(5200.0, 6400.0, 200)
    z_grid = log_z_grid(0.02, 0.12, 1e-3)
    model = np.interp(np.log10(wave / 1.07), tpl.loglam, broaden_continuum(tpl, 150).flux[0])
    model = np.nan_to_num(model, nan=1.0)
    flux = (model + 0.05 * rng.normal(size=wave.size))[None]
    ivar = np.full(flux.shape, 1 / 0.05**2)
    kw = dict(wave=wave, ivar=ivar, medium="vacuum", npoly=1, independent=False)
    post = bi.redshift_posterior(flux, tpl, z_grid, dispersions=(0.0, 150.0), **kw)
    each = [
        _dense_marginal(
            flux[0],
            ivar[0],
            wave,
            broaden_continuum(tpl, sig),
            z_grid,
            1,
            [True, True],
            unnormalised=True,
        )
        for sig in (0.0, 150.0)
    ]
    mix = np.logaddexp(*each)
    ref = np.exp(mix - mix.max())
    np.testing.assert_allclose(post.pdf[0], ref / ref.sum(), atol=2e-4)
    assert np.abs(each[0] - each[1]).max() > 1  # the two sets differ: the mixture matters
    assert post.dispersion_map[0] in (0.0, 150.0)
    with pytest.raises(InputError, match="dispersions"):
        bi.redshift_posterior(flux, tpl, z_grid, dispersions=(-5.0,), **kw)


def test_partial_templates_are_the_continuum_vectors_short_of_the_data_at_some_z():
    """Reference: a template covers every channel at every z of the grid iff its rest range
    holds wave / (1 + z) for all z, i.e. from wave_min / (1 + zmax) to wave_max / (1 + zmin)."""
    base = smooth_templates(2, seed=5)
    flux_t = np.vstack([base.flux, smooth_templates(1, seed=6).flux])
    flux_t[2, 1800:] = np.nan
    tpl = Templates(base.loglam0, base.dloglam, flux_t, ["a", "b", "short"])
    wave = np.linspace(5600.0, 6200.0, 150)
    z_grid = log_z_grid(0.0, 0.4, 1e-3)
    flux = np.ones((1, wave.size))
    post = bi.redshift_posterior(
        flux, tpl, z_grid, wave=wave, ivar=np.ones_like(flux), medium="vacuum", npoly=1,
        independent=False, dispersions=(0.0,), refine=False,
    )  # fmt: skip
    expected = []
    for name, f in zip(tpl.names, tpl.flux, strict=True):
        lam = 10 ** tpl.loglam[np.isfinite(f)]
        if not (lam[0] <= wave[0] / (1 + z_grid[-1]) and lam[-1] >= wave[-1] / (1 + z_grid[0])):
            expected.append(name)
    assert expected == ["short"]
    assert post.partial_templates == expected


def test_check_grid_extends_the_grid_by_whole_steps():
    from bayesifu.redshift.batch import check_grid

    grid = log_z_grid(0.2, 0.22, 1e-4)
    wide, outside = check_grid(grid, (0.0, 1.0))
    u, uw = np.log10(1 + grid), np.log10(1 + wide)
    assert np.allclose(np.diff(uw), 1e-4, rtol=1e-9)
    inner = np.flatnonzero(~outside)
    assert np.allclose(uw[inner], u, rtol=0, atol=1e-12)  # the grid itself, cell for cell
    assert wide[0] >= 0 and wide[0] < 10**1e-4 - 1 + 1e-12
    assert wide[-1] <= 1 and wide[-1] > 10 ** (np.log10(2) - 1e-4) - 1 - 1e-12
    assert check_grid(grid, None) is None
    assert check_grid(log_z_grid(0.0, 1.0, 1e-4), (0.0, 1.0)) is None
    with pytest.raises(InputError, match="range_check"):
        check_grid(grid, (0.5, 0.1))
