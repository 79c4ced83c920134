"""Likelihoods of binned values and binned spectra/SEDs with the covariance between bins.

:class:`BinnedLikelihood` wraps :class:`~bayesifu.likelihood.CorrelatedNormal` for the values of
:meth:`Binning.aggregate <bayesifu.binning.Binning.aggregate>` (covariance
:math:`\\mathbf T\\mathbf C\\mathbf T^{\\rm T}`). :class:`BinnedSpectraLikelihood` does the same for
every channel of :class:`~bayesifu.binning.BinnedSpectra`: channels are independent, and within a
channel the bins have the exact covariance :math:`\\mathbf C_k`. Each :math:`\\mathbf C_k` is
factored once, :math:`\\mathbf C_k = \\mathbf U_k\\boldsymbol\\Lambda_k\\mathbf U_k^{\\rm T}`,
keeping the eigenvalues above ``rank_tol`` times the largest (binned MaNGA covariances can be
rank-deficient, see :mod:`bayesifu.likelihood`); with :math:`\\mathbf w_k =
\\boldsymbol\\Lambda_k^{-1/2}\\mathbf U_k^{\\rm T}\\mathbf r_k` and :math:`r_k` kept eigenvalues,

.. math::

    \\log p = -\\frac12 \\sum_k \\left( \\frac{\\mathbf w_k^{\\rm T}\\mathbf w_k}{s^2}
    + \\sum \\log (s^2\\boldsymbol\\Lambda_k) + r_k \\log 2\\pi \\right),

the degenerate-normal density of :func:`scipy.stats.multivariate_normal` with
``allow_singular=True``, for an error-scale factor :math:`s`. The whitening matrices are closed over
as JAX constants, so :meth:`~BinnedSpectraLikelihood.log_prob` is jit-able and differentiable in the
model. Masked (bin, channel) entries are left out.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..errors import EmptyDataError, InputError, ShapeError, VarianceError
from ..likelihood import CorrelatedNormal
from ..linalg import EigenFactor, require_x64
from .operator import BinnedValues
from .spectra import BinnedSpectra

__all__ = ["BinnedLikelihood", "BinnedSpectraLikelihood"]

_LOG_2PI = float(np.log(2 * np.pi))
#: Largest n_channels * n_bins**2 held as dense whitening matrices.
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


class BinnedSpectraLikelihood:
    """Likelihood of binned spectra (or SEDs), exact covariance between bins in each channel.

    Parameters
    ----------
    binned : BinnedSpectra
        From :func:`bayesifu.binning.bin_spectra`.
    channels : array_like of int, optional
        Channels to use (default all); the dense whitening matrices take
        ``n_channels * n_bins**2`` numbers (at most :data:`MAX_DENSE`).
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
        whiten = np.zeros((channels.size, nb, nb))
        logdet = 0.0
        rank = 0
        for i, k in enumerate(channels):
            w, ld, r = _whitener(binned.covariance(k).toarray(), used[i], rank_tol)
            whiten[i], logdet, rank = w, logdet + ld, rank + r
        self.channels = channels
        self.shape = (nb, nwave)
        self.n = int(used.sum())
        self.dof = int(rank)
        self._logdet = float(logdet)
        self._used = jnp.asarray(used)
        self._data = jnp.asarray(np.where(used, binned.flux[:, channels].T, 0.0))
        self._whiten = jnp.asarray(whiten)
        self._channels_j = jnp.asarray(channels)

    def _residual(self, model):
        model = jnp.asarray(model)
        nb, nwave = self.shape
        if model.shape == (nb, nwave):
            model = model[:, self._channels_j]
        elif model.shape != (nb, self.channels.size):
            raise ShapeError(
                f"model must have shape {(nb, nwave)} or {(nb, self.channels.size)}, "
                f"got {model.shape}"
            )
        return jnp.where(self._used, self._data - model.T, 0.0)

    def whiten(self, model):
        """Whitened residuals, shape ``(n_channels, n_bins)`` (zeros in dropped directions)."""
        return jnp.einsum("kij,kj->ki", self._whiten, self._residual(model))

    def chi2(self, model, scale=1.0):
        """:math:`\\chi^2` of ``data - model`` with ``dof`` degrees of freedom (JAX scalar)."""
        return jnp.sum(self.whiten(model) ** 2) / scale**2

    def log_prob(self, model, scale=1.0):
        """Log-likelihood of ``model``, shape (n_bins, nwave) or (n_bins, n_channels).

        A JAX scalar: jit-able and differentiable in ``model`` and ``scale``.
        """
        chi2 = self.chi2(model, scale)
        logdet = self._logdet + 2.0 * self.dof * jnp.log(scale)
        return -0.5 * (chi2 + logdet + self.dof * _LOG_2PI)

    def __repr__(self):
        return f"BinnedSpectraLikelihood(n={self.n}, dof={self.dof}, channels={self.channels.size})"


def _whitener(cov, used, rank_tol):
    """Whitening matrix ``V^{-1/2} Q^T`` of the used bins (rows: kept eigen-directions of the
    reduced-rank factor, :class:`~bayesifu.linalg.EigenFactor`), its log pseudo-determinant and
    rank."""
    nb = cov.shape[0]
    idx = np.flatnonzero(used)
    sub = cov[np.ix_(idx, idx)]
    sigma = np.sqrt(np.diag(sub))
    factor = EigenFactor(sub / np.outer(sigma, sigma), sigma, rank_tol=rank_tol)
    w = np.zeros((nb, nb))
    w[: factor.rank][:, idx] = factor.whitening_matrix()
    return w, float(factor.logdet()), int(factor.rank)
