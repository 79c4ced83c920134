"""The vocabulary of model programs: how a model adds its likelihood and its noise terms.

A file in ``models/`` imports these, not the sampler: :func:`observe` adds a likelihood (any
:class:`~bayesifu.likelihood.Likelihood`, or an array of independent values),
:func:`noise_terms` samples the error-scale factor and the intrinsic scatter, and
:func:`observed_values`, :func:`default_scatter` and :func:`require_points` set up the noise model
and check that the data can constrain it. :func:`bayesifu.sample` runs such a program.

:func:`observe` adds ``numpyro.sample(name, lik.distribution(mu, ...), obs=lik.data)``: the
likelihood is an observed numpyro site like any other (numpyro's ``log_likelihood`` and
``Predictive`` see it), and its ``fn`` (a
:class:`~bayesifu.likelihood.LikelihoodDistribution`) carries the likelihood, the prediction and
the pointwise leave-one-out terms that :func:`bayesifu.sample` puts in the ``observed_data`` and
``log_likelihood`` groups.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .errors import EmptyDataError
from .likelihood import Likelihood

__all__ = ["observe", "noise_terms", "observed_values", "default_scatter", "require_points"]


def observe(obs, mu, *, scale=1.0, scatter=0.0, sigma=None, name: str = "obs"):
    """Add the likelihood of the observation ``obs`` given the model prediction ``mu``.

    Parameters
    ----------
    obs : bayesifu.Likelihood or array_like
        A likelihood object (any :class:`~bayesifu.likelihood.Likelihood`: map, binned map,
        binned values, binned spectra, cube), observed through its numpyro distribution
        (``lik.distribution(mu, scale, scatter)`` at ``lik.data``); or an array of data,
        modelled as independent normal values with standard deviations
        :math:`\\sqrt{s^2\\sigma^2 + \\tau^2}`.
    mu : jax.Array
        The model at the data points.
    scale, scatter : float or jax.Array
        Error-scale factor :math:`s` and intrinsic scatter :math:`\\tau` [data unit].
    sigma : float or array_like, optional
        Per-point errors for array data (default 0, so ``scatter`` carries all the noise).
    name : str
        Site name.
    """
    if isinstance(obs, Likelihood):
        numpyro.sample(name, obs.distribution(mu, scale, scatter), obs=obs.data)
        return
    obs = jnp.asarray(obs, dtype=float)
    err = 0.0 if sigma is None else jnp.asarray(sigma, dtype=float)
    sd = jnp.sqrt(scale**2 * err**2 + scatter**2)
    numpyro.sample(name, dist.Normal(mu, sd).to_event(jnp.ndim(obs)), obs=obs)


def noise_terms(scale=None, scatter=None):
    """Sample the error-scale factor and intrinsic scatter, or return ``(1.0, 0.0)``.

    Parameters
    ----------
    scale : numpyro distribution, optional
        Prior of the factor :math:`s` multiplying the quoted errors (site ``"error_scale"``);
        ``None`` keeps :math:`s = 1`.
    scatter : numpyro distribution, optional
        Prior of the intrinsic scatter :math:`\\tau` [data unit] (site ``"scatter"``); ``None``
        keeps :math:`\\tau = 0`.
    """
    s = 1.0 if scale is None else numpyro.sample("error_scale", scale)
    t = 0.0 if scatter is None else numpyro.sample("scatter", scatter)
    return s, t


def observed_values(obs):
    """The values of ``obs`` (a likelihood's ``data``, or an array) as a float array, or None."""
    return None if obs is None else np.asarray(getattr(obs, "data", obs), dtype=float)


def default_scatter(obs, scatter, sd):
    """``scatter``, or ``HalfNormal(sd())`` when ``obs`` is a bare array (it has no noise model,
    so the model must fit one); None stays None for a likelihood. ``sd`` is a callable, evaluated
    only when needed."""
    if scatter is None and obs is not None and not isinstance(obs, Likelihood):
        return dist.HalfNormal(sd())
    return scatter


def require_points(n_points: int, n_params: int, what: str) -> None:
    """Raise :class:`~bayesifu.errors.EmptyDataError` if ``n_points <= n_params``."""
    if n_points <= n_params:
        raise EmptyDataError(
            f"{what}: {n_points} valid data point(s) cannot constrain {n_params} parameters; "
            "unmask more spaxels, bin less or fit a simpler model"
        )
