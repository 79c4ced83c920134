"""Recognise the kind of an IFU FITS file from its headers and extension names.

The kinds, and what identifies them:

``"manga-drp-cube"``
    MaNGA DRP LOGCUBE/LINCUBE: a 3-D ``FLUX`` extension and a MaNGA DRP header (``VERSDRP3`` or
    ``MASKNAME = 'MANGA_DRP3PIXMASK'``).
``"manga-dap-maps"``
    MaNGA DAP MAPS: ``DAPFRMT = 'MAPS'`` in the primary header, or ``MASKNAME =
    'MANGA_DAPPIXMASK'`` with a ``BINID`` extension.
``"manga-dap-snrg"``
    MaNGA DAP reduction-assessment file (e.g. ``*-SNRG.fits``): a ``SPECTRUM`` table of per-spaxel
    g-band signal and variance, with a ``CORREL`` table.
``"muse-cube"`` / ``"muse-image"``
    MUSE (``INSTRUME = 'MUSE'`` or an ESO ``DATA`` extension whose ``ERRDATA`` is ``STAT``):
    ``DATA`` (3-D or 2-D) with a ``STAT`` variance extension.
``"generic-cube"`` / ``"generic-map"``
    A ``FLUX`` (or ``DATA``/``SCI``) image with an ``IVAR``, ``ERR`` or ``VAR`` extension.
``"image"``
    Anything else with image data (e.g. an SDSS spectral template): no reader applies.
``"unknown"``
    No image data at all.
"""

from __future__ import annotations

from .fitsio import extension_names, find_hdu

__all__ = ["detect_format", "GENERIC_DATA_NAMES", "ERROR_SUFFIXES"]

#: Names of the value extension of a generic file, in order of preference.
GENERIC_DATA_NAMES = ("FLUX", "DATA", "SCI")
#: Kinds of error extension and how each converts to a variance.
ERROR_SUFFIXES = ("IVAR", "VAR", "ERR", "STAT")


def _ndim(hdu) -> int:
    return int(hdu.header.get("NAXIS", 0)) if hdu.is_image else 0


def _is_manga_drp(hdul) -> bool:
    flux = find_hdu(hdul, "FLUX")
    if flux is None or _ndim(flux) != 3:
        return False
    primary = hdul[0].header
    masknames = {str(h.header.get("MASKNAME", "")).strip() for h in (hdul[0], flux)}
    return "VERSDRP3" in primary or "MANGA_DRP3PIXMASK" in masknames


def _is_manga_maps(hdul) -> bool:
    primary = hdul[0].header
    if str(primary.get("DAPFRMT", "")).strip().upper() == "MAPS":
        return True
    return (
        str(primary.get("MASKNAME", "")).strip() == "MANGA_DAPPIXMASK"
        and find_hdu(hdul, "BINID") is not None
    )


def _is_muse(hdul) -> bool:
    data = find_hdu(hdul, "DATA")
    if data is None:
        return False
    instrument = str(hdul[0].header.get("INSTRUME", "")).strip().upper()
    errdata = str(data.header.get("ERRDATA", "")).strip().upper()
    return instrument == "MUSE" or errdata == "STAT"


def _generic_ndim(hdul) -> int:
    names = set(extension_names(hdul))
    for name in GENERIC_DATA_NAMES:
        hdu = find_hdu(hdul, name)
        if hdu is None or _ndim(hdu) not in (2, 3):
            continue
        for suffix in ERROR_SUFFIXES:
            if suffix in names or f"{name}_{suffix}" in names:
                return _ndim(hdu)
    return 0


def detect_format(hdul) -> str:
    """Return the kind of an open FITS file (see the module docstring for the kinds)."""
    names = set(extension_names(hdul))
    if _is_manga_maps(hdul):
        return "manga-dap-maps"
    if _is_manga_drp(hdul):
        return "manga-drp-cube"
    if "SPECTRUM" in names and "CORREL" in names:
        return "manga-dap-snrg"
    if _is_muse(hdul):
        return "muse-cube" if _ndim(find_hdu(hdul, "DATA")) == 3 else "muse-image"
    ndim = _generic_ndim(hdul)
    if ndim:
        return "generic-cube" if ndim == 3 else "generic-map"
    if any(_ndim(hdu) > 0 for hdu in hdul):
        return "image"
    return "unknown"
