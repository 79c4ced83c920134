"""Native sampling geometries: MaNGA fibre bundles with their dithers, and MUSE-like pixel grids.

Every function returns positions in *spaxel* units of the output grid (0-based pixel coordinates,
x = column, y = row), so that the resampling operators in :mod:`.resampling` work on one scale.

References
----------
Drory et al. 2015, AJ 149, 77, doi:10.1088/0004-6256/149/2/77 (MaNGA fibre bundles: 2 arcsec
cores on a 2.5 arcsec pitch, 19 to 127 fibres in hexagonal rings).
Law et al. 2015, AJ 150, 19, doi:10.1088/0004-6256/150/1/19 (three-point dither pattern, an
equilateral triangle of side pitch / sqrt(3) = 1.44 arcsec that fills the gaps between fibres).
Law et al. 2016, AJ 152, 83, doi:10.3847/0004-6256/152/4/83 (cubes of 0.5 arcsec spaxels; a
19-fibre bundle gives a 32 x 32 grid, each ring more adds 10 spaxels per side).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError, ShapeError

__all__ = [
    "MANGA_BUNDLES",
    "MANGA_FIBRE_PITCH",
    "MANGA_SPAXEL_SCALE",
    "MUSE_SPAXEL_SCALE",
    "bundle_rings",
    "hexagonal_bundle",
    "manga_dither_offsets",
    "manga_grid_size",
    "manga_native_positions",
    "muse_native_positions",
]

MANGA_BUNDLES = (19, 37, 61, 91, 127)
"""The fibre counts of the MaNGA science bundles."""

MANGA_FIBRE_PITCH = 2.5
"""Centre-to-centre distance of adjacent fibres in a MaNGA bundle [arcsec]."""

MANGA_SPAXEL_SCALE = 0.5
"""Spaxel size of MaNGA DRP cubes [arcsec]."""

MUSE_SPAXEL_SCALE = 0.2
"""Spaxel size of MUSE wide-field-mode cubes [arcsec]."""


def bundle_rings(n_fibres: int) -> int:
    """Number of hexagonal rings around the central fibre, ``k`` with ``n = 1 + 3 k (k + 1)``."""
    if n_fibres not in MANGA_BUNDLES:
        raise InputError(
            f"n_fibres = {n_fibres!r} is not a MaNGA bundle size; choose one of {MANGA_BUNDLES}"
        )
    return int(round((-3 + math.sqrt(9 + 12 * (n_fibres - 1))) / 6))


def hexagonal_bundle(n_fibres: int, pitch: float = MANGA_FIBRE_PITCH) -> np.ndarray:
    """Fibre centres of a hexagonal bundle [arcsec], shape ``(n_fibres, 2)`` as ``(x, y)``.

    The central fibre is at the origin; fibres sit on a triangular lattice of spacing ``pitch``
    out to ``k`` rings (axial coordinates ``(q, r)`` with ``max(|q|, |r|, |q + r|) <= k``).
    """
    k = bundle_rings(n_fibres)
    q, r = np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1), indexing="ij")
    keep = np.maximum(np.maximum(np.abs(q), np.abs(r)), np.abs(q + r)) <= k
    q, r = q[keep], r[keep]
    return np.column_stack([pitch * (q + 0.5 * r), pitch * r * math.sqrt(3.0) / 2.0])


def manga_dither_offsets(pitch: float = MANGA_FIBRE_PITCH) -> np.ndarray:
    """The three dither offsets [arcsec], shape ``(3, 2)``, centred on zero.

    They are the vertices of an equilateral triangle of side ``pitch / sqrt(3)``: the first
    position and the centroids of two adjacent triangles of the fibre lattice.
    """
    offsets = np.array(
        [[0.0, 0.0], [pitch / 2.0, pitch / (2.0 * math.sqrt(3.0))], [0.0, pitch / math.sqrt(3.0)]]
    )
    return offsets - offsets.mean(axis=0)


def manga_grid_size(n_fibres: int) -> int:
    """Side of the square DRP cube grid [spaxel] for a bundle: 32, 42, 52, 62 or 72."""
    return 12 + 10 * bundle_rings(n_fibres)


def manga_native_positions(
    n_fibres: int,
    n_exposures: int,
    rng: np.random.Generator,
    dither_jitter: float = 0.1,
    pitch: float = MANGA_FIBRE_PITCH,
    spaxel_scale: float = MANGA_SPAXEL_SCALE,
):
    """Positions of every fibre-exposure measurement on the cube grid.

    Exposure ``e`` is taken at dither position ``e % 3``, displaced by a random offset of
    standard deviation ``dither_jitter`` [arcsec] per axis (telescope guiding, differential
    refraction): as in real data, no two exposures sample exactly the same points.

    Parameters
    ----------
    n_fibres : int
        Bundle size, one of :data:`MANGA_BUNDLES`.
    n_exposures : int
        Number of exposures, >= 1.
    rng : numpy.random.Generator
        Source of the jitter.
    dither_jitter : float
        Standard deviation of the pointing error per exposure and axis [arcsec], >= 0.
    pitch, spaxel_scale : float
        Fibre pitch and spaxel size [arcsec].

    Returns
    -------
    positions : numpy.ndarray, shape (n_fibres * n_exposures, 2)
        ``(x, y)`` [spaxel] on the grid of :func:`manga_grid_size`, bundle centred on the grid.
    exposure : numpy.ndarray of int, shape (n_fibres * n_exposures,)
        The exposure of each measurement.
    """
    if not isinstance(n_exposures, int | np.integer) or n_exposures < 1:
        raise InputError(f"n_exposures = {n_exposures!r} must be a positive integer")
    if not (math.isfinite(dither_jitter) and dither_jitter >= 0):
        raise InputError(f"dither_jitter = {dither_jitter} arcsec must be >= 0 and finite")
    fibres = hexagonal_bundle(n_fibres, pitch)
    dithers = manga_dither_offsets(pitch)
    jitter = rng.normal(0.0, dither_jitter, size=(n_exposures, 2))
    centre = (manga_grid_size(n_fibres) - 1) / 2.0
    shifts = dithers[np.arange(n_exposures) % 3] + jitter
    positions = (fibres[None, :, :] + shifts[:, None, :]) / spaxel_scale + centre
    exposure = np.repeat(np.arange(n_exposures), n_fibres)
    return positions.reshape(-1, 2), exposure


def muse_native_positions(shape, n_exposures: int, rng: np.random.Generator):
    """Detector-pixel centres of dithered exposures covering a ``(ny, nx)`` grid [spaxel].

    Each exposure samples the sky on a square grid of the spaxel size, shifted by a random
    sub-pixel offset ``(dx, dy)`` drawn uniformly in ``[0, 1)`` spaxel; pixel ``(i, j)`` of
    exposure ``e`` lies at ``(i - 1 + dx_e, j - 1 + dy_e)``, ``i = 0..nx``, ``j = 0..ny``, which
    covers every spaxel centre.

    Returns
    -------
    positions : numpy.ndarray, shape (n_exposures * (ny + 1) * (nx + 1), 2)
        ``(x, y)`` [spaxel].
    exposure : numpy.ndarray of int
        The exposure of each pixel.
    offsets : numpy.ndarray, shape (n_exposures, 2)
        The sub-pixel shifts ``(dx, dy)`` [spaxel].
    """
    ny, nx = check_shape(shape)
    if not isinstance(n_exposures, int | np.integer) or n_exposures < 1:
        raise InputError(f"n_exposures = {n_exposures!r} must be a positive integer")
    offsets = rng.uniform(0.0, 1.0, size=(n_exposures, 2))
    jj, ii = np.meshgrid(np.arange(ny + 1) - 1.0, np.arange(nx + 1) - 1.0, indexing="ij")
    base = np.column_stack([ii.ravel(), jj.ravel()])
    positions = base[None, :, :] + offsets[:, None, :]
    exposure = np.repeat(np.arange(n_exposures), base.shape[0])
    return positions.reshape(-1, 2), exposure, offsets


def check_shape(shape) -> tuple[int, int]:
    """Validate a grid shape ``(ny, nx)`` of positive integers."""
    try:
        ny, nx = (int(s) for s in shape)
        ok = all(int(s) == s for s in shape)
    except (TypeError, ValueError):
        raise ShapeError(
            f"grid shape must be two positive integers (ny, nx), got {shape!r}"
        ) from None
    if not ok or ny < 1 or nx < 1:
        raise ShapeError(f"grid shape must be two positive integers (ny, nx), got {shape!r}")
    return ny, nx
