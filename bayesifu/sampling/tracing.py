"""Model tracing: run a NumPyro model once (from NUTS-style initial values or at given latent
values), find the sites that observe a likelihood object, list the latent sizes and observed data
that :func:`~bayesifu.sampling.sample` needs, and :func:`predict` the model at fixed parameters."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer import init_to_uniform

from ..errors import BayesifuError, SamplingError
from ..likelihood import LikelihoodDistribution


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
