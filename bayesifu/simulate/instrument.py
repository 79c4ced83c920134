"""A simulated IFU: native samples, the resampling operator ``T`` and noisy maps and cubes.

:func:`manga_like` and :func:`muse_like` build a :class:`SimulatedIFU`; its
:meth:`~SimulatedIFU.velocity_map` and :meth:`~SimulatedIFU.cube` return data with known truth
whose noise is exactly ``T (sqrt(N) * z)``, ``z`` standard normal on the native samples, so that
the spaxel covariance is exactly ``T N T^T`` (:meth:`~SimulatedIFU.covariance`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from astropy.wcs import WCS

from ..containers import Cube, Map
from ..correlation import SpatialCorrelation
from ..errors import InputError, ShapeError, VarianceError
from .galaxy import DiskParams, disk_velocity, exponential_surface_brightness
from .resampling import covariance_to_correlation, spaxel_covariance

__all__ = ["SimulatedIFU", "LineCubeSpec", "SPEED_OF_LIGHT"]

SPEED_OF_LIGHT = 299792.458
"""Speed of light [km/s]."""

DENSE_LIMIT = 20000
"""Largest grid (spaxels) for which :meth:`SimulatedIFU.covariance` returns a dense array."""


def _default_wave():
    return np.arange(6480.0, 6660.0, 1.0)


@dataclass(frozen=True)
class LineCubeSpec:
    """A simple emission-line + continuum spectrum for :meth:`SimulatedIFU.cube`.

    The noiseless cube is
    :math:`F(\\lambda, x, y) = I(x, y) \\, [c + a \\exp(-(\\lambda - \\lambda_c)^2 / 2 s^2)]`
    with :math:`I = \\exp(-R / h)` the disk's exponential surface brightness,
    :math:`\\lambda_c = \\lambda_0 (1 + v(x, y) / c)` (first order in v/c) and
    :math:`s = \\lambda_c \\sigma_v / c`.

    Parameters
    ----------
    wave : array_like
        Channel wavelengths [Angstrom], strictly increasing.
    line_rest : float
        Rest wavelength :math:`\\lambda_0` [Angstrom] (default H-alpha in vacuum).
    line_sigma : float
        Line-of-sight velocity dispersion :math:`\\sigma_v` [km/s], > 0.
    line_peak : float
        Line peak :math:`a` at the centre [flux unit].
    continuum : float
        Continuum level :math:`c` at the centre [flux unit].
    scale_length : float
        Disk scale length :math:`h` [spaxel], > 0.
    wave_medium : {"air", "vacuum"}
        Medium of ``wave`` and ``line_rest``.
    """

    wave: np.ndarray = field(default_factory=_default_wave)
    line_rest: float = 6564.61
    line_sigma: float = 60.0
    line_peak: float = 1.0
    continuum: float = 0.2
    scale_length: float = 5.0
    wave_medium: str = "vacuum"

    def __post_init__(self):
        wave = np.asarray(self.wave, dtype=float)
        if wave.ndim != 1 or wave.size < 2 or np.any(np.diff(wave) <= 0):
            raise InputError("LineCubeSpec.wave must be a 1-D strictly increasing array")
        object.__setattr__(self, "wave", wave)
        if not (self.line_sigma > 0 and self.line_rest > 0 and self.scale_length > 0):
            raise InputError(
                "LineCubeSpec: line_sigma [km/s], line_rest [Angstrom] and scale_length "
                f"[spaxel] must be positive, got {self.line_sigma}, {self.line_rest}, "
                f"{self.scale_length}"
            )
        if self.wave_medium not in ("air", "vacuum"):
            raise InputError(f"LineCubeSpec.wave_medium = {self.wave_medium!r}: 'air' or 'vacuum'")

    def spectrum(self, velocity, brightness) -> np.ndarray:
        """Noiseless spectra ``[nwave, *velocity.shape]`` for velocities [km/s] and brightness."""
        centre = self.line_rest * (1.0 + np.asarray(velocity) / SPEED_OF_LIGHT)
        width = centre * self.line_sigma / SPEED_OF_LIGHT
        wave = self.wave.reshape((-1,) + (1,) * np.ndim(velocity))
        line = self.line_peak * np.exp(-0.5 * ((wave - centre) / width) ** 2)
        return brightness * (self.continuum + line)


def _simple_wcs(shape, spaxel_scale):
    """A TAN WCS centred on the grid: north = +y, east = -x, ``spaxel_scale`` [arcsec]."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crpix = [(shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0]
    wcs.wcs.cdelt = [-spaxel_scale / 3600.0, spaxel_scale / 3600.0]
    wcs.wcs.crval = [180.0, 30.0]
    return wcs


def _rng(seed):
    if seed is not None and not isinstance(seed, int | np.integer | np.random.Generator):
        raise InputError(f"seed must be an int, a numpy Generator or None, got {seed!r}")
    return np.random.default_rng(seed)


def _check_sigma(noise_sigma, what, n=None):
    sigma = np.asarray(noise_sigma, dtype=float)
    expected = () if n is None else (n,)
    if sigma.shape not in ((), expected):
        raise ShapeError(f"{what} has shape {sigma.shape}; expected a scalar or shape {expected}")
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise VarianceError(f"{what} must be positive and finite, got {noise_sigma!r}")
    return sigma


@dataclass(eq=False)
class SimulatedIFU:
    """Native samples resampled onto a spaxel grid by a known sparse operator.

    Parameters
    ----------
    name : str
        What is simulated (``"MaNGA-like"``, ``"MUSE-like"``).
    shape : tuple of int
        The grid ``(ny, nx)``.
    operator : scipy.sparse array, shape (ny * nx, n_native)
        The resampling ``T``: spaxel ``y * nx + x`` is ``sum_n T[j, n] f_n``.
    native_positions : numpy.ndarray, shape (n_native, 2)
        ``(x, y)`` of each native sample [spaxel].
    native_exposure : numpy.ndarray of int, shape (n_native,)
        The exposure each native sample belongs to.
    native_variance : numpy.ndarray, shape (n_native,)
        Relative noise variance of each native sample (``N`` for unit ``noise_sigma``), > 0.
    spaxel_scale : float
        Spaxel size [arcsec].
    params : dict
        How the geometry and resampling were made (recorded in the correlation's params).

    Attributes
    ----------
    footprint : numpy.ndarray of bool, shape (ny, nx)
        Spaxels that at least one native sample reaches (non-empty rows of ``T``).
    wcs : astropy.wcs.WCS
        A TAN WCS with north = +y and east = -x, as assumed by :class:`DiskParams`.
    """

    name: str
    shape: tuple[int, int]
    operator: sp.csr_array
    native_positions: np.ndarray
    native_exposure: np.ndarray
    native_variance: np.ndarray
    spaxel_scale: float
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        self.shape = tuple(int(s) for s in self.shape)
        self.operator = sp.csr_array(self.operator)
        n_grid = self.shape[0] * self.shape[1]
        n_native = self.native_positions.shape[0]
        if self.operator.shape != (n_grid, n_native):
            raise ShapeError(
                f"{self.name}: operator has shape {self.operator.shape}, expected "
                f"{(n_grid, n_native)} (grid spaxels, native samples)"
            )
        self.native_variance = np.asarray(self.native_variance, dtype=float)
        if self.native_variance.shape != (n_native,):
            raise ShapeError(
                f"{self.name}: native_variance has shape {self.native_variance.shape}, "
                f"expected ({n_native},)"
            )
        bad = ~np.isfinite(self.native_variance) | (self.native_variance <= 0)
        if bad.any():
            raise VarianceError(f"{self.name}: {int(bad.sum())} native variance(s) not positive")
        self.footprint = (np.diff(self.operator.indptr) > 0).reshape(self.shape)
        self.wcs = _simple_wcs(self.shape, self.spaxel_scale)

    @property
    def n_native(self) -> int:
        """The number of native samples (fibre-exposures or detector pixels)."""
        return self.operator.shape[1]

    @property
    def n_spaxels(self) -> int:
        """The number of spaxels in the footprint."""
        return int(self.footprint.sum())

    def coordinates(self):
        """Pixel coordinates ``(x, y)`` [spaxel] of every spaxel, each ``[ny, nx]``."""
        y, x = np.indices(self.shape, dtype=float)
        return x, y

    def covariance(self, noise_sigma=1.0, dense=False):
        """The exact spaxel covariance :math:`T \\, {\\rm diag}(\\sigma^2 N) \\, T^{\\mathsf T}`.

        Parameters
        ----------
        noise_sigma : float
            Noise standard deviation of a native sample of unit relative variance [data unit].
        dense : bool
            Return a dense ``numpy`` array (grids of at most 20000 spaxels) instead of a sparse
            ``scipy.sparse.csr_array``.

        Returns
        -------
        ``(ny * nx, ny * nx)`` matrix over the full grid, index ``y * nx + x``; rows outside the
        footprint are zero.
        """
        sigma = _check_sigma(noise_sigma, "noise_sigma")
        cov = spaxel_covariance(self.operator, sigma**2 * self.native_variance)
        if not dense:
            return cov
        if cov.shape[0] > DENSE_LIMIT:
            raise InputError(
                f"{self.name}: a dense covariance of {cov.shape[0]} spaxels is too large "
                f"(limit {DENSE_LIMIT}); use dense=False"
            )
        return cov.toarray()

    def variance_map(self, noise_sigma=1.0) -> np.ndarray:
        """Diagonal of the covariance, ``[ny, nx]`` (zero outside the footprint)."""
        sigma = _check_sigma(noise_sigma, "noise_sigma")
        squared = self.operator.multiply(self.operator)
        return (sigma**2 * (squared @ self.native_variance)).reshape(self.shape)

    def correlation(self) -> SpatialCorrelation:
        """The exact spaxel correlation as a :class:`~bayesifu.SpatialCorrelation`.

        Defined on the footprint; spaxels outside have empty rows.
        """
        cov = spaxel_covariance(self.operator, self.native_variance)
        params = dict(self.params, instrument=self.name, n_native=self.n_native)
        return covariance_to_correlation(cov, self.shape, source="simulator", params=params)

    def draw_noise(self, noise_sigma=1.0, seed=None, size=None) -> np.ndarray:
        """Noise ``T (sigma sqrt(N) z)`` with ``z`` standard normal on the native samples.

        Returns ``[ny, nx]``, or ``[size, ny, nx]`` when ``size`` is given.
        """
        sigma = _check_sigma(noise_sigma, "noise_sigma")
        rng = _rng(seed)
        n = 1 if size is None else int(size)
        z = rng.standard_normal((self.n_native, n))
        noise = self.operator @ (sigma * np.sqrt(self.native_variance)[:, None] * z)
        noise = noise.T.reshape((n,) + self.shape)
        return noise[0] if size is None else noise

    def observe(self, truth, noise_sigma, seed=None, unit="", name=None) -> Map:
        """A :class:`~bayesifu.Map` of ``truth + T (sigma sqrt(N) z)`` on the footprint.

        Outside the footprint the map is masked (data 0, variance 1). Its variance is the
        diagonal of :meth:`covariance`.
        """
        truth = np.asarray(truth, dtype=float)
        if truth.shape != self.shape:
            raise ShapeError(f"truth has shape {truth.shape}, expected the grid {self.shape}")
        noise = self.draw_noise(noise_sigma, seed)
        variance = self.variance_map(noise_sigma)
        inside = self.footprint
        return Map(
            np.where(inside, truth + noise, 0.0),
            np.where(inside, variance, 1.0),
            mask=~inside,
            wcs=self.wcs,
            unit=unit,
            name=name or f"simulated {self.name} map",
            meta={"noise_sigma": float(noise_sigma), "seed": seed},
        )

    def velocity_map(self, disk: DiskParams, noise_sigma=10.0, seed=None):
        """A noisy line-of-sight velocity map of a thin disk and its truth.

        Parameters
        ----------
        disk : DiskParams
            The true disk.
        noise_sigma : float
            Velocity noise of a native sample of unit relative variance [km/s], > 0.
        seed : int or numpy.random.Generator, optional
            Seed of the noise; the same seed gives the same map.

        Returns
        -------
        (Map, numpy.ndarray)
            The map [km/s] (masked outside the footprint) and the true velocity ``[ny, nx]``.
        """
        if not isinstance(disk, DiskParams):
            raise InputError(f"disk must be a DiskParams, got {type(disk).__name__}")
        truth = disk_velocity(*self.coordinates(), disk)
        vmap = self.observe(
            truth, noise_sigma, seed, unit="km/s", name=f"simulated {self.name} velocity map"
        )
        return vmap, truth

    def cube(self, disk: DiskParams, spec: LineCubeSpec | None = None, noise_sigma=0.05, seed=None):
        """A noisy emission-line cube of a thin disk and its noiseless truth.

        Every channel carries noise ``T (sigma_k sqrt(N) z_k)``, independent between channels, so
        its spatial covariance is ``sigma_k^2 T N T^T``.

        Parameters
        ----------
        disk : DiskParams
            The true disk (velocity field and geometry of the surface brightness).
        spec : LineCubeSpec, optional
            Wavelengths and line shape (default :class:`LineCubeSpec`).
        noise_sigma : float or array_like, shape (nwave,)
            Noise of a native sample of unit relative variance, per channel [flux unit], > 0.
        seed : int or numpy.random.Generator, optional
            Seed of the noise.

        Returns
        -------
        (Cube, numpy.ndarray)
            The cube (masked outside the footprint) and the noiseless flux ``[nwave, ny, nx]``.
        """
        if not isinstance(disk, DiskParams):
            raise InputError(f"disk must be a DiskParams, got {type(disk).__name__}")
        spec = LineCubeSpec() if spec is None else spec
        nwave = spec.wave.size
        sigma = _check_sigma(noise_sigma, "noise_sigma", nwave) * np.ones(nwave)
        x, y = self.coordinates()
        brightness = exponential_surface_brightness(x, y, disk, spec.scale_length)
        truth = spec.spectrum(disk_velocity(x, y, disk), brightness)
        z = _rng(seed).standard_normal((self.n_native, nwave))
        noise = self.operator @ (np.sqrt(self.native_variance)[:, None] * z * sigma[None, :])
        noise = noise.T.reshape((nwave,) + self.shape)
        base_var = (self.operator.multiply(self.operator) @ self.native_variance).reshape(
            self.shape
        )
        inside = np.broadcast_to(self.footprint, truth.shape)
        cube = Cube(
            np.where(inside, truth + noise, 0.0),
            np.where(inside, sigma[:, None, None] ** 2 * base_var, np.inf),
            spec.wave,
            mask=~inside,
            wcs=self.wcs,
            wave_medium=spec.wave_medium,
            spaxel_scale=self.spaxel_scale,
            name=f"simulated {self.name} cube",
            meta={"seed": seed},
        )
        return cube, truth

    def __repr__(self):
        return (
            f"SimulatedIFU({self.name!r}, shape={self.shape}, n_native={self.n_native}, "
            f"n_spaxels={self.n_spaxels}, spaxel_scale={self.spaxel_scale})"
        )


def _positive(value, what):
    if not (isinstance(value, int | float | np.integer | np.floating) and math.isfinite(value)):
        raise InputError(f"{what} must be a finite number, got {value!r}")
    if value <= 0:
        raise InputError(f"{what} must be positive, got {value}")
    return float(value)
