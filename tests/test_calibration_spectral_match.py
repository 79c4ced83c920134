"""Calibration by simulation: does the posterior of the spectral-matching correction cover truth?

Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788) of
``bayesifu.models.spectral_match``: the spectrum is a real 2x2-spaxel bin of the MUSE cut-out
(its quoted variance as the spectrum noise), photometry in five top-hat bands with 1 % errors. For
each of ``N_SETS`` datasets the degree-2 correction is drawn from the model's prior, the "true"
spectrum is the observed one minus a noise draw, and the photometry is the synthetic photometry of
the corrected true spectrum plus noise. The central 68 % and 95 % posterior intervals of the three
coefficients, and of the correction at three wavelengths, must contain the truth in 68 % and 95 %
of the datasets within binomial 3 sigma.

NUTS (NumPyro's functional ``hmc``, the sampler behind :func:`bayesifu.sample`) runs vectorised
over datasets with ``jax.vmap``, on the model's own log-density (``numpyro.infer.util.
log_density``), in prior-standardised coordinates (a constant Jacobian).
"""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.calibration

N_SETS = int(os.environ.get("BAYESIFU_CALIBRATION_MAPS", "200"))
WARMUP, DRAWS = 300, 400
DEGREE = 2
PHOT_FRAC = 0.01


def _setup(data_dir):
    from bayesifu.models import spectral_match

    from bayesifu import read_cube
    from bayesifu.binning import Binning, bin_spectra
    from bayesifu.imaging import legendre_design, photometry_matrix

    cube = read_cube(data_dir / "muse-abell478-cutout.fits.gz")
    binid = -np.ones(cube.spatial_shape, int)
    binid[14:16, 14:16] = 0
    spec = bin_spectra(cube, Binning(binid))
    w = photometry_matrix(cube.wave, spectral_match.cutout_bands(), medium=cube.wave_medium)
    design = legendre_design(cube.wave, DEGREE)
    sd_phot = PHOT_FRAC * (spec.flux @ w.T)  # (1, n_band), fixed
    return spec.flux, spec.variance, w, design, sd_phot


def _simulate(flux, var, w, design, sd_phot, rng):
    loc = np.r_[1.0, np.zeros(DEGREE)]
    sd = np.r_[0.2, np.full(DEGREE, 0.1)]
    truths = loc + sd * rng.standard_normal((N_SETS, DEGREE + 1))
    true_flux = flux - np.sqrt(var) * rng.standard_normal((N_SETS, flux.shape[1]))
    p = truths @ design.T
    phot = (p * true_flux) @ w.T + sd_phot * rng.standard_normal((N_SETS, w.shape[0]))
    return truths, phot, loc, sd


def _nuts_all(args, kwargs, phot, loc, sd, key):
    import jax
    import jax.numpy as jnp
    from bayesifu.models import spectral_match
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import log_density

    loc, sd = jnp.asarray(loc), jnp.asarray(sd)

    def potential_gen(d):
        def potential(u):
            coef = (loc + sd * u)[None, :]
            lp, _ = log_density(
                spectral_match.model, args, {**kwargs, "obs": d[None, :]}, {"coef": coef}
            )
            return -lp

        return potential

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def one(k, d):
        state = init_kernel(jnp.zeros(loc.size), num_warmup=WARMUP, model_args=(d,), rng_key=k)

        def body(s, _):
            s = sample_kernel(s, model_args=(d,))
            return s, (s.z, s.diverging)

        _, (zs, div) = jax.lax.scan(body, state, None, length=WARMUP + DRAWS)
        return loc + sd * zs[WARMUP:], jnp.sum(div[WARMUP:])

    keys = jax.random.split(key, phot.shape[0])
    return jax.jit(jax.vmap(one))(keys, jnp.asarray(phot))


def _coverage(draws, truths, level):
    lo = np.quantile(draws, 0.5 - level / 2, axis=1)
    hi = np.quantile(draws, 0.5 + level / 2, axis=1)
    return np.mean((truths >= lo) & (truths <= hi), axis=0)


@pytest.mark.slow
def test_correction_posteriors_cover_the_truth(data_dir):
    import jax

    flux, var, w, design, sd_phot = _setup(data_dir)
    rng = np.random.default_rng(2025)
    truths, phot, loc, sd = _simulate(flux, var, w, design, sd_phot, rng)
    args = (flux, w, design)
    kwargs = {
        "photometry_covariance": sd_phot**2,
        "spectra_covariance": var,
        "record_correction": False,
    }
    draws, n_div = _nuts_all(args, kwargs, phot, loc, sd, jax.random.PRNGKey(0))
    draws = np.asarray(draws)
    # the correction at the blue end, the middle and the red end
    at = design[[0, design.shape[0] // 2, -1]]
    corr_draws, corr_truths = draws @ at.T, truths @ at.T
    for level in (0.68, 0.95):
        cov_coef = _coverage(draws, truths, level)
        cov_corr = _coverage(corr_draws, corr_truths, level)
        tol = 3 * np.sqrt(level * (1 - level) / N_SETS)
        print(f"\ncoverage at {level:.0%} over {N_SETS} datasets (band +-{tol:.3f}):")
        print("  coefficients a0 a1 a2     ", np.round(cov_coef, 3))
        print("  correction blue/mid/red   ", np.round(cov_corr, 3))
        assert np.all(np.abs(cov_coef - level) <= tol), (level, cov_coef)
        assert np.all(np.abs(cov_corr - level) <= tol), (level, cov_corr)
    print("divergences:", int(np.sum(n_div)))
    assert int(np.sum(n_div)) <= N_SETS * DRAWS * 1e-3
