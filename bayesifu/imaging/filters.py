"""Filter curves of photometric bands, from the ``speclite`` package (not typed in by hand).

A :class:`Band` is a filter response curve (speclite ``FilterResponse``: vacuum wavelengths
[Angstrom], dimensionless throughput) with the numbers that matching needs: its pivot wavelength

.. math::

    \\lambda_p^2 = \\frac{\\int R(\\lambda)\\,\\lambda\\,d\\lambda}{\\int R(\\lambda)/\\lambda\\,
    d\\lambda},

at which :math:`f_\\lambda = f_\\nu c / \\lambda_p^2` holds exactly for band-averaged fluxes
(Tokunaga & Vacca 2005, PASP 117, 421, doi:10.1086/429382), and the PSF of the image in that band.
speclite (Kirkby et al., https://github.com/desihub/speclite) ships SDSS, GALEX, 2MASS, WISE,
DECam, HSC, Pan-STARRS, LSST, Subaru intermediate bands and more: see :func:`filter_names`.
"""

from __future__ import annotations

import functools
import glob
import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["Band", "load_band", "filter_names", "pivot_wavelength"]

#: Common spellings of survey band names -> speclite names.
_ALIASES = {
    **{f"sdss-{b}": f"sdss2010-{b}" for b in "ugriz"},
    **{f"sdss_{b}": f"sdss2010-{b}" for b in "ugriz"},
    "galex-fuv": "galex-fuv",
    "galex-nuv": "galex-nuv",
    "fuv": "galex-fuv",
    "nuv": "galex-nuv",
    **{f"2mass-{b.lower()}": f"twomass-{b}" for b in ("J", "H", "Ks")},
    **{f"twomass-{b.lower()}": f"twomass-{b}" for b in ("J", "H", "Ks")},
    **{f"wise-w{k}": f"wise2010-W{k}" for k in range(1, 5)},
    **{f"w{k}": f"wise2010-W{k}" for k in range(1, 5)},
}


@functools.cache
def filter_names() -> tuple[str, ...]:
    """The names of every filter curve that the installed speclite ships (e.g. ``sdss2010-r``)."""
    import speclite.filters

    folder = os.path.join(os.path.dirname(speclite.filters.__file__), "data", "filters")
    return tuple(
        sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(folder, "*.ecsv")))
    )


def pivot_wavelength(wave, response) -> float:
    """The pivot wavelength [Angstrom] of a response curve sampled at ``wave`` [Angstrom]."""
    wave = np.asarray(wave, dtype=float)
    response = np.asarray(response, dtype=float)
    return float(np.sqrt(np.trapezoid(response * wave, wave) / np.trapezoid(response / wave, wave)))


@dataclass(frozen=True)
class Band:
    """A photometric band: a filter curve and the PSF of the image taken through it.

    Parameters
    ----------
    name : str
        The speclite name of the filter (``"sdss2010-r"``).
    wave : numpy.ndarray
        Wavelengths of the response curve [Angstrom, vacuum].
    response : numpy.ndarray
        The throughput at ``wave`` (dimensionless, photon-counting convention).
    psf_fwhm : float, optional
        FWHM of the image's point-spread function [arcsec], where known.
    """

    name: str
    wave: np.ndarray
    response: np.ndarray
    psf_fwhm: float | None = None

    @property
    def pivot(self) -> float:
        """The pivot wavelength :math:`\\lambda_p` [Angstrom]."""
        return pivot_wavelength(self.wave, self.response)

    @property
    def wave_range(self) -> tuple[float, float]:
        """The first and last wavelength with non-zero response [Angstrom]."""
        on = np.flatnonzero(self.response > 0)
        return float(self.wave[on[0]]), float(self.wave[on[-1]])

    def with_psf(self, fwhm) -> Band:
        """The same band with the PSF FWHM [arcsec] set."""
        return Band(self.name, self.wave, self.response, _check_fwhm(fwhm, self.name))

    def meta(self) -> dict:
        """Band metadata for headers and tables: name, pivot [Angstrom], PSF FWHM [arcsec]."""
        return {"filter": self.name, "pivot": self.pivot, "psf_fwhm": self.psf_fwhm}


def _check_fwhm(fwhm, name):
    if fwhm is None:
        return None
    fwhm = float(fwhm)
    if not np.isfinite(fwhm) or fwhm <= 0:
        raise InputError(f"band {name}: PSF FWHM must be a positive number of arcsec, got {fwhm}")
    return fwhm


def load_band(name, psf_fwhm=None) -> Band:
    """Load a filter curve by name from speclite.

    Parameters
    ----------
    name : str or speclite.filters.FilterResponse or Band
        A speclite filter name (``"sdss2010-r"``, ``"galex-fuv"``, ``"twomass-Ks"``,
        ``"wise2010-W1"``, ``"suprime-IB709"``, ...), a common alias (``"sdss-r"``,
        ``"2mass-ks"``, ``"wise-w1"``), a speclite response, or a :class:`Band` (returned with
        ``psf_fwhm`` set if given).
    psf_fwhm : float, optional
        FWHM of the image's PSF in this band [arcsec].

    Raises
    ------
    InputError
        If no filter curve of that name exists, naming the band and the closest names.
    """
    if isinstance(name, Band):
        return name if psf_fwhm is None else name.with_psf(psf_fwhm)
    if hasattr(name, "wavelength") and hasattr(name, "response"):
        label = str(getattr(name, "name", "custom"))
        return Band(
            label,
            np.asarray(name.wavelength, float),
            np.asarray(name.response, float),
            _check_fwhm(psf_fwhm, label),
        )
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"band {name!r}: give a filter name such as 'sdss2010-r'")
    key = name.strip()
    names = filter_names()
    lookup = {n.lower(): n for n in names}
    resolved = lookup.get(key.lower()) or _ALIASES.get(key.lower())
    if resolved is None:
        close = [n for n in names if key.lower().split("-")[-1] == n.lower().split("-")[-1]]
        hint = f"; did you mean one of {', '.join(close[:8])}?" if close else ""
        raise InputError(
            f"band {name!r} has no filter curve in speclite (see "
            f"bayesifu.imaging.filter_names()){hint}"
        )
    import speclite.filters

    curve = speclite.filters.load_filter(resolved)
    return Band(
        resolved,
        np.asarray(curve.wavelength, dtype=float),
        np.asarray(curve.response, dtype=float),
        _check_fwhm(psf_fwhm, resolved),
    )
