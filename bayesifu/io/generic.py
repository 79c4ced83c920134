"""Readers of generic FITS cubes and maps: a value image with an error image and a WCS.

The value extension is ``FLUX`` (or ``DATA``, ``SCI``, or the one named). Its error extension is
the one named by the header key ``ERRDATA``, else the first of ``<EXT>_IVAR``, ``<EXT>_VAR``,
``<EXT>_ERR``, ``IVAR``, ``VAR``, ``ERR``, ``STAT`` present. What the error image holds comes
from its ESO ``HDUCLAS3`` key where present (``INVMSE`` inverse variance, ``MSE`` variance, ``RMSE``
standard deviation), else from its name (``IVAR``, ``VAR``/``STAT``, ``ERR``). A quality image
(``QUALDATA``, else ``<EXT>_MASK``, ``MASK``, ``DQ``) masks every pixel where it is non-zero.
Wavelengths come from a ``WAVE`` extension (1-D) if present, else from the linear spectral axis of
the header; the medium is air for ``CTYPE3 = 'AWAV'`` or a ``WAVE`` header ``MEDIUM = 'air'``,
vacuum otherwise.
"""

from __future__ import annotations

import numpy as np

from ..containers import Cube, Map
from ..errors import MissingExtensionError, ShapeError
from .arrays import check_cube_variance, check_shapes, mask_from_bits, variance_from_error
from .detect import GENERIC_DATA_NAMES
from .fitsio import celestial_wcs, channel_index, find_hdu, get_hdu, header_unit, spaxel_scale
from .muse import linear_wavelengths, wave_medium

__all__ = ["read_generic_cube", "read_generic_map", "error_extension"]

_KIND_BY_CLASS = {"INVMSE": "ivar", "MSE": "var", "RMSE": "err"}
_KIND_BY_SUFFIX = (("IVAR", "ivar"), ("VAR", "var"), ("STAT", "var"), ("ERR", "err"))


def _value_hdu(hdul, ext, path):
    if ext is not None:
        return get_hdu(hdul, ext, path)
    for name in GENERIC_DATA_NAMES:
        hdu = find_hdu(hdul, name)
        if hdu is not None:
            return hdu
    raise MissingExtensionError(
        f"{path}: no value extension ({', '.join(GENERIC_DATA_NAMES)}) found"
    )


def _kind(hdu) -> str:
    klass = str(hdu.header.get("HDUCLAS3", "")).strip().upper()
    if klass in _KIND_BY_CLASS:
        return _KIND_BY_CLASS[klass]
    name = hdu.name.strip().upper()
    for suffix, kind in _KIND_BY_SUFFIX:
        if name.endswith(suffix):
            return kind
    return "var"


def error_extension(hdul, value_hdu, path):
    """The error HDU of ``value_hdu`` and what it holds (``"ivar"``, ``"var"`` or ``"err"``)."""
    ext = value_hdu.name.strip().upper()
    if "ERRDATA" in value_hdu.header:
        hdu = get_hdu(hdul, str(value_hdu.header["ERRDATA"]).strip(), path, f"errors of {ext}")
        return hdu, _kind(hdu)
    candidates = [f"{ext}_{s}" for s in ("IVAR", "VAR", "ERR")] + ["IVAR", "VAR", "ERR", "STAT"]
    for name in candidates:
        hdu = find_hdu(hdul, name)
        if hdu is not None and hdu is not value_hdu:
            return hdu, _kind(hdu)
    raise MissingExtensionError(
        f"{path}: no error extension for {ext} (looked for ERRDATA, {', '.join(candidates)})"
    )


def _quality(hdul, value_hdu, path):
    ext = value_hdu.name.strip().upper()
    if "QUALDATA" in value_hdu.header:
        return get_hdu(hdul, str(value_hdu.header["QUALDATA"]).strip(), path, f"quality of {ext}")
    for name in (f"{ext}_MASK", "MASK", "DQ"):
        hdu = find_hdu(hdul, name)
        if hdu is not None:
            return hdu
    return None


def _wavelengths(hdul, header, n, path):
    wave_hdu = find_hdu(hdul, "WAVE")
    if wave_hdu is None:
        if "CRVAL3" not in header:
            raise MissingExtensionError(
                f"{path}: no WAVE extension and no spectral axis (CRVAL3) in the header"
            )
        return linear_wavelengths(header, n), wave_medium(header)
    wave = np.asarray(wave_hdu.data, dtype=float).ravel()
    if wave.shape != (n,):
        raise ShapeError(f"{path}: extension WAVE has {wave.size} values, flux has {n} channels")
    medium = str(wave_hdu.header.get("MEDIUM", "")).strip().lower()
    return wave, medium if medium in ("air", "vacuum") else wave_medium(header)


def read_generic_cube(hdul, path, ext=None) -> Cube:
    """Read an open generic FITS cube (value + error image, optional quality, WCS)."""
    value_hdu = _value_hdu(hdul, ext, path)
    err_hdu, kind = error_extension(hdul, value_hdu, path)
    qual_hdu = _quality(hdul, value_hdu, path)
    flux = value_hdu.data
    if flux is None or flux.ndim != 3:
        shape = None if flux is None else flux.shape
        raise ShapeError(f"{path}[{value_hdu.name}]: a cube must be 3-D, got shape {shape}")
    error = err_hdu.data
    quality = None if qual_hdu is None else qual_hdu.data
    check_shapes(path, value_hdu.name, flux, **{err_hdu.name: error})
    if qual_hdu is not None:
        check_shapes(path, value_hdu.name, flux, **{qual_hdu.name: quality})
    variance = variance_from_error(error, kind)
    extra = None if kind != "ivar" else np.isinf(variance)
    mask = None if quality is None and extra is None else mask_from_bits(quality, None, extra)
    check_cube_variance(flux, variance, mask, path, err_hdu.name)
    header = value_hdu.header
    wave, medium = _wavelengths(hdul, header, flux.shape[0], path)
    wcs = celestial_wcs(header)
    return Cube(
        flux=flux,
        variance=variance,
        wave=wave,
        mask=mask,
        wcs=wcs,
        wave_medium=medium,
        spaxel_scale=spaxel_scale(wcs),
        unit=header_unit(header),
        name=str(path),
        meta={"format": "generic-cube", "error_kind": kind, "header": header},
    )


def read_generic_map(hdul, path, ext=None, channel=None) -> Map:
    """Read an open generic FITS map (2-D, or one channel of a 3-D image) with its errors."""
    value_hdu = _value_hdu(hdul, ext, path)
    name = value_hdu.name.strip().upper()
    err_hdu, kind = error_extension(hdul, value_hdu, path)
    qual_hdu = _quality(hdul, value_hdu, path)
    data, error = value_hdu.data, err_hdu.data
    if data is None or data.ndim not in (2, 3):
        shape = None if data is None else data.shape
        raise ShapeError(f"{path}[{name}]: a map must be 2-D (or 3-D with channels), got {shape}")
    check_shapes(path, name, data, **{err_hdu.name: error})
    quality = None if qual_hdu is None else qual_hdu.data
    if quality is not None:
        check_shapes(path, name, data, **{qual_hdu.name: quality})
    if data.ndim == 3:
        k = channel_index(value_hdu.header, channel, data.shape[0], path, name)
        data, error = data[k], error[k]
        quality = None if quality is None else quality[k]
    variance = np.asarray(variance_from_error(np.asarray(error, dtype=float), kind))
    mask = ~np.isfinite(data) if kind != "ivar" else np.isinf(variance) | ~np.isfinite(data)
    if quality is not None:
        mask |= np.asarray(quality) != 0
    wcs = celestial_wcs(value_hdu.header)
    return Map(
        data=np.asarray(data, dtype=float),
        variance=np.where(mask & ~np.isfinite(variance), np.inf, variance),
        mask=mask,
        wcs=wcs,
        unit=header_unit(value_hdu.header),
        name=f"{path}[{name}]" if channel is None else f"{path}[{name}, channel {channel}]",
        meta={"format": "generic-map", "error_kind": kind, "header": value_hdu.header},
    )
