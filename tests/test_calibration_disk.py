"""Calibration by simulation: do full-covariance posteriors of a disk cover the truth?

Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788): for each of ``N_MAPS``
MaNGA-like velocity maps with the simulator's exact correlated noise, the true disk is drawn from
the prior of the fitted model, so the central 68% and 95% posterior intervals must contain the
truth in 68% and 95% of the maps (binomial scatter). The reduced model fits the position angle,
systemic velocity, amplitude and turnover radius of a tanh disk (centre and inclination fixed).

To fit hundreds of maps in CI time, NUTS (NumPyro's functional ``hmc`` API, the sampler behind
:func:`bayesifu.sample`) runs vectorised over maps with ``jax.vmap``; the likelihood is a
:class:`~bayesifu.MapLikelihood` built once with zero data, evaluated at ``model - data``, which is
the same Gaussian density. The same maps are fitted assuming independent spaxels and by
Levenberg-Marquardt (lmfit-style errors), whose coverages are printed for the report.
"""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.calibration

N_MAPS = int(os.environ.get("BAYESIFU_CALIBRATION_MAPS", "200"))
WARMUP, DRAWS = 200, 300
PRIOR = {"pa": (120.0, 10.0), "vsys": (0.0, 10.0), "vmax": (200.0, 25.0), "rt": (3.5, 0.5)}
FIXED = {"inc": 55.0}
NOISE = 15.0


def _setup():
    from bayesifu import simulate
    from bayesifu.containers import Map
    from bayesifu.likelihood import MapLikelihood

    sim = simulate.manga_like(n_fibres=19, n_exposures=3, seed=11)
    fp = sim.footprint
    var = sim.variance_map(NOISE)
    zero = Map(np.zeros(sim.shape), np.where(fp, var, 1.0), mask=~fp)
    full = MapLikelihood(zero, sim.correlation())
    indep = MapLikelihood(zero, None)
    centre = (float(np.mean(full.x)), float(np.mean(full.y)))
    return sim, full, indep, centre


def _forward(centre, lik):
    import jax.numpy as jnp

    from bayesifu.kinematics import DiskParams, disk_velocity

    x = jnp.asarray(lik.x, dtype=float)
    y = jnp.asarray(lik.y, dtype=float)

    def mu(theta):
        pa, vsys, vmax, rt = theta
        p = DiskParams(centre[0], centre[1], pa, FIXED["inc"], vsys, vmax, rt)
        return disk_velocity(x, y, p)

    return mu


def _nuts_all(lik, mu, data, key):
    """Posterior draws ``(maps, DRAWS, 4)`` by NUTS, vectorised over maps."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.stats import norm
    from numpyro.infer.hmc import hmc

    loc = jnp.array([v[0] for v in PRIOR.values()])
    sd = jnp.array([v[1] for v in PRIOR.values()])

    def potential_gen(d):
        def potential(z):
            theta = loc + sd * z  # standardised parameters
            return -(jnp.sum(norm.logpdf(z)) + lik.log_prob(mu(theta) - d))

        return potential

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def one(k, d):
        state = init_kernel(jnp.zeros(4), num_warmup=WARMUP, model_args=(d,), rng_key=k)

        def body(s, _):
            s = sample_kernel(s, model_args=(d,))
            return s, (s.z, s.diverging)

        _, (zs, div) = jax.lax.scan(body, state, None, length=WARMUP + DRAWS)
        return loc + sd * zs[WARMUP:], jnp.sum(div[WARMUP:])

    keys = jax.random.split(key, data.shape[0])
    return jax.jit(jax.vmap(one))(keys, jnp.asarray(data))


def _lm_all(lik, mu, data, truths):
    import jax
    import jax.numpy as jnp
    from scipy.optimize import least_squares

    from bayesifu.lmfit import _covariance

    resid = jax.jit(lambda t, d: lik.whiten(d - mu(t)))
    jac = jax.jit(jax.jacfwd(lambda t, d: lik.whiten(d - mu(t))))
    est, err = [], []
    for d, t0 in zip(data, truths, strict=True):
        dj = jnp.asarray(d)
        sol = least_squares(
            lambda t, dj=dj: np.asarray(resid(jnp.asarray(t), dj)),
            t0 + np.array([3.0, 2.0, 10.0, 0.3]),
            jac=lambda t, dj=dj: np.asarray(jac(jnp.asarray(t), dj)),
            method="lm",
        )
        dof = sol.fun.size - 4
        cov, _ = _covariance(sol.jac, float(np.sum(sol.fun**2)) / dof, True)
        est.append(sol.x)
        err.append(np.full(4, np.nan) if cov is None else np.sqrt(np.diag(cov)))
    return np.array(est), np.array(err)


def _coverage(draws, truths, level):
    lo = np.quantile(draws, 0.5 - level / 2, axis=1)
    hi = np.quantile(draws, 0.5 + level / 2, axis=1)
    return np.mean((truths >= lo) & (truths <= hi), axis=0)


@pytest.mark.slow
def test_full_covariance_posteriors_cover_the_truth():
    import jax
    from scipy.stats import norm

    sim, full, indep, centre = _setup()
    rng = np.random.default_rng(2024)
    loc = np.array([v[0] for v in PRIOR.values()])
    sd = np.array([v[1] for v in PRIOR.values()])
    truths = loc + sd * rng.standard_normal((N_MAPS, 4))
    noise = sim.draw_noise(NOISE, seed=rng, size=N_MAPS).reshape(N_MAPS, -1)[:, full.index]
    mu_full = _forward(centre, full)
    clean = np.asarray(jax.vmap(mu_full)(truths))
    data = clean + noise

    draws, n_div = _nuts_all(full, mu_full, data, jax.random.PRNGKey(0))
    draws_ind, _ = _nuts_all(indep, _forward(centre, indep), data, jax.random.PRNGKey(1))
    est, err = _lm_all(indep, _forward(centre, indep), data, truths)

    report = {}
    for level in (0.68, 0.95):
        cov_full = _coverage(np.asarray(draws), truths, level)
        cov_ind = _coverage(np.asarray(draws_ind), truths, level)
        z = norm.ppf(0.5 + level / 2)
        cov_lm = np.nanmean(np.abs(est - truths) <= z * err, axis=0)
        report[level] = (cov_full, cov_ind, cov_lm)
        names = list(PRIOR)
        print(f"\ncoverage at {level:.0%} over {N_MAPS} maps ({', '.join(names)}):")
        print("  full covariance  ", np.round(cov_full, 3))
        print("  independent      ", np.round(cov_ind, 3))
        print("  LM (lmfit errors)", np.round(cov_lm, 3))
        tol = 3 * np.sqrt(level * (1 - level) / N_MAPS)
        assert np.all(np.abs(cov_full - level) <= tol), (level, cov_full)
    print("divergences (full):", int(np.sum(n_div)))
    assert int(np.sum(n_div)) <= N_MAPS * DRAWS * 1e-3
    # ignoring the covariance gives intervals that are too narrow: the coverage drops
    assert np.mean(report[0.68][1]) < np.mean(report[0.68][0])
