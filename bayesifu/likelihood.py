"""Gaussian likelihoods with the full spatial covariance: positive-definite, calibrated, fast.

The model
---------
A vector of ``n`` values ``y`` (the unmasked spaxels of a map, or the bins of a binned product) with
standard deviations :math:`\\sigma_i` and a correlation matrix :math:`R` has the covariance

.. math::  C_0 = D R D, \\qquad D = \\operatorname{diag}(\\sigma).

A model :math:`\\mu` may add an *error-scale factor* :math:`s` and an *intrinsic scatter*
:math:`\\tau` (both scalars a sampler can draw). The correlation never depends on the parameters, so
it is factored once at construction, and each evaluation costs triangular solves or matrix-vector
products with the factor closed over as a constant (jit-able, differentiable in the model, ``s`` and
``tau``).

Two ways to make the covariance usable
--------------------------------------
Real MaNGA correlation matrices are rank-deficient (7815-3702: 863 spaxels, rank about 554, since a
cube has fewer fibre measurements than spaxels), the truncated Gaussian approximation is indefinite,
and a Gaussian with :math:`\\sigma = 1.92` spaxels is numerically singular (its
spectral density at the Nyquist frequency is about :math:`e^{-\\sigma^2\\pi^2} \\approx 10^{-16}`).
``numpy.linalg.inv`` of such a matrix gives meaningless chi-square values. This module offers:

``method="eigen"`` -- reduced rank, exact for rank-deficient covariances (dense; ``n`` up to a few
thousand). With :math:`R = U \\Lambda U^T`, the eigenvalues at or below ``rank_tol * max`` span the
null space and :math:`r` (``dof``) is the number kept; negative eigenvalues beyond round-off are
clipped to zero with a :class:`~bayesifu.linalg.CovarianceRepairWarning` (nearest positive
semi-definite matrix). Then :math:`C_0 = Q \\operatorname{diag}(\\mu) Q^T` with :math:`Q` (``n x
r``) orthonormal (a thin SVD of :math:`D U_r \\Lambda_r^{1/2}`). The likelihood is the degenerate
normal on the range space:

.. math::

   w = V^{-1/2} Q^T (y - \\mu), \\quad V = s^2 \\operatorname{diag}(\\mu) + \\tau^2 I_r, \\quad
   \\chi^2 = w^T w, \\quad \\log p = -\\tfrac12 \\left(\\chi^2 + \\sum_k \\log V_k + r\\log
   2\\pi\\right).

This is the density of :math:`s^2 C_0 + \\tau^2 P` (:math:`P = QQ^T`, the projector on the range)
with respect to Lebesgue measure on the range (the ``allow_singular`` density of
:func:`scipy.stats.multivariate_normal`). The component of the residual in the null space is
ignored: the model is the limit of a normal with infinite variance there. For noise drawn from the
true covariance :math:`\\chi^2 \\sim \\chi^2_r` exactly and :math:`w \\sim N(0, I_r)`. Here the
intrinsic scatter is *white noise projected on the range space*; when :math:`r = n` that is exactly
:math:`s^2 C_0 + \\tau^2 I`. (Physically, scatter of the sky sampled by the fibres and resampled to
the cube also lies in the range of the resampling operator.) Cost per step: one ``r x n``
matrix-vector product (two with the gradient), ``8 n r`` bytes of factor.

``method="banded"`` -- full rank, for positive-definite sparse correlations of local support
(tapered Gaussian, MUSE scale). With an optional nugget :math:`R_\\nu = (1-\\nu) R + \\nu I`
(``nugget=float``, or ``"auto"``: :math:`\\nu = \\lambda_{max} / \\kappa` with :math:`\\kappa =
10^6`, :math:`\\lambda_{max}` bounded by the largest absolute row sum, so that the condition number
of :math:`R_\\nu` is at most about :math:`10^6`), a banded Cholesky factor :math:`R_\\nu = L L^T` is
computed once (:class:`~bayesifu.linalg.BandedFactor`) and

.. math::

   d_i = \\sqrt{s^2\\sigma_i^2 + \\tau^2}, \\quad w = L^{-1} (y - \\mu)/d, \\quad \\log p =
   -\\tfrac12 \\left(w^T w + \\log\\det R_\\nu + 2 \\sum_i \\log d_i + n \\log 2\\pi\\right).

This is exact for the covariance :math:`D_s R_\\nu D_s` with :math:`D_s = \\operatorname{diag}(d)`:
the intrinsic scatter is *correlated like the noise* (variance :math:`s^2\\sigma^2 + \\tau^2`,
correlation :math:`R_\\nu`), which keeps the same factor for every :math:`(s, \\tau)`: no
refactorisation, cost per step two passes over the factor (value and gradient). ``dof = n``. The
nugget changes the model: the calibration holds for noise drawn from :math:`R_\\nu`; a matrix whose
condition number exceeds :math:`10^{10}` without one is refused as numerically singular.

``method="auto"``: independent values if no correlation is given; else the banded path if the
(nugget-added) correlation is positive-definite with a condition number below :math:`10^{10}`; else
the eigen path if ``n <= 8000``; else an error suggesting ``nugget="auto"``.

Leave-one-out
-------------
:meth:`CorrelatedNormal.pointwise_loo` gives :math:`\\log p(y_i \\mid y_{-i})` for the multivariate
normal (Buerkner, Gabry & Vehtari 2021, doi:10.1007/s00180-020-01045-4): with the precision
:math:`Q_p` and :math:`g = Q_p (y - \\mu)`, :math:`\\log p_i = -\\tfrac12\\log 2\\pi + \\tfrac12
\\log q_{ii} - \\tfrac12 g_i^2 / q_{ii}`. For the reduced-rank path :math:`Q_p` is the
pseudo-inverse :math:`(s^2 C_0 + \\tau^2 P)^+`, the limit of the precision of the
infinite-null-variance model above, so it is consistent with :meth:`~CorrelatedNormal.log_prob`.

Cubes
-----
:class:`CubeLikelihood` applies this channel by channel with one correlation and per-channel
variances; see its docstring for masks and costs.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import scipy.sparse as sp

from .errors import CovarianceError, EmptyDataError, InputError, ShapeError, VarianceError
from .linalg import BandedFactor, DiagonalFactor, EigenFactor, require_x64

__all__ = [
    "Likelihood",
    "LikelihoodDistribution",
    "CorrelatedNormal",
    "MapLikelihood",
    "CubeLikelihood",
    "choose_factor",
]

_LOG_2PI = float(np.log(2 * np.pi))
_METHODS = ("auto", "eigen", "banded", "diagonal")
EIGEN_MAX_N = 8000
KAPPA_AUTO_NUGGET = 1e6
KAPPA_MAX = 1e10


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


def _check_sigma(sigma, name):
    """Raise :class:`VarianceError` unless every standard deviation is finite and positive."""
    bad = ~np.isfinite(sigma)
    if bad.any():
        raise VarianceError(f"{name}: {int(bad.sum())} value(s) have a NaN or infinite sigma")
    bad = sigma <= 0
    if bad.any():
        raise VarianceError(
            f"{name}: {int(bad.sum())} value(s) have a zero or negative sigma "
            f"(smallest {sigma.min():.3g}); mask them or give a positive variance"
        )


def _check_correlation(matrix, n, name):
    """Validate a square symmetric correlation with unit diagonal; return it as csr."""
    matrix = sp.csr_array(matrix)
    if matrix.shape != (n, n):
        raise ShapeError(f"{name}: correlation matrix has shape {matrix.shape}, expected {(n, n)}")
    if not np.all(np.isfinite(matrix.data)):
        raise CovarianceError(f"{name}: correlation matrix has NaN or infinite entries")
    asym = abs(matrix - matrix.T).max() if matrix.nnz else 0.0
    if asym > 1e-8:
        raise CovarianceError(
            f"{name}: correlation matrix is not symmetric (max |R - R^T| {asym:.3g})"
        )
    diag = matrix.diagonal()
    if np.any(np.abs(diag - 1) > 1e-6):
        bad = int(np.sum(np.abs(diag - 1) > 1e-6))
        raise CovarianceError(
            f"{name}: correlation matrix must have a unit diagonal ({bad} entries differ from 1); "
            "for a covariance use CorrelatedNormal.from_covariance"
        )
    return matrix


def _nugget_value(matrix, nugget):
    """The nugget fraction nu (0 if None); ``"auto"`` bounds the condition number by 1e6."""
    if nugget is None:
        return 0.0
    if isinstance(nugget, str):
        if nugget != "auto":
            raise InputError(f"nugget must be None, a float in [0, 1) or 'auto', got {nugget!r}")
        lam_max = float(abs(matrix).sum(axis=1).max())
        return lam_max / (KAPPA_AUTO_NUGGET - 1 + lam_max)
    nugget = float(nugget)
    if not 0 <= nugget < 1:
        raise InputError(f"nugget must be in [0, 1), got {nugget}")
    return nugget


def _method_for_scatter(method, scatter_model, independent, name):
    """The factorisation that gives ``scatter_model`` (see :class:`CorrelatedNormal`)."""
    if scatter_model is None or independent:
        if scatter_model not in (None, "white", "correlated"):
            raise InputError(
                f"{name}: scatter_model must be None, 'white' or 'correlated', got "
                f"{scatter_model!r}"
            )
        return method
    wanted = {"white": "eigen", "correlated": "banded"}.get(scatter_model)
    if wanted is None:
        raise InputError(
            f"{name}: scatter_model must be None, 'white' or 'correlated', got {scatter_model!r}"
        )
    if method not in ("auto", wanted):
        raise InputError(
            f"{name}: scatter_model={scatter_model!r} needs method={wanted!r} (or 'auto'), "
            f"got method={method!r}"
        )
    return wanted


def choose_factor(
    matrix, sigma, method="auto", rank_tol=1e-8, grid_index=None, shape=None, solver=None
):
    """Factor a (nugget-added) correlation by ``method``; see the module docstring for ``auto``.

    ``solver`` (banded path): ``"lapack"`` or ``"scan"``; default LAPACK on CPU, scan elsewhere.

    Returns a :class:`~bayesifu.linalg.BandedFactor`, :class:`~bayesifu.linalg.EigenFactor` or
    :class:`~bayesifu.linalg.DiagonalFactor`.
    """
    n = sigma.size
    if solver is None:
        solver = "lapack" if jax.default_backend() == "cpu" else "scan"
    banded = {"kappa_max": KAPPA_MAX, "solver": solver}
    banded["sigma"] = sigma
    if method == "diagonal" or matrix is None:
        return DiagonalFactor(n, sigma)
    if method == "eigen":
        return EigenFactor(matrix, sigma, rank_tol=rank_tol)
    if method == "banded":
        return BandedFactor(matrix, grid_index, shape, **banded)
    try:
        return BandedFactor(matrix, grid_index, shape, **banded)
    except CovarianceError as exc:
        if n > EIGEN_MAX_N:
            raise CovarianceError(
                f"{exc}; with {n} > {EIGEN_MAX_N} values the dense reduced-rank path is too "
                "large: pass nugget='auto' (or a nugget fraction) for the banded path"
            ) from None
    return EigenFactor(matrix, sigma, rank_tol=rank_tol)


class CorrelatedNormal(_AsDistribution):
    """Multivariate normal likelihood of a data vector with a fixed sparse correlation.

    Parameters
    ----------
    data : array_like, shape (n,)
        The measured values.
    sigma : array_like, shape (n,)
        Their standard deviations [same unit]; finite and positive.
    correlation : scipy.sparse matrix or array, shape (n, n), optional
        Symmetric correlation matrix with unit diagonal. ``None``: independent values.
    method : {"auto", "eigen", "banded", "diagonal"}
        Factorisation (module docstring).
    rank_tol : float
        Relative eigenvalue threshold of the reduced-rank path.
    nugget : None, float or "auto"
        Fraction :math:`\\nu` in :math:`R_\\nu = (1-\\nu)R + \\nu I`.
    grid_index, shape : optional
        Flat row-major grid index of each value and the grid shape (used to order spaxels).
    name : str
        What the data are, for messages.
    solver : {None, "lapack", "scan"}
        Triangular solves of the banded path (:class:`~bayesifu.linalg.BandedFactor`); default
        LAPACK on CPU, the pure-JAX scan on other devices.
    scatter_model : {None, "white", "correlated"}
        How an intrinsic scatter :math:`\\tau` enters the covariance. ``"white"``:
        :math:`s^2 C_0 + \\tau^2 I` (on the range space of a rank-deficient correlation): the
        reduced-rank (eigen) path, dense, at most :data:`EIGEN_MAX_N` values. ``"correlated"``:
        :math:`D_s R D_s` with :math:`d_i^2 = s^2\\sigma_i^2 + \\tau^2`, the scatter correlated
        like the noise: the banded path. ``None`` (default): whichever ``method`` gives
        (:attr:`settings` records it). Without a correlation both are the same (diagonal).
    """

    def __init__(
        self,
        data,
        sigma,
        correlation=None,
        *,
        method="auto",
        rank_tol=1e-8,
        nugget=None,
        grid_index=None,
        shape=None,
        name="data",
        solver=None,
        scatter_model=None,
    ):
        require_x64()
        data = np.asarray(data, dtype=float).ravel()
        sigma = np.asarray(sigma, dtype=float).ravel()
        if data.size == 0:
            raise EmptyDataError(f"{name}: no values to use (empty after masking)")
        if sigma.shape != data.shape:
            raise ShapeError(f"{name}: sigma has {sigma.size} values, data {data.size}")
        if not np.all(np.isfinite(data)):
            raise InputError(f"{name}: {int((~np.isfinite(data)).sum())} data value(s) are NaN/inf")
        _check_sigma(sigma, name)
        if method not in _METHODS:
            raise InputError(f"method must be one of {_METHODS}, got {method!r}")
        method = _method_for_scatter(method, scatter_model, correlation is None, name)
        if method in ("eigen", "banded") and correlation is None:
            method = "diagonal"
        nu = 0.0
        if correlation is not None and method != "diagonal":
            correlation = _check_correlation(correlation, data.size, name)
            nu = _nugget_value(correlation, nugget)
            if nu > 0:
                correlation = (1 - nu) * correlation + nu * sp.eye_array(data.size, format="csr")
        self.name = name
        self.n = int(data.size)
        self._data_np = data
        self._sigma_np = sigma
        self.factor = choose_factor(
            None if method == "diagonal" else correlation,
            sigma,
            method,
            rank_tol,
            grid_index,
            shape,
            solver,
        )
        self.method = self.factor.method
        self.dof = int(self.factor.rank)
        self.nugget = nu
        self._data = jnp.asarray(data)
        self._sigma = jnp.asarray(sigma)
        self._settings = {
            "method": self.method,
            "n": self.n,
            "dof": self.dof,
            "rank": self.dof,
            "rank_tol": float(rank_tol),
            "nugget": nu,
            "scatter_model": "white" if self.method == "diagonal" else self.factor.scatter_model,
        }
        if self.method == "banded":
            self._settings.update(
                bandwidth=int(self.factor.bandwidth),
                solver=self.factor.solver,
                condition=float(self.factor.condition),
            )
        if self.method == "eigen":
            self._settings.update(self.factor.repair)

    @classmethod
    def from_covariance(cls, data, covariance, **kwargs):
        """Build from a covariance matrix (dense or sparse): ``sigma = sqrt(diag C)``, ``R =
        C/ss^T``."""
        cov = sp.csr_array(covariance)
        var = cov.diagonal()
        name = kwargs.get("name", "data")
        if not np.all(np.isfinite(var)) or np.any(var <= 0):
            raise VarianceError(f"{name}: covariance has a zero, negative or NaN diagonal entry")
        sigma = np.sqrt(var)
        inv = sp.diags_array(1.0 / sigma)
        corr = (inv @ cov @ inv).tocsr()
        corr.setdiag(1.0)
        return cls(data, sigma, corr, **kwargs)

    @property
    def data(self) -> np.ndarray:
        """The values used, shape (n,)."""
        return self._data_np

    @property
    def sigma(self) -> np.ndarray:
        """Their standard deviations, shape (n,)."""
        return self._sigma_np

    @property
    def settings(self) -> dict:
        """What the likelihood is, for InferenceData attrs (method, rank, nugget, ...)."""
        return dict(self._settings)

    def _vector(self, model):
        """The model as an (n,) JAX vector (broadcasting scalars)."""
        model = jnp.asarray(model)
        if model.shape not in ((), (self.n,)):
            raise ShapeError(f"{self.name}: model has shape {model.shape}, expected ({self.n},)")
        return jnp.broadcast_to(model, (self.n,))

    def _chi2_logdet(self, res, scale, scatter):
        """Chi-square and log-determinant of the covariance (fast path of log_prob)."""
        return self.factor.chi2(res, scale, scatter), self.factor.logdet(scale, scatter)

    def whiten(self, residual, scale=1.0, scatter=0.0):
        """Whitened residual, shape (dof,): standard normal if ``residual`` follows the model.

        For the banded path the entries are in the factor's (permuted) order.
        """
        return self.factor.whiten(self._vector(residual), scale, scatter)

    def whiten_spaxels(self, residual, scale=1.0, scatter=0.0):
        """Whitened residual with one value per data point, shape (n,), to map back onto spaxels.

        ``eigen``: the symmetric whitening :math:`U V^{-1/2} U^T r` on the range space (its null
        space dropped); ``banded``: the Cholesky whitening :math:`L^{-1} D^{-1} r` put back in
        the data order, where entry ``i`` is the residual of point ``i`` standardised given the
        points before it in the factor's order; independent: :math:`r / \\sigma`. Each is
        standard normal where the model and the covariance are right.
        """
        return self.factor.back(self.whiten(residual, scale, scatter))

    def chi2(self, model, scale=1.0, scatter=0.0):
        """:math:`\\chi^2` of the residual ``data - model`` (JAX scalar); ``dof`` degrees of
        freedom."""
        return self._chi2_logdet(self._data - self._vector(model), scale, scatter)[0]

    def log_prob(self, model, scale=1.0, scatter=0.0):
        """Log-likelihood of ``model`` (JAX scalar; jit-able, differentiable; use via
        observe() or lik.distribution)."""
        chi2, logdet = self._chi2_logdet(self._data - self._vector(model), scale, scatter)
        return -0.5 * (chi2 + logdet + self.dof * _LOG_2PI)

    def simulate(self, key, model, scale=1.0, scatter=0.0):
        """One draw of data given ``model``: ``model + colour(w)``, ``w`` standard normal (dof,),
        shape (n,) (on the eigen path the noise lies in the range space)."""
        w = jax.random.normal(key, (self.dof,))
        return self._vector(model) + self.factor.colour(w, scale, scatter)

    def pointwise_loo(self, model, scale=1.0, scatter=0.0):
        """Leave-one-out log predictive densities :math:`\\log p(y_i|y_{-i})`, shape (n,)."""
        res = self._data - self._vector(model)
        g = self.factor.precision(res, scale, scatter)
        q = self.factor.precision_diagonal(scale, scatter)
        return loo_terms(g, q)

    def to_map(self, values, fill=np.nan) -> np.ndarray:
        """Values in :attr:`data`'s order as an array: the (n,) vector itself here (subclasses
        with a grid put them on it; ``fill`` marks what has no value there)."""
        values = np.asarray(values, dtype=float)
        if values.shape != (self.n,):
            raise ShapeError(f"{self.name}: values must have shape ({self.n},), got {values.shape}")
        return values.copy()

    def __repr__(self):
        return (
            f"{type(self).__name__}(n={self.n}, dof={self.dof}, method={self.method!r}, "
            f"nugget={self.nugget:.3g})"
        )


class MapLikelihood(CorrelatedNormal):
    """Likelihood of a :class:`~bayesifu.containers.Map` with a spatial correlation.

    Masked spaxels are removed; the positions of those used are kept in :attr:`x`, :attr:`y`
    (0-based column, row) and :attr:`index` (flat row-major grid index). A model may be given on the
    used spaxels (shape ``(n,)``) or as a full ``(ny, nx)`` map.

    Parameters
    ----------
    map : bayesifu.Map
        The data, variances and mask.
    correlation : bayesifu.SpatialCorrelation, optional
        Over the same grid; every used spaxel must lie in its footprint. ``None``: independent.
    method, rank_tol, nugget, solver, scatter_model
        As for :class:`CorrelatedNormal`.
    """

    def __init__(
        self,
        map,
        correlation=None,
        *,
        method="auto",
        rank_tol=1e-8,
        nugget=None,
        solver=None,
        scatter_model=None,
    ):
        good = np.asarray(map.good)
        if not good.any():
            raise EmptyDataError(f"{map.name}: every spaxel is masked; nothing to use")
        self.shape = tuple(map.shape)
        self.index = np.flatnonzero(good.ravel())
        self.y, self.x = np.divmod(self.index, self.shape[1])
        matrix = None
        if correlation is not None:
            if tuple(correlation.shape) != self.shape:
                raise ShapeError(
                    f"{map.name}: correlation grid {tuple(correlation.shape)} does not match the "
                    f"map shape {self.shape}"
                )
            matrix = correlation.submatrix(good)
        super().__init__(
            map.data.ravel()[self.index],
            np.sqrt(map.variance.ravel()[self.index]),
            matrix,
            method=method,
            rank_tol=rank_tol,
            nugget=nugget,
            grid_index=self.index,
            shape=self.shape,
            name=map.name,
            solver=solver,
            scatter_model=scatter_model,
        )
        if correlation is not None:
            self._settings.update(
                correlation_source=correlation.source, correlation_params=dict(correlation.params)
            )
        self._index_j = jnp.asarray(self.index)

    def _vector(self, model):
        model = jnp.asarray(model)
        if model.shape == self.shape:
            return model.reshape(-1)[self._index_j]
        return super()._vector(model)

    def to_map(self, values, fill=np.nan) -> np.ndarray:
        """Values of the used spaxels, shape (n,), as a ``(ny, nx)`` map (``fill`` elsewhere)."""
        out = np.full(self.shape, fill, dtype=float)
        out.ravel()[self.index] = super().to_map(values)
        return out


def _group_channels(masks):
    """Group channel indices by identical mask pattern: {pattern bytes: (mask, [channels])}."""
    groups = {}
    for k, m in enumerate(masks):
        key = np.packbits(m).tobytes()
        if key not in groups:
            groups[key] = (m, [])
        groups[key][1].append(k)
    return list(groups.values())


class CubeLikelihood(_AsDistribution):
    """Channel-by-channel likelihood of a :class:`~bayesifu.containers.Cube` with one correlation.

    Channel ``c`` has covariance :math:`D_c R D_c` with its own variances and the same correlation.
    Channels are grouped by mask pattern (the cube mask plus unusable variance): the correlation of
    each distinct pattern is factored once (a cube with a fixed mask factors once), and every
    evaluation processes a whole group as one matrix of right-hand sides. Fully masked channels
    are skipped (``chi2`` 0, ``dof_per_channel`` 0; ``dof`` is the sum over channels). The data
    and standard deviations of the used pixels are held in memory (``16 n`` bytes); a model is
    the full cube ``[nwave, ny, nx]``.

    * banded path: exact, :math:`\\log p_c` as in the module docstring with
      :math:`d = \\sqrt{s^2\\sigma_c^2 + \\tau^2}` (scatter correlated like the noise).
    * eigen path (rank-deficient correlation, factor of :math:`R` shared by the channels):
      :math:`w_c = \\Lambda_r^{-1/2} U_r^T (y_c - \\mu_c)/(s\\sigma_c)`,
      :math:`\\chi^2_c \\sim \\chi^2_r` for noise from :math:`D_c R D_c`;
      :math:`\\log p_c = -\\frac12(\\chi^2_c + \\log\\mathrm{pdet} R + 2 r \\log s +
      \\frac{2r}{n}\\sum_i \\log\\sigma_{ci} + r\\log 2\\pi)`, exact when ``r = n`` or the
      variances are uniform, otherwise off by a constant independent of the model and of
      ``s``. Intrinsic scatter is not available on this path (``scatter`` must be the number 0;
      anything else, a traced value included, raises :class:`~bayesifu.errors.InputError`).

    Parameters
    ----------
    cube : bayesifu.Cube
    correlation : bayesifu.SpatialCorrelation, optional
    channels : array_like of int, optional
        The channels to use (default all).
    method, rank_tol, nugget
        As for :class:`CorrelatedNormal` (the choice is made per mask group).
    """

    def __init__(
        self, cube, correlation=None, *, channels=None, method="auto", rank_tol=1e-8, nugget=None
    ):
        require_x64()
        nwave = cube.shape[0]
        self.shape = tuple(cube.spatial_shape)
        self.channels = np.arange(nwave) if channels is None else np.asarray(channels, int)
        if correlation is not None and tuple(correlation.shape) != self.shape:
            raise ShapeError(
                f"{cube.name}: correlation grid {tuple(correlation.shape)} does not match "
                f"the cube's spatial shape {self.shape}"
            )
        masks = [cube.channel_mask(int(k)) for k in self.channels]
        self.name = cube.name
        self.nwave = int(nwave)
        self.groups = []
        self.dof_per_channel = np.zeros(self.channels.size, int)
        for mask, members in _group_channels(masks):
            good = ~mask
            if not good.any():
                continue
            chans = self.channels[members]
            index = np.flatnonzero(good.ravel())
            data = np.stack([np.asarray(cube.flux[k], float).ravel()[index] for k in chans])
            var = np.stack([np.asarray(cube.variance[k], float).ravel()[index] for k in chans])
            sigma = np.sqrt(var)
            _check_sigma(sigma, f"{cube.name} channels {chans[0]}..{chans[-1]}")
            matrix = None if correlation is None else correlation.submatrix(good)
            if matrix is not None and nugget is not None:
                nu = _nugget_value(matrix, nugget)
                matrix = (1 - nu) * matrix + nu * sp.eye_array(index.size, format="csr")
            factor = choose_factor(matrix, np.ones(index.size), method, rank_tol, index, self.shape)
            self.dof_per_channel[members] = factor.rank
            self.groups.append(
                {
                    "members": jnp.asarray(members),
                    "channels": jnp.asarray(chans),
                    "index": jnp.asarray(index),
                    "data": jnp.asarray(data.T),
                    "sigma": jnp.asarray(sigma.T),
                    "factor": factor,
                }
            )
        if not self.groups:
            raise EmptyDataError(f"{cube.name}: every channel is fully masked; nothing to use")
        self.n_channels = int(self.channels.size)
        self.methods = sorted({g["factor"].method for g in self.groups})
        self.n = int(sum(g["data"].size for g in self.groups))
        self.dof = int(self.dof_per_channel.sum())
        self._settings = {
            "method": "+".join(self.methods),
            "n": self.n,
            "dof": self.dof,
            "n_channels": self.n_channels,
            "n_mask_groups": len(self.groups),
            "rank_tol": float(rank_tol),
            "nugget": "none" if nugget is None else str(nugget),
        }

    @property
    def data(self) -> np.ndarray:
        """The values used, shape (n,): mask group by group, channel by channel, the unmasked
        spaxels of each (the order of :meth:`pointwise_loo` and :meth:`to_map`)."""
        return np.concatenate([np.asarray(g["data"]).T.ravel() for g in self.groups])

    @property
    def settings(self) -> dict:
        """What the likelihood is, for InferenceData attrs."""
        return dict(self._settings)

    def _group_scaled(self, g, residual, scale, scatter):
        """``(r / d, d)`` of one mask group: its residual (pixels, channels) over the standard
        deviations :math:`d = \\sqrt{s^2\\sigma^2 + \\tau^2}`."""
        d = self._group_sd(g, scale, scatter)
        return self._group_values(g, residual) / d, d

    @staticmethod
    def _group_sd(g, scale, scatter):
        """The standard deviations :math:`d` (pixels, channels) of one mask group."""
        no_scatter = isinstance(scatter, int | float) and scatter == 0
        if g["factor"].method == "eigen" and not no_scatter:
            raise InputError(
                "intrinsic scatter is not available for a cube with a rank-deficient "
                "correlation (eigen path); use a nugget for the banded path"
            )
        return jnp.sqrt(scale**2 * g["sigma"] ** 2 + scatter**2)

    @staticmethod
    def _group_values(g, cube):
        """The used values of one mask group of a cube, shape (pixels, channels)."""
        mod = jnp.asarray(cube)[g["channels"]].reshape(g["channels"].size, -1)
        return mod[:, g["index"]].T

    def _group_terms(self, g, model, scale, scatter):
        """Per-channel chi2 and log-determinant of one mask group."""
        f = g["factor"]  # of the correlation alone (unit sigma): the channels scale it
        z, d = self._group_scaled(g, model, scale, scatter)
        z = g["data"] / d - z
        # r / n = 1 on the full-rank paths; on the eigen path the per-channel variances enter
        # the pseudo-determinant only through this approximation (see the class docstring).
        logdet = f.logdet() + 2 * f.rank / f.n * jnp.sum(jnp.log(d), axis=0)
        return f.chi2(z), logdet

    def chi2(self, model, scale=1.0, scatter=0.0):
        """Per-channel :math:`\\chi^2`, shape (n_channels,) (0 for fully masked channels)."""
        out = jnp.zeros(self.n_channels)
        for g in self.groups:
            c2, _ = self._group_terms(g, model, scale, scatter)
            out = out.at[g["members"]].set(c2)
        return out

    def log_prob(self, model, scale=1.0, scatter=0.0):
        """Sum over channels of the log-likelihood of ``model`` [nwave_used or nwave, ny, nx]."""
        total = 0.0
        for g in self.groups:
            c2, logdet = self._group_terms(g, model, scale, scatter)
            dof = g["factor"].rank
            total = total - 0.5 * jnp.sum(c2 + logdet + dof * _LOG_2PI)
        return total

    def whiten(self, residual, scale=1.0, scatter=0.0):
        """Whitened ``residual`` (a cube), shape (dof,): group by group, channel by channel, the
        factor's whitened values (standard normal where the model and covariance are right)."""
        parts = []
        for g in self.groups:
            z, _ = self._group_scaled(g, residual, scale, scatter)
            parts.append(g["factor"].whiten(z).T.ravel())
        return jnp.concatenate(parts)

    def simulate(self, key, model, scale=1.0, scatter=0.0):
        """One draw of data given ``model`` (a cube), shape (n,) in :attr:`data`'s order: per
        channel the model plus noise with covariance :math:`D_c R D_c`."""
        parts = []
        for g, k in zip(self.groups, jax.random.split(key, len(self.groups)), strict=True):
            f = g["factor"]
            d = self._group_sd(g, scale, scatter)
            w = jax.random.normal(k, (f.rank, g["channels"].size))
            parts.append((self._group_values(g, model) + d * f.colour(w)).T.ravel())
        return jnp.concatenate(parts)

    def pointwise_loo(self, model, scale=1.0, scatter=0.0):
        """Leave-one-out log predictive densities :math:`\\log p(y_i|y_{-i})` within each channel,
        shape (n,) in :attr:`data`'s order (the precision of :math:`D_c R D_c`, pseudo-inverse on
        the eigen path)."""
        parts = []
        for g in self.groups:
            f = g["factor"]
            z, d = self._group_scaled(g, model, scale, scatter)
            grad = f.precision(g["data"] / d - z) / d
            q = jnp.asarray(f.precision_diagonal())[:, None] / d**2
            parts.append(loo_terms(grad, q).T.ravel())
        return jnp.concatenate(parts)

    def to_map(self, values, fill=np.nan) -> np.ndarray:
        """Values in :attr:`data`'s order, shape (n,), as a cube ``[nwave, ny, nx]``."""
        values = np.asarray(values, dtype=float)
        if values.shape != (self.n,):
            raise ShapeError(f"{self.name}: values must have shape ({self.n},), got {values.shape}")
        out = np.full((self.nwave, self.shape[0] * self.shape[1]), fill, dtype=float)
        start = 0
        for g in self.groups:
            chans, index = np.asarray(g["channels"]), np.asarray(g["index"])
            block = values[start : start + chans.size * index.size].reshape(chans.size, index.size)
            out[np.ix_(chans, index)] = block
            start += block.size
        return out.reshape((self.nwave, *self.shape))

    def __repr__(self):
        return (
            f"CubeLikelihood(n={self.n}, dof={self.dof}, channels={self.n_channels}, "
            f"methods={self.methods})"
        )
