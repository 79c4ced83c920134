"""Calibration by simulation of the joint SED fit, with and without the covariance between bins.

For each of ``N_SETS`` simulated sets of binned SEDs (3 x 3 bins of 2 x 2 spaxels, Gaussian
spatial correlation of MaNGA, sigma 1.92 spaxels, six bands, the SDSS template spDR2-023) the true
parameters are drawn from the priors of the fitted model, :func:`bayesifu.models.sed.model`, and
the noise from the exact binned covariance :math:`\\mathbf T\\mathbf C\\mathbf T^{\\rm T}`. The
central 68% posterior interval must then contain the truth in 68% of the sets, within the
binomial 3-sigma band (simulation-based calibration, Talts et al. 2018, arXiv:1804.06788). The
checked quantities are one per set: A_V and the intrinsic flux of an inner bin, the mean A_V of
all bins and the summed flux of all bins.

The same data are fitted with :func:`bayesifu.sedmodel.independent_bins` (exact variance of
each bin, covariance between bins dropped). Neighbouring bins are correlated by about 0.6, so the
summed flux of the bins has a variance several times the sum of the bins' variances: the
independent-bins posterior of ``flux_total`` is too narrow (the test asserts its mean posterior
sd is below 0.8 of the full-covariance one, and its coverage below the full-covariance
coverage; at the CI size of 40 sets the binomial band is too wide to require it to fall outside
the band, which a run with ``BAYESIFU_CALIBRATION_SEDS=120`` shows) and prints every coverage for
the report.

NUTS (NumPyro's functional ``hmc`` API, the sampler behind :func:`bayesifu.sample`) runs
vectorised over the sets with ``jax.vmap`` on the model program's own potential energy; the
likelihood is built once with zero data and evaluated at ``model - data``, the same Gaussian
density.
"""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.calibration

N_SETS = int(os.environ.get("BAYESIFU_CALIBRATION_SEDS", "40"))  # sized for CI on 2 cores
# 400 draws: intervals read off fewer (autocorrelated) draws are noisy and cover less than their
# level (150 draws gave A_V of the inner bin 0.45-0.50 over 40 sets).
WARMUP, DRAWS = 120, 400
# vmap runs every set for as long as its longest tree: a depth of 6 (64 leapfrog steps; the
# one-template posterior is near Gaussian, a few steps per draw once adapted) bounds the early
# warmup of the worst set, which at the default 10 cost minutes. Truncated trees are still a
# valid NUTS kernel: this changes the efficiency, not the posterior.
MAX_TREE_DEPTH = 6
SIGMA = 0.01  # per spaxel and band: S/N about 15-30 per bin and band
N_SIDE = 6  # spaxels: 3 x 3 bins of 2 x 2
INNER = 4  # the central bin
#: One template: with two, the age-dust degeneracy (posterior correlation -0.96 between A_V and
#: the template fraction) makes NUTS trees 127-255 leapfrog steps deep, too slow for hundreds of
#: fits here; the two-template fit is checked in tests/test_sed_model.py.
TEMPLATES = ("spDR2-023.fit",)


def _priors():
    import numpyro.distributions as dist

    return {"av": dist.HalfNormal(0.5), "flux": dist.LogNormal(np.log(2.0), 0.3)}


def _setup():
    import dataclasses

    from bayesifu.models import sed

    from bayesifu.likelihood import BinnedSpectraLikelihood
    from bayesifu.sedmodel import independent_bins

    binned, basis, _, corr = sed.simulated_data(
        n_side=N_SIDE, bin_size=2, sigma=SIGMA, seed=3, templates=TEMPLATES
    )
    zero = dataclasses.replace(binned, flux=np.zeros_like(binned.flux))
    full = BinnedSpectraLikelihood(zero)
    indep = BinnedSpectraLikelihood(independent_bins(zero))
    return binned, basis, corr, full, indep


def _draw_truths(basis, nb, key):
    import numpyro
    from bayesifu.models import sed

    pred = numpyro.infer.Predictive(sed.model, num_samples=N_SETS)
    draws = pred(key, basis, None, n_bins=nb, priors=_priors())
    return {k: np.asarray(v) for k, v in draws.items()}


def _binned_noise(binned, rng):
    """``(N_SETS, n_bins, n_band)`` draws from the exact binned covariance of every band."""
    out = np.empty((N_SETS,) + binned.flux.shape)
    for k in range(binned.flux.shape[1]):
        cov = binned.covariance(k).toarray()
        vals, vecs = np.linalg.eigh(cov)
        root = vecs * np.sqrt(np.clip(vals, 0, None))
        out[:, :, k] = rng.standard_normal((N_SETS, cov.shape[0])) @ root.T
    return out


def _nuts_all(basis, nb, lik, data, key):
    """Posterior draws of the checked quantities, ``{name: (N_SETS, DRAWS)}``, by NUTS."""
    import jax
    import jax.numpy as jnp
    import numpyro
    from bayesifu.models import sed
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import constrain_fn, potential_energy

    def program(d):
        mu = sed.model(basis, None, n_bins=nb, priors=_priors())
        numpyro.factor("lik", lik.log_prob(mu - d))

    def potential_gen(d):
        return lambda z: potential_energy(program, (d,), {}, z)

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
    # start at the prior medians (A_V 0.34 mag, flux 2), in the sampler's unconstrained space
    att = 10.0 ** (-0.4 * basis.k_ref / basis.r_v * 0.34)
    start = {"av": jnp.full(nb, np.log(0.34)), "flux_obs": jnp.full(nb, np.log(2.0 * att))}

    def summary(z, d):
        c = constrain_fn(program, (d,), {}, z, return_deterministic=True)
        return {
            "av_inner": c["av"][INNER],
            "flux_inner": c["flux"][INNER],
            "av_mean": c["av_mean"],
            "flux_total": c["flux_total"],
        }

    def one(k, d):
        state = init_kernel(start, num_warmup=WARMUP, model_args=(d,), rng_key=k, dense_mass=True,
                            max_tree_depth=MAX_TREE_DEPTH)  # fmt: skip

        def body(s, _):
            s = sample_kernel(s, model_args=(d,))
            return s, (summary(s.z, d), s.diverging)

        _, (draws, div) = jax.lax.scan(body, state, None, length=WARMUP + DRAWS)
        return {n: v[WARMUP:] for n, v in draws.items()}, jnp.sum(div[WARMUP:])

    keys = jax.random.split(key, data.shape[0])
    draws, n_div = jax.jit(jax.vmap(one))(keys, jnp.asarray(data))
    return {n: np.asarray(v) for n, v in draws.items()}, int(np.sum(n_div))


def _coverage(draws, truth, level):
    lo = np.quantile(draws, 0.5 - level / 2, axis=1)
    hi = np.quantile(draws, 0.5 + level / 2, axis=1)
    return float(np.mean((truth >= lo) & (truth <= hi)))


@pytest.mark.slow
def test_sed_posteriors_cover_the_truth_only_with_the_covariance_between_bins():
    import jax

    from bayesifu.sedmodel import sed_flux

    binned, basis, corr, full, indep = _setup()
    nb = binned.n_bins
    truths = _draw_truths(basis, nb, jax.random.PRNGKey(7))
    clean = np.stack(
        [
            np.asarray(sed_flux(basis, w, a, basis.z_ref))
            for w, a in zip(truths["weights"], truths["av"], strict=True)
        ]
    )
    data = clean + _binned_noise(binned, np.random.default_rng(11))
    true = {
        "av_inner": truths["av"][:, INNER],
        "flux_inner": truths["flux"][:, INNER],
        "av_mean": truths["av_mean"],
        "flux_total": truths["flux_total"],
    }
    level = 0.68
    tol = 3 * np.sqrt(level * (1 - level) / N_SETS)
    results, widths = {}, {}
    for label, lik, seed in (("full covariance", full, 0), ("independent bins", indep, 1)):
        draws, n_div = _nuts_all(basis, nb, lik, data, jax.random.PRNGKey(seed))
        results[label] = {n: _coverage(draws[n], true[n], level) for n in true}
        width = widths[label] = {n: float(np.mean(np.std(draws[n], axis=1))) for n in true}
        print(f"\n{label}: coverage of the central 68% over {N_SETS} sets "
              f"(band {level - tol:.3f}-{level + tol:.3f}), divergences {n_div}")  # fmt: skip
        for n in true:
            print(f"  {n:11s} coverage {results[label][n]:.3f}  mean posterior sd {width[n]:.4g}")
        if label == "full covariance":
            assert n_div <= N_SETS * DRAWS * 1e-3
    for n, cov in results["full covariance"].items():
        assert abs(cov - level) <= tol, (n, cov)
    # dropping the covariance between bins: the summed flux is far too sure of itself
    assert widths["independent bins"]["flux_total"] < 0.8 * widths["full covariance"]["flux_total"]
    assert results["independent bins"]["flux_total"] < results["full covariance"]["flux_total"]
