"""Binned spectra and SEDs from a cube, with the covariance between bins in every channel.

For channel :math:`k` with spaxel errors :math:`\\mathbf S_k` and the spatial correlation
:math:`\\boldsymbol\\rho` (the same in every channel), the binned flux is :math:`\\mathbf T_k
\\mathbf f_k` and its covariance :math:`\\mathbf T_k\\mathbf S_k\\boldsymbol\\rho\\mathbf S_k
\\mathbf T_k^{\\rm T}`, where :math:`\\mathbf T_k` leaves out the spaxels masked in that channel.

This corrects the recipe of seed 001 (summed MUSE spectra of Voronoi bins): it added variances as if
spaxels were independent (here the covariance is included, and the independent value is kept for
comparison), it indexed the cube as ``[:, x, y]`` instead of ``[:, y, x]`` (here the row-major
operator makes that impossible), and its NaN checks ``spectra != np.nan`` could never fire (here
non-finite flux or variance is masked per channel, and a bin with no valid spaxel in a channel is
flagged in :attr:`BinnedSpectra.mask` rather than replaced by a fake value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..containers import Cube, usable_channels
from ..correlation import SpatialCorrelation
from ..errors import EmptyDataError, InputError, ShapeError
from .operator import Binning, _check_correlation

__all__ = ["BinnedSpectra", "bin_spectra", "summed_spectra"]


@dataclass
class BinnedSpectra:
    """Per-bin spectra (or SEDs) with their variance, exact with the spatial covariance.

    Attributes
    ----------
    flux : ndarray, shape (n_bins, nwave)
        Summed or mean flux of each bin [cube unit].
    variance : ndarray, shape (n_bins, nwave)
        Variance with the covariance between spaxels [cube unit**2]; ``inf`` where masked.
    variance_independent : ndarray, shape (n_bins, nwave)
        Variance if spaxels were independent (seed 001's value) [cube unit**2].
    mask : ndarray of bool, shape (n_bins, nwave)
        True where a bin has no valid spaxel in a channel.
    wave : ndarray, shape (nwave,)
        Wavelength [Angstrom].
    binning : Binning
        The bins (rows follow ``binning.bin_ids``).
    weights : str
        ``"sum"`` or ``"mean"``.
    correlation : SpatialCorrelation or None
        The spatial correlation used.
    sigma : ndarray, shape (nwave, n_grid)
        Spaxel errors, zero where masked (kept for :meth:`covariance`).
    operator : scipy.sparse.csr_array
        The unmasked aggregation operator (unit weights).
    n_used : ndarray, shape (n_bins, nwave)
        Valid spaxels per bin and channel.
    wcs, unit, name
        Carried from the cube.
    """

    flux: np.ndarray
    variance: np.ndarray
    variance_independent: np.ndarray
    mask: np.ndarray
    wave: np.ndarray
    binning: Binning
    weights: str
    correlation: SpatialCorrelation | None
    sigma: np.ndarray
    operator: sp.csr_array
    n_used: np.ndarray
    wcs: object = None
    unit: str = ""
    name: str = "cube"

    @property
    def n_bins(self) -> int:
        """The number of bins."""
        return self.flux.shape[0]

    def covariance(self, k: int) -> sp.csr_array:
        """The exact ``(n_bins, n_bins)`` covariance between bins in channel ``k`` [unit**2]."""
        t = self.channel_operator(k)
        ts = t @ sp.diags_array(self.sigma[k])
        if self.correlation is None:
            return sp.csr_array(ts @ ts.T)
        return sp.csr_array(ts @ self.correlation.matrix @ ts.T)

    def correlation_between_bins(self, k: int) -> sp.csr_array:
        """The correlation between bins in channel ``k`` (unit diagonal where defined)."""
        cov = self.covariance(k)
        d = np.sqrt(cov.diagonal())
        inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)
        return sp.csr_array(sp.diags_array(inv) @ cov @ sp.diags_array(inv))

    def channel_operator(self, k: int) -> sp.csr_array:
        """The aggregation operator :math:`\\mathbf T_k` of channel ``k``, shape ``(n_bins,
        n_grid)``: the spaxels masked in that channel left out, ``"mean"`` weights applied."""
        good = self.sigma[k] > 0
        t = self.operator @ sp.diags_array(good.astype(float))
        if self.weights == "mean":
            n = np.maximum(self.n_used[:, k], 1)
            t = sp.diags_array(1.0 / n) @ t
        return sp.csr_array(t)

    def sn(self) -> np.ndarray:
        """S/N per bin and channel, with the covariance (0 where masked)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.mask, 0.0, self.flux / np.sqrt(self.variance))

    def write(self, path, overwrite=False, reference_channel=None):
        """Write to FITS, whole or not at all (see :func:`bayesifu.binning.fitsio.write_binned`)."""
        from .fitsio import write_binned

        return write_binned(self, path, overwrite=overwrite, reference_channel=reference_channel)


def bin_spectra(
    cube: Cube, binning, correlation=None, weights="sum", chunk: int = 64
) -> BinnedSpectra:
    """Bin the spectra of a cube, with the exact variance including the spatial covariance.

    Parameters
    ----------
    cube : Cube
        The cube ``[nwave, ny, nx]``; non-finite flux or variance, non-positive variance and the
        cube mask leave a spaxel out of a channel.
    binning : Binning or array_like of int, shape (ny, nx)
        The bins (``-1`` = unused).
    correlation : SpatialCorrelation, optional
        The spatial correlation (the same in every channel); ``None``: independent spaxels.
    weights : {"sum", "mean"}
        Sum of the valid spaxels, or their mean (per channel, over the valid ones).
    chunk : int
        Channels processed at once (bounds the memory).

    Returns
    -------
    BinnedSpectra
    """
    if weights not in ("sum", "mean"):
        raise InputError(f"weights must be 'sum' or 'mean' for spectra, got {weights!r}")
    binning = _checked_binning(cube, binning, correlation)
    op = binning.operator("sum")
    nwave = cube.shape[0]
    flux = np.empty((binning.n_bins, nwave))
    var = np.empty_like(flux)
    var_ind = np.empty_like(flux)
    n_used = np.empty_like(flux)
    sigma = np.empty((nwave, binning.n_grid))
    for sl, f, s, pairs in _channel_blocks(cube, op, correlation, chunk):
        sigma[sl] = s
        flux[:, sl] = op @ f.T
        n_used[:, sl] = op @ (s > 0).astype(float).T
        var_ind[:, sl] = op @ (s**2).T
        var[:, sl] = pairs.matrix @ (s[:, pairs.rows] * s[:, pairs.cols]).T
    mask = n_used == 0
    if mask.all():
        raise EmptyDataError(f"{cube.name}: no bin has a valid spaxel in any channel")
    if weights == "mean":
        n = np.maximum(n_used, 1)
        flux, var, var_ind = flux / n, var / n**2, var_ind / n**2
    flux[mask] = np.nan
    var[mask] = np.inf
    var_ind[mask] = np.inf
    return BinnedSpectra(
        flux, var, var_ind, mask, cube.wave.copy(), binning, weights, correlation, sigma, op,
        n_used, cube.wcs, cube.unit, cube.name,
    )  # fmt: skip


def summed_spectra(cube: Cube, binning, correlation=None, chunk: int = 64):
    """The summed flux and its variance per bin, nothing else: ``(flux, variance)``, each
    ``(n_bins, nwave)``, ``variance`` ``inf`` where a bin has no valid spaxel in a channel.

    The same values as :func:`bin_spectra` with ``weights="sum"`` in a third of its memory (no
    independent variance, spaxel errors or counts are kept): what a redshift fit of the bins of a
    whole field needs. The cube is read ``chunk`` channels at a time.
    """
    binning = _checked_binning(cube, binning, correlation)
    op = binning.operator("sum")
    flux = np.empty((binning.n_bins, cube.shape[0]))
    var = np.empty_like(flux)
    for sl, f, s, pairs in _channel_blocks(cube, op, correlation, chunk):
        flux[:, sl] = op @ f.T
        var[:, sl] = pairs.matrix @ (s[:, pairs.rows] * s[:, pairs.cols]).T
        empty = (op @ (s > 0).astype(float).T) == 0
        flux[:, sl][empty] = np.nan
        var[:, sl][empty] = np.inf
    if np.isinf(var).all():
        raise EmptyDataError(f"{cube.name}: no bin has a valid spaxel in any channel")
    return flux, var


def _checked_binning(cube, binning, correlation) -> Binning:
    """``binning`` as a :class:`Binning`, checked against the cube and the correlation."""
    if not isinstance(cube, Cube):
        raise InputError(f"bin_spectra needs a bayesifu.Cube, got {type(cube).__name__}")
    binning = binning if isinstance(binning, Binning) else Binning(binning)
    if binning.shape != cube.spatial_shape:
        raise ShapeError(
            f"{cube.name}: bins of shape {binning.shape} do not match the cube {cube.spatial_shape}"
        )
    if correlation is not None:
        _check_correlation(correlation, binning.binid >= 0, cube.name)
    return binning


def _channel_blocks(cube, op, correlation, chunk):
    """``(channels, flux, errors, pairs)`` for blocks of ``chunk`` channels (see :func:`_chunk`)."""
    pairs = _pair_operator(op, correlation)
    nwave = cube.shape[0]
    for k0 in range(0, nwave, chunk):
        sl = slice(k0, min(k0 + chunk, nwave))
        yield (sl, *_chunk(cube, sl), pairs)


def _chunk(cube: Cube, sl):
    """Flux (zero where masked) and error (zero where masked) of channels ``sl``, ``(nk, n)``."""
    f, v, bad = usable_channels(cube.flux, cube.variance, cube.mask, np.arange(sl.start, sl.stop))
    nk = f.shape[0]
    f = np.where(bad, 0.0, f).reshape(nk, -1)
    s = np.sqrt(np.where(bad, 0.0, v)).reshape(nk, -1)
    return f, s


@dataclass
class _Pairs:
    """Pairs (j, l) of spaxels in the same bin with their correlation, summed per bin."""

    rows: np.ndarray
    cols: np.ndarray
    matrix: sp.csr_array


def _pair_operator(op: sp.csr_array, correlation) -> _Pairs:
    """Sparse ``(n_bins, n_pairs)`` matrix so that bin variances are ``M @ (s_j s_l)``."""
    row_of = np.full(op.shape[1], -1, dtype=np.int64)
    coo = op.tocoo()
    row_of[coo.col] = coo.row
    if correlation is None:
        used = np.flatnonzero(row_of >= 0)
        r, c, rho = used, used, np.ones(used.size)
    else:
        m = correlation.matrix.tocoo()
        r, c, rho = m.row, m.col, m.data
        same = (row_of[r] >= 0) & (row_of[r] == row_of[c])
        r, c, rho = r[same], c[same], rho[same]
    mat = sp.csr_array((rho, (row_of[r], np.arange(r.size))), shape=(op.shape[0], r.size))
    return _Pairs(r, c, mat)
