"""Broadband images from FITS files: data, variance, WCS and units, into one flux-density unit.

An :class:`Image` is one band: ``data [ny, nx]`` as a flux density *per pixel* in
:data:`DEFAULT_UNIT` (or the unit asked for), its variance, a mask, the celestial WCS and the
:class:`~bayesifu.imaging.filters.Band`. :func:`read_image` converts from

* :math:`f_\\nu` units (``nanomaggy``, ``Jy``, ``erg/s/cm2/Hz``, ...) to :math:`f_\\lambda` at the
  band's pivot wavelength, :math:`f_\\lambda = f_\\nu\\,c/\\lambda_p^2`;
* surface brightness (``MJy/sr``, ``erg/s/cm2/A/arcsec2``, ...) by the pixel solid angle that the
  WCS gives (:func:`astropy.wcs.utils.proj_plane_pixel_area`);
* counts (``counts``, ``DN``, ``ADU``, ``electron``, optionally per second) with an AB zero point
  :math:`m = {\\rm ZP} - 2.5\\log_{10} N` (header ``MAGZP``, ``MAGZERO``, ``ZEROPT``, ``PHOTZP``,
  ``ZP``, or the ``zeropoint`` argument): :math:`f_\\nu = N\\,10^{-0.4\\,{\\rm ZP}}\\times 3631`
  Jy.

Variances scale by the square of the same factor. A variance can come from an extension of the
same file (``VARIANCE``/``VAR``; ``IVAR``/``WEIGHT``/``WHT`` as inverse variance; ``ERR``/``SIGMA``
as standard deviation) or from another file.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_area

from ..errors import EmptyDataError, FileFormatError, InputError, ShapeError, VarianceError
from ..io.fitsio import celestial_wcs, find_hdu, open_fits, spaxel_scale
from .filters import Band, load_band

__all__ = ["Image", "read_image", "to_flux_density", "DEFAULT_UNIT", "ZEROPOINT_KEYS"]

#: The flux-density unit of matched images unless another is asked for (per pixel).
DEFAULT_UNIT = u.Unit("1e-17 erg / (s cm2 Angstrom)")
#: Header keywords read, in this order, for the AB zero point of an image in counts.
ZEROPOINT_KEYS = ("MAGZP", "MAGZERO", "ZEROPT", "PHOTZP", "ZP", "MAGZPT")
#: Extension names of variance maps and how to turn them into a variance.
VARIANCE_EXTENSIONS = {
    "VARIANCE": "variance",
    "VAR": "variance",
    "IVAR": "ivar",
    "INVVAR": "ivar",
    "WEIGHT": "ivar",
    "WHT": "ivar",
    "ERR": "error",
    "ERROR": "error",
    "SIGMA": "error",
    "STD": "error",
}
_PSF_KEYS = ("PSF_FWHM", "PSFFWHM", "SEEING", "FWHM")
_FILTER_KEYS = ("FILTER", "BAND", "FILTNAM1", "FILTER1")
_COUNT_UNITS = (u.count, u.adu, u.electron, u.dn)
_ALIASES = {
    "nanomaggy": "nmgy",
    "nanomaggies": "nmgy",
    "nmgys": "nmgy",
    "maggies": "mgy",
    "counts": "count",
    "dn": "DN",
    "adus": "adu",
    "e-": "electron",
    "e-/s": "electron/s",
}


@dataclass
class Image:
    """One band of imaging on its own pixel grid, in a flux-density unit per pixel.

    Parameters
    ----------
    data : numpy.ndarray, shape (ny, nx)
        Flux density per pixel [``unit``].
    variance : numpy.ndarray, shape (ny, nx)
        Variance per pixel [``unit**2``], independent between pixels; finite and >= 0 where
        unmasked.
    wcs : astropy.wcs.WCS
        The celestial WCS (two axes).
    band : Band
        The filter curve and PSF FWHM [arcsec].
    mask : numpy.ndarray of bool, shape (ny, nx), optional
        ``True`` = do not use; non-finite data or variance are masked.
    unit : astropy.units.Unit
        The unit of ``data`` (a flux density, per pixel).
    name : str
        Where the image came from, used in messages.
    meta : dict
        Anything else (the header, the original unit and the conversion factor).
    """

    data: np.ndarray
    variance: np.ndarray
    wcs: WCS
    band: Band
    mask: np.ndarray | None = None
    unit: u.UnitBase = DEFAULT_UNIT
    name: str = "image"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.data = np.asarray(self.data, dtype=float)
        self.variance = np.asarray(self.variance, dtype=float)
        if self.data.ndim != 2:
            raise ShapeError(f"{self.name}: image must be 2-D [ny, nx], got {self.data.shape}")
        if self.variance.shape != self.data.shape:
            raise ShapeError(
                f"{self.name}: variance shape {self.variance.shape} does not match the image "
                f"{self.data.shape}"
            )
        if self.wcs is None or not getattr(self.wcs, "has_celestial", False):
            raise InputError(f"{self.name}: an image needs a celestial WCS")
        if self.wcs.naxis != 2:
            self.wcs = self.wcs.celestial
        mask = np.zeros(self.data.shape, bool) if self.mask is None else np.asarray(self.mask)
        if mask.shape != self.data.shape:
            raise ShapeError(f"{self.name}: mask shape {mask.shape} does not match the image")
        self.mask = mask.astype(bool) | ~np.isfinite(self.data) | ~np.isfinite(self.variance)
        negative = ~self.mask & (self.variance < 0)
        if negative.any():
            raise VarianceError(
                f"{self.name}: {int(negative.sum())} unmasked pixel(s) have a negative variance "
                f"(smallest {self.variance[negative].min():.3g}); a variance is >= 0"
            )
        if self.mask.all():
            raise EmptyDataError(f"{self.name}: every pixel is masked; nothing to match")
        self.unit = u.Unit(self.unit)

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return self.data.shape

    @property
    def pixel_scale(self) -> float:
        """The pixel size [arcsec] (geometric mean of the two axes)."""
        return spaxel_scale(self.wcs)


def _parse_unit(text, where):
    text = str(text).strip()
    key = _ALIASES.get(text.lower(), text)
    key = re.sub(r"(?<![A-Za-z])(A|AA|Ang)(?![A-Za-z])", "Angstrom", key)  # never Ampere here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", u.UnitsWarning)  # "multiple slashes"
            return u.Unit(key, parse_strict="raise")
    except ValueError as err:
        raise FileFormatError(f"{where}: cannot read the unit {text!r} ({err})") from err


def _is_counts(unit):
    for base in _COUNT_UNITS:
        for rate in (u.one, 1 / u.s):
            if unit.is_equivalent(base * rate):
                return True
    return False


def to_flux_density(unit, band: Band, wcs, *, zeropoint=None, out_unit=DEFAULT_UNIT, where=""):
    """The factor that turns a value in ``unit`` into a flux density per pixel in ``out_unit``.

    Parameters
    ----------
    unit : str or astropy.units.Unit
        The image unit: an :math:`f_\\nu` or :math:`f_\\lambda` flux density, a surface
        brightness (per solid angle), or counts (per second) with ``zeropoint``.
    band : Band
        The band, whose pivot wavelength [Angstrom] converts :math:`f_\\nu` to :math:`f_\\lambda`.
    wcs : astropy.wcs.WCS
        The image WCS, for the pixel solid angle [sr] of surface brightnesses.
    zeropoint : float, optional
        AB magnitude of one count (per second), for count units.
    out_unit : str or astropy.units.Unit
        The flux-density unit wanted (per pixel).
    where : str
        The image's name, for messages.

    Returns
    -------
    float
        The multiplicative factor [``out_unit`` per ``unit``].
    """
    unit = _parse_unit(unit, where) if isinstance(unit, str) else u.Unit(unit)
    out_unit = u.Unit(out_unit)
    pivot = band.pivot * u.AA
    if _is_counts(unit):
        if zeropoint is None:
            raise InputError(
                f"{where}: the image is in {unit} and needs an AB zero point (header "
                f"{'/'.join(ZEROPOINT_KEYS)} or zeropoint=...)"
            )
        per_count = 10 ** (-0.4 * float(zeropoint)) * 3631.0 * u.Jy
        return float(per_count.to(out_unit, u.spectral_density(pivot)).value)
    equivalency = u.spectral_density(pivot)
    quantity = 1.0 * unit
    if "mgy" in unit.to_string():  # maggies: astropy's are dimensionless, 1 maggy = 3631 Jy
        quantity = (quantity * (3631.0 * u.Jy / u.mgy)).decompose()
        unit = quantity.unit
    if not unit.is_equivalent(out_unit, equivalency) and (unit * u.sr).is_equivalent(
        out_unit, equivalency
    ):  # a surface brightness: times the pixel solid angle
        quantity = quantity * (proj_plane_pixel_area(wcs) * u.deg**2).to(u.sr)
    try:
        return float(quantity.to(out_unit, equivalency).value)
    except u.UnitConversionError as err:
        raise InputError(
            f"{where}: the unit {unit} is not a flux density, a surface brightness or counts "
            f"that can become {out_unit}"
        ) from err


def _first_image_hdu(hdul, ext, path):
    if ext is not None:
        hdu = hdul[ext] if isinstance(ext, int) else find_hdu(hdul, str(ext))
        if hdu is None or hdu.data is None or np.ndim(hdu.data) != 2:
            raise FileFormatError(f"{path}: extension {ext!r} holds no 2-D image")
        return hdu
    for hdu in hdul:
        if hdu.is_image and hdu.data is not None and hdu.data.ndim == 2:
            if hdu.name.strip().upper() not in VARIANCE_EXTENSIONS:
                return hdu
    raise FileFormatError(f"{path}: no 2-D image HDU found")


def _header_value(headers, keys):
    for header in headers:
        for key in keys:
            if key in header and str(header[key]).strip():
                return header[key]
    return None


def _variance_from(array, kind, where):
    array = np.asarray(array, dtype=float)
    if kind == "variance":
        return array
    if kind == "error":
        if np.any(array[np.isfinite(array)] < 0):
            raise VarianceError(f"{where}: the error map has negative values")
        return array**2
    if kind == "ivar":
        if np.any(array[np.isfinite(array)] < 0):
            raise VarianceError(f"{where}: the inverse-variance (weight) map has negative values")
        with np.errstate(divide="ignore"):
            return np.where(array > 0, 1.0 / np.where(array > 0, array, 1.0), np.inf)
    raise InputError(f"{where}: variance kind must be variance, ivar or error, got {kind!r}")


def _read_variance(hdul, variance, kind, path, shape):
    """The variance map (in the image's unit squared) and a description of its source."""
    if variance is None:
        for name, default_kind in VARIANCE_EXTENSIONS.items():
            hdu = find_hdu(hdul, name)
            if hdu is not None and hdu.data is not None:
                return _variance_from(hdu.data, kind or default_kind, f"{path}[{name}]"), name
        raise FileFormatError(
            f"{path}: no variance map (extensions {', '.join(VARIANCE_EXTENSIONS)}); give "
            "variance=... (an extension, a file or an array)"
        )
    if isinstance(variance, np.ndarray):
        out = _variance_from(variance, kind or "variance", f"{path} variance")
        src = "array"
    elif isinstance(variance, str) and find_hdu(hdul, variance) is not None:
        hdu = find_hdu(hdul, variance)
        out = _variance_from(
            hdu.data,
            kind or VARIANCE_EXTENSIONS.get(variance.upper(), "variance"),
            f"{path}[{variance}]",
        )
        src = variance.upper()
    else:
        with open_fits(variance) as vhdul:
            hdu = _first_image_hdu(vhdul, None, variance)
            out = _variance_from(np.array(hdu.data), kind or "variance", str(variance))
        src = str(variance)
    if out.shape != shape:
        raise ShapeError(f"{path}: variance map {src} has shape {out.shape}, image {shape}")
    return out, src


def read_image(
    path,
    band=None,
    *,
    ext=None,
    variance=None,
    variance_kind=None,
    unit=None,
    zeropoint=None,
    psf_fwhm=None,
    psf=None,
    out_unit=DEFAULT_UNIT,
) -> Image:
    """Read one band of imaging from a FITS file into an :class:`Image`.

    Parameters
    ----------
    path : str or path-like
        The FITS file.
    band : str or Band, optional
        The filter (speclite name or alias, see :func:`~bayesifu.imaging.load_band`); default the
        header's ``FILTER``/``BAND`` keyword.
    ext : int or str, optional
        The image extension; default the first 2-D image that is not a variance map.
    variance : str, path-like or numpy.ndarray, optional
        The variance: an extension name of the same file, another FITS file or an array; default
        the first of the extensions in :data:`VARIANCE_EXTENSIONS`.
    variance_kind : {"variance", "ivar", "error"}, optional
        What ``variance`` holds; default from the extension name (``variance`` otherwise).
    unit : str or astropy.units.Unit, optional
        The image unit; default the header's ``BUNIT``.
    zeropoint : float, optional
        AB zero point for count units; default from the header (:data:`ZEROPOINT_KEYS`).
    psf_fwhm : float, optional
        PSF FWHM [arcsec]; default the header's ``PSF_FWHM``/``SEEING``/``FWHM``.
    psf : PSF object or str or path-like, optional
        The image's PSF as a :class:`~bayesifu.imaging.psf.ImagePSF`, Moffat or Gaussian PSF, or
        a FITS file with the PSF image (:func:`~bayesifu.imaging.psf.read_psf`); used for the
        matching kernel instead of a Gaussian of ``psf_fwhm``.
    out_unit : str or astropy.units.Unit
        The flux-density unit (per pixel) of the result.

    Raises
    ------
    FileFormatError
        No image, no celestial WCS, no unit, or no variance map, naming the file.
    InputError
        No filter curve for the band, or counts without a zero point.
    VarianceError
        Negative variances (or weights).
    """
    path = Path(path)
    with open_fits(path) as hdul:
        hdu = _first_image_hdu(hdul, ext, path)
        headers = [hdu.header, hdul[0].header]
        where = f"{path}[{hdu.name or ext or 0}]"
        data = np.array(hdu.data, dtype=float)
        wcs = celestial_wcs(hdu.header)
        if wcs is None:
            raise FileFormatError(f"{where}: the image has no celestial WCS (CTYPE/CRVAL/CD)")
        var, var_src = _read_variance(hdul, variance, variance_kind, where, data.shape)
        unit = unit if unit is not None else _header_value(headers, ("BUNIT",))
        if unit is None:
            raise FileFormatError(
                f"{where}: the image has no unit (header BUNIT); give unit=... (e.g. nanomaggy, "
                "MJy/sr, counts with a zero point)"
            )
        band = band if band is not None else _header_value(headers, _FILTER_KEYS)
        if band is None:
            raise InputError(f"{where}: no band given and no FILTER keyword in the header")
        if zeropoint is None:
            zeropoint = _header_value(headers, ZEROPOINT_KEYS)
        if psf_fwhm is None:
            psf_fwhm = _header_value(headers, _PSF_KEYS)
        header = hdu.header.copy()
    meta = {}
    if psf is not None:
        from .psf import as_psf, read_psf

        psf = as_psf(psf) if not isinstance(psf, (str, Path)) else read_psf(psf)
        meta["psf"] = psf
        psf_fwhm = psf.fwhm
    band = load_band(band, psf_fwhm)
    factor = to_flux_density(unit, band, wcs, zeropoint=zeropoint, out_unit=out_unit, where=where)
    return Image(
        data=data * factor,
        variance=var * factor**2,
        wcs=wcs,
        band=band,
        unit=out_unit,
        name=where,
        meta={
            **meta,
            "header": header,
            "unit_in": str(unit),
            "factor": factor,
            "variance": var_src,
            "zeropoint": None if zeropoint is None else float(zeropoint),
        },
    )
