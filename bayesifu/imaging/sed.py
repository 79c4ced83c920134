"""Binned spectrophotometric SEDs: per-bin photometry and spectra with the covariance between bins.

Given images matched to the IFU grid (a :class:`~bayesifu.imaging.PhotometricCube`), the IFU cube
(or its version degraded to the imaging PSF, a :class:`~bayesifu.imaging.DegradedCube`) and a
binning :math:`\\mathbf T` (e.g. :func:`~bayesifu.sed_bins` on the photometry), the binned
photometry of band :math:`j` is :math:`\\mathbf T_j\\mathbf m_j` with covariance

.. math::

    \\mathbf T_j\\,\\mathbf F_j\\mathbf F_j^{\\rm T}\\,\\mathbf T_j^{\\rm T}

(:meth:`PhotometricCube.binned_covariance`, with :math:`\\mathbf F_j` the matching factor), and
the binned spectrum in channel :math:`k` is :math:`\\mathbf T_k\\mathbf f_k` with covariance
:math:`\\mathbf T_k\\mathbf C_k\\mathbf T_k^{\\rm T}`, where :math:`\\mathbf C_k = \\mathbf S_k
\\boldsymbol\\rho\\mathbf S_k` for the cube itself (:class:`~bayesifu.BinnedSpectra`) and
:math:`\\mathbf K\\mathbf S_k\\boldsymbol\\rho\\mathbf S_k\\mathbf K^{\\rm T}` for the degraded cube
(:meth:`DegradedCube.covariance`). :math:`\\mathbf T_j, \\mathbf T_k` leave out the spaxels masked
in that band or channel. Images of different bands, and the images and the cube, have independent
noise, and channels are taken as independent (the spectral correlation of resampled cubes is
ignored), so the covariance of the whole SED vector is block-diagonal over bands and channels with
one ``(n_bins, n_bins)`` block each.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from ..binning.operator import Binning
from ..binning.spectra import BinnedSpectra, bin_spectra
from ..containers import Cube
from ..errors import FileFormatError, InputError, ShapeError
from .match import DegradedCube, PhotometricCube

__all__ = ["SpectroPhotometricSEDs", "binned_seds"]


@dataclass
class SpectroPhotometricSEDs:
    """Per-bin photometry and spectra with the exact covariance between bins.

    Attributes
    ----------
    photometry : ndarray, shape (n_bins, n_band)
        Binned photometry [spectra unit] (the images' unit times ``unit_factor``).
    photometry_mask : ndarray of bool, shape (n_bins, n_band)
        True where some spaxel of the bin is masked in the band (its value is a partial sum).
    spectra : BinnedSpectra
        The binned spectra; for a degraded cube its ``variance`` is the exact one (with the
        convolution's correlation).
    bands : list of Band
    binning : Binning
    unit_factor : float
        Photometry unit in the spectra unit.
    photometric_cube : PhotometricCube
    degraded : DegradedCube or None
    wave_medium : {"air", "vacuum"}
        The medium of :attr:`wave` (the cube's).
    """

    photometry: np.ndarray
    photometry_mask: np.ndarray
    spectra: BinnedSpectra
    bands: list
    binning: Binning
    unit_factor: float
    photometric_cube: PhotometricCube
    degraded: DegradedCube | None = None
    wave_medium: str = "air"

    @property
    def n_bins(self) -> int:
        """The number of bins."""
        return self.photometry.shape[0]

    @property
    def n_band(self) -> int:
        """The number of bands."""
        return self.photometry.shape[1]

    @property
    def wave(self) -> np.ndarray:
        """Channel wavelengths [Angstrom]."""
        return self.spectra.wave

    @property
    def complete(self) -> np.ndarray:
        """True for bins whose every spaxel is valid in every band and channel (their
        photometry and spectrum sum the same spaxels), shape ``(n_bins,)``."""
        full = self.spectra.n_used == self.binning.n_spaxels[:, None]
        return full.all(axis=1) & ~self.photometry_mask.any(axis=1)

    def photometry_operator(self, j: int) -> sp.csr_array:
        """The binning operator :math:`\\mathbf T_j` of band ``j`` (masked spaxels left out)."""
        return self.binning.operator(self.spectra.weights, mask=_band_bad(self.photometric_cube, j))

    def photometry_covariance(self, j: int) -> sp.csr_array:
        """The ``(n_bins, n_bins)`` covariance between bins in band ``j`` [spectra unit**2]."""
        cov = self.photometric_cube.binned_covariance(self.photometry_operator(j), j)
        return sp.csr_array(cov * self.unit_factor**2)

    def spectra_covariance(self, k: int) -> sp.csr_array:
        """The ``(n_bins, n_bins)`` covariance between bins in channel ``k`` [unit**2]."""
        if self.degraded is None:
            return self.spectra.covariance(k)
        t = self.spectra.channel_operator(k)
        return sp.csr_array(t @ self.degraded.covariance(k) @ t.T)

    def photometry_covariances(self) -> np.ndarray:
        """Every band's covariance between bins, dense ``(n_band, n_bins, n_bins)``."""
        return np.array([self.photometry_covariance(j).toarray() for j in range(self.n_band)])

    def spectra_covariances(self, channels=None) -> np.ndarray:
        """The covariance between bins of ``channels`` (default all), dense ``(n, n_bins,
        n_bins)``."""
        channels = range(self.wave.size) if channels is None else channels
        return np.array([self.spectra_covariance(k).toarray() for k in channels])

    def values(self) -> np.ndarray:
        """The SED vector of each bin, photometry then spectrum: ``(n_bins, n_band + nwave)``."""
        return np.concatenate([self.photometry, self.spectra.flux], axis=1)

    def covariance(self) -> np.ndarray:
        """The dense covariance of ``values().ravel()`` (bin-major): block-diagonal over bands and
        channels. For small problems and tests; its size is ``(n_bins (n_band + nwave))**2``."""
        blocks = np.concatenate([self.photometry_covariances(), self.spectra_covariances()])
        n_el = blocks.shape[0]
        full = np.zeros((self.n_bins, n_el, self.n_bins, n_el))
        idx = np.arange(n_el)
        full[:, idx, :, idx] = blocks
        return full.reshape(self.n_bins * n_el, self.n_bins * n_el)


def _band_bad(photometry: PhotometricCube, j: int) -> np.ndarray:
    """Spaxels left out of band ``j``: masked, or with a non-finite value."""
    return np.asarray(photometry.mask[j], bool) | ~np.isfinite(photometry.data[j])


def _unit_factor(photometry_unit, cube_unit) -> float:
    """Photometry unit in the cube's unit: an error when the cube has none (the two cannot be
    put on one scale, and assuming they agree can be wrong by orders of magnitude)."""
    from astropy import units as u

    from .read import _parse_unit

    if not cube_unit or photometry_unit is None:
        raise InputError(
            f"the cube has no flux unit (BUNIT) to put the images' photometry ({photometry_unit}) "
            "on its scale; set the cube's unit"
        )
    try:
        cube_u = _parse_unit(cube_unit, "cube") if isinstance(cube_unit, str) else cube_unit
        return float(u.Unit(photometry_unit).to(u.Unit(cube_u)))
    except (ValueError, u.UnitConversionError, FileFormatError) as err:
        raise InputError(
            f"the images' unit {photometry_unit} cannot be converted to the cube's {cube_unit}"
        ) from err


def _exact_variance(spectra: BinnedSpectra, degraded: DegradedCube) -> BinnedSpectra:
    """The binned spectra of a degraded cube with the variance of :math:`\\mathbf T_k\\mathbf K
    \\mathbf S_k\\boldsymbol\\rho\\mathbf S_k\\mathbf K^{\\rm T}\\mathbf T_k^{\\rm T}`."""
    var = np.array(spectra.variance, copy=True)
    rho = None if degraded.correlation is None else degraded.correlation.matrix
    for k in range(spectra.wave.size):
        sigma = np.sqrt(degraded.input_variance[k]).ravel()
        a = spectra.channel_operator(k) @ degraded.operator @ sp.diags_array(sigma)
        right = a if rho is None else a @ rho
        var[:, k] = np.asarray(sp.csr_array(right).multiply(a).sum(axis=1)).ravel()
    var[spectra.mask] = np.inf
    return replace(spectra, variance=var)


def binned_seds(
    photometry: PhotometricCube, cube, binning, correlation=None, weights="sum"
) -> SpectroPhotometricSEDs:
    """Bin matched photometry and IFU spectra together, with the covariance between bins.

    Parameters
    ----------
    photometry : PhotometricCube
        Images matched to the cube's grid (:func:`~bayesifu.imaging.match_images`), with their
        covariance factors.
    cube : Cube or DegradedCube
        The IFU cube on the same grid, or its version degraded to the imaging PSF
        (:func:`~bayesifu.imaging.degrade_cube`, whose exact covariance is then used).
    binning : Binning or array_like of int, shape (ny, nx)
        The bins, e.g. :func:`~bayesifu.sed_bins` of ``photometry.to_cube()``.
    correlation : SpatialCorrelation, optional
        The spatial correlation of ``cube`` (a :class:`Cube`; a degraded cube carries its own).
    weights : {"sum", "mean"}
        Sum over the bin's valid spaxels or their mean, for photometry and spectra alike.

    Returns
    -------
    SpectroPhotometricSEDs
    """
    if not isinstance(photometry, PhotometricCube):
        raise InputError(f"binned_seds needs a PhotometricCube, got {type(photometry).__name__}")
    degraded = cube if isinstance(cube, DegradedCube) else None
    if degraded is not None:
        if correlation is not None:
            raise InputError("a DegradedCube carries its own correlation; do not pass one")
        cube = degraded.cube
    if not isinstance(cube, Cube):
        raise InputError(f"binned_seds needs a Cube or DegradedCube, got {type(cube).__name__}")
    binning = binning if isinstance(binning, Binning) else Binning(binning)
    if photometry.shape[1:] != cube.spatial_shape or binning.shape != cube.spatial_shape:
        raise ShapeError(
            f"photometry {photometry.shape[1:]}, cube {cube.spatial_shape} and bins "
            f"{binning.shape} must share one grid"
        )
    spectra = bin_spectra(cube, binning, correlation=correlation, weights=weights)
    if degraded is not None:
        spectra = _exact_variance(spectra, degraded)
    factor = _unit_factor(photometry.unit, cube.unit)
    n_band = photometry.shape[0]
    phot = np.empty((binning.n_bins, n_band))
    pmask = np.empty((binning.n_bins, n_band), dtype=bool)
    for j in range(n_band):
        bad = _band_bad(photometry, j)
        t = binning.operator(weights, mask=bad)
        phot[:, j] = factor * (t @ np.where(bad, 0.0, photometry.data[j]).ravel())
        pmask[:, j] = binning.operator("sum", mask=bad).sum(axis=1) < binning.n_spaxels
    return SpectroPhotometricSEDs(
        phot, pmask, spectra, list(photometry.bands), binning, factor, photometry, degraded,
        cube.wave_medium,
    )  # fmt: skip
