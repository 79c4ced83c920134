"""A start for a free redshift: the profile chi-square of binned SEDs on a grid of redshifts.

With a free redshift the SED posterior has many local maxima in z (template features slide
past the channels; on 120 spectral channels the log-likelihood of the truth's other parameters
has a dozen maxima over 0.02-0.045). NUTS chains started at random redshifts stay in different
ones (r-hat 1.8 in tests/test_sed_model.py), so :func:`redshift_start` scans the range first:
at each redshift of the grid and each A_V of a few values, every bin's template weights are
fitted by non-negative least squares (each bin's own variances, the covariance between bins
ignored), and the redshift with the smallest total chi-square is
the start (``init_to_value``) of every chain. The posterior is the sampler's; the scan only
chooses where the chains begin.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, ShapeError
from .basis import SEDBasis, sed_flux

__all__ = ["redshift_scan", "redshift_start"]

#: A_V values [mag] of the scan.
AV_GRID = (0.0, 0.5, 1.0, 2.0)


def redshift_scan(basis: SEDBasis, flux, variance, n_z: int | None = None, av=AV_GRID):
    """Profile chi-square of binned SEDs over ``basis.z_range``: ``(z_grid, chi2)``.

    Parameters
    ----------
    basis : SEDBasis
        Built for a redshift range (``z=(z_min, z_max)``).
    flux, variance : array_like, shape (n_bins, n_channels)
        Binned SEDs and their variances (``inf`` or NaN flux where missing), e.g. a
        :class:`bayesifu.binning.BinnedSpectra`'s ``flux`` and ``variance``.
    n_z : int, optional
        Redshifts of the grid, uniform in log(1+z); default one per 1e-4 in log10(1+z)
        (69 km/s), at least 50 and at most 4000.
    av : sequence of float
        A_V values [mag] the chi-square is minimised over.

    Returns
    -------
    z_grid : numpy.ndarray, shape (n_z,)
    chi2 : numpy.ndarray, shape (n_z,)
        Summed over bins, minimised over A_V (the values of ``av``) and each bin's non-negative
        weights (exactly for up to 6 templates; beyond, over all templates or one alone).
    """
    flux = np.asarray(flux, dtype=float)
    variance = np.asarray(variance, dtype=float)
    if flux.shape != variance.shape or flux.ndim != 2:
        raise ShapeError(f"redshift_scan: flux {flux.shape} and variance {variance.shape}")
    if flux.shape[1] != basis.n_channels:
        raise ShapeError(
            f"redshift_scan: {flux.shape[1]} channels, the basis has {basis.n_channels}"
        )
    if np.any(variance < 0) or np.any(np.isnan(variance)):
        raise InputError("redshift_scan: variances must be >= 0 and not NaN")
    good = np.isfinite(flux) & np.isfinite(variance) & (variance > 0)
    if not good.any():
        raise InputError("redshift_scan: no channel of any bin has data")
    w = np.where(good, 1.0 / np.where(good, variance, 1.0), 0.0)
    y = np.where(good, flux, 0.0)
    z_min, z_max = basis.z_range
    span = np.log10((1 + z_max) / (1 + z_min))
    n_z = int(np.clip(np.ceil(span / 1e-4) + 1, 50, 4000)) if n_z is None else int(n_z)
    z_grid = (1 + z_min) * 10 ** np.linspace(0.0, span, n_z) - 1
    k = basis.n_templates
    eye = jnp.eye(k)
    avs = jnp.asarray(av, dtype=float)
    subsets = jnp.asarray(_subsets(k))  # [n_sets, K]: the templates allowed a weight

    def chi2_at(z):
        def one_av(a):
            g = sed_flux(basis, eye, jnp.full(k, a), z)  # [K, n_chan]
            m = jnp.einsum("kc,bc,lc->bkl", g, w, g)
            m = m + 1e-12 * jnp.trace(m, axis1=1, axis2=2)[:, None, None] * eye
            b = jnp.einsum("kc,bc->bk", g, w * y)

            def one_set(on):
                # least squares on the templates ``on`` (identity rows for the others)
                ms = m * (on[:, None] * on[None, :]) + jnp.diag(1.0 - on)
                coef = jnp.linalg.solve(ms, (b * on)[..., None])[..., 0] * on
                feasible = jnp.all(coef >= 0, axis=1)
                resid = jnp.sum(w * (y - coef @ g) ** 2, axis=1)
                return jnp.where(feasible, resid, jnp.inf)  # [n_bins]

            # non-negative least squares per bin, exactly: the best feasible active set
            return jnp.sum(jnp.min(jax.vmap(one_set)(subsets), axis=0))

        return jnp.min(jax.vmap(one_av)(avs))

    chi2 = np.asarray(jax.lax.map(chi2_at, jnp.asarray(z_grid)))
    return z_grid, chi2


def _subsets(k: int) -> np.ndarray:
    """Every subset of ``k`` templates as 0/1 rows (the empty one included): the active sets of
    non-negative least squares, enumerated exactly up to :data:`MAX_EXACT` templates; beyond,
    all templates and each one alone (an approximation, said in :func:`redshift_scan`)."""
    if k <= MAX_EXACT:
        return np.array([[(i >> j) & 1 for j in range(k)] for i in range(2**k)], dtype=float)
    return np.vstack([np.zeros(k), np.ones(k), np.eye(k)])


#: Templates up to which every active set of the non-negative fit is tried (2**K sets).
MAX_EXACT = 6


def redshift_start(basis: SEDBasis, flux, variance, **kwargs) -> float:
    """The redshift of the smallest profile chi-square of :func:`redshift_scan`: a start for
    the chains of a free-redshift fit, e.g. ``sampler_options={"init_strategy":
    numpyro.infer.init_to_value(values={"z": z0})}``."""
    z_grid, chi2 = redshift_scan(basis, flux, variance, **kwargs)
    return float(z_grid[int(np.argmin(chi2))])
