"""Likelihoods of binned values and binned spectra/SEDs with the covariance between bins.

:class:`BinnedLikelihood` wraps :class:`~bayesifu.likelihood.CorrelatedNormal` for the values of
:meth:`Binning.aggregate <bayesifu.binning.Binning.aggregate>` (covariance
:math:`\\mathbf T\\mathbf C\\mathbf T^{\\rm T}`). :class:`BinnedSpectraLikelihood` does the same for
every channel of :class:`~bayesifu.binning.BinnedSpectra`: channels are independent, and within a
channel the bins have the exact covariance :math:`\\mathbf C_k`. Each :math:`\\mathbf C_k` is
factored once, :math:`\\mathbf C_k = \\mathbf Q_k\\operatorname{diag}(\\boldsymbol\\mu_k)
\\mathbf Q_k^{\\rm T}`, keeping the eigenvalues above ``rank_tol`` times the largest (binned MaNGA
covariances can be rank-deficient, see :mod:`.normal`); with an error-scale factor
:math:`s`, an intrinsic scatter :math:`\\tau`, :math:`\\mathbf V_k = s^2\\boldsymbol\\mu_k +
\\tau^2`, :math:`\\mathbf w_k = \\mathbf V_k^{-1/2}\\mathbf Q_k^{\\rm T}\\mathbf r_k` and
:math:`r_k` kept eigenvalues,

.. math::

    \\log p = -\\frac12 \\sum_k \\left( \\mathbf w_k^{\\rm T}\\mathbf w_k
    + \\sum \\log \\mathbf V_k + r_k \\log 2\\pi \\right),

the degenerate-normal density of :func:`scipy.stats.multivariate_normal` with
``allow_singular=True`` (for :math:`\\tau = 0`, of :math:`s^2\\mathbf C_k`). The factors are
closed over as JAX constants, so :meth:`~BinnedSpectraLikelihood.log_prob` is jit-able and
differentiable in the model, :math:`s` and :math:`\\tau`. Masked (bin, channel) entries are left
out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..binning.operator import BinnedValues
from ..binning.spectra import BinnedSpectra
from ..errors import EmptyDataError, InputError, ShapeError, VarianceError
from .base import _LOG_2PI, _AsDistribution, loo_terms
from .factors import EigenFactor, require_x64
from .normal import CorrelatedNormal

__all__ = ["BinnedLikelihood", "BinnedSpectraLikelihood"]

#: Largest n_channels * n_bins**2 held as dense factors.
MAX_DENSE = 60_000_000


class BinnedLikelihood(CorrelatedNormal):
    """Likelihood of binned values with their covariance :math:`\\mathbf T\\mathbf C\\mathbf T^T`.

    Parameters
    ----------
    binned : BinnedValues
        From :meth:`bayesifu.binning.Binning.aggregate`; bins with NaN values are left out.
    method, rank_tol, nugget
        As for :class:`~bayesifu.likelihood.CorrelatedNormal` (``"auto"`` picks the factor).
    """

    def __init__(self, binned: BinnedValues, *, method="auto", rank_tol=1e-8, nugget=None):
        if not isinstance(binned, BinnedValues):
            raise InputError(f"BinnedLikelihood needs BinnedValues, got {type(binned).__name__}")
        keep = np.flatnonzero(np.isfinite(binned.values))
        if keep.size == 0:
            raise EmptyDataError("binned values: every bin is empty (NaN)")
        self.keep = keep
        self.n_bins_total = binned.values.size
        cov = sp.csr_array(binned.covariance[keep][:, keep])
        sigma = np.sqrt(cov.diagonal())
        if not np.all(np.isfinite(sigma) & (sigma > 0)):
            raise VarianceError("binned values: a bin has a zero, negative or NaN variance")
        inv = sp.diags_array(1.0 / sigma)
        corr = sp.csr_array(inv @ cov @ inv)
        corr.setdiag(1.0)
        super().__init__(
            binned.values[keep], sigma, corr, method=method, rank_tol=rank_tol, nugget=nugget,
            name="binned values",
        )  # fmt: skip

    def _vector(self, model):
        model = jnp.asarray(model)
        if model.shape == (self.n_bins_total,) and self.n_bins_total != self.n:
            return model[jnp.asarray(self.keep)]
        return super()._vector(model)


class BinnedSpectraLikelihood(_AsDistribution):
    """Likelihood of binned spectra (or SEDs), exact covariance between bins in each channel.

    Channel :math:`k` has the reduced-rank factor :math:`\\mathbf C_k = \\mathbf Q_k
    \\operatorname{diag}(\\boldsymbol\\mu_k) \\mathbf Q_k^{\\rm T}` of its used bins
    (:class:`~.factors.EigenFactor`); an error-scale factor :math:`s` and an intrinsic
    scatter :math:`\\tau` (white, on the range space, as on the eigen path of
    :class:`~bayesifu.likelihood.CorrelatedNormal`) give the variances :math:`V_k = s^2
    \\boldsymbol\\mu_k + \\tau^2`. The factors of all channels are stacked, so one evaluation
    is one batched matrix-vector product.

    Parameters
    ----------
    binned : BinnedSpectra
        From :func:`bayesifu.binning.bin_spectra`.
    channels : array_like of int, optional
        Channels to use (default all); the dense factors take ``n_channels * n_bins**2`` numbers
        (at most :data:`MAX_DENSE`).
    rank_tol : float
        Relative eigenvalue threshold below which a direction is dropped (rank deficiency).

    Attributes
    ----------
    n : int
        Number of (bin, channel) values used.
    dof : int
        Degrees of freedom: the sum of the kept ranks.
    """

    def __init__(self, binned: BinnedSpectra, channels=None, rank_tol=1e-10):
        require_x64()
        if not isinstance(binned, BinnedSpectra):
            raise InputError(
                f"BinnedSpectraLikelihood needs BinnedSpectra, got {type(binned).__name__}"
            )
        nwave = binned.wave.size
        channels = np.arange(nwave) if channels is None else np.asarray(channels, dtype=int)
        if channels.ndim != 1 or np.any((channels < 0) | (channels >= nwave)):
            raise InputError(f"channels must be 0-based indices below {nwave}")
        nb = binned.n_bins
        if channels.size * nb**2 > MAX_DENSE:
            raise InputError(
                f"{channels.size} channels x {nb} bins need {channels.size * nb**2:.3g} numbers "
                f"(limit {MAX_DENSE:.3g}); select fewer channels"
            )
        used = ~binned.mask[:, channels].T  # (n_ch, nb)
        if not used.any():
            raise EmptyDataError(f"{binned.name}: every bin is masked in the selected channels")
        basis = np.zeros((channels.size, nb, nb))  # rows: kept directions, then zeros
        mu = np.ones((channels.size, nb))
        kept = np.zeros((channels.size, nb), dtype=bool)
        for i, k in enumerate(channels):
            if not used[i].any():
                continue
            qt, mu_k = _eigenbasis(binned.covariance(k).toarray(), used[i], rank_tol)
            r = mu_k.size
            basis[i, :r], mu[i, :r], kept[i, :r] = qt, mu_k, True
        self.name = binned.name
        self.channels = channels
        self.shape = (nb, nwave)
        self.n = int(used.sum())
        self.dof = int(kept.sum())
        self._used_np = used
        self._data_np = binned.flux[:, channels].T[used]
        self._used = jnp.asarray(used)
        self._data = jnp.asarray(np.where(used, binned.flux[:, channels].T, 0.0))
        self._basis = jnp.asarray(basis)
        self._mu = jnp.asarray(mu)
        self._kept = jnp.asarray(kept)
        self._channels_j = jnp.asarray(channels)
        self._settings = {
            "method": "eigen per channel",
            "n": self.n,
            "dof": self.dof,
            "rank_tol": float(rank_tol),
            "n_channels": int(channels.size),
            "n_bins": int(nb),
            "scatter_model": "white, projected on the range space",
        }

    @property
    def data(self) -> np.ndarray:
        """The values used, shape (n,): channel by channel, the unmasked bins of each."""
        return self._data_np

    @property
    def settings(self) -> dict:
        """What the likelihood is, for InferenceData attrs."""
        return dict(self._settings)

    def _as_channels(self, model):
        """``model`` of shape (n_bins, nwave) or (n_bins, n_channels) as (n_channels, n_bins)."""
        model = jnp.asarray(model)
        nb, nwave = self.shape
        if model.shape == (nb, nwave):
            model = model[:, self._channels_j]
        elif model.shape != (nb, self.channels.size):
            raise ShapeError(
                f"{self.name}: model must have shape {(nb, nwave)} or {(nb, self.channels.size)}, "
                f"got {model.shape}"
            )
        return model.T

    def _residual(self, model):
        return jnp.where(self._used, self._data - self._as_channels(model), 0.0)

    def _variances(self, scale, scatter):
        return jnp.where(self._kept, scale**2 * self._mu + scatter**2, 1.0)

    def whiten(self, residual, scale=1.0, scatter=0.0):
        """Whitened ``residual`` (the model's shape), shape ``(n_channels, n_bins)``: channel
        ``k``'s first ``rank_k`` entries are standard normal for noise from the model, the rest 0.
        """
        res = jnp.where(self._used, self._as_channels(residual), 0.0)
        proj = jnp.einsum("kij,kj->ki", self._basis, res)
        return jnp.where(self._kept, proj / jnp.sqrt(self._variances(scale, scatter)), 0.0)

    def chi2(self, model, scale=1.0, scatter=0.0):
        """:math:`\\chi^2` of ``data - model`` with ``dof`` degrees of freedom (JAX scalar)."""
        return jnp.sum(self.whiten(self._residual(model).T, scale, scatter) ** 2)

    def log_prob(self, model, scale=1.0, scatter=0.0):
        """Log-likelihood of ``model``, shape (n_bins, nwave) or (n_bins, n_channels).

        A JAX scalar: jit-able and differentiable in ``model``, ``scale`` and ``scatter``.
        """
        logdet = jnp.sum(jnp.where(self._kept, jnp.log(self._variances(scale, scatter)), 0.0))
        return -0.5 * (self.chi2(model, scale, scatter) + logdet + self.dof * _LOG_2PI)

    def simulate(self, key, model, scale=1.0, scatter=0.0):
        """One draw of data given ``model``, shape (n,) in :attr:`data`'s order: per channel the
        model plus noise :math:`\\mathbf Q_k \\mathbf V_k^{1/2} \\mathbf w_k` on its range space."""
        w = jax.random.normal(key, self._kept.shape)
        amp = jnp.where(self._kept, jnp.sqrt(self._variances(scale, scatter)) * w, 0.0)
        grid = self._as_channels(model) + jnp.einsum("kij,ki->kj", self._basis, amp)
        return grid[self._used_np]

    def pointwise_loo(self, model, scale=1.0, scatter=0.0):
        """Leave-one-out log predictive densities :math:`\\log p(y_i|y_{-i})` within each
        channel (pseudo-inverse precision, as :meth:`CorrelatedNormal.pointwise_loo
        <bayesifu.likelihood.CorrelatedNormal.pointwise_loo>`), shape (n,) in :attr:`data`'s order.
        """
        inv_var = jnp.where(self._kept, 1.0 / self._variances(scale, scatter), 0.0)
        proj = jnp.einsum("kij,kj->ki", self._basis, self._residual(model))
        g = jnp.einsum("kij,ki->kj", self._basis, proj * inv_var)
        q = jnp.einsum("kij,ki->kj", self._basis**2, inv_var)
        q = jnp.where(self._used, q, 1.0)
        return loo_terms(g, q)[self._used_np]

    def to_map(self, values, fill=np.nan) -> np.ndarray:
        """Values in :attr:`data`'s order, shape (n,), as an array ``(n_bins, nwave)``."""
        values = np.asarray(values, dtype=float)
        if values.shape != (self.n,):
            raise ShapeError(f"{self.name}: values must have shape ({self.n},), got {values.shape}")
        grid = np.full((self.channels.size, self.shape[0]), fill, dtype=float)
        grid[self._used_np] = values
        out = np.full(self.shape, fill, dtype=float)
        out[:, self.channels] = grid.T
        return out

    def __repr__(self):
        return f"BinnedSpectraLikelihood(n={self.n}, dof={self.dof}, channels={self.channels.size})"


def _eigenbasis(cov, used, rank_tol):
    """Range-space basis ``Q^T`` (rank, n_bins; zero columns for unused bins) and eigenvalues of
    the covariance of the used bins (:class:`~.factors.EigenFactor`)."""
    idx = np.flatnonzero(used)
    sub = cov[np.ix_(idx, idx)]
    sigma = np.sqrt(np.diag(sub))
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise VarianceError("binned spectra: a used bin has a zero, negative or NaN variance")
    factor = EigenFactor(sub / np.outer(sigma, sigma), sigma, rank_tol=rank_tol)
    qt_used, mu = factor.eigenbasis()
    qt = np.zeros((factor.rank, cov.shape[0]))
    qt[:, idx] = qt_used
    return qt, mu
