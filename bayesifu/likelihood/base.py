"""What every likelihood of bayesifu is: the :class:`Likelihood` protocol, its numpyro
distribution (:class:`LikelihoodDistribution`) and the leave-one-out formula they share."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from ..errors import InputError

__all__ = ["Likelihood", "LikelihoodDistribution", "loo_terms"]

_LOG_2PI = float(np.log(2 * np.pi))


@runtime_checkable
class Likelihood(Protocol):
    """What every likelihood of bayesifu offers; :func:`bayesifu.sampling.observe` accepts any
    object that has these members (checked with ``isinstance(obj, Likelihood)``).

    ``model`` is the prediction in whatever shape the likelihood documents (a vector of the
    values used, a map, a cube, binned spectra); ``scale`` is the error-scale factor :math:`s`
    and ``scatter`` the intrinsic scatter :math:`\\tau` [data unit].

    Attributes
    ----------
    n : int
        Number of values used.
    dof : int
        Degrees of freedom of :meth:`chi2` (the rank of the covariance).
    data : numpy.ndarray, shape (n,)
        The values used, in the order of :meth:`pointwise_loo` and :meth:`to_map`.
    settings : dict
        What the likelihood is (method, rank, ...), for InferenceData attributes.
    """

    n: int
    dof: int

    @property
    def data(self) -> np.ndarray: ...

    @property
    def settings(self) -> dict: ...

    def log_prob(self, model, scale=1.0, scatter=0.0):
        """Log-likelihood (JAX scalar; jit-able, differentiable)."""

    def chi2(self, model, scale=1.0, scatter=0.0):
        """Chi-square of ``data - model``."""

    def whiten(self, residual, scale=1.0, scatter=0.0):
        """Whitened residual: standard normal where the model and the covariance are right."""

    def pointwise_loo(self, model, scale=1.0, scatter=0.0):
        """Leave-one-out log predictive densities, shape (n,)."""

    def to_map(self, values, fill=np.nan) -> np.ndarray:
        """Values in :attr:`data`'s order, shape (n,), placed on the data's own grid."""

    def simulate(self, key, model, scale=1.0, scatter=0.0):
        """One draw of data given ``model``, shape (n,) in :attr:`data`'s order (JAX)."""

    def distribution(self, model, scale=1.0, scatter=0.0):
        """This likelihood at ``model`` as a numpyro distribution over :attr:`data`."""


class LikelihoodDistribution(dist.Distribution):
    """A :class:`Likelihood` at a fixed prediction, as a numpyro distribution over its data.

    ``numpyro.sample("obs", lik.distribution(mu, scale, scatter), obs=lik.data)`` adds the
    likelihood to a model like any numpyro distribution, so numpyro's own machinery sees it:
    :func:`numpyro.infer.log_likelihood` gives ``lik.log_prob`` per draw, and
    ``Predictive(handlers.uncondition(model), samples)`` draws replicated data
    (:meth:`sample` is :meth:`Likelihood.simulate`: the prediction plus noise with the full
    covariance, on its range space for a rank-deficient one). The site's ``fn`` also carries what
    bayesifu's LOO and prediction need (:attr:`likelihood`, :attr:`model`, :meth:`pointwise_loo`).

    :meth:`log_prob` is the likelihood's density of its own data: the value must be
    :attr:`Likelihood.data` (a different concrete value raises
    :class:`~bayesifu.errors.InputError`; a traced value, whose equality cannot be checked, raises
    NotImplementedError), because the likelihoods evaluate the residual against the data they
    were built from.

    Parameters
    ----------
    likelihood : Likelihood
    model : jax.Array
        The prediction, in the shape the likelihood documents.
    scale, scatter : float or jax.Array
        Error-scale factor and intrinsic scatter [data unit].
    """

    support = dist.constraints.real_vector

    def __init__(self, likelihood, model, scale=1.0, scatter=0.0, *, validate_args=None):
        self.likelihood, self.model, self.scale, self.scatter = likelihood, model, scale, scatter
        super().__init__(event_shape=(likelihood.n,), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        def one(k):
            return self.likelihood.simulate(k, self.model, self.scale, self.scatter)

        if not sample_shape:
            return one(key)
        keys = jax.random.split(key, int(np.prod(sample_shape)))
        return jax.vmap(one)(keys).reshape(tuple(sample_shape) + self.event_shape)

    def log_prob(self, value):
        if isinstance(value, jax.core.Tracer):
            raise NotImplementedError(
                f"{type(self.likelihood).__name__}.distribution: log_prob only at the likelihood's "
                "own data (pass obs=lik.data), not at a traced value"
            )
        data = self.likelihood.data
        value = np.asarray(value)
        if value.shape != data.shape or not np.array_equal(value, data, equal_nan=True):
            raise InputError(
                f"{type(self.likelihood).__name__}.distribution: the observed value (shape "
                f"{value.shape}) is not the likelihood's data (shape {data.shape}); pass "
                "obs=lik.data, or build a likelihood from the other data"
            )
        return self.likelihood.log_prob(self.model, self.scale, self.scatter)

    def pointwise_loo(self):
        """The likelihood's leave-one-out terms at this prediction, shape (n,)."""
        return self.likelihood.pointwise_loo(self.model, self.scale, self.scatter)


class _AsDistribution:
    """:meth:`distribution` for the likelihood classes."""

    def distribution(self, model, scale=1.0, scatter=0.0) -> LikelihoodDistribution:
        """This likelihood at ``model`` as a numpyro distribution over :attr:`data`
        (:class:`LikelihoodDistribution`)."""
        return LikelihoodDistribution(self, model, scale, scatter)


def loo_terms(g, q):
    """:math:`\\log p(y_i|y_{-i}) = -\\tfrac12\\log 2\\pi + \\tfrac12\\log q_{ii} -
    \\tfrac12 g_i^2/q_{ii}` from the precision times the residual ``g`` and the precision's
    diagonal ``q`` (module docstring, Leave-one-out)."""
    return -0.5 * _LOG_2PI + 0.5 * jnp.log(q) - 0.5 * g**2 / q
