"""Ready-made simulated instruments: :func:`manga_like` and :func:`muse_like`."""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ShapeError, VarianceError
from .grids import (
    MANGA_FIBRE_PITCH,
    MANGA_SPAXEL_SCALE,
    MUSE_SPAXEL_SCALE,
    check_shape,
    manga_grid_size,
    manga_native_positions,
    muse_native_positions,
)
from .instrument import SimulatedIFU, _positive, _rng
from .resampling import drizzle_operator, keep_rows, shepard_operator

__all__ = ["manga_like", "muse_like", "MANGA_KERNEL_SIGMA", "MANGA_KERNEL_RLIM"]

MANGA_KERNEL_SIGMA = 0.7
"""Width of the Gaussian weights of the MaNGA DRP resampling [arcsec] (Law et al. 2016)."""

MANGA_KERNEL_RLIM = 1.6
"""Cut-off radius of the MaNGA DRP resampling [arcsec] (Law et al. 2016)."""


def _exposure_variance(exposure_variance, n_exposures, exposure):
    if exposure_variance is None:
        return np.ones(exposure.size)
    rel = np.asarray(exposure_variance, dtype=float)
    if rel.shape != (n_exposures,):
        raise ShapeError(
            f"exposure_variance has shape {rel.shape}, expected ({n_exposures},): one relative "
            "variance per exposure"
        )
    bad = ~np.isfinite(rel) | (rel <= 0)
    if bad.any():
        raise VarianceError(
            f"exposure_variance: {int(bad.sum())} exposure(s) have a non-positive or non-finite "
            f"relative variance ({rel[bad][0]!r})"
        )
    return rel[exposure]


def _deep_enough(operator, min_depth) -> np.ndarray:
    """Rows whose number of contributing native samples is >= ``min_depth`` x the median."""
    if not (isinstance(min_depth, int | float) and 0.0 <= min_depth <= 1.0):
        raise InputError(f"min_depth = {min_depth!r} must be a fraction in [0, 1]")
    depth = np.diff(operator.indptr)
    covered = depth > 0
    if not covered.any():
        return covered
    return covered & (depth >= min_depth * np.median(depth[covered]))


def manga_like(
    n_fibres: int = 37,
    n_exposures: int = 9,
    seed=None,
    dither_jitter: float = 0.1,
    exposure_variance=None,
    kernel_sigma: float = MANGA_KERNEL_SIGMA,
    rlim: float = MANGA_KERNEL_RLIM,
    min_depth: float = 0.4,
) -> SimulatedIFU:
    """A MaNGA-like IFU: a dithered hexagonal fibre bundle resampled onto 0.5 arcsec spaxels.

    The native samples are the ``n_fibres * n_exposures`` fibre-exposure measurements at the
    dithered fibre positions (:func:`.grids.manga_native_positions`); each spaxel is the
    normalised Gaussian-weighted sum of those within ``rlim``
    (:func:`.resampling.shepard_operator`), the DRP's resampling (Law et al. 2016, AJ 152, 83,
    doi:10.3847/0004-6256/152/4/83). The grid is that of the DRP cube (42 x 42 for 37
    fibres). With the DRP kernel the spaxel correlation is close to a Gaussian of sigma about
    1.9 spaxels (Westfall et al. 2019, AJ 158, 231, doi:10.3847/1538-3881/ab44a2); the
    covariance has rank ``n_fibres * n_exposures`` when that is below the number of spaxels.

    Parameters
    ----------
    n_fibres : int
        Bundle size: 19, 37, 61, 91 or 127.
    n_exposures : int
        Number of exposures (dither position ``e % 3``), >= 1.
    seed : int or numpy.random.Generator, optional
        Seed of the pointing jitter (the geometry); the same seed gives the same instrument.
    dither_jitter : float
        Pointing error per exposure and axis [arcsec], >= 0.
    exposure_variance : array_like, shape (n_exposures,), optional
        Relative noise variance of each exposure (seeing, transparency); default all 1.
    kernel_sigma, rlim : float
        Width and cut-off of the Gaussian resampling weights [arcsec].
    min_depth : float
        Footprint cut, in ``[0, 1]``: a spaxel is kept if its coverage depth (the number of
        native samples within ``rlim``) is at least ``min_depth`` times the median depth of the
        covered spaxels; the others get empty rows of ``T``. This plays the part of the DRP's
        NOCOV/LOWCOV flags: for 37 fibres and 15 exposures the default keeps about 864 spaxels,
        like the 863 of the real 7815-3702, and the fitted correlation width is 1.95 spaxels, as
        for its real CORREL table.
    """
    rng = _rng(seed)
    sigma = _positive(kernel_sigma, "kernel_sigma [arcsec]")
    cut = _positive(rlim, "rlim [arcsec]")
    positions, exposure = manga_native_positions(n_fibres, n_exposures, rng, dither_jitter)
    size = manga_grid_size(n_fibres)
    shape = (size, size)
    operator = shepard_operator(
        positions, shape, sigma / MANGA_SPAXEL_SCALE, cut / MANGA_SPAXEL_SCALE
    )
    operator = keep_rows(operator, _deep_enough(operator, min_depth))
    params = {
        "n_fibres": n_fibres,
        "n_exposures": n_exposures,
        "fibre_pitch_arcsec": MANGA_FIBRE_PITCH,
        "dither_jitter_arcsec": dither_jitter,
        "kernel": "shepard-gaussian",
        "kernel_sigma_arcsec": sigma,
        "rlim_arcsec": cut,
        "min_depth": min_depth,
    }
    return SimulatedIFU(
        name="MaNGA-like",
        shape=shape,
        operator=operator,
        native_positions=positions,
        native_exposure=exposure,
        native_variance=_exposure_variance(exposure_variance, n_exposures, exposure),
        spaxel_scale=MANGA_SPAXEL_SCALE,
        params=params,
    )


def muse_like(shape=(40, 40), n_exposures: int = 4, seed=None, exposure_variance=None):
    """A MUSE-like IFU: dithered exposures of 0.2 arcsec pixels drizzled onto 0.2 arcsec spaxels.

    Each exposure samples the sky on a pixel grid shifted by a random sub-pixel offset
    (:func:`.grids.muse_native_positions`); the cube is the normalised drizzle (pixfrac 1,
    i.e. bilinear weights) of all pixels (:func:`.resampling.drizzle_operator`), so the spaxel
    correlation reaches only the 8 adjacent spaxels. The native pixels outnumber the spaxels,
    so the covariance is full rank.

    Parameters
    ----------
    shape : tuple of int
        The grid ``(ny, nx)``.
    n_exposures : int
        Number of dithered exposures, >= 1.
    seed : int or numpy.random.Generator, optional
        Seed of the sub-pixel offsets (the geometry).
    exposure_variance : array_like, shape (n_exposures,), optional
        Relative noise variance of each exposure; default all 1.
    """
    shape = check_shape(shape)
    positions, exposure, offsets = muse_native_positions(shape, n_exposures, _rng(seed))
    operator = drizzle_operator(positions, shape)
    params = {
        "n_exposures": n_exposures,
        "kernel": "drizzle-pixfrac1",
        "offsets_spaxel": offsets.tolist(),
    }
    return SimulatedIFU(
        name="MUSE-like",
        shape=shape,
        operator=operator,
        native_positions=positions,
        native_exposure=exposure,
        native_variance=_exposure_variance(exposure_variance, n_exposures, exposure),
        spaxel_scale=MUSE_SPAXEL_SCALE,
        params=params,
    )
