"""Redshift maps as velocity maps for the spatial likelihoods (:class:`bayesifu.MapLikelihood`).

:func:`velocity_map` turns a per-spaxel redshift summary into a :class:`~bayesifu.Map` of
line-of-sight velocities :math:`v = c\\,(z - z_{sys})/(1 + z_{sys})` [km/s] whose variance is each
spaxel's posterior width squared (half the central 68 % interval, a Gaussian approximation that
holds for the single-peaked spaxels kept). Spaxels with any flag, more than one significant peak
or no finite interval are masked. With a :class:`~bayesifu.SpatialCorrelation` the likelihood
covariance is :math:`C_{jk} = \\rho_{jk} \\sigma_j \\sigma_k`: the spatial correlation of the cube
(PSF, resampling) combined with the per-spaxel posterior widths; fit it with the disk model of
``bayesifu.models.disk``.
"""

from __future__ import annotations

import numpy as np

from ..containers import Map
from ..errors import EmptyDataError, InputError
from ..templates import C_KMS
from .summary import RedshiftSummary

__all__ = ["velocity_map"]


def velocity_map(
    summary: RedshiftSummary, z_sys: float, *, wcs=None, min_sigma_kms=0.0, max_abs_kms=None
) -> Map:
    """Velocity map [km/s] with per-spaxel variances from a redshift summary shaped (ny, nx).

    Parameters
    ----------
    summary : RedshiftSummary
        A summary with a two-dimensional shape (a cube's spaxels).
    z_sys : float
        Systemic redshift.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS of the map.
    min_sigma_kms : float
        Floor added in quadrature to every velocity error [km/s] (e.g. a wavelength-calibration
        systematic).
    max_abs_kms : float, optional
        Also mask spaxels whose velocity differs from ``z_sys`` by more than this [km/s]
        (catastrophic redshifts that no flag caught).
    """
    z_med = np.asarray(summary.z_median, dtype=float)
    if z_med.ndim != 2:
        raise InputError(f"velocity_map: need a (ny, nx) summary, got shape {z_med.shape}")
    if not z_sys > -1:
        raise InputError(f"velocity_map: z_sys must be > -1, got {z_sys}")
    vel = C_KMS * (z_med - z_sys) / (1 + z_sys)
    half = C_KMS * (np.asarray(summary.z_hi68) - np.asarray(summary.z_lo68)) / 2 / (1 + z_sys)
    var = half**2 + float(min_sigma_kms) ** 2
    mask = (
        (np.asarray(summary.flags) != 0)
        | (np.asarray(summary.n_peaks) > 1)
        | ~np.isfinite(vel)
        | ~np.isfinite(var)
        | (var <= 0)
    )
    if max_abs_kms is not None:
        with np.errstate(invalid="ignore"):
            mask |= np.abs(vel) > float(max_abs_kms)
    if mask.all():
        raise EmptyDataError("velocity_map: every spaxel is flagged, multimodal or without data")
    return Map(
        np.where(mask, 0.0, vel),
        np.where(mask, 1.0, var),
        mask=mask,
        wcs=wcs,
        unit="km/s",
        name="redshift velocity map",
    )
