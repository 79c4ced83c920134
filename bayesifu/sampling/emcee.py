"""The affine-invariant ensemble sampler emcee (Foreman-Mackey et al. 2013, doi:10.1086/670067) on
the same unconstrained log-density as NUTS (NumPyro's potential, Jacobian included), jitted and
vectorised over walkers, with the ``sampler_options`` it takes (:class:`EmceeOptions`); walkers
appear as chains."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypedDict

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import init_to_uniform

from ..errors import InputError, SamplingError
from .nuts import _initialize


class EmceeOptions(TypedDict, total=False):
    """The keys of ``sampler_options`` for ``sampler="emcee"`` (see :func:`.sample`)."""

    walkers: int  # default max(32, 4 * ndim), rounded up to even
    moves: Any  # an emcee move or [(move, weight), ...]; default the stretch move
    init_strategy: Callable  # a NumPyro init strategy, default init_to_uniform
    progress_bar: bool  # default False


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
