"""Resampling operators ``T`` from native samples to a spaxel grid, and the covariance they imply.

A cube spaxel is a linear combination of native measurements (fibre-exposure spectra for MaNGA,
detector pixels for MUSE): ``s = T f`` with ``T`` of shape ``(ny * nx, n_native)`` and spaxel
index ``y * nx + x``. If the native measurements have independent noise of variances ``N``, the
spaxel covariance is exactly

.. math::

    C = T \\, {\\rm diag}(N) \\, T^{\\mathsf T},

whose rank is at most ``n_native``: singular when there are fewer native samples than spaxels,
as in MaNGA. Rows of spaxels that no native sample reaches are empty (outside the footprint).

References
----------
Law et al. 2016, AJ 152, 83, doi:10.3847/0004-6256/152/4/83, Sect. 9 (MaNGA DRP: Shepard-like
inverse-distance resampling with Gaussian weights, sigma = 0.7 arcsec, cut at 1.6 arcsec).
Westfall et al. 2019, AJ 158, 231, doi:10.3847/1538-3881/ab44a2, Sect. 6 (the resulting spaxel
correlation is close to a Gaussian of sigma = 1.92 spaxels in distance).
Fruchter & Hook 2002, PASP 114, 144, doi:10.1086/338393 (drizzle; with pixfrac = 1 and equal
pixel sizes the overlap weights are those of bilinear interpolation).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar

from ..correlation import SpatialCorrelation
from ..errors import CovarianceError, InputError, ShapeError

__all__ = [
    "shepard_operator",
    "drizzle_operator",
    "keep_rows",
    "spaxel_covariance",
    "covariance_to_correlation",
    "gaussian_correlation_sigma",
]


def _normalised_operator(rows, cols, weights, n_grid, n_native) -> sp.csr_array:
    """Sparse ``T`` from triplets, each non-empty row normalised to unit sum."""
    keep = weights > 0
    op = sp.csr_array(
        (weights[keep], (rows[keep], cols[keep])), shape=(n_grid, n_native), dtype=float
    )
    op.sum_duplicates()
    total = np.asarray(op.sum(axis=1)).ravel()
    scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
    return sp.csr_array(sp.diags_array(scale) @ op)


def _check_positions(positions, shape):
    positions = np.asarray(positions, dtype=float)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise ShapeError(f"native positions must be (n, 2) as (x, y), not {positions.shape}")
    if not np.all(np.isfinite(positions)):
        raise InputError("native positions contain NaN or infinite values")
    ny, nx = shape
    return positions, ny, nx


def shepard_operator(positions, shape, sigma: float, rlim: float) -> sp.csr_array:
    """The MaNGA DRP resampling: normalised Gaussian weights of the samples within ``rlim``.

    .. math::

        T_{jn} = \\frac{w_{jn}}{\\sum_m w_{jm}}, \\qquad
        w_{jn} = \\exp\\left(-\\frac{r_{jn}^2}{2 \\sigma^2}\\right) [r_{jn} < r_{\\rm lim}],

    with :math:`r_{jn}` the distance from spaxel ``j`` to native sample ``n``.

    Parameters
    ----------
    positions : array_like, shape (n_native, 2)
        ``(x, y)`` of the native samples [spaxel].
    shape : tuple of int
        The grid ``(ny, nx)``.
    sigma, rlim : float
        Kernel width and cut-off radius [spaxel], both > 0.
    """
    positions, ny, nx = _check_positions(positions, shape)
    if not (sigma > 0 and rlim > 0 and math.isfinite(sigma) and math.isfinite(rlim)):
        raise InputError(f"kernel sigma = {sigma} and rlim = {rlim} spaxel must be positive")
    half = int(math.ceil(rlim)) + 1
    offsets = np.arange(-half, half + 1)
    base = np.round(positions).astype(int)
    gx = base[:, 0, None, None] + offsets[None, None, :]
    gy = base[:, 1, None, None] + offsets[None, :, None]
    gx, gy = np.broadcast_arrays(gx, gy)
    r2 = (gx - positions[:, 0, None, None]) ** 2 + (gy - positions[:, 1, None, None]) ** 2
    inside = (r2 < rlim**2) & (gx >= 0) & (gx < nx) & (gy >= 0) & (gy < ny)
    native = np.broadcast_to(np.arange(len(positions))[:, None, None], gx.shape)
    weights = np.exp(-0.5 * r2 / sigma**2)
    return _normalised_operator(
        (gy * nx + gx)[inside], native[inside], weights[inside], ny * nx, len(positions)
    )


def drizzle_operator(positions, shape) -> sp.csr_array:
    """Drizzle (pixfrac = 1) of unit-square native pixels onto unit-square spaxels, normalised.

    The weight of a native pixel centred at :math:`(p_x, p_y)` in spaxel :math:`(x, y)` is their
    overlap area :math:`\\max(0, 1 - |x - p_x|) \\max(0, 1 - |y - p_y|)`, i.e. bilinear
    interpolation; each spaxel is the weighted mean of the pixels that overlap it.

    Parameters
    ----------
    positions : array_like, shape (n_native, 2)
        ``(x, y)`` centres of the native pixels [spaxel].
    shape : tuple of int
        The grid ``(ny, nx)``.
    """
    positions, ny, nx = _check_positions(positions, shape)
    fx = np.floor(positions[:, 0]).astype(int)
    fy = np.floor(positions[:, 1]).astype(int)
    rows, cols, weights = [], [], []
    for ox in (0, 1):
        for oy in (0, 1):
            gx, gy = fx + ox, fy + oy
            w = np.clip(1 - np.abs(gx - positions[:, 0]), 0, None) * np.clip(
                1 - np.abs(gy - positions[:, 1]), 0, None
            )
            ok = (gx >= 0) & (gx < nx) & (gy >= 0) & (gy < ny)
            rows.append((gy * nx + gx)[ok])
            cols.append(np.flatnonzero(ok))
            weights.append(w[ok])
    return _normalised_operator(
        np.concatenate(rows),
        np.concatenate(cols),
        np.concatenate(weights),
        ny * nx,
        len(positions),
    )


def keep_rows(operator, keep) -> sp.csr_array:
    """``T`` with the rows (spaxels) where ``keep`` is false emptied (out of the footprint)."""
    keep = np.asarray(keep, dtype=bool).ravel()
    if keep.shape != (operator.shape[0],):
        raise ShapeError(f"keep has {keep.size} entries, expected {operator.shape[0]} spaxels")
    out = sp.csr_array(sp.diags_array(keep.astype(float)) @ operator)
    out.eliminate_zeros()
    return out


def spaxel_covariance(operator, native_variance) -> sp.csr_array:
    """The exact spaxel covariance :math:`T \\, {\\rm diag}(N) \\, T^{\\mathsf T}` (sparse).

    Raises :class:`~bayesifu.errors.CovarianceError` if a native variance is negative or not
    finite, :class:`~bayesifu.errors.ShapeError` if its length is not ``n_native``.
    """
    operator = sp.csr_array(operator)
    native_variance = np.asarray(native_variance, dtype=float)
    if native_variance.shape != (operator.shape[1],):
        raise ShapeError(
            f"native variance has shape {native_variance.shape}, expected ({operator.shape[1]},) "
            "(one per native sample)"
        )
    if not np.all(np.isfinite(native_variance)) or np.any(native_variance < 0):
        raise CovarianceError("native variances must be finite and non-negative")
    cov = operator @ sp.diags_array(native_variance) @ operator.T
    cov = sp.csr_array(cov)
    cov.sum_duplicates()
    cov.sort_indices()
    return cov


def covariance_to_correlation(covariance, shape, source="simulator", params=None):
    """Normalise a covariance over the full grid to a :class:`~bayesifu.SpatialCorrelation`.

    Spaxels with zero variance are undefined (empty rows).
    """
    cov = sp.csr_array(covariance)
    sd = np.sqrt(np.clip(cov.diagonal(), 0, None))
    inv = np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)
    rho = sp.csr_array(sp.diags_array(inv) @ cov @ sp.diags_array(inv))
    rho.setdiag(np.where(sd > 0, 1.0, 0.0))
    rho.eliminate_zeros()
    defined = (sd > 0).reshape(shape)
    return SpatialCorrelation(shape, rho, defined=defined, source=source, params=params)


def gaussian_correlation_sigma(correlation: SpatialCorrelation, max_distance=None) -> float:
    """Least-squares width [spaxel] of :math:`\\rho(D) = \\exp(-D^2 / 2\\sigma^2)` fitted to a
    correlation matrix.

    The fit uses every stored (non-zero) off-diagonal pair of defined spaxels, optionally only
    those closer than ``max_distance`` [spaxel]; ``D`` is their distance on the grid. This is how
    Westfall et al. (2019) summarise the MaNGA correlation (sigma = 1.92 spaxels).
    """
    coo = sp.triu(correlation.matrix, k=1).tocoo()
    nx = correlation.shape[1]
    defined = correlation.defined.ravel()
    keep = defined[coo.row] & defined[coo.col]
    i, j, rho = coo.row[keep], coo.col[keep], coo.data[keep]
    dist = np.hypot(i % nx - j % nx, i // nx - j // nx)
    if max_distance is not None:
        close = dist <= max_distance
        dist, rho = dist[close], rho[close]
    if rho.size == 0:
        raise CovarianceError(f"{correlation.source} correlation has no off-diagonal pairs to fit")

    def loss(sigma):
        return np.sum((np.exp(-0.5 * dist**2 / sigma**2) - rho) ** 2)

    return float(minimize_scalar(loss, bounds=(0.05, 50.0), method="bounded").x)
