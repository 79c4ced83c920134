"""Flux-conserving reprojection as an exact sparse overlap operator.

The operator :math:`\\mathbf R` (``n_target x n_source``) holds in entry :math:`(t, s)` the fraction
of the area of source pixel :math:`s` that falls in target pixel :math:`t`,

.. math::

    R_{ts} = \\frac{|P_s \\cap Q_t|}{|P_s|},

so a flux per pixel :math:`f` reprojects to :math:`\\mathbf R f`, each source pixel's weights sum
to 1 where it falls wholly in the target grid (flux is conserved), and the covariance of the result
is :math:`\\mathbf R\\mathbf C\\mathbf R^{\\rm T}` exactly, with the correlation that resampling
creates between target pixels that share a source pixel.

:math:`Q_t` is the unit square of target pixel :math:`t` and :math:`P_s` the source pixel's four
corners mapped exactly through both WCSs (source pixel -> sky -> target pixel) and joined by
straight lines in the target pixel frame. That is the one approximation: across one pixel of an IFU
field (well under a degree from the tangent point) the mapping is affine to about
:math:`10^{-9}` of a pixel, and for an affine map the image of a square *is* that parallelogram.
The intersection of each convex :math:`P_s` with each :math:`Q_t` it touches is found by
Sutherland-Hodgman clipping against the four sides of :math:`Q_t`, vectorised over all pairs, and
its area by the shoelace formula.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import EmptyDataError, InputError, ShapeError

__all__ = ["overlap_operator", "pixel_corners"]

_MAX_VERTICES = 8  # a quadrilateral clipped by four half-planes has at most 8 vertices


def pixel_corners(source_wcs, source_shape, target_wcs) -> tuple[np.ndarray, np.ndarray]:
    """Corners of every source pixel in target pixel coordinates (0-based, pixel centres integer).

    Returns
    -------
    x, y : numpy.ndarray, shape (ny*nx, 4)
        The four corners of each source pixel (row-major), counter-clockwise in the source frame.
    """
    ny, nx = (int(s) for s in source_shape)
    gy, gx = np.mgrid[0 : ny + 1, 0 : nx + 1].astype(float) - 0.5
    sky = source_wcs.pixel_to_world(gx.ravel(), gy.ravel())
    tx, ty = target_wcs.world_to_pixel(sky)
    tx, ty = np.asarray(tx).reshape(ny + 1, nx + 1), np.asarray(ty).reshape(ny + 1, nx + 1)

    def corners(a):
        return np.stack([a[:-1, :-1], a[:-1, 1:], a[1:, 1:], a[1:, :-1]], axis=-1).reshape(-1, 4)

    return corners(tx), corners(ty)


def _area(px, py, n):
    """Shoelace area of polygons with ``n`` valid leading vertices (absolute value)."""
    m = px.shape[1]
    idx = np.arange(m)[None]
    nxt = np.where(idx + 1 < n[:, None], idx + 1, 0)
    valid = idx < n[:, None]
    x2 = np.take_along_axis(px, nxt, axis=1)
    y2 = np.take_along_axis(py, nxt, axis=1)
    cross = np.where(valid, px * y2 - x2 * py, 0.0)
    return 0.5 * np.abs(cross.sum(axis=1))


def _clip(px, py, n, axis, bound, keep_greater):
    """Clip polygons against the half-plane ``coord >= bound`` (or ``<=``), vectorised."""
    m = px.shape[1]
    idx = np.arange(m)[None]
    valid = idx < n[:, None]
    prev = np.where(idx == 0, np.maximum(n[:, None] - 1, 0), idx - 1)
    qx = np.take_along_axis(px, prev, axis=1)
    qy = np.take_along_axis(py, prev, axis=1)
    c_cur = px if axis == 0 else py
    c_prev = qx if axis == 0 else qy
    b = bound[:, None]
    cur_in = (c_cur >= b) if keep_greater else (c_cur <= b)
    prev_in = (c_prev >= b) if keep_greater else (c_prev <= b)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (b - c_prev) / (c_cur - c_prev)  # NaN/inf only where no intersection is emitted
        ix = qx + t * (px - qx)
        iy = qy + t * (py - qy)
    # each vertex emits [intersection if the edge crosses] then [itself if inside]
    emit_int = valid & (cur_in != prev_in)
    emit_cur = valid & cur_in
    ox = np.stack([ix, px], axis=2).reshape(len(n), 2 * m)
    oy = np.stack([iy, py], axis=2).reshape(len(n), 2 * m)
    keep = np.stack([emit_int, emit_cur], axis=2).reshape(len(n), 2 * m)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :_MAX_VERTICES]
    return (
        np.take_along_axis(ox, order, axis=1),
        np.take_along_axis(oy, order, axis=1),
        np.minimum(keep.sum(axis=1), _MAX_VERTICES),
    )


def overlap_operator(
    source_wcs,
    source_shape,
    target_wcs,
    target_shape,
    *,
    source_mask=None,
    chunk=400_000,
    name="image",
    target_name="target grid",
):
    """The exact flux-conserving overlap operator from a source grid onto a target grid.

    Parameters
    ----------
    source_wcs, target_wcs : astropy.wcs.WCS
        The celestial WCS of each grid.
    source_shape, target_shape : tuple of int
        ``(ny, nx)`` of each grid.
    source_mask : array_like of bool, shape source_shape, optional
        Source pixels to leave out (``True`` = masked): their columns are empty.
    chunk : int
        Number of (source, target) pixel pairs clipped at once (bounds memory).
    name, target_name : str
        The two grids, for messages.

    Returns
    -------
    operator : scipy.sparse.csr_array, shape (n_target, n_source)
        :math:`R_{ts}`, the fraction of source pixel ``s`` in target pixel ``t``.
    coverage : numpy.ndarray, shape target_shape
        The fraction of each target pixel's area covered by (unmasked) source pixels.

    Raises
    ------
    EmptyDataError
        If no source pixel overlaps the target grid, naming both.
    """
    if source_wcs is None or target_wcs is None:
        raise InputError(f"{name}: reprojection needs a celestial WCS for both grids")
    sny, snx = (int(s) for s in source_shape)
    tny, tnx = (int(s) for s in target_shape)
    mask = np.zeros((sny, snx), bool) if source_mask is None else np.asarray(source_mask, bool)
    if mask.shape != (sny, snx):
        raise ShapeError(f"{name}: mask shape {mask.shape} does not match the image {(sny, snx)}")
    cx, cy = pixel_corners(source_wcs, (sny, snx), target_wcs)
    src = np.flatnonzero(~mask.ravel() & np.all(np.isfinite(cx) & np.isfinite(cy), axis=1))
    cx, cy = cx[src], cy[src]
    x0 = np.floor(cx.min(axis=1) + 0.5).astype(np.int64)
    x1 = np.floor(cx.max(axis=1) + 0.5).astype(np.int64)
    y0 = np.floor(cy.min(axis=1) + 0.5).astype(np.int64)
    y1 = np.floor(cy.max(axis=1) + 0.5).astype(np.int64)
    hit = (x1 >= 0) & (x0 < tnx) & (y1 >= 0) & (y0 < tny)
    if not hit.any():
        raise EmptyDataError(f"{name}: no pixel of the image overlaps the {target_name}")
    src, cx, cy, x0, x1, y0, y1 = (a[hit] for a in (src, cx, cy, x0, x1, y0, y1))
    x0, y0 = np.maximum(x0, 0), np.maximum(y0, 0)
    x1, y1 = np.minimum(x1, tnx - 1), np.minimum(y1, tny - 1)
    wx, wy = x1 - x0 + 1, y1 - y0 + 1
    npair = wx * wy
    area_src = _area(cx, cy, np.full(len(src), 4))
    pair_src = np.repeat(np.arange(len(src)), npair)
    start = np.concatenate([[0], np.cumsum(npair)[:-1]])
    k = np.arange(pair_src.size) - start[pair_src]
    ty = y0[pair_src] + k // wx[pair_src]
    tx = x0[pair_src] + k % wx[pair_src]
    rows, cols, vals = [], [], []
    for lo in range(0, pair_src.size, chunk):
        sl = slice(lo, lo + chunk)
        ps, qx, qy = pair_src[sl], tx[sl], ty[sl]
        px = np.zeros((ps.size, _MAX_VERTICES))
        py = np.zeros((ps.size, _MAX_VERTICES))
        px[:, :4], py[:, :4] = cx[ps], cy[ps]
        n = np.full(ps.size, 4)
        for axis, bound, greater in (
            (0, qx - 0.5, True),
            (0, qx + 0.5, False),
            (1, qy - 0.5, True),
            (1, qy + 0.5, False),
        ):
            px, py, n = _clip(px, py, n, axis, bound.astype(float), greater)
        a = _area(px, py, n)
        good = a > 0
        rows.append((qy * tnx + qx)[good])
        cols.append(src[ps[good]])
        vals.append(a[good] / area_src[ps[good]])
    rows, cols, vals = (np.concatenate(v) for v in (rows, cols, vals))
    if rows.size == 0:
        raise EmptyDataError(f"{name}: no pixel of the image overlaps the {target_name}")
    op = sp.csr_array((vals, (rows, cols)), shape=(tny * tnx, sny * snx))
    op.sum_duplicates()
    covered = np.bincount(rows, vals * area_src[np.searchsorted(src, cols)], minlength=tny * tnx)
    return op, covered.reshape(tny, tnx)
