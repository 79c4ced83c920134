"""Reader of MaNGA DRP datacubes (``manga-*-LOGCUBE.fits[.gz]`` and ``LINCUBE``).

Layout (DRP v2/v3 datamodel): ``FLUX`` [nwave, ny, nx] (1e-17 erg/s/cm2/Angstrom/spaxel),
``IVAR`` (inverse variance), ``MASK`` (``MANGA_DRP3PIXMASK`` bits), ``WAVE`` (vacuum wavelengths
[Angstrom]), ``SPECRES``/``SPECRESD`` (median and spread of the resolving power per channel) and the
broad-band correlation tables ``GCORREL``, ``RCORREL``, ``ICORREL``, ``ZCORREL`` (columns
``INDXI_C1, INDXI_C2, INDXJ_C1, INDXJ_C2, RHOIJ``; header ``COVSHAPE``, ``BBINDEX``), see
Law et al. (2016), AJ 152, 83, doi:10.3847/0004-6256/152/4/83 and Westfall et al. (2019), AJ 158,
231, doi:10.3847/1538-3881/ab44a2.

Masked pixels (``True`` = do not use) are those with any of the ``MANGA_DRP3PIXMASK`` bits
``NOCOV`` (0), ``LOWCOV`` (1), ``DEADFIBER`` (2), ``FORESTAR`` (3) or ``DONOTUSE`` (10) set, and
those with ``IVAR <= 0``. The DRP sets ``DONOTUSE`` whenever one of the other four is set; they are
tested explicitly too so that a file where that consolidation is missing is still read safely.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from ..containers import Cube
from .arrays import (
    check_cube_variance,
    check_shapes,
    mask_from_bits,
    nonpositive,
    variance_from_error,
)
from .fitsio import celestial_wcs, find_hdu, get_hdu, header_unit, spaxel_scale

__all__ = ["read_manga_cube", "DRP_MASK_BITS", "CORRELATION_EXTENSIONS"]

#: ``MANGA_DRP3PIXMASK`` bits that make a pixel unusable.
DRP_MASK_BITS = {"NOCOV": 0, "LOWCOV": 1, "DEADFIBER": 2, "FORESTAR": 3, "DONOTUSE": 10}
#: The broad-band spatial correlation tables a LOGCUBE may carry.
CORRELATION_EXTENSIONS = ("GCORREL", "RCORREL", "ICORREL", "ZCORREL")
#: Header keys kept in each correlation table's ``meta``.
_CORREL_KEYS = ("COVSHAPE", "BBINDEX", "BBWAVE", "BBFILTER", "COVTYPE", "COVCHANS")


def read_correlation_table(hdu) -> Table:
    """A DRP/DAP ``*CORREL`` binary table as an astropy Table, header keys in ``meta``."""
    table = Table(np.asarray(hdu.data))
    for key in _CORREL_KEYS:
        if key in hdu.header:
            table.meta[key] = hdu.header[key]
    table.meta["EXTNAME"] = hdu.name
    return table


def read_manga_cube(hdul, path) -> Cube:
    """Read an open MaNGA DRP LOGCUBE/LINCUBE into a :class:`~bayesifu.Cube`.

    ``flux`` is the file's float32 ``FLUX`` array (a memory map for an uncompressed file);
    ``variance`` is ``1 / IVAR`` as float32 (``inf`` where ``IVAR <= 0``).
    """
    flux_hdu = get_hdu(hdul, "FLUX", path)
    ivar_hdu = get_hdu(hdul, "IVAR", path, "inverse variance of FLUX")
    mask_hdu = get_hdu(hdul, "MASK", path, "MANGA_DRP3PIXMASK quality bits")
    wave_hdu = get_hdu(hdul, "WAVE", path, "vacuum wavelengths")
    flux, ivar, bits = flux_hdu.data, ivar_hdu.data, mask_hdu.data
    check_shapes(path, "FLUX", flux, IVAR=ivar, MASK=bits)
    wave = np.asarray(wave_hdu.data, dtype=float).ravel()
    variance = variance_from_error(ivar, "ivar")
    mask = mask_from_bits(bits, DRP_MASK_BITS.values(), extra=nonpositive(ivar))
    check_cube_variance(flux, variance, mask, path, "IVAR")
    wcs = celestial_wcs(flux_hdu.header)
    specres = find_hdu(hdul, "SPECRES")
    meta = {
        "format": "manga-drp-cube",
        "sampling": "log" if "LOG" in str(flux_hdu.header.get("CTYPE3", "")).upper() else "linear",
        "primary_header": hdul[0].header,
        "flux_header": flux_hdu.header,
    }
    specresd = find_hdu(hdul, "SPECRESD")
    if specresd is not None:
        meta["spectral_resolution_sigma"] = np.asarray(specresd.data, dtype=float)
    tables = {
        name: read_correlation_table(find_hdu(hdul, name))
        for name in CORRELATION_EXTENSIONS
        if find_hdu(hdul, name) is not None
    }
    return Cube(
        flux=flux,
        variance=variance,
        wave=wave,
        mask=mask,
        wcs=wcs,
        wave_medium="vacuum",
        spaxel_scale=spaxel_scale(wcs),
        unit=header_unit(flux_hdu.header),
        spectral_resolution=None if specres is None else np.asarray(specres.data, float),
        correlation_tables=tables,
        name=str(path),
        meta=meta,
    )
