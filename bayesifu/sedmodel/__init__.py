"""SED fitting physics: template bases, Calzetti (2000) attenuation, posterior maps.

Pure JAX forward models (:func:`sed_flux`) used by :mod:`bayesifu.models.sed`; the
independent-bins variant of binned spectra (:func:`independent_bins`) for comparing widths; and
:func:`sed_maps` for the posterior maps with the WCS; :func:`redshift_start` for the start of a
free redshift.
"""

from .attenuation import (
    CALZETTI_RANGE,
    R_V,
    calzetti_attenuation,
    calzetti_k,
    check_calzetti_range,
)
from .basis import SEDBasis, band_weights, sed_flux
from .independent import IndependentBinnedSpectra, independent_bins
from .maps import sed_maps
from .zscan import redshift_scan, redshift_start

__all__ = [
    "CALZETTI_RANGE",
    "R_V",
    "calzetti_attenuation",
    "calzetti_k",
    "check_calzetti_range",
    "SEDBasis",
    "band_weights",
    "sed_flux",
    "IndependentBinnedSpectra",
    "independent_bins",
    "sed_maps",
    "redshift_scan",
    "redshift_start",
]
