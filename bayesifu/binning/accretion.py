"""Bin accretion: grow compact, connected bins of spaxels up to a target S/N.

This follows the bin-accretion stage described by Cappellari & Copin (2003, MNRAS 342, 345,
Sect. 5.1, doi:10.1046/j.1365-8711.2003.06541.x), written for a regular spaxel grid:

1. spaxels whose own S/N reaches the target are bins of one spaxel;
2. a bin starts from the free spaxel closest to the centroid of all spaxels binned so far (the
   brightest spaxel for the first bin) and grows by the free 4-neighbour closest to its centroid,
   as long as (a) the bin stays round, :math:`r_{\\max}/\\sqrt{N/\\pi} - 1 \\le` ``max_roundness``,
   and (b) the new spaxel brings the S/N closer to the target; it stops at the target;
3. a bin that ends below ``min_fraction`` of the target is unsuccessful: its spaxels are left for
   the tessellation stage to assign.

The S/N of a growing bin is updated exactly from the covariance (one sparse row per added spaxel)
or with the calibrated ratio :math:`1 + \\alpha\\log_{10}N`. The next start is found by scanning the
spaxels in order of distance from the centroid, re-sorted only when the centroid moves by more
than a spaxel, so the whole stage costs about :math:`O(N\\log N)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .noise import BinNoise

__all__ = ["AccretionResult", "accrete", "grid_neighbours"]

FREE, FAILED = -1, -2


@dataclass
class AccretionResult:
    """Labels after accretion: bin number per unmasked spaxel, ``-2`` for unsuccessful ones."""

    labels: np.ndarray
    n_bins: int


def grid_neighbours(noise: BinNoise) -> np.ndarray:
    """The 4-neighbours of every unmasked spaxel (compressed indices, ``-1`` where none)."""
    ny, nx = noise.shape
    lookup = np.full(ny * nx, -1, dtype=np.int64)
    lookup[noise.index] = np.arange(noise.n)
    y, x = noise.index // nx, noise.index % nx
    out = np.full((noise.n, 4), -1, dtype=np.int64)
    for j, (dy, dx) in enumerate(((0, 1), (0, -1), (1, 0), (-1, 0))):
        yy, xx = y + dy, x + dx
        ok = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
        out[ok, j] = lookup[yy[ok] * nx + xx[ok]]
    return out


class _StartFinder:
    """The free spaxel closest to a slowly moving point (the centroid of the binned spaxels).

    Spaxels are sorted once by distance from the point and scanned with a pointer that skips
    taken spaxels for good (a taken spaxel never becomes free again); the sort is redone only when
    the point has moved by more than ``tol`` spaxels, so the answer is the closest free spaxel to
    within ``tol`` and the total cost is :math:`O(N\\log N)` per re-sort.
    """

    def __init__(self, xy, owner, tol=1.0):
        self.xy, self.owner, self.tol = xy, owner, tol
        self.centre = None
        self.order = np.empty(0, dtype=np.int64)
        self.ptr = 0

    def _sort(self, point):
        d2 = (self.xy[:, 0] - point[0]) ** 2 + (self.xy[:, 1] - point[1]) ** 2
        self.order = np.argsort(d2, kind="stable")
        self.ptr = 0
        self.centre = point

    def nearest(self, point) -> int:
        """A free spaxel nearest to ``point`` (within ``tol``), or -1 if none is left."""
        c = self.centre
        if c is None or (point[0] - c[0]) ** 2 + (point[1] - c[1]) ** 2 > self.tol**2:
            self._sort(point)
        n = self.order.size
        while self.ptr < n:
            chunk = self.order[self.ptr : self.ptr + 256]
            free = np.flatnonzero(self.owner[chunk] == FREE)
            if free.size:
                self.ptr += int(free[0])
                return int(chunk[free[0]])
            self.ptr += chunk.size
        return -1


class _Grower:
    """State of one bin while it grows: members, centroid, signal and noise variance.

    The roundness test uses the bound :math:`r_{\\max}(\\mathbf c') \\le r_{\\max}(\\mathbf c) +
    |\\mathbf c' - \\mathbf c|` from the last exact evaluation and recomputes :math:`r_{\\max}`
    exactly only when the bound fails the test.
    """

    def __init__(self, ctx, bin_id):
        self.ctx, self.bin_id = ctx, bin_id
        self.n = 0
        self.mx = np.empty(16)
        self.my = np.empty(16)
        self.members: list[int] = []
        self.sx = self.sy = self.signal = self.var_sum = self.var = 0.0
        self.ref = (0.0, 0.0, 0.0)  # centroid and r_max of the last exact evaluation

    def sn_with(self, k) -> tuple[float, float, float]:
        """S/N, noise variance and summed variance of the bin with spaxel ``k`` added."""
        ctx = self.ctx
        signal = self.signal + ctx.signal[k]
        var_sum = self.var_sum + ctx.variance[k]
        if ctx.noise.cov is not None:
            var = self.var + ctx.noise.added_variance(k, ctx.owner, self.bin_id)
        else:
            var = var_sum * ctx.ratio2(self.n + 1)
        return (signal / var**0.5 if var > 0 else -np.inf), var, var_sum

    def add(self, k, var, var_sum):
        ctx = self.ctx
        if self.n == self.mx.size:
            self.mx = np.resize(self.mx, 2 * self.n)
            self.my = np.resize(self.my, 2 * self.n)
        x, y = ctx.xs[k], ctx.ys[k]
        self.mx[self.n], self.my[self.n] = x, y
        self.n += 1
        self.members.append(k)
        ctx.owner[k] = self.bin_id
        self.sx += x
        self.sy += y
        self.signal += ctx.signal[k]
        self.var, self.var_sum = var, var_sum

    def round_enough(self, k, max_roundness) -> bool:
        """Whether the bin with spaxel ``k`` added has :math:`r_{\\max}/r_{\\rm eff} - 1 \\le`
        ``max_roundness``."""
        n = self.n + 1
        x, y = self.ctx.xs[k], self.ctx.ys[k]
        cx, cy = (self.sx + x) / n, (self.sy + y) / n
        limit = (1.0 + max_roundness) * (n / np.pi) ** 0.5
        rk = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5
        rx, ry, rmax = self.ref
        if max(rk, rmax + ((cx - rx) ** 2 + (cy - ry) ** 2) ** 0.5) <= limit:
            return True
        m = self.n
        r2 = np.max((self.mx[:m] - cx) ** 2 + (self.my[:m] - cy) ** 2)
        rmax = max(rk, float(r2) ** 0.5)
        self.ref = (cx, cy, rmax)
        return rmax <= limit


class _Context:
    """Per-spaxel data as Python lists (fast scalar access) and the shared owner array."""

    def __init__(self, noise: BinNoise, owner):
        xy = noise.xy()
        self.noise, self.owner, self.xy = noise, owner, xy
        self.xs, self.ys = xy[:, 0].tolist(), xy[:, 1].tolist()
        self.signal = noise.signal.tolist()
        self.variance = noise.variance.tolist()
        self.nbrs = grid_neighbours(noise).tolist()
        self.alpha = noise.alpha

    def ratio2(self, n):
        """Squared calibrated noise ratio (1 for independent noise)."""
        if not self.alpha:
            return 1.0
        return (1.0 + self.alpha * np.log10(n)) ** 2


def accrete(
    noise: BinNoise,
    target_sn: float,
    min_fraction: float = 0.8,
    max_roundness: float = 0.3,
) -> AccretionResult:
    """Grow bins to ``target_sn`` by accretion (see the module docstring).

    Parameters
    ----------
    noise : BinNoise
        Signal and noise of the unmasked spaxels.
    target_sn : float
        The target S/N of a bin.
    min_fraction : float
        A bin is successful if its S/N reaches ``min_fraction * target_sn``.
    max_roundness : float
        Largest allowed :math:`r_{\\max}/r_{\\rm eff} - 1` of a growing bin.

    Returns
    -------
    AccretionResult
    """
    owner = np.full(noise.n, FREE, dtype=np.int64)
    ctx = _Context(noise, owner)
    xy = ctx.xy
    pixel_sn = noise.pixel_sn()
    bright = np.flatnonzero(pixel_sn >= target_sn)
    owner[bright] = np.arange(bright.size)
    n_bins = int(bright.size)
    bsx, bsy, bn = float(xy[bright, 0].sum()), float(xy[bright, 1].sum()), int(bright.size)
    finder = _StartFinder(xy, owner)
    free_sn = np.where(owner == FREE, pixel_sn, -np.inf)
    start = int(np.argmax(free_sn)) if bn == 0 and np.isfinite(free_sn.max()) else -1
    while True:
        if bn > 0:
            start = finder.nearest((bsx / bn, bsy / bn))
        if start < 0:
            break
        grower = _Grower(ctx, n_bins)
        sn = _grow(grower, start, target_sn, max_roundness)
        members = grower.members
        if sn >= min_fraction * target_sn:
            n_bins += 1
            bsx += grower.sx
            bsy += grower.sy
            bn += len(members)
        else:
            owner[members] = FAILED
            if bn == 0:
                free_sn[owner != FREE] = -np.inf
                start = int(np.argmax(free_sn)) if np.isfinite(free_sn.max()) else -1
    return AccretionResult(owner, n_bins)


def _grow(grower: _Grower, start, target_sn, max_roundness) -> float:
    """Grow one bin from ``start`` in place; returns its S/N."""
    sn, var, var_sum = grower.sn_with(start)
    grower.add(start, var, var_sum)
    ctx = grower.ctx
    owner, nbrs, xs, ys = ctx.owner, ctx.nbrs, ctx.xs, ctx.ys
    frontier = {j for j in nbrs[start] if j >= 0 and owner[j] == FREE}
    while sn < target_sn and frontier:
        cx, cy = grower.sx / grower.n, grower.sy / grower.n
        k = min(frontier, key=lambda j: (xs[j] - cx) ** 2 + (ys[j] - cy) ** 2)
        if not grower.round_enough(k, max_roundness):
            break
        new_sn, var, var_sum = grower.sn_with(k)
        if abs(new_sn - target_sn) > abs(sn - target_sn):
            break
        grower.add(k, var, var_sum)
        sn = new_sn
        frontier.discard(k)
        frontier.update(j for j in nbrs[k] if j >= 0 and owner[j] == FREE)
    return sn
