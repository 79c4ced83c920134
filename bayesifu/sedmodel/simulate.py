"""Simulated binned SEDs with exactly known correlated noise, for tests, calibration and demos."""

from __future__ import annotations

import numpy as np

from ..binning.operator import Binning
from ..binning.spectra import BinnedSpectra, bin_spectra
from ..containers import Cube
from ..correlation import SpatialCorrelation
from ..errors import InputError
from .basis import SEDBasis, sed_flux

__all__ = ["simulate_binned_seds", "correlated_noise"]


def correlated_noise(correlation: SpatialCorrelation, n_channels: int, rng) -> np.ndarray:
    """Unit-variance noise ``(n_channels, ny, nx)`` with the spatial correlation in every channel
    (independent between channels): :math:`\\boldsymbol\\rho^{1/2}\\mathbf z` from the
    eigendecomposition of the dense correlation matrix (negative round-off eigenvalues clipped)."""
    rho = correlation.matrix.toarray()
    vals, vecs = np.linalg.eigh(rho)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    z = rng.standard_normal((n_channels, rho.shape[0]))
    return (z @ root.T).reshape((n_channels,) + tuple(correlation.shape))


def simulate_binned_seds(
    basis: SEDBasis,
    binning,
    weights,
    a_v,
    z=None,
    *,
    sigma,
    correlation: SpatialCorrelation | None = None,
    seed=0,
    wave=None,
) -> tuple[BinnedSpectra, Cube]:
    """A cube whose bins have the SEDs of :func:`~bayesifu.sedmodel.sed_flux`, plus noise, binned.

    Every spaxel of bin :math:`b` carries :math:`F_{bj}/n_b` (so the *summed* binned flux is the
    model), plus noise of standard deviation ``sigma`` [flux unit] per spaxel and channel with the
    spatial ``correlation``; the cube is binned with :func:`bayesifu.bin_spectra` (sum), which
    gives the exact covariance :math:`\\mathbf T\\mathbf C\\mathbf T^{\\rm T}` in every channel.

    Parameters
    ----------
    basis : SEDBasis
    binning : Binning or array_like of int, shape (ny, nx)
    weights : array_like, shape (n_bins, K)
        True template weights.
    a_v : array_like, shape (n_bins,)
        True attenuation [mag].
    z : float, optional
        True redshift (default ``basis.z_ref``).
    sigma : float or array_like, shape (n_channels,)
        Noise per spaxel [flux unit].
    correlation : SpatialCorrelation, optional
        Spatial correlation of the noise (``None``: independent spaxels).
    seed : int or numpy.random.Generator
    wave : array_like, shape (n_channels,), optional
        The cube's wavelengths [Angstrom] (default: ``basis.wave``, or for bands each band's mean
        wavelength).

    Returns
    -------
    (BinnedSpectra, Cube)
    """
    binning = binning if isinstance(binning, Binning) else Binning(binning)
    rng = np.random.default_rng(seed)
    z = basis.z_ref if z is None else float(z)
    model = np.asarray(sed_flux(basis, np.asarray(weights, float), np.asarray(a_v, float), z))
    if model.shape[0] != binning.n_bins:
        raise InputError(f"{model.shape[0]} bins of truth for a binning of {binning.n_bins}")
    n_ch = model.shape[1]
    if wave is None:
        if basis.filters is None:
            wave = basis.wave
        else:
            wave = basis.filters @ basis.wave / basis.filters.sum(axis=1)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n_ch,))
    per_spaxel = model / binning.n_spaxels[:, None]  # (n_bins, n_ch)
    grid = np.zeros((n_ch, binning.n_grid))
    row = binning.row.ravel()
    grid[:, row >= 0] = per_spaxel[row[row >= 0]].T
    ny, nx = binning.shape
    if correlation is None:
        noise = rng.standard_normal((n_ch, ny, nx))
    else:
        noise = correlated_noise(correlation, n_ch, rng)
    flux = grid.reshape(n_ch, ny, nx) + sigma[:, None, None] * noise
    variance = np.broadcast_to(sigma[:, None, None] ** 2, flux.shape).copy()
    mask = np.broadcast_to(binning.binid < 0, flux.shape).copy()
    cube = Cube(flux, variance, np.asarray(wave, float), mask=mask, name="simulated SEDs")
    return bin_spectra(cube, binning, correlation), cube
