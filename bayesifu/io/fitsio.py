"""Low-level FITS helpers shared by the readers: opening, extension look-up, WCS, units.

Files are opened with ``memmap=True``: for an uncompressed file the image arrays returned by
astropy are views of a memory map of the file, so reading a cube costs no copy of its data. For a
gzip-compressed file astropy has to decompress; it does so lazily, one extension at a time as its
``.data`` is first touched, and each extension read then lives in memory once.
"""

from __future__ import annotations

import contextlib
import re
import warnings
import zlib
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

from ..errors import BayesifuError, FileFormatError, MissingExtensionError, UnknownChannelError

__all__ = [
    "open_fits",
    "extension_names",
    "get_hdu",
    "find_hdu",
    "celestial_wcs",
    "spaxel_scale",
    "header_unit",
    "channel_names",
    "channel_index",
    "is_file_backed",
    "to_angstrom",
]


@contextlib.contextmanager
def open_fits(path):
    """Open ``path`` as FITS (memory-mapped where possible), raising :class:`FileFormatError`.

    Parameters
    ----------
    path : str or path-like
        A FITS file, optionally gzip-compressed.

    Yields
    ------
    astropy.io.fits.HDUList
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: file not found")
    if path.is_dir():
        raise FileFormatError(f"{path}: is a directory, not a FITS file")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=True, lazy_load_hdus=True)
            n_hdu = len(hdul)  # parses every header (not the data)
    except (OSError, ValueError, TypeError, EOFError, zlib.error) as err:
        raise FileFormatError(f"{path}: not a readable FITS file ({err})") from err
    for warning in caught:
        if "truncated" in str(warning.message):
            hdul.close()
            raise FileFormatError(f"{path}: file is truncated ({warning.message})")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if n_hdu == 0:
        hdul.close()
        raise FileFormatError(f"{path}: no HDU could be read")
    try:
        yield hdul
    except BayesifuError:
        raise
    except (OSError, EOFError, zlib.error) as err:
        raise FileFormatError(f"{path}: could not read the file's data ({err})") from err
    finally:
        hdul.close()


def extension_names(hdul) -> list[str]:
    """Upper-case names of every HDU (``""`` where an HDU has no ``EXTNAME``)."""
    return [hdu.name.strip().upper() for hdu in hdul]


def find_hdu(hdul, name):
    """The HDU called ``name`` (case-insensitive), or ``None``."""
    name = name.strip().upper()
    for hdu in hdul:
        if hdu.name.strip().upper() == name:
            return hdu
    return None


def get_hdu(hdul, name, path, why=""):
    """The HDU called ``name``; raises :class:`MissingExtensionError` naming file and extension."""
    hdu = find_hdu(hdul, name)
    if hdu is None:
        present = ", ".join(n for n in extension_names(hdul) if n) or "none"
        reason = f" ({why})" if why else ""
        raise MissingExtensionError(
            f"{path}: extension {name.upper()} not found{reason}; extensions present: {present}"
        )
    return hdu


def celestial_wcs(header) -> WCS | None:
    """The two-axis celestial WCS of ``header`` (``None`` if it has none).

    Header fixes that wcslib applies (e.g. ``RADECSYS`` → ``RADESYS``, ``MJD-OBS`` from
    ``DATE-OBS``) are silent: they do not change the celestial transformation.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header).celestial
        except (ValueError, KeyError, MemoryError):
            return None
    if wcs.naxis != 2 or not wcs.has_celestial:
        return None
    return wcs


def spaxel_scale(wcs) -> float | None:
    """The spaxel size [arcsec]: the geometric mean of the two pixel scales of ``wcs``.

    Uses :func:`astropy.wcs.utils.proj_plane_pixel_scales` (degrees per pixel at the reference
    point along each celestial axis).
    """
    if wcs is None:
        return None
    scales = proj_plane_pixel_scales(wcs)
    return float(np.sqrt(np.prod(scales)) * 3600.0)


def header_unit(header, key="BUNIT") -> str:
    """The unit string of a header keyword (``""`` if absent)."""
    value = header.get(key, "")
    return str(value).strip()


_CHANNEL_KEY = re.compile(r"^C(\d+)$")


def channel_names(header) -> dict[str, int]:
    """Channel names of a multi-channel extension: ``{name: 0-based index along axis 0}``.

    MaNGA DAP headers name channel ``n`` (1-based) with the keyword ``Cn`` or ``C0n``.
    """
    names = {}
    for key in header:
        match = _CHANNEL_KEY.match(key)
        if match:
            names[str(header[key]).strip()] = int(match.group(1)) - 1
    return names


def channel_index(header, channel, nchan, path, ext) -> int:
    """The index of ``channel`` (a name, or an int index) in a ``nchan``-channel extension."""
    names = channel_names(header)
    available = ", ".join(sorted(names, key=names.get)) or f"indices 0..{nchan - 1}"
    if channel is None:
        raise UnknownChannelError(
            f"{path}[{ext}]: extension has {nchan} channels; choose one with channel=...: "
            f"{available}"
        )
    if isinstance(channel, (int, np.integer)) and not isinstance(channel, bool):
        if 0 <= channel < nchan:
            return int(channel)
        raise UnknownChannelError(
            f"{path}[{ext}]: channel index {channel} out of range 0..{nchan - 1}"
        )
    lookup = {k.lower(): v for k, v in names.items()}
    key = str(channel).strip().lower()
    if key not in lookup or lookup[key] >= nchan:
        raise UnknownChannelError(
            f"{path}[{ext}]: unknown channel {channel!r}; available channels: {available}"
        )
    return lookup[key]


def is_file_backed(array) -> bool:
    """True if ``array`` is a view of a memory-mapped file (no copy of the data in memory)."""
    import mmap

    base = array
    while base is not None:
        if isinstance(base, (mmap.mmap, np.memmap)):
            return True
        base = getattr(base, "base", None)
    return False


def to_angstrom(unit_string, default="Angstrom") -> float:
    """The factor that converts a wavelength in ``unit_string`` to Angstrom."""
    text = (unit_string or default).strip() or default
    try:
        return float(u.Unit(text).to(u.AA))
    except (ValueError, u.UnitsError):
        return 1.0
