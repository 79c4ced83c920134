"""NumPyro's NUTS (Hoffman & Gelman 2014, arXiv:1111.4246) on a model's unconstrained potential:
the ``sampler_options`` it takes (:class:`NutsOptions`), the initialisation shared with emcee,
the Laplace initial inverse mass (:func:`laplace_inverse_mass`; with it the chains start at
draws from the Laplace approximation) and the default chain method."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Literal, TypedDict

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from numpyro.infer import MCMC, NUTS, init_to_uniform
from numpyro.infer.util import initialize_model

from ..errors import InputError, SamplingError


class NutsOptions(TypedDict, total=False):
    """The keys of ``sampler_options`` for ``sampler="nuts"`` (see :func:`.sample`)."""

    target_accept: float  # NUTS target acceptance probability, default 0.8
    dense_mass: bool  # dense (True) or diagonal (False, default) mass matrix
    init_mass: Literal["laplace"] | None  # "laplace": start from laplace_inverse_mass
    adapt_mass: bool  # False keeps the Laplace mass and adapts the step size only
    max_tree_depth: int  # default 10
    chain_method: Literal["sequential", "parallel", "vectorized"] | None  # None: by devices
    init_strategy: Callable  # a NumPyro init strategy, default init_to_uniform
    progress_bar: bool  # default False


def laplace_inverse_mass(model, args, kwargs, init_strategy, key, dense=True):
    """Inverse Hessian of NumPyro's potential at the posterior mode, as an initial inverse mass.

    The potential is that of the unconstrained space (what NUTS moves in); its mode is found by
    L-BFGS (:func:`scipy.optimize.minimize` on the jitted potential and gradient) from the start
    given by ``init_strategy`` (the start itself if L-BFGS does not improve it), and the Hessian
    exactly, by forward-over-reverse differentiation (one Hessian-vector product per
    dimension), so the result is the covariance of the Laplace approximation there. Eigenvalues
    are replaced by their absolute values, floored at ``1e-10`` of the largest, so the matrix is
    positive definite even off the mode. Returns a dense matrix, or its diagonal.
    """
    info = initialize_model(
        key, model, model_args=args, model_kwargs=kwargs, init_strategy=init_strategy
    )
    return _laplace(info.potential_fn, info.param_info.z, dense)[1]


#: Hessian-vector products evaluated together (memory: this many gradients at once).
HESSIAN_BATCH = 64


def _laplace(potential_fn, z, dense):
    """The mode (an unconstrained pytree like ``z``), :func:`laplace_inverse_mass` there and a
    square root ``R`` of the full Laplace covariance (``R R^T``, from the same eigenvectors),
    for a potential and an unconstrained start ``z``."""
    flat, unravel = jax.flatten_util.ravel_pytree(z)

    def potential(f):
        return potential_fn(unravel(f))

    value_and_grad = jax.jit(jax.value_and_grad(potential))

    def fun(f):
        value, grad = value_and_grad(jnp.asarray(f))
        return float(value), np.asarray(grad, dtype=float)

    start = np.asarray(flat, dtype=float)
    # L-BFGS, not BFGS: a dense BFGS update costs O(n^2) per step and needs O(n) steps to learn
    # the curvature; on the 968-dimensional joint SED fit of 484 bins L-BFGS reaches the mode
    # (gradient 1e-3 of a potential ~ -6644) in 50 s from a random start
    with warnings.catch_warnings():  # trial steps outside the support give inf: it backs off
        warnings.simplefilter("ignore", RuntimeWarning)
        mode = scipy.optimize.minimize(
            fun,
            start,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 100_000, "maxfun": 200_000, "ftol": 1e-15, "gtol": 1e-8},
        )
    x = mode.x if np.isfinite(mode.fun) and mode.fun <= fun(start)[0] else start

    def hvp(v):
        return jax.jvp(jax.grad(potential), (jnp.asarray(x),), (v,))[1]

    hess = np.asarray(
        jax.jit(lambda eye: jax.lax.map(hvp, eye, batch_size=HESSIAN_BATCH))(jnp.eye(x.size))
    )
    if not np.all(np.isfinite(hess)):
        raise SamplingError(
            "init_mass='laplace': the Hessian of the log-density is not finite at the start; "
            "start the chains at a finite optimum (init_to_value) or drop init_mass"
        )
    lam, vec = np.linalg.eigh(0.5 * (hess + hess.T))
    lam = np.maximum(np.abs(lam), 1e-10 * np.abs(lam).max())
    root = vec / np.sqrt(lam)
    inverse = root @ root.T
    mass = inverse if dense else np.diag(inverse)
    return unravel(jnp.asarray(x)), jnp.asarray(mass), jnp.asarray(root)


def _laplace_starts(potential_fn, mode, root, chains, key):
    """Chain starts drawn from the Laplace approximation N(mode, root root^T) (a draw whose
    potential is not finite is replaced by the mode), stacked for ``chains`` > 1."""
    flat, unravel = jax.flatten_util.ravel_pytree(mode)
    draws = flat + jax.random.normal(key, (chains, flat.size)) @ root.T
    finite = np.isfinite(np.asarray(jax.jit(jax.vmap(lambda f: potential_fn(unravel(f))))(draws)))
    draws = jnp.where(jnp.asarray(finite)[:, None], draws, flat)
    if chains == 1:
        return unravel(draws[0])
    return jax.vmap(unravel)(draws)


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
    init_params = info.param_info.z
    if init_mass == "laplace":
        z0 = init_params
        if chains > 1:
            z0 = jax.tree_util.tree_map(lambda a: a[0], z0)
        mode, inverse_mass, root = _laplace(info.potential_fn, z0, dense)
        # the chains start in the Laplace approximation, not at the first start: a mass fitted
        # to the posterior's width moves a step size of that width per leapfrog step, so a
        # chain started far away crawls (the 484-bin SED fit stayed at its random start)
        key_starts = jax.random.fold_in(key_init, 1)
        init_params = _laplace_starts(info.potential_fn, mode, root, chains, key_starts)
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
        mcmc.warmup(key_warmup, init_params=init_params)
        jax.block_until_ready(mcmc.post_warmup_state)
    warmup_done = time.perf_counter()
    mcmc.run(key_run, init_params=init_params, extra_fields=fields)
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
