"""Synthetic broadband images made from an IFU cube, for tests, benchmarks and demonstrations.

:func:`synthetic_image` integrates the cube through a real filter curve
(:func:`~bayesifu.imaging.photometry.cube_photometry`), broadens it from the cube's PSF to the
image's (a Gaussian convolution on the cube grid), resamples it with the exact overlap operator onto
a coarser, rotated and shifted pixel grid with its own TAN WCS, and adds independent Gaussian noise
of a stated standard deviation. Since every step is known, so is the truth of a matching.
"""

from __future__ import annotations

import numpy as np

from ..containers import Cube
from ..errors import InputError
from .filters import load_band
from .grids import tan_wcs
from .photometry import cube_photometry
from .psf import convolution_operator, matching_kernel
from .read import Image
from .reproject import overlap_operator

__all__ = ["synthetic_image"]


def synthetic_image(  # noqa: PLR0913 -- public API: documented keyword options
    cube: Cube,
    band,
    *,
    pixel_scale: float,
    psf_fwhm: float,
    cube_psf_fwhm: float,
    noise: float,
    rotation: float = 0.0,
    offset=(0.0, 0.0),
    shape=None,
    seed=0,
    unit_factor: float | None = None,
) -> tuple[Image, np.ndarray]:
    """A noisy broadband image of ``cube`` through ``band`` on a new pixel grid.

    Parameters
    ----------
    cube : Cube
        The IFU cube (with a WCS and spaxel scale).
    band : str or Band
        The filter (it must lie within the cube's wavelengths).
    pixel_scale : float
        The image's pixel size [arcsec].
    psf_fwhm : float
        The image's Gaussian PSF FWHM [arcsec] (at least ``cube_psf_fwhm``).
    cube_psf_fwhm : float
        The cube's (assumed Gaussian) PSF FWHM [arcsec].
    noise : float
        Standard deviation of the added noise per image pixel [cube unit * unit_factor].
    rotation : float
        Rotation of the image grid [deg].
    offset : tuple of float
        Shift of the image centre from the cube centre ``(east, north)`` [arcsec].
    shape : tuple of int, optional
        The image shape; default covering the cube with a margin.
    seed : int
        Seed of the noise.
    unit_factor : float, optional
        Factor from the cube unit to the image unit
        (:data:`~bayesifu.imaging.DEFAULT_UNIT`); default from the cube's ``unit`` (an error if
        the cube has none that converts).

    Returns
    -------
    image : Image
        The noisy image (variance ``noise**2``), band PSF set to ``psf_fwhm``.
    truth : numpy.ndarray
        The noise-free image.
    """
    if cube.wcs is None or cube.spaxel_scale is None:
        raise InputError(f"{cube.name}: a synthetic image needs the cube's WCS and spaxel scale")
    band = load_band(band, psf_fwhm)
    if unit_factor is None:
        unit_factor = _cube_to_image_unit(cube)
    data, _, mask = cube_photometry(cube, [band])
    img = np.where(mask[0], 0.0, data[0]) * unit_factor
    kernel = matching_kernel(cube_psf_fwhm, psf_fwhm, cube.spaxel_scale)
    conv, _ = convolution_operator(kernel, img.shape)
    img = (conv @ img.ravel()).reshape(img.shape)
    ny, nx = cube.spatial_shape
    if shape is None:
        n = int(np.ceil(max(ny, nx) * cube.spaxel_scale / pixel_scale * 1.5)) + 2
        shape = (n, n)
    centre = cube.wcs.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
    dec = centre.dec.deg + offset[1] / 3600.0
    ra = centre.ra.deg + offset[0] / 3600.0 / np.cos(np.deg2rad(dec))
    wcs = tan_wcs((ra, dec), pixel_scale, shape, rotation)
    resample, _ = overlap_operator(cube.wcs, (ny, nx), wcs, shape, name=cube.name)
    truth = (resample @ img.ravel()).reshape(shape)
    rng = np.random.default_rng(seed)
    noisy = truth + rng.normal(0.0, noise, size=shape)
    image = Image(
        noisy,
        np.full(shape, float(noise) ** 2),
        wcs,
        band,
        name=f"synthetic {band.name}",
        meta={"noise": noise, "seed": seed, "truth": truth},
    )
    return image, truth


def _cube_to_image_unit(cube: Cube) -> float:
    """The factor from the cube's flux unit to :data:`DEFAULT_UNIT` (the synthetic image's)."""
    from astropy import units as u

    from ..errors import FileFormatError
    from .read import DEFAULT_UNIT, _parse_unit

    try:
        return float(_parse_unit(cube.unit or "", cube.name).to(DEFAULT_UNIT))
    except (ValueError, u.UnitConversionError, FileFormatError) as err:
        raise InputError(
            f"{cube.name}: its unit {cube.unit!r} does not convert to {DEFAULT_UNIT}; "
            "give unit_factor"
        ) from err
