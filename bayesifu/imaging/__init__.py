"""Multi-band imaging: reading images and filter curves, matching them to an IFU grid and PSF as
sparse linear operators with the exact covariance, and synthetic photometry of IFU spectra.

* :mod:`.filters` -- filter curves from speclite (:class:`Band`, :func:`load_band`);
* :mod:`.read` -- FITS images with WCS, units and variance into :class:`Image`;
* :mod:`.psf` -- PSF-matching kernels and the sparse convolution operator;
* :mod:`.reproject` -- the exact flux-conserving overlap operator;
* :mod:`.match` -- :func:`match_images` (images -> :class:`PhotometricCube` on the IFU grid) and
  :func:`degrade_cube` (the IFU cube to the imaging PSF);
* :mod:`.photometry` -- band-averaged :math:`f_\\lambda` of spectra and cubes;
* :mod:`.spectral` -- the multiplicative Legendre correction of IFU spectra and the linear
  synthetic photometry of corrected spectra (for ``bayesifu.models.spectral_match``);
* :mod:`.sed` -- binned spectrophotometric SEDs (photometry + spectra) with the covariance between
  bins (:func:`binned_seds`);
* :mod:`.synthetic` -- synthetic broadband images of a cube, for tests;
* :mod:`.fitsio` -- writing matched images to FITS.
"""

from .filters import Band, filter_names, load_band, pivot_wavelength
from .grids import tan_wcs
from .match import (
    DegradedCube,
    MatchedBand,
    MatchingPieces,
    PhotometricCube,
    degrade_cube,
    match_image,
    match_images,
    matching_operator,
)
from .photometry import ab_magnitude, band_weights, cube_photometry, synthetic_photometry
from .psf import (
    FWHM_PER_SIGMA,
    GaussianPSF,
    ImagePSF,
    MoffatPSF,
    convolution_operator,
    matching_kernel,
    read_psf,
)
from .read import DEFAULT_UNIT, Image, read_image, to_flux_density
from .reproject import overlap_operator
from .sed import SpectroPhotometricSEDs, binned_seds
from .spectral import (
    corrected_photometry,
    corrected_spectra,
    covariance_from_terms,
    legendre_correction,
    legendre_design,
    photometry_design,
    photometry_matrix,
    scaled_wavelength,
    synthetic_covariance,
    synthetic_covariance_terms,
)
from .synthetic import synthetic_image

__all__ = [
    "Band",
    "DEFAULT_UNIT",
    "DegradedCube",
    "FWHM_PER_SIGMA",
    "GaussianPSF",
    "Image",
    "ImagePSF",
    "MatchedBand",
    "MatchingPieces",
    "MoffatPSF",
    "PhotometricCube",
    "SpectroPhotometricSEDs",
    "ab_magnitude",
    "band_weights",
    "binned_seds",
    "convolution_operator",
    "corrected_photometry",
    "corrected_spectra",
    "covariance_from_terms",
    "cube_photometry",
    "degrade_cube",
    "filter_names",
    "legendre_correction",
    "legendre_design",
    "load_band",
    "match_image",
    "match_images",
    "matching_kernel",
    "matching_operator",
    "overlap_operator",
    "photometry_design",
    "photometry_matrix",
    "pivot_wavelength",
    "read_image",
    "read_psf",
    "scaled_wavelength",
    "synthetic_covariance",
    "synthetic_covariance_terms",
    "synthetic_image",
    "synthetic_photometry",
    "tan_wcs",
    "to_flux_density",
]
