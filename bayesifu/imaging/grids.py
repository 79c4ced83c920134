"""Pixel grids with a celestial WCS, for synthetic images and tests."""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS

__all__ = ["tan_wcs"]


def tan_wcs(center, pixel_scale, shape, rotation=0.0) -> WCS:
    """A gnomonic (TAN) WCS: ``center`` (RA, Dec) [deg] at the middle of a ``shape`` grid,
    ``pixel_scale`` [arcsec], north rotated by ``rotation`` [deg] east of up."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [float(center[0]), float(center[1])]
    w.wcs.crpix = [shape[1] / 2.0 + 0.5, shape[0] / 2.0 + 0.5]
    s = pixel_scale / 3600.0
    t = np.deg2rad(rotation)
    w.wcs.cd = np.array([[-s * np.cos(t), s * np.sin(t)], [s * np.sin(t), s * np.cos(t)]])
    return w
