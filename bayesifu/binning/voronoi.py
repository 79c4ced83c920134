"""Voronoi binning of a map to a target S/N, with the spatial covariance in the S/N.

Two stages, after Cappellari & Copin (2003, MNRAS 342, 345, doi:10.1046/j.1365-8711.2003.06541.x)
and Diehl & Statler (2006, MNRAS 368, 497, doi:10.1111/j.1365-2966.2006.10125.x):

1. bin accretion (:mod:`bayesifu.binning.accretion`) gives compact bins near the target S/N;
2. a tessellation refines them: every spaxel goes to the generator :math:`\\mathbf z_i` that
   minimises :math:`\\lVert\\mathbf x - \\mathbf z_i\\rVert / w_i`, the generators move to the
   centroids of their bins, and this repeats until the bins stop changing. ``"wvt"`` (weighted
   Voronoi tessellation) uses the scale :math:`w_i = \\sqrt{N_i}\\,{\\rm S/N_{target}}/{\\rm S/N}_i`
   (the radius a bin would need to reach the target if S/N grew as :math:`\\sqrt N`), so that bins
   below the target grow and bins above it shrink; ``"cvt"`` uses :math:`w_i = 1` and generators at
   the :math:`({\\rm S/N})^2`-weighted centroids.

Nearest generators come from a k-d tree (the ``k_nearest`` closest in plain distance are compared in
weighted distance), so an iteration costs :math:`O(N \\log N)`. Bins are finally made 4-connected:
a detached fragment of a bin joins the neighbouring bin it shares most edges with. The result is
deterministic (no random choices; ``seed`` only seeds the fit of the calibrated noise ratio).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..containers import Map
from ..errors import EmptyDataError, InputError
from .accretion import FAILED, accrete, grid_neighbours
from .noise import BinNoise
from .operator import Binning, BinningWarning

__all__ = ["VoronoiBinning", "voronoi_bins", "TESSELLATIONS"]

TESSELLATIONS = ("wvt", "cvt", "none")


class VoronoiBinning(Binning):
    """A Voronoi binning: a :class:`~bayesifu.binning.Binning` with the S/N of its bins.

    Attributes
    ----------
    sn : ndarray, shape (n_bins,)
        S/N of each bin with the covariance (exact from the correlation when one was given).
    sn_independent : ndarray, shape (n_bins,)
        S/N of each bin if spaxels were independent.
    target_sn : float
        The target S/N.
    n_iter : int
        Tessellation iterations done.
    converged : bool
        Whether the tessellation stopped changing before ``max_iter``.
    sn_method : str
        ``"exact"``, ``"calibrated"`` or ``"independent"``: the S/N that drove the binning.
    alpha : float
        The calibration coefficient used (0 unless ``sn_method="calibrated"``).
    """

    def __init__(self, binid, sn, sn_independent, target_sn, n_iter, converged, sn_method, alpha):
        super().__init__(binid)
        self.sn = sn
        self.sn_independent = sn_independent
        self.target_sn = float(target_sn)
        self.n_iter = n_iter
        self.converged = converged
        self.sn_method = sn_method
        self.alpha = alpha

    def sn_map(self, independent=False) -> np.ndarray:
        """The S/N of each spaxel's bin as a ``(ny, nx)`` map (NaN outside bins)."""
        return self.reconstruct(self.sn_independent if independent else self.sn)

    def __repr__(self):
        return (
            f"VoronoiBinning(shape={self.shape}, n_bins={self.n_bins}, target_sn={self.target_sn}, "
            f"sn_method={self.sn_method!r})"
        )


def voronoi_bins(  # noqa: PLR0913 -- public API: documented keyword options
    data: Map,
    target_sn: float,
    correlation=None,
    *,
    sn_method: str = "exact",
    alpha: float | None = None,
    tessellation: str = "wvt",
    max_iter: int = 10,
    tol: float = 1e-3,
    k_nearest: int = 8,
    min_fraction: float = 0.8,
    max_roundness: float = 0.3,
    seed: int = 0,
) -> VoronoiBinning:
    """Bin a map to a target S/N with accretion and a (weighted) Voronoi tessellation.

    Parameters
    ----------
    data : Map
        The signal map (``data``) and its ``variance``; masked spaxels stay unbinned (``-1``).
    target_sn : float
        The target S/N of every bin.
    correlation : SpatialCorrelation, optional
        The spatial correlation; the S/N then includes the covariance between spaxels.
    sn_method : {"exact", "calibrated"}
        With a correlation: exact noise from the matrix, or :math:`1 + \\alpha\\log_{10}N`.
    alpha : float, optional
        Calibration coefficient for ``sn_method="calibrated"`` (fitted from the matrix if None).
    tessellation : {"wvt", "cvt", "none"}
        The refinement after accretion (see the module docstring).
    max_iter : int
        Most tessellation iterations.
    tol : float
        The tessellation has converged when fewer than this fraction of spaxels change bin.
    k_nearest : int
        Generators compared per spaxel in the weighted assignment.
    min_fraction, max_roundness : float
        Accretion settings (see :func:`bayesifu.binning.accretion.accrete`).
    seed : int
        Seed of the calibration fit (the binning itself has no random step).

    Returns
    -------
    VoronoiBinning

    Raises
    ------
    InputError
        If ``target_sn`` is not positive and finite, or no bin can reach the target: even all
        unmasked spaxels together, or every compact bin grown, stay below it.
    EmptyDataError
        If every spaxel is masked.

    Warns
    -----
    BinningWarning
        If unmasked spaxels have negative signal (they are binned and lower their bins' S/N), if
        the result has a single bin, or if bins of several spaxels stay below half the target
        (regions with too little signal to reach it).
    """
    target_sn = float(target_sn)
    if not np.isfinite(target_sn) or target_sn <= 0:
        raise InputError(f"target_sn must be a positive finite number, got {target_sn}")
    if tessellation not in TESSELLATIONS:
        raise InputError(f"tessellation must be one of {TESSELLATIONS}, got {tessellation!r}")
    noise = BinNoise(data, correlation, sn_method=sn_method, alpha=alpha, seed=seed)
    if noise.n == 0:
        raise EmptyDataError(f"{data.name}: every spaxel is masked; nothing to bin")
    _check_reachable(noise, target_sn, data.name)
    acc = accrete(noise, target_sn, min_fraction, max_roundness)
    if acc.n_bins == 0:
        raise InputError(
            f"{data.name}: no compact bin reaches {min_fraction:g} x target S/N {target_sn:g}; "
            "lower target_sn"
        )
    labels = _assign_failed(noise, acc.labels, acc.n_bins)
    n_iter, converged = 0, True
    if tessellation != "none":
        labels, n_iter, converged = _tessellate(
            noise, labels, target_sn, tessellation, max_iter, k_nearest, tol
        )
    labels = make_connected(labels, grid_neighbours(noise))
    return _result(data, noise, labels, correlation, target_sn, n_iter, converged)


def _check_reachable(noise: BinNoise, target_sn, name):
    negative = noise.signal < 0
    if negative.any():
        warnings.warn(
            f"{name}: {int(negative.sum())} unmasked spaxel(s) have negative signal; they are "
            "binned and lower the S/N of their bins",
            BinningWarning,
            stacklevel=3,
        )
    total = noise.sn(np.zeros(noise.n, dtype=np.int64), 1)[0]
    if not total >= target_sn:
        raise InputError(
            f"{name}: target S/N {target_sn:g} cannot be reached: all {noise.n} unmasked spaxels "
            f"together have S/N {total:.3g}"
        )


def _assign_failed(noise: BinNoise, labels, n_bins):
    """Give spaxels of unsuccessful bins to the bin with the nearest centroid."""
    labels = labels.copy()
    failed = labels == FAILED
    if failed.any():
        xy = noise.xy()
        cen = _centroids(xy, labels[~failed], n_bins, xy_mask=~failed)
        _, nearest = cKDTree(cen).query(xy[failed])
        labels[failed] = nearest
    return labels


def _centroids(xy, labels, n_bins, weights=None, xy_mask=None):
    pts = xy if xy_mask is None else xy[xy_mask]
    w = np.ones(len(labels)) if weights is None else weights
    norm = np.bincount(labels, w, minlength=n_bins)
    cx = np.bincount(labels, w * pts[:, 0], minlength=n_bins) / norm
    cy = np.bincount(labels, w * pts[:, 1], minlength=n_bins) / norm
    return np.column_stack([cx, cy])


def _tessellate(noise: BinNoise, labels, target_sn, kind, max_iter, k_nearest, tol):
    """Iterate the (weighted) Voronoi tessellation from an initial labelling.

    Spaxels whose own S/N reaches the target keep their one-spaxel bins; the others are
    re-assigned among the remaining generators.
    """
    fixed = noise.pixel_sn() >= target_sn
    free = ~fixed
    out = labels.copy()
    if not free.any():
        return _compact(out)[0], 0, True
    sub = _SubNoise(noise, free)
    xy = noise.xy()[free]
    density = np.clip(noise.pixel_sn()[free], 0.0, None) ** 2 + 1e-12
    lab, _ = _compact(labels[free])
    converged, n_iter = False, 0
    for it in range(1, max_iter + 1):
        n_iter = it
        lab, n_bins = _compact(lab)
        if kind == "cvt":
            gen = _centroids(xy, lab, n_bins, weights=density)
            scale = np.ones(n_bins)
        else:
            gen = _centroids(xy, lab, n_bins)
            signal, var, size = sub.sums(lab, n_bins)
            with np.errstate(divide="ignore", invalid="ignore"):
                sn = signal / np.sqrt(var)
            sn = np.clip(np.nan_to_num(sn, nan=0.0), 1e-3 * target_sn, None)
            scale = np.sqrt(size) * target_sn / sn
        k = min(k_nearest, n_bins)
        dist, idx = cKDTree(gen).query(xy, k=k)
        new = idx if k == 1 else idx[np.arange(len(idx)), np.argmin(dist / scale[idx], axis=1)]
        changed = int(np.count_nonzero(new != lab))
        lab = new
        if changed <= tol * lab.size:
            converged = True
            break
    lab, _ = _compact(lab)
    fixed_lab, n_fixed = _compact(labels[fixed]) if fixed.any() else (labels[fixed], 0)
    out[fixed] = fixed_lab
    out[free] = lab + n_fixed
    return out, n_iter, converged


class _SubNoise:
    """The noise of bins drawn from a subset of the spaxels of a :class:`BinNoise`."""

    def __init__(self, noise: BinNoise, keep):
        self.noise = noise
        self.keep = keep

    def sums(self, lab, n_bins):
        full = np.full(self.noise.n, n_bins, dtype=np.int64)
        full[self.keep] = lab
        signal, var, size = self.noise.sums(full, n_bins + 1)
        return signal[:n_bins], var[:n_bins], size[:n_bins]


def _compact(labels):
    """Renumber labels to 0 ... n-1 (dropping empty bins)."""
    uniq, inv = np.unique(labels, return_inverse=True)
    return inv.astype(np.int64), int(uniq.size)


def make_connected(labels, nbrs, max_rounds=20):
    """Make every bin 4-connected: detached fragments join the neighbour bin sharing most edges.

    Parameters
    ----------
    labels : ndarray of int, shape (n,)
        Bin of each unmasked spaxel.
    nbrs : ndarray of int, shape (n, 4)
        4-neighbours of each spaxel (``-1`` where none), from
        :func:`~bayesifu.binning.accretion.grid_neighbours`.

    Returns
    -------
    ndarray of int
        The relabelled bins (0 ... n_bins-1); a fragment with no neighbour in another bin (an
        island of unmasked spaxels) becomes a bin of its own.
    """
    n = labels.size
    src = np.repeat(np.arange(n), 4)
    dst = nbrs.ravel()
    ok = dst >= 0
    src, dst = src[ok], dst[ok]
    labels = labels.copy()
    for _ in range(max_rounds):
        same = labels[src] == labels[dst]
        graph = sp.coo_array((np.ones(same.sum()), (src[same], dst[same])), shape=(n, n))
        n_comp, comp = connected_components(graph, directed=False)
        comp_size = np.bincount(comp, minlength=n_comp)
        comp_label = np.empty(n_comp, dtype=np.int64)
        comp_label[comp] = labels
        order = np.lexsort((-comp_size, comp_label))
        is_main = np.zeros(n_comp, bool)
        first = np.ones(order.size, bool)
        first[1:] = comp_label[order[1:]] != comp_label[order[:-1]]
        is_main[order[first]] = True
        if is_main.all():
            break
        labels = _merge_fragments(labels, comp, is_main, src, dst)
    labels, _ = _compact(labels)
    return labels


def _merge_fragments(labels, comp, is_main, src, dst):
    frag_edge = ~is_main[comp[src]] & (labels[src] != labels[dst])
    frag_label = np.full(is_main.size, -1, dtype=np.int64)
    if frag_edge.any():
        fc, tl = comp[src[frag_edge]], labels[dst[frag_edge]]
        pairs, counts = np.unique(np.column_stack([fc, tl]), axis=0, return_counts=True)
        pairs = pairs[np.lexsort((-counts, pairs[:, 0]))]
        first = np.ones(len(pairs), bool)
        first[1:] = pairs[1:, 0] != pairs[:-1, 0]
        frag_label[pairs[first, 0]] = pairs[first, 1]
    islands = np.flatnonzero(~is_main & (frag_label < 0))
    frag_label[islands] = labels.max() + 1 + np.arange(islands.size)
    return np.where(is_main[comp], labels, frag_label[comp])


def _result(data, noise, labels, correlation, target_sn, n_iter, converged):
    binid = np.full(data.shape[0] * data.shape[1], -1, dtype=np.int64)
    binid[noise.index] = labels
    binid = binid.reshape(data.shape)
    n_bins = int(labels.max()) + 1
    if n_bins == 1:
        warnings.warn(
            f"{data.name}: the binning has a single bin (target S/N {target_sn:g} is reached only "
            "by binning everything together)",
            BinningWarning,
            stacklevel=3,
        )
    if correlation is not None and noise.cov is None:
        exact = BinNoise(data, correlation, sn_method="exact")
        sn = exact.sn(labels, n_bins)
    else:
        sn = noise.sn(labels, n_bins)
    sig, var, size = BinNoise(data).sums(labels, n_bins)
    sn_ind = sig / np.sqrt(var)
    poor = (size > 1) & (sn < 0.5 * target_sn)
    if poor.any():
        warnings.warn(
            f"{data.name}: {int(poor.sum())} bin(s) holding {int(size[poor].sum())} spaxels stay "
            f"below half the target S/N {target_sn:g} (too little signal where they lie); see "
            "the bins' .sn",
            BinningWarning,
            stacklevel=3,
        )
    return VoronoiBinning(
        binid, sn, sn_ind, target_sn, n_iter, converged, noise.sn_method, noise.alpha
    )
