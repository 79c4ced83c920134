"""Data containers: :class:`Map` (one value per spaxel) and :class:`Cube` (a spectrum per spaxel).

Both are plain dataclasses validated in the constructor. Arrays follow numpy/FITS order: a map is
``[ny, nx]`` (row = y = FITS axis 2, column = x = FITS axis 1) and a cube is ``[nwave, ny, nx]``.
A mask is boolean with ``True`` meaning *do not use*.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.wcs import WCS

from .errors import EmptyDataError, InputError, ShapeError, VarianceError

__all__ = ["Map", "Cube"]

#: Channels read at once where a whole cube is reduced channel block by channel block: bounds
#: the memory of a whole MUSE field (300 x 300 spaxels: about 0.75 GB of float64 work arrays
#: per block, not the cube's 5 GB).
CHANNEL_BLOCK = 256


def usable_channels(flux, variance, mask, idx):
    """Flux and variance (float64) of the channels ``idx`` of ``[nwave, ...]`` arrays (memory
    maps are read only there), and the unusable pixels: non-finite flux or variance,
    non-positive variance, or ``mask``."""
    idx = np.asarray(idx, dtype=int)
    f = np.asarray(flux[idx], dtype=float)
    v = np.asarray(variance[idx], dtype=float)
    bad = ~np.isfinite(f) | ~np.isfinite(v) | (v <= 0)
    if mask is not None:
        bad |= np.asarray(mask[idx], dtype=bool)
    return f, v, bad


def _check_variance(variance, mask, name, what="variance"):
    """Raise :class:`VarianceError` if an unmasked variance is NaN, infinite, zero or negative."""
    good = ~mask
    v = variance[good]
    bad_nan = ~np.isfinite(v)
    if bad_nan.any():
        raise VarianceError(
            f"{name}: {int(bad_nan.sum())} unmasked spaxel(s) have a NaN or infinite {what}; "
            "mask them or give a finite variance"
        )
    bad_neg = v <= 0
    if bad_neg.any():
        raise VarianceError(
            f"{name}: {int(bad_neg.sum())} unmasked spaxel(s) have a zero or negative {what} "
            f"(smallest {v.min():.3g}); mask them or give a positive variance"
        )


@dataclass
class Map:
    """A two-dimensional map with per-spaxel variance.

    Parameters
    ----------
    data : array_like, shape (ny, nx)
        The measured values (e.g. a velocity [km/s]).
    variance : array_like, shape (ny, nx)
        The variance of each value [unit**2]. Must be finite and positive in unmasked spaxels.
    mask : array_like of bool, shape (ny, nx), optional
        ``True`` where a spaxel must not be used. NaN data are masked automatically.
    wcs : astropy.wcs.WCS, optional
        The celestial WCS of the map (two axes).
    unit : str, optional
        The unit of ``data`` (e.g. ``"km/s"``).
    binid : array_like of int, shape (ny, nx), optional
        For binned quantities: the bin each spaxel belongs to (``-1`` for none). Every spaxel of a
        bin carries the bin's value; :attr:`bins` gives the unique bins.
    name : str, optional
        What the map is (file and extension), used in messages.
    meta : dict, optional
        Anything else (e.g. the FITS header).
    """

    data: np.ndarray
    variance: np.ndarray
    mask: np.ndarray | None = None
    wcs: WCS | None = None
    unit: str = ""
    binid: np.ndarray | None = None
    name: str = "map"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.data = np.asarray(self.data, dtype=float)
        self.variance = np.asarray(self.variance, dtype=float)
        if self.data.ndim != 2:
            raise ShapeError(f"{self.name}: data must be 2-D [ny, nx], got shape {self.data.shape}")
        if self.variance.shape != self.data.shape:
            raise ShapeError(
                f"{self.name}: variance shape {self.variance.shape} does not match data shape "
                f"{self.data.shape}"
            )
        mask = np.zeros(self.data.shape, bool) if self.mask is None else np.asarray(self.mask)
        if mask.shape != self.data.shape:
            raise ShapeError(
                f"{self.name}: mask shape {mask.shape} does not match data shape {self.data.shape}"
            )
        self.mask = mask.astype(bool) | ~np.isfinite(self.data)
        if self.binid is not None:
            self.binid = np.asarray(self.binid, dtype=int)
            if self.binid.shape != self.data.shape:
                raise ShapeError(
                    f"{self.name}: binid shape {self.binid.shape} does not match data shape "
                    f"{self.data.shape}"
                )
            self.mask |= self.binid < 0
        if self.wcs is not None and self.wcs.naxis != 2:
            raise InputError(f"{self.name}: wcs must have 2 celestial axes, got {self.wcs.naxis}")
        if self.mask.all():
            raise EmptyDataError(f"{self.name}: every spaxel is masked; nothing to use")
        _check_variance(self.variance, self.mask, self.name)

    @property
    def shape(self) -> tuple[int, int]:
        """The grid shape ``(ny, nx)``."""
        return self.data.shape

    @property
    def good(self) -> np.ndarray:
        """Boolean map of the spaxels in use (``~mask``)."""
        return ~self.mask

    @property
    def n_good(self) -> int:
        """The number of spaxels in use."""
        return int(self.good.sum())

    @property
    def is_binned(self) -> bool:
        """True if some spaxels in use share a bin (``binid``). Per-spaxel maps may carry a
        ``binid`` with one spaxel per bin (the emission lines of a MaNGA HYB10 MAPS file): those
        are not binned."""
        if self.binid is None:
            return False
        ids = self.binid[self.good]
        return np.unique(ids).size < ids.size

    @property
    def bins(self) -> np.ndarray:
        """The unique bin ids in use (sorted), for binned maps; raises if the map is not binned."""
        if self.binid is None:
            raise InputError(f"{self.name}: the map carries no bin ids")
        return np.unique(self.binid[self.good])

    def bin_values(self):
        """Return ``(bins, values, variances, first_spaxel)`` with one entry per unique bin in use.

        ``first_spaxel`` is the flat (row-major) index of one spaxel of each bin.
        """
        bins = self.bins
        flat_id = np.where(self.good, self.binid, -1).ravel()
        first = np.array([np.flatnonzero(flat_id == b)[0] for b in bins])
        return bins, self.data.ravel()[first], self.variance.ravel()[first], first

    def coordinates(self):
        """Pixel coordinates ``(x, y)`` of every spaxel, each shaped ``[ny, nx]`` (0-based)."""
        y, x = np.indices(self.shape, dtype=float)
        return x, y


@dataclass
class Cube:
    """A spectral cube with per-pixel variance.

    Parameters
    ----------
    flux : array_like, shape (nwave, ny, nx)
        Flux density. May be a memory-mapped array: it is not copied.
    variance : array_like, shape (nwave, ny, nx)
        Variance of the flux [flux unit**2]; ``inf`` or masked where unusable.
    wave : array_like, shape (nwave,)
        Wavelength of each channel [Angstrom].
    mask : array_like of bool, shape (nwave, ny, nx), optional
        ``True`` where a pixel must not be used.
    wcs : astropy.wcs.WCS, optional
        The celestial WCS (two axes).
    wave_medium : {"air", "vacuum"}
        Whether ``wave`` is in air or in vacuum.
    spaxel_scale : float, optional
        The spaxel size [arcsec].
    unit : str
        The flux unit.
    spectral_resolution : array_like, shape (nwave,), optional
        Resolving power R = lambda / FWHM per channel, where the file gives it.
    correlation_tables : dict, optional
        Correlation tables carried by the file, e.g. ``{"GCORREL": astropy.table.Table}``; read them
        with :meth:`bayesifu.SpatialCorrelation.from_table`.
    name : str
        What the cube is (its file), used in messages.
    meta : dict
        Anything else (e.g. the primary header).
    """

    flux: np.ndarray
    variance: np.ndarray
    wave: np.ndarray
    mask: np.ndarray | None = None
    wcs: WCS | None = None
    wave_medium: str = "air"
    spaxel_scale: float | None = None
    unit: str = ""
    spectral_resolution: np.ndarray | None = None
    correlation_tables: dict = field(default_factory=dict)
    name: str = "cube"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.flux.ndim != 3:
            raise ShapeError(
                f"{self.name}: flux must be 3-D [nwave, ny, nx], not {self.flux.shape}"
            )
        if self.variance.shape != self.flux.shape:
            raise ShapeError(
                f"{self.name}: variance shape {self.variance.shape} does not match flux shape "
                f"{self.flux.shape}"
            )
        self.wave = np.asarray(self.wave, dtype=float)
        if self.wave.shape != (self.flux.shape[0],):
            raise ShapeError(
                f"{self.name}: wave has shape {self.wave.shape}, expected ({self.flux.shape[0]},)"
            )
        if np.any(np.diff(self.wave) <= 0):
            raise InputError(f"{self.name}: wave must increase strictly")
        if self.mask is not None and self.mask.shape != self.flux.shape:
            raise ShapeError(
                f"{self.name}: mask shape {self.mask.shape} does not match flux shape "
                f"{self.flux.shape}"
            )
        if self.wave_medium not in ("air", "vacuum"):
            raise InputError(f"{self.name}: wave_medium must be 'air' or 'vacuum'")
        if self.wcs is not None and self.wcs.naxis != 2:
            raise InputError(f"{self.name}: wcs must have 2 celestial axes, got {self.wcs.naxis}")
        if self.spectral_resolution is not None:
            self.spectral_resolution = np.asarray(self.spectral_resolution, dtype=float)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nwave, ny, nx)``."""
        return self.flux.shape

    @property
    def spatial_shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return self.flux.shape[1:]

    def channel_mask(self, k: int) -> np.ndarray:
        """Boolean ``[ny, nx]`` mask of channel ``k``: the cube mask plus non-finite or non-positive
        variance and non-finite flux."""
        v = np.asarray(self.variance[k], dtype=float)
        f = np.asarray(self.flux[k], dtype=float)
        m = ~np.isfinite(v) | (v <= 0) | ~np.isfinite(f)
        if self.mask is not None:
            m |= np.asarray(self.mask[k], dtype=bool)
        return m

    def channel_map(self, k: int) -> Map:
        """Channel ``k`` as a :class:`Map` (masked where the variance is unusable)."""
        m = self.channel_mask(k)
        v = np.where(m, 1.0, np.asarray(self.variance[k], dtype=float))
        f = np.where(m, 0.0, np.asarray(self.flux[k], dtype=float))
        return Map(f, v, mask=m, wcs=self.wcs, unit=self.unit, name=f"{self.name}[channel {k}]")

    def masked_fraction(self, chunk: int = 256) -> float:
        """Fraction of pixels that are masked, computed over channel chunks to bound memory."""
        n_bad = 0
        for k0 in range(0, self.flux.shape[0], chunk):
            sl = slice(k0, k0 + chunk)
            v = np.asarray(self.variance[sl])
            bad = ~np.isfinite(v) | (v <= 0) | ~np.isfinite(np.asarray(self.flux[sl]))
            if self.mask is not None:
                bad |= np.asarray(self.mask[sl], dtype=bool)
            n_bad += int(bad.sum())
        return n_bad / self.flux.size
