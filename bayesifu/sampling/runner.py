"""Sample a NumPyro model with NUTS or emcee and return ArviZ results, checked for convergence.

:func:`sample` runs a model program (see :mod:`bayesifu.models`) and returns ArviZ results with the
groups ``posterior``, ``sample_stats``, ``observed_data`` and ``log_likelihood``, and the settings
of each likelihood in the attributes. Models add their likelihood with :func:`observe`, which for a
correlated likelihood (:class:`~bayesifu.MapLikelihood`) adds an observed site whose distribution
is the likelihood (``lik.distribution(...)``), from which :func:`sample` computes, after sampling,
the *pointwise leave-one-out* log-likelihood
:math:`\\log p(y_i \\mid y_{-i}, \\theta)` of the multivariate normal (Buerkner, Gabry &
Vehtari 2021, Comput. Stat. 36, 1243, doi:10.1007/s00180-020-01045-4). Those terms, not the marginal
:math:`\\log p(y_i \\mid \\theta)`, are what PSIS-LOO (:func:`arviz.loo`) needs for a
non-factorised model.

``sampler="nuts"`` uses NumPyro's NUTS (Hoffman & Gelman 2014, arXiv:1111.4246).
``sampler="emcee"`` runs the affine-invariant ensemble sampler (Foreman-Mackey et al. 2013,
doi:10.1086/670067) on the *same* log-density: NumPyro's potential on the unconstrained space
(Jacobian included), jitted and vectorised over walkers; walkers appear as chains.

After sampling, divergent transitions, the rank-normalised split r-hat (> 1.01) and the bulk
effective sample size (< 100 per chain) are checked (Vehtari et al. 2021, doi:10.1214/20-BA1221),
the values ArviZ's summary prints; each problem gives a
:class:`ConvergenceWarning` that says what to do, or a :class:`~bayesifu.errors.SamplingError`
with ``check="raise"`` (the results are written to ``out`` first and attached to the error).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import scipy.optimize
from numpyro import handlers
from numpyro.diagnostics import effective_sample_size, gelman_rubin
from numpyro.infer import MCMC, NUTS, init_to_uniform
from numpyro.infer.util import initialize_model

from .. import _arviz
from ..errors import BayesifuError, InputError, SamplingError
from ..likelihood import LikelihoodDistribution
from ..modelling import (
    default_scatter,
    noise_terms,
    observe,
    observed_values,
    require_points,
)

__all__ = [
    "sample",
    "observe",
    "noise_terms",
    "require_points",
    "observed_values",
    "default_scatter",
    "ConvergenceWarning",
    "check_convergence",
    "predict",
    "laplace_inverse_mass",
    "RHAT_MAX",
]

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
_OPTIONS = {
    "nuts": {
        "target_accept",
        "dense_mass",
        "init_mass",
        "adapt_mass",
        "max_tree_depth",
        "chain_method",
        "init_strategy",
        "progress_bar",
    },
    "emcee": {"walkers", "moves", "init_strategy", "progress_bar"},
}


class ConvergenceWarning(UserWarning):
    """The sampler's output shows divergences, a large r-hat or a small effective sample size."""


def _trace(model, args, kwargs, data=None):
    """The model's trace at ``data`` (latent values), or at NUTS-style initial values."""
    seeded = handlers.seed(model, rng_seed=0)
    if data is not None:
        seeded = handlers.substitute(seeded, data=data)
    else:  # values as NUTS initialises them: an improper prior cannot be drawn from
        seeded = handlers.substitute(seeded, substitute_fn=init_to_uniform)
    return handlers.trace(seeded).get_trace(*args, **kwargs)


def _likelihood_sites(tr) -> dict:
    """``{name: LikelihoodDistribution}`` of the sites that observe a likelihood object."""
    return {
        name: site["fn"]
        for name, site in tr.items()
        if site["type"] == "sample" and isinstance(site["fn"], LikelihoodDistribution)
    }


def _inspect(model, args, kwargs):
    """Run the model once from the prior; return ({latent: size}, observed data, likelihoods)."""
    try:
        tr = _trace(model, args, kwargs)
    except BayesifuError:
        raise
    except Exception as err:  # any failure of user code means the model cannot initialise
        raise SamplingError(
            f"the model {getattr(model, '__name__', model)!r} cannot run with the arguments "
            f"given ({type(err).__name__}: {err}); check its inputs"
        ) from err
    latent, observed = {}, {}
    for name, site in tr.items():
        if site["type"] != "sample":
            continue
        if not site["is_observed"]:
            latent[name] = int(np.size(site["value"]))
        elif not isinstance(site["fn"], dist.Unit):
            observed[name] = np.asarray(site["value"])
    if not latent:
        raise SamplingError("the model has no latent (unobserved) sample sites to sample")
    likelihoods = {k: fn.likelihood for k, fn in _likelihood_sites(tr).items()}
    return latent, observed, likelihoods


def predict(model, params: dict, *args, **kwargs) -> dict:
    """The model prediction ``mu`` given to each :func:`observe` site, at fixed ``params``.

    ``params`` maps latent site names to values (e.g. posterior medians). Returns
    ``{site name: numpy array}`` for the sites with a likelihood object.
    """
    params = {k: jnp.asarray(v) for k, v in params.items()}
    sites = _likelihood_sites(_trace(model, args, kwargs, data=params))
    return {k: np.asarray(fn.model) for k, fn in sites.items()}


def _pointwise_log_likelihood(model, args, kwargs, flat_samples, names, batch=256):
    """``{site: (ndraws, n)}`` pointwise log-likelihood (LOO form for correlated likelihoods)."""
    if not names:
        return {}

    def one(draw):
        tr = _trace(model, args, kwargs, data=draw)
        out = {}
        for name in names:
            fn, value = tr[name]["fn"], tr[name]["value"]
            if isinstance(fn, LikelihoodDistribution):
                out[name] = fn.pointwise_loo()
            else:
                out[name] = (fn.base_dist if hasattr(fn, "base_dist") else fn).log_prob(value)
        return out

    fn = jax.jit(jax.vmap(one))
    ndraws = next(iter(flat_samples.values())).shape[0]
    parts = [
        fn({k: v[i : i + batch] for k, v in flat_samples.items()}) for i in range(0, ndraws, batch)
    ]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in names}


def _listing(values: dict, fmt: str, most: int = 10) -> str:
    """``"name value, ..."`` for every entry, or the first ``most`` and how many more."""
    items = [f"{k} {fmt.format(v)}" for k, v in sorted(values.items())]
    more = len(items) - most
    return ", ".join(items[:most]) + (f" and {more} more" if more > 0 else "")


def _rank_normalised(col):
    """Split chains ``[chain, draw]`` in halves and take the normal scores of the pooled ranks:
    the input of the bulk ESS (Vehtari et al. 2021, eq. 14), the number ArviZ reports as
    ``ess_bulk``."""
    from scipy.stats import norm, rankdata

    half = col.shape[1] // 2
    split = np.concatenate([col[:, :half], col[:, col.shape[1] - half :]], axis=0)
    ranks = rankdata(split, method="average").reshape(split.shape)
    return norm.ppf((ranks - 0.375) / (split.size + 0.25))


def _rank_rhat(col) -> float:
    """Rank-normalised split r-hat, the larger of the bulk and the folded (tail) values
    (Vehtari et al. 2021, eq. 14-15): the number ArviZ reports as ``r_hat``."""
    bulk = float(gelman_rubin(_rank_normalised(col)))
    folded = float(gelman_rubin(_rank_normalised(np.abs(col - np.median(col)))))
    return max(bulk, folded)


def check_convergence(posterior: dict, latent, diverging=None, *, chains_are_walkers=False):
    """Return a list of problems (strings, each saying what to do); empty if none.

    ``posterior`` maps names to arrays ``(chain, draw, ...)``; only ``latent`` sites are checked.
    """
    problems = []
    if diverging is not None and int(np.sum(diverging)) > 0:
        problems.append(
            f"{int(np.sum(diverging))} divergent transition(s) after warmup: the posterior has "
            "regions NUTS cannot integrate; raise target_accept (e.g. 0.95), reparametrise "
            "(orthogonal basis, non-centred or narrower priors) and check the model"
        )
    worst_rhat, low_ess = {}, {}
    for name in latent:
        x = np.asarray(posterior[name], dtype=float)
        x = x.reshape(x.shape[0], x.shape[1], -1)
        if x.shape[1] < 4:
            continue
        for k in range(x.shape[2]):
            col = x[:, :, k]
            if np.ptp(col) == 0:
                continue
            label = name if x.shape[2] == 1 else f"{name}[{k}]"
            if col.shape[0] > 1:
                rhat = _rank_rhat(col)
                if not np.isfinite(rhat) or rhat > RHAT_MAX:
                    worst_rhat[label] = rhat
            with np.errstate(divide="ignore"):  # a few anticorrelated draws give tau = 0
                ess = float(effective_sample_size(_rank_normalised(col)))
            if ess < ESS_PER_CHAIN_MIN * col.shape[0]:
                low_ess[label] = ess
    if worst_rhat:
        top = _listing(worst_rhat, "{:.3f}")
        problems.append(
            f"r-hat > {RHAT_MAX} for {len(worst_rhat)} parameter(s) ({top}): the chains disagree; "
            "run longer (more warmup and draws) or more chains, and look for multimodality"
            + (" (emcee: more walkers/steps)" if chains_are_walkers else "")
        )
    if low_ess:
        top = _listing(low_ess, "{:.0f}")
        problems.append(
            f"bulk effective sample size below {ESS_PER_CHAIN_MIN} per chain for "
            f"{len(low_ess)} parameter(s) ({top}): draw more samples before trusting tails"
        )
    return problems


def laplace_inverse_mass(model, args, kwargs, init_strategy, key, dense=True):
    """Inverse Hessian of NumPyro's potential at the posterior mode, as an initial inverse mass.

    The potential is that of the unconstrained space (what NUTS moves in); its mode is found by
    BFGS (:func:`scipy.optimize.minimize` on the jitted potential and gradient) from the start
    given by ``init_strategy`` (the start itself if BFGS does not improve it), and the Hessian
    by central differences of the gradient, so the result is the covariance of the Laplace
    approximation there. Eigenvalues are replaced by their absolute values, floored at
    ``1e-10`` of the largest, so the matrix is positive definite even off the mode. Returns a
    dense matrix, or its diagonal.
    """
    info = initialize_model(
        key, model, model_args=args, model_kwargs=kwargs, init_strategy=init_strategy
    )
    return _laplace(info.potential_fn, info.param_info.z, dense)


def _laplace(potential_fn, z, dense):
    """:func:`laplace_inverse_mass` for a potential and an unconstrained start ``z``."""
    flat, unravel = jax.flatten_util.ravel_pytree(z)
    value_and_grad = jax.jit(jax.value_and_grad(lambda f: potential_fn(unravel(f))))

    def fun(f):
        value, grad = value_and_grad(jnp.asarray(f))
        return float(value), np.asarray(grad, dtype=float)

    start = np.asarray(flat, dtype=float)
    with warnings.catch_warnings():  # trial steps outside the support give inf: BFGS backs off
        warnings.simplefilter("ignore", RuntimeWarning)
        mode = scipy.optimize.minimize(fun, start, jac=True, method="BFGS")
    x = mode.x if np.isfinite(mode.fun) and mode.fun <= fun(start)[0] else start
    # central differences of the compiled gradient (exact for a quadratic potential); one
    # compilation instead of BFGS and Hessian programs of their own
    step = 1e-5 * np.maximum(1.0, np.abs(x))
    hess = np.array(
        [
            (fun(x + h * e)[1] - fun(x - h * e)[1]) / (2 * h)
            for h, e in zip(step, np.eye(x.size), strict=True)
        ]
    )
    if not np.all(np.isfinite(hess)):
        raise SamplingError(
            "init_mass='laplace': the Hessian of the log-density is not finite at the start; "
            "start the chains at a finite optimum (init_to_value) or drop init_mass"
        )
    lam, vec = np.linalg.eigh(0.5 * (hess + hess.T))
    lam = np.maximum(np.abs(lam), 1e-10 * np.abs(lam).max())
    inverse = (vec / lam) @ vec.T
    return jnp.asarray(inverse if dense else np.diag(inverse))


def _default_chain_method(chains):
    """``parallel`` over host devices when there are enough, else ``vectorized``.

    Vectorised chains batch the likelihood's matrix-vector products into matrix products: one
    value and gradient of the full-covariance disk fit for 4 chains costs 1.0 ms against 4 x 0.58
    ms one chain at a time (one core), which outweighs waiting for the longest of the 4 NUTS trees
    at each iteration. ``parallel`` over host devices uses every core and is best where
    ``numpyro.set_host_device_count`` was called (benchmarks/results/sampling.md).
    """
    if chains == 1:
        return "sequential"
    return "parallel" if jax.local_device_count() >= chains else "vectorized"


def _initialize(model, args, kwargs, key, n, init_strategy, what):
    """NumPyro's ``initialize_model`` for ``n`` chains (walkers), as a :class:`SamplingError`."""
    try:
        return initialize_model(
            jax.random.split(key, n) if n > 1 else key,
            model,
            model_args=args,
            model_kwargs=kwargs,
            init_strategy=init_strategy,
        )
    except RuntimeError as err:
        raise SamplingError(
            f"{what} cannot initialise: {err}. The log-density is not finite where the sampler "
            "starts: check the priors' supports, the data (NaN?) and the model's arithmetic"
        ) from err


def _run_nuts(model, args, kwargs, key, chains, draws, warmup, thin, opts):
    chain_method = opts.pop("chain_method", None) or _default_chain_method(chains)
    init_strategy = opts.pop("init_strategy", init_to_uniform)
    dense = opts.pop("dense_mass", False)
    init_mass = opts.pop("init_mass", None)
    if init_mass not in (None, "laplace"):
        raise InputError(f"init_mass must be None or 'laplace', got {init_mass!r}")
    adapt_mass = opts.pop("adapt_mass", True)
    if adapt_mass not in (True, False):
        raise InputError(f"adapt_mass must be True or False, got {adapt_mass!r}")
    if not adapt_mass and init_mass is None:
        raise InputError("adapt_mass=False needs init_mass='laplace' (else the mass is identity)")
    begin = time.perf_counter()
    # one trace of the model: its potential serves the Laplace step, NUTS and the transform
    # back to the constrained space (MCMC(NUTS(model)) would initialise the model again)
    key_init, key_warmup, key_run = jax.random.split(key, 3)
    info = _initialize(model, args, kwargs, key_init, chains, init_strategy, "NUTS")
    inverse_mass = None
    if init_mass == "laplace":
        z0 = info.param_info.z
        if chains > 1:
            z0 = jax.tree_util.tree_map(lambda a: a[0], z0)
        inverse_mass = _laplace(info.potential_fn, z0, dense)
    kernel = NUTS(
        potential_fn=info.potential_fn,
        target_accept_prob=opts.pop("target_accept", 0.8),
        dense_mass=dense,
        adapt_mass_matrix=adapt_mass,
        inverse_mass_matrix=inverse_mass,
        max_tree_depth=opts.pop("max_tree_depth", 10),
    )
    mcmc = MCMC(
        kernel,
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        thinning=thin,
        chain_method=chain_method,
        progress_bar=opts.pop("progress_bar", False),
    )
    fields = ("diverging", "energy", "num_steps", "accept_prob", "potential_energy")
    init_done = time.perf_counter()
    if warmup > 0:
        mcmc.warmup(key_warmup, init_params=info.param_info.z)
        jax.block_until_ready(mcmc.post_warmup_state)
    warmup_done = time.perf_counter()
    mcmc.run(key_run, init_params=info.param_info.z, extra_fields=fields)
    z = mcmc.get_samples(group_by_chain=True)
    jax.block_until_ready(z)
    run_done = time.perf_counter()
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in z.items()}
    constrained = jax.jit(jax.vmap(info.postprocess_fn))(flat)
    posterior = {
        k: np.asarray(v).reshape((chains, -1) + v.shape[1:]) for k, v in constrained.items()
    }
    extra = mcmc.get_extra_fields(group_by_chain=True)
    stats = {
        "diverging": np.asarray(extra["diverging"]),
        "energy": np.asarray(extra["energy"]),
        "n_steps": np.asarray(extra["num_steps"]),
        "acceptance_rate": np.asarray(extra["accept_prob"]),
        "lp": -np.asarray(extra["potential_energy"]),
    }
    timing = {
        "init_time_s": init_done - begin,
        "warmup_time_s": warmup_done - init_done,
        "production_time_s": run_done - warmup_done,
    }
    return posterior, stats, {"chain_method": chain_method, **timing}


def _run_emcee(model, args, kwargs, key, walkers, draws, warmup, thin, opts):
    import emcee

    begin = time.perf_counter()
    init_strategy = opts.pop("init_strategy", init_to_uniform)
    info = _initialize(model, args, kwargs, key, walkers, init_strategy, "emcee")
    flat0, unravel = jax.flatten_util.ravel_pytree(
        jax.tree_util.tree_map(lambda a: a[0], info.param_info.z)
    )
    ndim = flat0.size
    if walkers < 2 * ndim:
        raise InputError(f"emcee needs at least 2 x {ndim} = {2 * ndim} walkers, got {walkers}")
    p0 = np.asarray(jax.vmap(lambda z: jax.flatten_util.ravel_pytree(z)[0])(info.param_info.z))
    if np.any(np.ptp(p0, axis=0) == 0):  # e.g. init_to_value: the stretch move needs a spread
        rng = np.random.default_rng(opts.get("seed", 0))
        p0 = p0 + 1e-4 * (1.0 + np.abs(p0)) * rng.standard_normal(p0.shape)

    @jax.jit
    @jax.vmap
    def log_density(flat):
        return -info.potential_fn(unravel(flat))

    def log_prob(batch):
        lp = np.asarray(log_density(jnp.asarray(batch)))
        return np.where(np.isfinite(lp), lp, -np.inf)

    if not np.all(np.isfinite(log_prob(p0))):
        raise SamplingError("emcee cannot initialise: non-finite log-density at the start")
    moves = opts.pop("moves", None)
    sampler = emcee.EnsembleSampler(walkers, ndim, log_prob, vectorize=True, moves=moves)
    sampler.random_state = np.random.RandomState(opts.pop("seed")).get_state()
    progress = opts.pop("progress_bar", False)
    init_done = time.perf_counter()
    state = sampler.run_mcmc(p0, warmup, progress=progress) if warmup > 0 else p0
    warmup_done = time.perf_counter()
    sampler.run_mcmc(state, draws * thin, progress=progress)
    run_done = time.perf_counter()
    chain = sampler.get_chain(discard=warmup, thin=thin)  # (draws, walkers, ndim)
    lp = sampler.get_log_prob(discard=warmup, thin=thin)
    flat = jnp.asarray(chain.reshape(-1, ndim))
    constrained = jax.jit(jax.vmap(lambda f: info.postprocess_fn(unravel(f))))(flat)
    posterior = {
        k: np.swapaxes(np.asarray(v).reshape((chain.shape[0], walkers) + v.shape[1:]), 0, 1)
        for k, v in constrained.items()
    }
    acc = np.broadcast_to(sampler.acceptance_fraction[:, None], lp.T.shape)
    stats = {"lp": lp.T, "acceptance_rate": np.array(acc)}
    timing = {
        "init_time_s": init_done - begin,
        "warmup_time_s": warmup_done - init_done,
        "production_time_s": run_done - warmup_done,
    }
    return posterior, stats, {"walkers": walkers, **timing}


def sample(
    model,
    *args,
    sampler: str = "nuts",
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    seed: int = 0,
    thin: int = 1,
    check: str = "warn",
    out=None,
    pointwise: bool = True,
    sampler_options: dict | None = None,
    **kwargs,
):
    """Sample the posterior of a NumPyro ``model(*args, **kwargs)``; return ArviZ results.

    Parameters
    ----------
    model : callable
        A NumPyro program (e.g. ``bayesifu.models.disk.model``).
    *args, **kwargs
        Passed to the model.
    sampler : {"nuts", "emcee"}
        NUTS (default) or emcee on the same unconstrained log-density.
    chains : int
        NUTS chains; for emcee the number of walkers is ``sampler_options["walkers"]``
        (default ``max(32, 4 * ndim)``) and walkers appear as chains.
    draws, warmup : int
        Kept draws per chain (walker) and warmup (burn-in) iterations.
    seed : int
        Random seed.
    thin : int
        Keep every ``thin``-th draw.
    check : {"warn", "raise", "ignore"}
        What to do about divergences, r-hat > 1.01 or low ESS: a :class:`ConvergenceWarning`,
        a :class:`~bayesifu.errors.SamplingError` (with ``.idata``, after writing ``out``) or
        nothing.
    out : str or path, optional
        Write the results to this netCDF file (before any convergence error is raised).
    pointwise : bool
        Compute the ``log_likelihood`` group (pointwise LOO form for correlated likelihoods).
    sampler_options : dict, optional
        NUTS: ``target_accept``, ``dense_mass``, ``init_mass``, ``max_tree_depth``,
        ``chain_method``, ``init_strategy``, ``progress_bar``; emcee: ``walkers``, ``moves``,
        ``init_strategy``, ``progress_bar``. ``init_mass="laplace"`` starts the warmup from the
        inverse Hessian of the potential at the start (:func:`laplace_inverse_mass`) instead of
        the identity: use it when the chains start near the mode (``init_to_value`` at an LM
        fit). ``adapt_mass=False`` then keeps that matrix and the warmup only tunes the step
        size, which needs far fewer iterations (e.g. 150) for a near-Gaussian posterior; the
        posterior is the same, only the sampler's efficiency changes. ``chain_method``
        defaults to ``"parallel"`` with enough host devices
        (``numpyro.set_host_device_count`` in your script), else ``"vectorized"``.

    Returns
    -------
    arviz.InferenceData (arviz 0.x) or xarray.DataTree (arviz 1.x)
    """
    if sampler not in ("nuts", "emcee"):
        raise InputError(f"sampler must be 'nuts' or 'emcee', got {sampler!r}")
    if check not in ("warn", "raise", "ignore"):
        raise InputError(f"check must be 'warn', 'raise' or 'ignore', got {check!r}")
    for label, value in (("chains", chains), ("draws", draws), ("thin", thin)):
        if int(value) != value or value < 1:
            raise InputError(f"{label} must be a positive integer, got {value!r}")
    if int(warmup) != warmup or warmup < 0:
        raise InputError(f"warmup must be a non-negative integer, got {warmup!r}")
    if out is not None and Path(out).is_dir():
        raise InputError(f"out={str(out)!r} is a folder; give a netCDF file name")
    if not jax.config.jax_enable_x64:
        warnings.warn(
            "JAX runs in float32: covariance likelihoods need float64; call "
            "numpyro.enable_x64() at the start of your script",
            RuntimeWarning,
            stacklevel=2,
        )
    opts = dict(sampler_options or {})
    unknown = set(opts) - _OPTIONS[sampler]
    if unknown:
        raise InputError(
            f"unknown sampler_options for {sampler}: {sorted(unknown)}; "
            f"known: {sorted(_OPTIONS[sampler])}"
        )
    latent, observed, likelihoods = _inspect(model, args, kwargs)
    key = jax.random.PRNGKey(seed)
    start = time.perf_counter()
    if sampler == "nuts":
        posterior, stats, info = _run_nuts(
            model, args, kwargs, key, chains, draws, warmup, thin, opts
        )
    else:
        walkers = int(opts.pop("walkers", max(32, 4 * sum(latent.values()))))
        walkers += walkers % 2
        opts["seed"] = seed
        posterior, stats, info = _run_emcee(
            model, args, kwargs, key, walkers, draws, warmup, thin, opts
        )
    seconds = time.perf_counter() - start

    log_lik = {}
    if pointwise and observed:
        nchain, ndraw = next(iter(posterior.values())).shape[:2]
        flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in posterior.items() if k in latent}
        pw = _pointwise_log_likelihood(model, args, kwargs, flat, list(observed))
        log_lik = {k: v.reshape((nchain, ndraw) + v.shape[1:]) for k, v in pw.items()}

    attrs = {
        "sampler": sampler,
        "draws": draws,
        "warmup": warmup,
        "thin": thin,
        "seed": seed,
        "sampling_time_s": seconds,
        "inference_library": "numpyro" if sampler == "nuts" else "emcee",
        **info,
    }
    for name, lik in likelihoods.items():
        attrs[f"likelihood_{name}"] = lik.settings
        attrs["log_likelihood_form"] = "multivariate-normal leave-one-out (Buerkner+2021)"
    stats_all = {k: v for k, v in stats.items() if not np.all(np.isnan(v))}
    idata = _arviz.to_inference_data(
        posterior,
        sample_stats=stats_all,
        observed_data=observed,
        log_likelihood=log_lik,
        attrs=attrs,
    )
    if out is not None:
        _arviz.to_netcdf(idata, out)
    _finish(idata, stats, posterior, latent, sampler, check, out)
    return idata


def _finish(idata, stats, posterior, latent, sampler, check, out):
    """Check the log-density and convergence; warn or raise as asked."""
    problems = []
    if not np.all(np.isfinite(stats["lp"])):
        problems.append(
            "the log-density is not finite at some draws: the model or likelihood overflows "
            "or leaves its support; check priors, data and scale factors"
        )
    problems += check_convergence(
        posterior,
        latent,
        stats.get("diverging"),
        chains_are_walkers=sampler == "emcee",
    )
    if not problems or check == "ignore":
        return
    where = f" (results written to {out})" if out is not None else ""
    if check == "raise":
        err = SamplingError("; ".join(problems) + where)
        err.idata = idata
        raise err
    for problem in problems:
        warnings.warn(problem + where, ConvergenceWarning, stacklevel=3)
