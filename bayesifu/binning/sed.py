"""Binning by SED-shape similarity to per-band S/N thresholds, with the spatial covariance.

Following the scheme that piXedfit describes (Abdurro'uf et al. 2021, ApJS 254, 15,
doi:10.3847/1538-4365/abebe2; seed 003), written here from that description:

1. free spaxels are taken as bin seeds in decreasing order of brightness in the reference band;
2. a bin starts with the seed and the free spaxels within half the minimum diameter ``min_diameter``
   whose SED is *similar* to the seed's: the reduced chi-square of the spaxel's SED :math:`f`
   against the scaled seed SED :math:`a g`,

   .. math::

       \\chi^2_\\nu = \\frac{1}{N_{\\rm band}-1}\\sum_k
       \\frac{(f_k - a g_k)^2}{\\sigma_{f,k}^2 + a^2\\sigma_{g,k}^2},\\qquad
       a = \\frac{\\sum_k f_k g_k/\\sigma_{f,k}^2}{\\sum_k g_k^2/\\sigma_{f,k}^2},

   must not exceed ``redchi2_limit``;
3. the bin grows ring by ring (radius + 1 spaxel), adding similar free spaxels that touch it, until
   its S/N reaches the threshold in every band; the S/N of band :math:`k` is exact with the
   covariance, :math:`\\sum_j f_{jk} / \\sqrt{\\sum_{jl}\\rho_{jl}\\sigma_{jk}\\sigma_{ll}}`;
4. a seed whose bin cannot reach the thresholds within ``max_radius`` leaves its spaxels free.

Spaxels never binned stay ``-1`` and are reported with a :class:`BinningWarning`. This works for
photometric cubes (band, y, x) and spectral cubes (channel, y, x) alike.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial import cKDTree

from ..containers import Cube
from ..errors import EmptyDataError, InputError
from .operator import Binning, BinningWarning, _check_correlation

__all__ = ["SEDBinning", "sed_bins", "reduced_chi2"]


class SEDBinning(Binning):
    """Bins of similar SED shape: a :class:`Binning` with per-band S/N.

    Attributes
    ----------
    sn_bands, sn_bands_independent : ndarray, shape (n_bins, n_band)
        S/N of each bin in each band, with and without the covariance.
    sn, sn_independent : ndarray, shape (n_bins,)
        The same in the reference band.
    ref_band : int
        The reference band.
    target_sn : float
        Largest per-band threshold.
    """

    def __init__(self, binid, sn_bands, sn_bands_independent, ref_band, thresholds):
        super().__init__(binid)
        self.sn_bands = sn_bands
        self.sn_bands_independent = sn_bands_independent
        self.ref_band = int(ref_band)
        self.thresholds = thresholds
        self.sn = sn_bands[:, ref_band]
        self.sn_independent = sn_bands_independent[:, ref_band]
        self.target_sn = float(np.max(thresholds))
        self.sn_method = "exact"
        self.alpha = 0.0

    def sn_map(self, independent=False) -> np.ndarray:
        """Reference-band S/N of each spaxel's bin (NaN outside bins)."""
        return self.reconstruct(self.sn_independent if independent else self.sn)


def reduced_chi2(f, sf2, g, sg2) -> np.ndarray:
    """Reduced chi-square of SEDs ``f`` (``(n, nband)``, variances ``sf2``) against ``g`` scaled."""
    a = np.sum(f * g / sf2, axis=-1) / np.sum(g * g / sf2, axis=-1)
    chi2 = np.sum((f - a[..., None] * g) ** 2 / (sf2 + a[..., None] ** 2 * sg2), axis=-1)
    return chi2 / max(f.shape[-1] - 1, 1)


def sed_bins(
    cube: Cube,
    sn_thresholds=None,
    *,
    target_sn: float | None = None,
    ref_band: int | None = None,
    min_diameter: float = 3.0,
    redchi2_limit: float = 4.0,
    correlation=None,
    max_radius: float | None = None,
) -> SEDBinning:
    """Bin a photometric or spectral cube by SED similarity to per-band S/N thresholds.

    Parameters
    ----------
    cube : Cube
        Flux and variance ``[n_band, ny, nx]``; a spaxel with an unusable value in any band is left
        out.
    sn_thresholds : float or array_like, shape (n_band,)
        Minimum S/N per band (0 = no requirement); a scalar applies to every band.
    target_sn : float, optional
        Alias of a scalar ``sn_thresholds`` (for the command line).
    ref_band : int, optional
        Band ordering the seeds by brightness (default the middle band).
    min_diameter : float
        Minimum bin diameter [spaxel] (e.g. the PSF FWHM).
    redchi2_limit : float
        Largest reduced chi-square between a spaxel's SED and the seed's.
    correlation : SpatialCorrelation, optional
        Spatial correlation (the same in every band) for the S/N.
    max_radius : float, optional
        Largest bin radius [spaxel] (default: the grid diagonal).
    """
    if not isinstance(cube, Cube):
        raise InputError(f"sed_bins needs a bayesifu.Cube, got {type(cube).__name__}")
    nband, ny, nx = cube.shape
    thr = _thresholds(sn_thresholds, target_sn, nband)
    ref = nband // 2 if ref_band is None else int(ref_band)
    if not 0 <= ref < nband:
        raise InputError(f"ref_band must be in [0, {nband}), got {ref_band}")
    if min_diameter < 1 or redchi2_limit <= 0:
        raise InputError("min_diameter must be >= 1 spaxel and redchi2_limit positive")
    flux = np.asarray(cube.flux, dtype=float).reshape(nband, -1)
    var = np.asarray(cube.variance, dtype=float).reshape(nband, -1)
    bad = ~np.isfinite(flux) | ~np.isfinite(var) | (var <= 0)
    if cube.mask is not None:
        bad |= np.asarray(cube.mask, dtype=bool).reshape(nband, -1)
    good = ~bad.any(axis=0)
    if not good.any():
        raise EmptyDataError(f"{cube.name}: no spaxel is valid in every band")
    if correlation is not None:
        _check_correlation(correlation, good.reshape(ny, nx), cube.name)
    state = _State(flux, var, good, (ny, nx), correlation)
    _total_check(state, thr, cube.name)
    radius_max = np.hypot(ny, nx) if max_radius is None else float(max_radius)
    order = state.idx[np.argsort(-flux[ref, state.idx], kind="stable")]
    n_bins = 0
    for seed in order.tolist():
        if state.owner[seed] != -1:
            continue
        members = _grow(state, seed, thr, min_diameter / 2.0, radius_max, redchi2_limit)
        if members is not None:
            state.owner[members] = n_bins
            n_bins += 1
    if n_bins == 0:
        raise InputError(
            f"{cube.name}: no bin of similar SEDs reaches the S/N thresholds; lower them or "
            "raise redchi2_limit"
        )
    left = good & (state.owner < 0)
    if left.any():
        warnings.warn(
            f"{cube.name}: {int(left.sum())} valid spaxel(s) could not join a bin that reaches "
            "the thresholds; they are left unbinned (-1)",
            BinningWarning,
            stacklevel=2,
        )
    binid = np.where(state.owner >= 0, state.owner, -1).reshape(ny, nx)
    sn, sn_ind = state.bin_sn(binid)
    return SEDBinning(binid, sn, sn_ind, ref, thr)


def _thresholds(sn_thresholds, target_sn, nband):
    if sn_thresholds is None:
        sn_thresholds = target_sn
    if sn_thresholds is None:
        raise InputError("give sn_thresholds (per band) or target_sn")
    thr = np.broadcast_to(np.asarray(sn_thresholds, dtype=float), (nband,)).copy()
    if not np.all(np.isfinite(thr)) or np.any(thr < 0) or not np.any(thr > 0):
        raise InputError("S/N thresholds must be finite, non-negative and not all zero")
    return thr


class _State:
    def __init__(self, flux, var, good, shape, correlation):
        self.flux, self.var, self.shape = flux, var, shape
        self.sigma = np.sqrt(np.where(var > 0, var, 0.0))
        self.idx = np.flatnonzero(good)
        self.owner = np.full(flux.shape[1], -1, dtype=np.int64)
        self.owner[~good] = -2
        nx = shape[1]
        self.xy = np.column_stack([self.idx % nx, self.idx // nx]).astype(float)
        self.tree = cKDTree(self.xy)
        self.rho = None if correlation is None else correlation.matrix.tocsr()

    def sn(self, members):
        """S/N per band of a set of spaxels, with the covariance."""
        s = self.sigma[:, members]
        signal = self.flux[:, members].sum(axis=1)
        if self.rho is None:
            var = (s**2).sum(axis=1)
        else:
            sub = self.rho[members][:, members]
            var = np.sum(s.T * (sub @ s.T), axis=0)
        return signal / np.sqrt(var)

    def bin_sn(self, binid):
        b = Binning(binid)
        t = b.operator("sum")
        signal = self.flux @ t.T
        var_ind = (self.sigma**2) @ t.T
        if self.rho is None:
            var = var_ind
        else:
            var = np.stack([((t * s) @ self.rho @ (t * s).T).diagonal() for s in self.sigma])
        return (signal / np.sqrt(var)).T, (signal / np.sqrt(var_ind)).T


def _total_check(state, thr, name):
    sn = state.sn(state.idx)
    if np.any(sn < thr):
        k = int(np.argmax(thr - sn))
        raise InputError(
            f"{name}: the S/N thresholds cannot be reached: all valid spaxels together have S/N "
            f"{sn[k]:.3g} in band {k} (threshold {thr[k]:g})"
        )


def _grow(state, seed, thr, r0, r_max, limit):
    """Members of the bin grown from ``seed``, or None if it cannot reach the thresholds."""
    nx = state.shape[1]
    centre = (seed % nx, seed // nx)
    g = state.flux[:, seed]
    sg2 = state.var[:, seed]
    members = [seed]
    inside = {seed}
    r = r0
    while True:
        ring = state.idx[state.tree.query_ball_point(centre, r)]
        cand = ring[(state.owner[ring] == -1)]
        cand = np.array([c for c in cand.tolist() if c not in inside], dtype=np.int64)
        if cand.size:
            ok = reduced_chi2(state.flux[:, cand].T, state.var[:, cand].T, g, sg2) <= limit
            _add_touching(cand[ok], members, inside, nx)
        if r >= r0 and np.all(state.sn(np.asarray(members)) >= thr):
            return np.asarray(members)
        if r >= r_max:
            return None
        r += 1.0


def _add_touching(cand, members, inside, nx):
    """Add candidates 4-connected to the current members (repeatedly, so chains join)."""
    pending = set(cand.tolist())
    changed = True
    while changed and pending:
        changed = False
        for c in list(pending):
            if c + 1 in inside and c % nx != nx - 1 or c - 1 in inside and c % nx != 0:
                touch = True
            else:
                touch = c + nx in inside or c - nx in inside
            if touch:
                members.append(c)
                inside.add(c)
                pending.discard(c)
                changed = True
