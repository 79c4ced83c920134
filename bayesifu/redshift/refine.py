"""Sub-grid refinement of a narrow redshift posterior by direct evaluation around its peak.

At high signal-to-noise the posterior can be narrower than the FFT grid step (69 km/s for
``dlog = 1e-4``), and no summary of the coarse cells gives honest intervals. Around the coarse
peak, :func:`local_loglike` evaluates the same marginal likelihood (same templates with the same
linear interpolation, same polynomials, same coefficient prior) directly, on a local grid
``sub`` times finer, with dense normal equations per redshift. The coverage test in the test
suite checks the result.

The sums over pixels are taken on the template grid, as in the coarse grid
(:mod:`bayesifu.redshift.grid`): because every coarse peak is an integer grid index, the
interpolation positions and weights of an offset from the peak are the same for every spectrum
up to that integer, so the weights scattered by the adjoint of the interpolation are computed
with sparse maps built once, and each spectrum's normal equations are small matrix products
with a window of the template products. The systems of all spectra are solved together.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .grid import Design

__all__ = ["local_offsets", "local_loglike"]


def local_offsets(half_cells: float = 1.5, sub: int = 8) -> np.ndarray:
    """Offsets of the local grid from the coarse peak, in coarse cells."""
    n = int(round(half_cells * sub))
    return np.arange(-n, n + 1) / sub


def _local_setup(design: Design, offsets):
    """Everything of the local grids that does not depend on the data (built once per design
    and offsets): sparse maps from the pixels onto a window of ``n`` template pixels, one block
    of ``n`` rows per distinct *fractional* part of the offsets (an offset ``k + r`` with integer
    ``k`` has the interpolation weights of ``r`` on a window shifted by ``k``), with linear
    weights (``1-f``, ``f``), squared weights (``(1-f)^2``, ``f^2``) and cross weights
    (``f(1-f)``); the window start ``jmin`` (for a peak at index 0) and ``n``; for each offset
    its integer shift and pattern index; and the padded templates with their pair products."""
    shift = np.floor(offsets + 1e-9).astype(int)
    rho, pattern = np.unique(np.round(offsets - shift, 12), return_inverse=True)
    pos = (design.j + design.frac)[None, :] - rho[:, None]  # [npattern, nk], all spectra
    j = np.floor(pos + 1e-9).astype(int)
    f = np.clip(pos - j, 0.0, 1.0)
    jmin = int(j.min())
    n = int(j.max()) - jmin + 2
    g = (j - jmin) + n * np.arange(rho.size)[:, None]

    def mat(*weights):  # weights at g, then (optionally) at g + 1
        val = np.concatenate([w.ravel() for w in weights])
        row = np.concatenate([(g + i).ravel() for i in range(len(weights))])
        col = np.tile(np.arange(pos.shape[1]), len(weights) * rho.size)
        return sp.csr_array((val, (row, col)), shape=(rho.size * n, pos.shape[1]))

    pad = int(np.max(np.abs(shift))) + 3  # windows stay inside the padded arrays
    t0 = np.pad(design._t0, ((0, 0), (pad, pad + 1)))
    prod, cross = design.pair_products(t0)
    maps = mat(1 - f, f), mat((1 - f) ** 2, f**2), mat(f * (1 - f))
    return maps, jmin, n, shift, pattern, pad, t0, prod, cross


def _normal_equations(design: Design, flux, ivar, m_center, prior_precision, offsets):
    """``M`` [ns, nloc, p, p] and ``b`` [ns, nloc, p] on the local grids (templates zero
    outside their range: the caller masks the redshifts outside the valid range)."""
    nt, p, npoly = design.nt, design.p, design.npoly
    key = ("local", offsets.tobytes())
    if key not in design.cache:
        design.cache[key] = _local_setup(design, offsets)
    (lin_map, sq_map, cr_map), jmin, n, shift, pattern, pad, t0, prod, cross = design.cache[key]
    ns, nloc = flux.shape[0], offsets.size
    wd = ivar * flux
    rhs = np.concatenate([wd[:, None, :], ivar[:, None, :] * design.poly[None]], axis=1)
    # Offset k + r reads the scattered arrays of pattern r on a window shifted by k: one group
    # of offsets per shift k, whose patterns are a slice (a view, no copy) when consecutive.
    groups = []
    for k in np.unique(shift):
        o = np.flatnonzero(shift == k)
        pat = pattern[o]
        if np.all(np.diff(pat) == 1):
            pat = slice(pat[0], pat[-1] + 1)
        groups.append((k, o, pat))
    tt = np.empty((ns, nloc, len(design.pairs)))
    tl = np.empty((ns, 1 + npoly, nloc, nt))
    for s in range(ns):  # one spectrum at a time, on cache-sized arrays
        sq = (sq_map @ ivar[s]).reshape(-1, n)
        cr = (cr_map @ ivar[s]).reshape(-1, n)
        lin = np.ascontiguousarray(
            (lin_map @ rhs[s].T).reshape(-1, n, 1 + npoly).transpose(2, 0, 1)
        )
        for k, o, pat in groups:
            start = pad + design.t_off + jmin - m_center[s] - k
            win = slice(start, start + n)
            tt[s, o] = sq[pat] @ prod[:, win].T + cr[pat] @ cross[:, win].T
            tl[s][:, o] = lin[:, pat] @ t0[:, win].T
    mat = np.empty((ns, nloc, p, p))
    for q, (i, k) in enumerate(design.pairs):
        mat[:, :, i, k] = mat[:, :, k, i] = tt[:, :, q]
    mat[:, :, nt:, :nt] = tl[:, 1:].transpose(0, 2, 1, 3)
    mat[:, :, :nt, nt:] = tl[:, 1:].transpose(0, 2, 3, 1)
    mat[:, :, nt:, nt:] = np.einsum("sk,ak,bk->sab", ivar, design.poly, design.poly)[:, None]
    vec = np.concatenate(
        [tl[:, 0], np.broadcast_to((wd @ design.poly.T)[:, None], (ns, nloc, npoly))], axis=2
    )
    mat[..., np.arange(p), np.arange(p)] += prior_precision[:, None, :]
    return mat, vec


def local_loglike(design: Design, flux, ivar, m_center, prior_precision, offsets, active=None):
    """log p(d | z) on local grids around the coarse peaks.

    Parameters
    ----------
    design : Design
        The coarse design (templates, polynomial terms, pixel positions).
    flux, ivar : numpy.ndarray, shape (ns, nk)
        Spectra on the used channels.
    m_center : numpy.ndarray of int, shape (ns,)
        Coarse peak index of each spectrum (of the full grid).
    prior_precision : numpy.ndarray, shape (ns, p)
        Diagonal prior precision of the coefficients (zero for flat).
    offsets : numpy.ndarray, shape (nloc,)
        Local grid offsets in coarse cells.
    active : numpy.ndarray of bool, shape (ns,), optional
        Spectra to refine (others, and any whose normal matrix is singular, stay ``-inf``).

    Returns
    -------
    numpy.ndarray, shape (ns, nloc)
        log p(d | z) up to the same per-spectrum constant as the coarse grid; ``-inf`` where the
        templates do not cover the data (outside the valid coarse range).
    """
    ns, nloc = flux.shape[0], offsets.size
    out = np.full((ns, nloc), -np.inf)
    active = np.ones(ns, bool) if active is None else np.asarray(active, bool)
    act = np.flatnonzero(active)
    if act.size == 0:
        return out
    m_center = np.asarray(m_center)[act]
    mat, vec = _normal_equations(
        design, flux[act], ivar[act], m_center, prior_precision[act], offsets
    )
    shift = m_center[:, None] + offsets[None, :]
    inside = (shift >= design.m_a) & (shift <= design.m_b)
    sign, logdet = np.linalg.slogdet(mat)
    # A degenerate design keeps the coarse summary for that spectrum.
    use = inside & np.all((sign > 0) | ~inside, axis=1)[:, None]
    mat[~use] = np.eye(design.p)  # never used; keeps the solve well-posed
    quad = np.einsum("sli,sli->sl", vec, np.linalg.solve(mat, vec[..., None])[..., 0])
    prec = prior_precision[act]
    norm = 0.5 * np.sum(np.log(np.where(prec > 0, prec, 1.0)), axis=1)[:, None]
    out[act] = np.where(use, 0.5 * (quad - logdet) + norm, -np.inf)
    return out
