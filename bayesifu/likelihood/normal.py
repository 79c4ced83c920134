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
clipped to zero with a :class:`~.factors.CovarianceRepairWarning` (nearest positive
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
computed once (:class:`~.factors.BandedFactor`) and

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

The intrinsic scatter: ``scatter_model``
----------------------------------------
The two paths put :math:`\\tau` into the covariance differently, and that is a choice of *model*,
not of speed, so it is an option of its own:

``"white"``
    :math:`C = s^2 C_0 + \\tau^2 P`, :math:`P` the projector on the range of :math:`C_0`
    (:math:`P = I` at full rank): scatter independent from spaxel to spaxel, at every spatial
    frequency. The eigen path; dense, at most :data:`EIGEN_MAX_N` values.
``"correlated"``
    :math:`C = D_s R_\\nu D_s`, :math:`(D_s)_{ii} = \\sqrt{s^2\\sigma_i^2 + \\tau^2}`: scatter with
    the correlation of the noise. The banded path; any size, positive-definite :math:`R_\\nu`.
``"auto"`` (the default of :class:`~bayesifu.likelihood.MapLikelihood` and
:class:`~bayesifu.likelihood.BinnedMapLikelihood`)
    ``"white"`` when ``method="auto"`` and ``n <= EIGEN_MAX_N``; with more values the dense path
    does not fit, and the ``method="auto"`` choice above applies (the banded path, so
    ``"correlated"``); an explicit ``method="eigen"`` or ``"banded"`` gives that path's model.
    White is preferred because real residuals have power at high spatial frequencies (pixel-scale
    measurement and model errors) where a smooth correlation such as MaNGA's Gaussian approximation
    (:math:`\\sigma = 1.92` spaxels) has almost none: scatter correlated like that noise cannot
    cover it except by growing large (on the H-alpha velocities of 7815-3702, about 14 km/s
    instead of 1.9, and posterior widths about 10 times larger; ``tests/test_cli_fit.py``
    reproduces this on simulated noise). Without scatter (:math:`\\tau = 0`) the two models are
    the same density wherever the correlation has full rank. The price is the dense path's
    set-up (an eigendecomposition, :math:`O(n^3)`, and ``8 n r`` bytes) where a positive-definite
    correlation would allow the banded one: ``method="banded"`` (or
    ``scatter_model="correlated"``) chooses that speed and the correlated model.
``None`` (the default of :class:`CorrelatedNormal`, the low-level class, whose ``method="auto"``
keeps choosing by the matrix)
    The model of whichever path ``method`` chooses (:attr:`CorrelatedNormal.settings` records it).

Without a correlation every model is the same: independent values with variance
:math:`s^2\\sigma_i^2 + \\tau^2`.

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

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..errors import CovarianceError, EmptyDataError, InputError, ShapeError, VarianceError
from .base import _LOG_2PI, _AsDistribution, loo_terms
from .factors import BandedFactor, DiagonalFactor, EigenFactor, require_x64

__all__ = ["CorrelatedNormal", "choose_factor"]

_METHODS = ("auto", "eigen", "banded", "diagonal")
EIGEN_MAX_N = 8000
KAPPA_AUTO_NUGGET = 1e6
KAPPA_MAX = 1e10


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


_SCATTER_MODELS = ("auto", "white", "correlated", None)


def _method_for_scatter(method, scatter_model, n, independent, name):
    """The factorisation that gives ``scatter_model`` (see :class:`CorrelatedNormal`)."""
    if scatter_model not in _SCATTER_MODELS:
        raise InputError(
            f"{name}: scatter_model must be 'auto', 'white', 'correlated' or None, got "
            f"{scatter_model!r}"
        )
    if scatter_model is None or independent:
        return method
    if scatter_model == "auto":
        if method != "auto":  # an explicit factorisation fixes the scatter model
            return method
        # white wherever the dense reduced-rank path is affordable; above that only the banded
        # path (scatter correlated like the noise) scales, and "auto" says why it cannot be used
        return "eigen" if n <= EIGEN_MAX_N else "auto"
    wanted = {"white": "eigen", "correlated": "banded"}[scatter_model]
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

    Returns a :class:`~.factors.BandedFactor`, :class:`~.factors.EigenFactor` or
    :class:`~.factors.DiagonalFactor`.
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
        Triangular solves of the banded path (:class:`~.factors.BandedFactor`); default
        LAPACK on CPU, the pure-JAX scan on other devices.
    scatter_model : {None, "auto", "white", "correlated"}
        How an intrinsic scatter :math:`\\tau` enters the covariance (module docstring).
        ``"white"``: :math:`s^2 C_0 + \\tau^2 I` (on the range space of a rank-deficient
        correlation), the reduced-rank (eigen) path, dense, at most :data:`EIGEN_MAX_N` values.
        ``"correlated"``: :math:`D_s R D_s` with :math:`d_i^2 = s^2\\sigma_i^2 + \\tau^2`, the
        scatter correlated like the noise: the banded path. ``"auto"``: white when ``method`` is
        ``"auto"`` and ``n <= EIGEN_MAX_N``, else the model of the path ``method`` gives (the
        default of the map likelihoods). ``None`` (default here): whichever ``method`` gives
        (:attr:`settings` records it). Without a correlation all are the same (diagonal).
    """

    def __init__(  # noqa: PLR0913 -- public API: documented keyword options
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
        method = _method_for_scatter(method, scatter_model, data.size, correlation is None, name)
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
