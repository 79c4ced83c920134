"""Signal-to-noise ratio of binned spaxels with the spatial covariance, exact and calibrated.

The noise of a sum of :math:`N` spaxels with errors :math:`\\sigma_j` and correlation
:math:`\\rho_{jk}` is :math:`\\sqrt{\\sum_{jk}\\rho_{jk}\\sigma_j\\sigma_k}`. Westfall et al. (2019,
AJ 158, 231, Sect. 6.3, doi:10.3847/1538-3881/ab44a2) approximate its ratio to the independent-noise
value :math:`\\sqrt{\\sum_j \\sigma_j^2}` as

.. math::

    \\frac{\\sigma_{\\rm covar}}{\\sigma_{\\rm no\\,covar}} \\approx 1 + \\alpha \\log_{10} N,

with :math:`\\alpha = 1.62` for MaNGA. :func:`calibrate_noise_ratio` fits :math:`\\alpha` to the
exact ratio of compact (nearest-neighbour) bins drawn from a correlation matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..correlation import SpatialCorrelation
from ..errors import EmptyDataError, InputError

__all__ = [
    "NoiseCalibration",
    "calibrate_noise_ratio",
    "noise_ratio",
    "calibrated_sn",
    "WESTFALL_ALPHA",
]

#: The MaNGA value of :math:`\alpha` from Westfall et al. (2019, Sect. 6.3).
WESTFALL_ALPHA = 1.62


def noise_ratio(n, alpha=WESTFALL_ALPHA):
    """The calibrated noise ratio :math:`1 + \\alpha\\log_{10} N` for bins of ``n`` spaxels."""
    n = np.asarray(n, dtype=float)
    if np.any(n < 1):
        raise InputError("a bin holds at least one spaxel (n >= 1)")
    return 1.0 + alpha * np.log10(n)


def calibrated_sn(signal_sum, variance_sum, n, alpha=WESTFALL_ALPHA):
    """S/N of bins from their summed signal and independent variance, with the calibrated ratio.

    Parameters
    ----------
    signal_sum : array_like
        :math:`\\sum_j s_j` per bin [signal unit].
    variance_sum : array_like
        :math:`\\sum_j \\sigma_j^2` per bin [signal unit**2].
    n : array_like
        Spaxels per bin.
    alpha : float
        The calibration coefficient.
    """
    return np.asarray(signal_sum) / (np.sqrt(variance_sum) * noise_ratio(n, alpha))


@dataclass
class NoiseCalibration:
    """A fit of :math:`1 + \\alpha \\log_{10} N` to the exact noise ratio of compact bins.

    Attributes
    ----------
    alpha : float
        The fitted coefficient.
    n : ndarray
        Bin sizes used [spaxels].
    ratio : ndarray
        Exact noise ratio of each bin (unit spaxel variances).
    rms : float
        RMS residual of the fit.
    """

    alpha: float
    n: np.ndarray
    ratio: np.ndarray
    rms: float

    def __call__(self, n):
        """The calibrated noise ratio at bin sizes ``n``."""
        return noise_ratio(n, self.alpha)


def calibrate_noise_ratio(
    correlation: SpatialCorrelation,
    n_max: int = 100,
    n_centres: int = 40,
    variance=None,
    seed: int = 0,
) -> NoiseCalibration:
    """Fit :math:`\\alpha` of :math:`1 + \\alpha\\log_{10}N` to the exact noise ratio.

    Bins of :math:`N = 1 \\dots n_{\\max}` spaxels are the :math:`N` nearest spaxels (with a defined
    correlation) to ``n_centres`` centres drawn at random among the defined spaxels; each has the
    exact ratio :math:`\\sqrt{\\mathbf 1^{\\rm T}\\mathbf C\\mathbf 1 / \\mathrm{tr}\\,\\mathbf C}`.
    :math:`\\alpha` minimises the squared residuals of ``ratio - 1 = alpha * log10(N)``.

    Parameters
    ----------
    correlation : SpatialCorrelation
        The correlation matrix.
    n_max : int
        Largest bin size [spaxels] (Westfall et al. calibrate bins of up to about 100 spaxels).
    n_centres : int
        Number of bin centres.
    variance : array_like, shape (ny, nx), optional
        Spaxel variances (default: uniform).
    seed : int
        Seed of the random centres.
    """
    if not isinstance(correlation, SpatialCorrelation):
        raise InputError("calibrate_noise_ratio needs a bayesifu.SpatialCorrelation")
    if n_max < 2:
        raise InputError(f"n_max must be at least 2, got {n_max}")
    good = np.flatnonzero(correlation.defined.ravel())
    if good.size < 2:
        raise EmptyDataError(f"the {correlation.source} correlation defines fewer than 2 spaxels")
    n_max = min(int(n_max), good.size)
    nx = correlation.shape[1]
    xy = np.column_stack([good % nx, good // nx]).astype(float)
    sigma = np.ones(correlation.n_grid)
    if variance is not None:
        sigma = np.sqrt(np.asarray(variance, dtype=float)).ravel()
    rng = np.random.default_rng(seed)
    centres = rng.choice(good.size, size=min(n_centres, good.size), replace=False)
    _, nearest = cKDTree(xy).query(xy[centres], k=n_max)
    rho = correlation.matrix
    sizes, ratios = [], []
    for order in nearest:
        idx = good[order]
        sub = rho[idx][:, idx].toarray() * np.outer(sigma[idx], sigma[idx])
        # Cumulative sums over the leading N x N blocks give every bin size at once.
        cum = np.cumsum(np.cumsum(sub, axis=0), axis=1)
        total = np.diagonal(cum)
        indep = np.cumsum(np.diagonal(sub))
        sizes.append(np.arange(1, n_max + 1))
        ratios.append(np.sqrt(total / indep))
    n = np.concatenate(sizes).astype(float)
    ratio = np.concatenate(ratios)
    logn = np.log10(n)
    alpha = float(np.sum(logn * (ratio - 1.0)) / np.sum(logn**2))
    rms = float(np.sqrt(np.mean((ratio - noise_ratio(n, alpha)) ** 2)))
    return NoiseCalibration(alpha, n, ratio, rms)
