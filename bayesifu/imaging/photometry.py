"""Synthetic photometry of IFU spectra through filter curves, as linear weights over channels.

The band-averaged flux density of a spectrum :math:`f_\\lambda` through a filter of throughput
:math:`R(\\lambda)`, for a photon-counting detector, is

.. math::

    \\langle f_\\lambda\\rangle = \\frac{\\int f_\\lambda(\\lambda)\\,R(\\lambda)\\,\\lambda\\,
    d\\lambda}{\\int R(\\lambda)\\,\\lambda\\,d\\lambda},

the same definition as speclite's ``get_ab_maggies`` (which converts it to :math:`f_\\nu` at the
pivot wavelength). On the channels of a cube it is a weighted sum :math:`\\sum_k w_k f_k`
(trapezoid rule, :math:`R` interpolated onto the channel wavelengths, converted to vacuum for a cube
in air), so a band image of a cube is one linear operator over channels and its variance is
:math:`\\sum_k w_k^2 \\sigma_k^2` for channels whose noise is independent (the spectral correlation
of resampled cubes is ignored here, which underestimates the variance somewhat).
"""

from __future__ import annotations

import numpy as np

from ..containers import Cube
from ..errors import InputError
from ..templates import air_to_vacuum
from .filters import Band, load_band

__all__ = ["band_weights", "synthetic_photometry", "cube_photometry", "ab_magnitude"]


def band_weights(wave, band, *, medium="vacuum", max_missing=1e-3) -> np.ndarray:
    """Weights :math:`w_k` such that :math:`\\sum_k w_k f_k` is the band-averaged
    :math:`f_\\lambda`.

    Parameters
    ----------
    wave : array_like, shape (nwave,)
        Channel wavelengths [Angstrom], increasing.
    band : str or Band
        The filter.
    medium : {"vacuum", "air"}
        The medium of ``wave``; speclite's curves are in vacuum.
    max_missing : float
        Largest fraction of :math:`\\int R\\lambda\\,d\\lambda` allowed outside the spectrum.

    Raises
    ------
    InputError
        If the spectrum misses more of the filter than ``max_missing``, naming the band.
    """
    band = load_band(band)
    wave = np.asarray(wave, dtype=float)
    if wave.ndim != 1 or wave.size < 2 or np.any(np.diff(wave) <= 0):
        raise InputError("wave must be 1-D and strictly increasing [Angstrom]")
    if medium not in ("air", "vacuum"):
        raise InputError(f"medium must be 'air' or 'vacuum', got {medium!r}")
    vac = air_to_vacuum(wave) if medium == "air" else wave
    rl = band.response * band.wave
    total = np.trapezoid(rl, band.wave)
    inside = (band.wave >= vac[0]) & (band.wave <= vac[-1])
    fine = np.linspace(vac[0], vac[-1], 20 * vac.size)
    covered = np.trapezoid(np.interp(fine, band.wave, rl, left=0, right=0), fine)
    missing = 1.0 - covered / total
    if missing > max_missing or not inside.any():
        lo, hi = band.wave_range
        raise InputError(
            f"band {band.name} ({lo:.0f}-{hi:.0f} A) is not covered by the spectrum "
            f"({vac[0]:.0f}-{vac[-1]:.0f} A in vacuum): {100 * missing:.2g}% of its response "
            f"lies outside (allowed {100 * max_missing:.2g}%)"
        )
    r = np.interp(vac, band.wave, band.response, left=0.0, right=0.0) * vac
    trap = np.empty_like(vac)
    trap[1:-1] = 0.5 * (vac[2:] - vac[:-2])
    trap[0], trap[-1] = 0.5 * (vac[1] - vac[0]), 0.5 * (vac[-1] - vac[-2])
    w = r * trap
    return w / w.sum()


def synthetic_photometry(wave, flux, band, variance=None, *, medium="vacuum", max_missing=1e-3):
    """Band-averaged :math:`f_\\lambda` of spectra ``flux [..., nwave]`` (and its variance).

    Returns ``value`` (shape ``flux.shape[:-1]``), or ``(value, variance)`` if ``variance`` is
    given (channels independent).
    """
    w = band_weights(wave, band, medium=medium, max_missing=max_missing)
    flux = np.asarray(flux, dtype=float)
    value = flux @ w
    if variance is None:
        return value
    return value, np.asarray(variance, dtype=float) @ (w**2)


def ab_magnitude(value, band, unit="1e-17 erg / (s cm2 Angstrom)") -> np.ndarray:
    """AB magnitude of a band-averaged :math:`f_\\lambda` ``value`` [``unit``]: :math:`f_\\nu` at
    the pivot wavelength against 3631 Jy."""
    from astropy import units as u

    band = load_band(band)
    fnu = (np.asarray(value) * u.Unit(unit)).to(u.Jy, u.spectral_density(band.pivot * u.AA))
    return -2.5 * np.log10(fnu.value / 3631.0)


def cube_photometry(cube: Cube, bands, *, max_missing=1e-3):
    """Band images of an IFU cube on its own grid: ``(data, variance)`` each ``[n_band, ny, nx]``.

    Masked or unusable pixels of a channel count as zero flux with zero variance in that sum; the
    returned mask ``[n_band, ny, nx]`` is ``True`` where any channel with non-zero weight was
    unusable.

    Returns
    -------
    data, variance, mask : numpy.ndarray
        [cube unit] per spaxel, [cube unit**2], bool.
    """
    bands = [load_band(b) if not isinstance(b, Band) else b for b in bands]
    nwave, ny, nx = cube.shape
    weights = np.array(
        [
            band_weights(cube.wave, b, medium=cube.wave_medium, max_missing=max_missing)
            for b in bands
        ]
    )
    data = np.empty((len(bands), ny * nx))
    var = np.empty_like(data)
    bad_any = np.zeros((len(bands), ny * nx), bool)
    for k0 in range(0, nwave, 256):
        sl = slice(k0, k0 + 256)
        f = np.asarray(cube.flux[sl], dtype=float).reshape(-1, ny * nx)
        v = np.asarray(cube.variance[sl], dtype=float).reshape(-1, ny * nx)
        bad = ~np.isfinite(f) | ~np.isfinite(v) | (v <= 0)
        if cube.mask is not None:
            bad |= np.asarray(cube.mask[sl], bool).reshape(-1, ny * nx)
        f, v = np.where(bad, 0.0, f), np.where(bad, 0.0, v)
        w = weights[:, sl]
        part_d, part_v = w @ f, (w**2) @ v
        if k0 == 0:
            data[:], var[:] = part_d, part_v
        else:
            data += part_d
            var += part_v
        bad_any |= ((w > 0).astype(float) @ bad.astype(float)) > 0
    shape = (len(bands), ny, nx)
    return data.reshape(shape), var.reshape(shape), bad_any.reshape(shape)
