"""Reader of MUSE datacubes (ESO ``DATACUBE_FINAL`` layout, as written by the MUSE pipeline).

Extensions: ``DATA`` [nwave, ny, nx] (flux, e.g. 1e-20 erg/s/cm2/Angstrom), ``STAT`` (its
variance) and ``DQ`` (data quality; any non-zero value marks a bad pixel). The celestial WCS comes
from the ``CD`` matrix of ``DATA`` (its celestial part) and the wavelengths from the spectral axis,
:math:`\\lambda_i = \\mathrm{CRVAL3} + \\mathrm{CD3\\_3}\\,(i + 1 - \\mathrm{CRPIX3})` for 0-based
``i`` (in air for ``CTYPE3 = 'AWAV'``). Weilbacher et al. (2020), A&A 641, A28,
doi:10.1051/0004-6361/202037855.

Memory: for an uncompressed file ``flux`` and ``variance`` are the file's float32 arrays, memory
mapped (no copy); only the boolean mask (``DQ != 0``, one byte per pixel) is built in memory. For a
``.gz`` file astropy must decompress: ``DATA``, ``STAT`` and ``DQ`` are each decompressed once into
memory (2 x 4 + 1 bytes per pixel, plus the mask), and the gzip stream is read from the start for
each extension, so a compressed full field costs about 3 GB and tens of seconds.
"""

from __future__ import annotations

import numpy as np

from ..containers import Cube
from .arrays import check_cube_variance, check_shapes, mask_from_bits
from .fitsio import celestial_wcs, find_hdu, get_hdu, header_unit, spaxel_scale, to_angstrom

__all__ = ["read_muse_cube", "linear_wavelengths", "wave_medium"]


def linear_wavelengths(header, n) -> np.ndarray:
    """Wavelengths [Angstrom] of the ``n`` channels of a linear FITS spectral axis 3.

    :math:`\\lambda_i = \\mathrm{CRVAL3} + \\mathrm{CD3\\_3}\\,(i + 1 - \\mathrm{CRPIX3})`, with
    ``CDELT3`` (times ``PC3_3`` if given) where ``CD3_3`` is absent, converted from ``CUNIT3``.
    """
    step = header.get("CD3_3")
    if step is None:
        step = header.get("CDELT3", 1.0) * header.get("PC3_3", 1.0)
    i = np.arange(n, dtype=float)
    wave = header.get("CRVAL3", 0.0) + step * (i + 1.0 - header.get("CRPIX3", 1.0))
    return wave * to_angstrom(header.get("CUNIT3", "Angstrom"))


def wave_medium(header, default="vacuum") -> str:
    """``"air"`` for ``CTYPE3 = 'AWAV'``, ``"vacuum"`` for ``'WAVE'``, else ``default``."""
    ctype = str(header.get("CTYPE3", "")).strip().upper()
    if ctype.startswith("AWAV"):
        return "air"
    if ctype.startswith("WAVE"):
        return "vacuum"
    return default


def read_muse_cube(hdul, path) -> Cube:
    """Read an open MUSE cube (``DATA``, ``STAT``, optional ``DQ``) into a Cube."""
    data_hdu = get_hdu(hdul, "DATA", path)
    stat_hdu = get_hdu(
        hdul, str(data_hdu.header.get("ERRDATA", "STAT")).strip(), path, "variance of DATA"
    )
    qual_name = str(data_hdu.header.get("QUALDATA", "DQ")).strip()
    dq_hdu = find_hdu(hdul, qual_name)
    flux, variance = data_hdu.data, stat_hdu.data
    dq = None if dq_hdu is None else dq_hdu.data
    check_shapes(path, "DATA", flux, **{stat_hdu.name: variance, qual_name: dq})
    mask = None if dq is None else mask_from_bits(dq, None)
    check_cube_variance(flux, variance, mask, path, stat_hdu.name)
    header = data_hdu.header
    wcs = celestial_wcs(header)
    return Cube(
        flux=flux,
        variance=variance,
        wave=linear_wavelengths(header, flux.shape[0]),
        mask=mask,
        wcs=wcs,
        wave_medium=wave_medium(header, default="air"),
        spaxel_scale=spaxel_scale(wcs),
        unit=header_unit(header) or header_unit(hdul[0].header),
        name=str(path),
        meta={"format": "muse-cube", "primary_header": hdul[0].header, "data_header": header},
    )
