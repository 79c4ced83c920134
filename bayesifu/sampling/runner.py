"""The entry point :func:`sample`: validate the arguments and ``sampler_options`` (the keys of
:class:`~bayesifu.sampling.nuts.NutsOptions` and :class:`~bayesifu.sampling.emcee.EmceeOptions`),
run NUTS or emcee, add the pointwise log-likelihood, build the ArviZ results and the
attributes, write ``out``, then check convergence and warn or raise as asked."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import jax
import numpy as np

from .. import _arviz
from ..errors import InputError, SamplingError
from .diagnostics import ConvergenceWarning, check_convergence
from .emcee import EmceeOptions, _run_emcee
from .loo import _pointwise_log_likelihood
from .nuts import NutsOptions, _run_nuts
from .tracing import _inspect

_OPTIONS = {
    "nuts": frozenset(NutsOptions.__annotations__),
    "emcee": frozenset(EmceeOptions.__annotations__),
}


def sample(  # noqa: PLR0913 -- public API: run settings as keyword options
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
        ``init_strategy``, ``progress_bar``. ``init_mass="laplace"`` finds the mode from the
        start (L-BFGS), takes the inverse Hessian of the potential there as the inverse mass
        (:func:`laplace_inverse_mass`) instead of the identity, and starts each chain at its own
        draw from that Laplace approximation; it suits a posterior with one dominant mode
        (start near it, e.g. ``init_to_value`` at an LM fit, where there are several), and
        strongly correlated posteriors of many dimensions (the joint SED fit of hundreds of
        bins). ``adapt_mass=False`` then keeps that matrix and the warmup only tunes the step
        size, which needs far fewer iterations (e.g. 150) for a near-Gaussian posterior; the
        posterior is the same, only the sampler's efficiency changes. ``chain_method``
        defaults to ``"parallel"`` with enough host devices
        (``numpyro.set_host_device_count`` in your script), else ``"vectorized"``.

    Returns
    -------
    arviz.InferenceData (arviz 0.x) or xarray.DataTree (arviz 1.x)
    """
    _check_arguments(sampler, check, chains, draws, warmup, thin, out)
    _warn_if_float32()
    opts = _sampler_options(sampler, sampler_options)
    latent, observed, likelihoods = _inspect(model, args, kwargs)
    key = jax.random.PRNGKey(seed)
    start = time.perf_counter()
    if sampler == "nuts":
        posterior, stats, info = _run_nuts(
            model, args, kwargs, key, chains, draws, warmup, thin, opts
        )
    else:
        walkers = _emcee_walkers(opts, latent)
        opts["seed"] = seed
        posterior, stats, info = _run_emcee(
            model, args, kwargs, key, walkers, draws, warmup, thin, opts
        )
    seconds = time.perf_counter() - start
    log_lik = _log_likelihood(model, args, kwargs, posterior, latent, observed) if pointwise else {}
    attrs = _attributes(sampler, draws, warmup, thin, seed, seconds, info, likelihoods)
    idata = _arviz.to_inference_data(
        posterior,
        sample_stats={k: v for k, v in stats.items() if not np.all(np.isnan(v))},
        observed_data=observed,
        log_likelihood=log_lik,
        attrs=attrs,
    )
    if out is not None:
        _arviz.to_netcdf(idata, out)
    _finish(idata, stats, posterior, latent, sampler, check, out)
    return idata


def _check_arguments(sampler, check, chains, draws, warmup, thin, out):
    """Raise :class:`~bayesifu.errors.InputError` on a bad choice, count or output path."""
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


def _warn_if_float32():
    """Warn (at the caller of :func:`sample`) when JAX runs in float32."""
    if not jax.config.jax_enable_x64:
        warnings.warn(
            "JAX runs in float32: covariance likelihoods need float64; call "
            "numpyro.enable_x64() at the start of your script",
            RuntimeWarning,
            stacklevel=3,
        )


def _sampler_options(sampler, sampler_options):
    """A copy of ``sampler_options``; raise on keys that ``sampler`` does not take."""
    opts = dict(sampler_options or {})
    unknown = set(opts) - _OPTIONS[sampler]
    if unknown:
        raise InputError(
            f"unknown sampler_options for {sampler}: {sorted(unknown)}; "
            f"known: {sorted(_OPTIONS[sampler])}"
        )
    return opts


def _emcee_walkers(opts, latent):
    """Walkers: ``opts["walkers"]`` (taken out of ``opts``) or max(32, 4 ndim), made even."""
    walkers = int(opts.pop("walkers", max(32, 4 * sum(latent.values()))))
    return walkers + walkers % 2


def _log_likelihood(model, args, kwargs, posterior, latent, observed):
    """Pointwise log-likelihood ``[chain, draw, ...]`` of each observed site ({} without any)."""
    if not observed:
        return {}
    nchain, ndraw = next(iter(posterior.values())).shape[:2]
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in posterior.items() if k in latent}
    pw = _pointwise_log_likelihood(model, args, kwargs, flat, list(observed))
    return {k: v.reshape((nchain, ndraw) + v.shape[1:]) for k, v in pw.items()}


def _attributes(sampler, draws, warmup, thin, seed, seconds, info, likelihoods):
    """The attributes of the results: run settings, sampler info and likelihood settings."""
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
    return attrs


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
