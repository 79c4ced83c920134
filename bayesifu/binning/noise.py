"""The noise of a bin of spaxels, exact from the covariance or calibrated, for the binning codes.

:class:`BinNoise` holds a map's signal and errors on its unmasked spaxels (compressed, row-major
order) with, optionally, the spatial correlation among them, and evaluates the S/N of every bin of a
labelling at once (:meth:`BinNoise.sn`), or of a bin grown one spaxel at a time
(:meth:`BinNoise.added_variance`), both exactly from the covariance
:math:`C_{jk} = \\rho_{jk}\\sigma_j\\sigma_k` or with the calibrated ratio
:math:`1 + \\alpha\\log_{10}N` of Westfall et al. (2019, AJ 158, 231, doi:10.3847/1538-3881/ab44a2).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..containers import Map
from ..correlation import SpatialCorrelation
from ..errors import CovarianceError, InputError, ShapeError
from .snr import calibrate_noise_ratio, noise_ratio

__all__ = ["BinNoise", "SN_METHODS"]

#: How the noise of a bin is computed: exact from the matrix, or the calibrated ratio.
SN_METHODS = ("exact", "calibrated")


class BinNoise:
    """Signal and noise of the unmasked spaxels of a map, for S/N of arbitrary bins.

    Parameters
    ----------
    data : Map
        Signal (``data``) and its variance; masked spaxels are left out.
    correlation : SpatialCorrelation or None
        Spatial correlation of the map (``None``: independent spaxels).
    sn_method : {"exact", "calibrated"}
        With a correlation: the exact noise :math:`\\sqrt{\\mathbf 1^{\\rm T}\\mathbf C\\mathbf 1}`
        or the calibrated :math:`\\sqrt{\\sum\\sigma^2}(1+\\alpha\\log_{10}N)`.
    alpha : float, optional
        The calibration coefficient; fitted from ``correlation`` when not given.
    seed : int
        Seed of the calibration fit.
    """

    def __init__(self, data: Map, correlation=None, sn_method="exact", alpha=None, seed=0):
        if not isinstance(data, Map):
            raise InputError(f"binning needs a bayesifu.Map, got {type(data).__name__}")
        if sn_method not in SN_METHODS:
            raise InputError(f"sn_method must be one of {SN_METHODS}, got {sn_method!r}")
        self.shape = data.shape
        self.good = data.good
        self.index = np.flatnonzero(self.good.ravel())
        self.signal = data.data.ravel()[self.index].astype(float)
        self.variance = data.variance.ravel()[self.index].astype(float)
        self.sigma = np.sqrt(self.variance)
        self.sn_method = sn_method if correlation is not None else "independent"
        self.alpha = 0.0
        self.cov = None
        if correlation is None:
            return
        self._check(correlation, data.name)
        if sn_method == "exact":
            s = sp.diags_array(self.sigma)
            self.cov = sp.csr_array(s @ correlation.submatrix(self.good) @ s)
            self.cov.sort_indices()
            self._diag = self.cov.diagonal()
            coo = self.cov.tocoo()
            self._coo = (coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data)
        else:
            self.alpha = (
                float(alpha)
                if alpha is not None
                else calibrate_noise_ratio(correlation, seed=seed).alpha
            )

    def _check(self, correlation, name):
        if not isinstance(correlation, SpatialCorrelation):
            raise InputError(
                "correlation must be a bayesifu.SpatialCorrelation or None, got "
                f"{type(correlation).__name__}"
            )
        if correlation.shape != tuple(self.shape):
            raise ShapeError(
                f"{name}: correlation grid {correlation.shape} does not match the map {self.shape}"
            )
        outside = self.good & ~correlation.defined
        if outside.any():
            raise CovarianceError(
                f"{name}: {int(outside.sum())} unmasked spaxel(s) lie outside the footprint of "
                f"the {correlation.source} correlation; mask them"
            )

    @property
    def n(self) -> int:
        """The number of unmasked spaxels."""
        return int(self.index.size)

    def xy(self) -> np.ndarray:
        """Pixel coordinates ``(x, y)`` of the unmasked spaxels, shape ``(n, 2)``."""
        nx = self.shape[1]
        return np.column_stack([self.index % nx, self.index // nx]).astype(float)

    def pixel_sn(self) -> np.ndarray:
        """S/N of each unmasked spaxel on its own."""
        return self.signal / self.sigma

    def sums(self, labels, n_bins):
        """Signal sum, noise variance (per :attr:`sn_method`) and size of each bin.

        ``labels`` gives the bin (0 ... n_bins-1) of each unmasked spaxel (compressed order).
        """
        signal = np.bincount(labels, self.signal, minlength=n_bins)
        size = np.bincount(labels, minlength=n_bins)
        if self.cov is not None:
            row, col, val = self._coo
            lr = labels[row]
            same = lr == labels[col]
            var = np.bincount(lr[same], val[same], minlength=n_bins)
        else:
            var = np.bincount(labels, self.variance, minlength=n_bins)
            if self.alpha:
                var = var * noise_ratio(np.maximum(size, 1), self.alpha) ** 2
        return signal, var, size

    def sn(self, labels, n_bins) -> np.ndarray:
        """S/N of each bin of a labelling (see :meth:`sums`)."""
        signal, var, _ = self.sums(labels, n_bins)
        with np.errstate(divide="ignore", invalid="ignore"):
            return signal / np.sqrt(var)

    def added_variance(self, k: int, owner: np.ndarray, bin_id: int) -> float:
        """Increase of a bin's noise variance when spaxel ``k`` joins it (exact method only).

        ``owner`` gives the bin of each spaxel; spaxel ``k`` must not yet be in ``bin_id``:
        :math:`\\Delta V = C_{kk} + 2\\sum_{j\\in B} C_{jk}`.
        """
        lo, hi = self.cov.indptr[k], self.cov.indptr[k + 1]
        cols = self.cov.indices[lo:hi]
        vals = self.cov.data[lo:hi]
        inside = owner[cols] == bin_id
        return float(self._diag[k] + 2.0 * vals[inside].sum())

    def bin_variance(self, var_sum: float, n: int) -> float:
        """Noise variance of a bin from its summed spaxel variance (non-exact methods)."""
        if self.alpha:
            return var_sum * (1.0 + self.alpha * np.log10(n)) ** 2
        return var_sum
