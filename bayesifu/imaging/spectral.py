"""Spectral matching of IFU spectra to photometry: a smooth multiplicative Legendre correction.

The IFU spectrum :math:`f_b(\\lambda)` of bin (or spaxel) :math:`b` and the photometry
:math:`m_{bj}` of the same bin in band :math:`j` disagree by a smooth factor (flux calibration,
aperture and sky residuals). piXedfit (seed 002) fits a third-order Legendre polynomial to the
ratio of a best-fit model to the spectrum by least squares; here the correction

.. math::

    P_b(\\lambda) = \\sum_{l=0}^{d} a_{bl}\\, L_l(x(\\lambda)),\\qquad
    x(\\lambda) = 2\\,\\frac{\\lambda - \\lambda_{\\min}}{\\lambda_{\\max} - \\lambda_{\\min}} - 1,

is a parameter of a likelihood (``bayesifu.models.spectral_match``), and the model photometry of
the corrected spectrum is linear in it:

.. math::

    \\mu_{bj} = \\sum_k W_{jk}\\, P_b(\\lambda_k)\\, f_{bk}
              = \\sum_l \\Big(\\sum_k W_{jk} f_{bk} L_l(x_k)\\Big) a_{bl},

with :math:`\\mathbf W` the band-averaging weights of :func:`~bayesifu.imaging.band_weights`
(one row per band). The noise :math:`\\epsilon_{bk}` of the spectrum enters the synthetic
photometry as :math:`\\sum_k W_{jk} P_b(\\lambda_k)\\epsilon_{bk}`, whose covariance between bins
:math:`b, d` and bands :math:`j, i` is

.. math::

    \\Sigma^{\\rm syn}_{bj,di} = \\sum_k W_{jk} W_{ik} P_b(\\lambda_k) P_d(\\lambda_k)\\,
    S_{k,bd},

where :math:`S_{k}` is the covariance between bins in channel :math:`k` (diagonal for spaxels or
bins whose noise is independent; channels are taken as independent). Everything here is pure JAX
(or NumPy for the fixed design matrices); JAX is imported only when a JAX function is called, so
``bayesifu.imaging`` (and ``bayesifu match``) stays free of it.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import legendre

from ..errors import InputError, ShapeError
from .photometry import band_weights

__all__ = [
    "scaled_wavelength",
    "legendre_design",
    "photometry_matrix",
    "legendre_correction",
    "corrected_photometry",
    "photometry_design",
    "synthetic_covariance",
    "synthetic_covariance_terms",
    "covariance_from_terms",
    "corrected_spectra",
]


def scaled_wavelength(wave, wave_range=None) -> np.ndarray:
    """Wavelength mapped linearly onto :math:`[-1, 1]` over ``wave_range`` (default: ``wave``'s
    own first and last value) [dimensionless]."""
    wave = np.asarray(wave, dtype=float)
    lo, hi = (wave.min(), wave.max()) if wave_range is None else map(float, wave_range)
    if not hi > lo:
        raise InputError(f"wave_range must be increasing, got ({lo}, {hi})")
    return 2.0 * (wave - lo) / (hi - lo) - 1.0


def legendre_design(wave, degree: int, wave_range=None) -> np.ndarray:
    """The Legendre design matrix :math:`L_l(x(\\lambda_k))`, shape ``(nwave, degree + 1)``.

    Parameters
    ----------
    wave : array_like, shape (nwave,)
        Channel wavelengths [Angstrom].
    degree : int
        Highest Legendre order :math:`d` (0 = a grey scale factor).
    wave_range : tuple of float, optional
        The wavelengths mapped to -1 and +1 [Angstrom]; default the ends of ``wave``.
    """
    if int(degree) != degree or degree < 0:
        raise InputError(f"degree must be a non-negative integer, got {degree}")
    return legendre.legvander(scaled_wavelength(wave, wave_range), int(degree))


def photometry_matrix(wave, bands, *, medium="vacuum", max_missing=1e-3) -> np.ndarray:
    """Band-averaging weights :math:`\\mathbf W`, shape ``(n_band, nwave)``: row ``j`` is
    :func:`~bayesifu.imaging.band_weights` of band ``j`` (so :math:`\\mathbf W\\mathbf f` is the
    synthetic photometry of a spectrum :math:`\\mathbf f`)."""
    return np.array([band_weights(wave, b, medium=medium, max_missing=max_missing) for b in bands])


def legendre_correction(coef, design):
    """The correction :math:`P(\\lambda_k) = \\sum_l a_l L_l(x_k)`: ``coef [..., n_coef]`` times
    ``design [nwave, n_coef]`` -> ``[..., nwave]`` (JAX)."""
    import jax.numpy as jnp

    return jnp.asarray(coef) @ jnp.asarray(design).T


def corrected_photometry(coef, flux, weights, design):
    """Synthetic photometry of the corrected spectra, :math:`\\mathbf W(P_b\\,\\mathbf f_b)`.

    Parameters
    ----------
    coef : array, shape (n_bins, n_coef)
    flux : array, shape (n_bins, nwave)
    weights : array, shape (n_band, nwave)
    design : array, shape (nwave, n_coef)

    Returns
    -------
    jax.Array, shape (n_bins, n_band)
    """
    import jax.numpy as jnp

    return (legendre_correction(coef, design) * jnp.asarray(flux)) @ jnp.asarray(weights).T


def photometry_design(flux, weights, design) -> np.ndarray:
    """The linear map from coefficients to photometry, :math:`M_{bjl} = \\sum_k W_{jk} f_{bk}
    L_l(x_k)`, shape ``(n_bins, n_band, n_coef)``, so that :math:`\\mu_b = M_b a_b`."""
    flux = np.asarray(flux, dtype=float)
    return np.einsum("jk,bk,kl->bjl", np.asarray(weights), flux, np.asarray(design))


def synthetic_covariance(coef, spectra_covariance, weights, design):
    """Covariance of the synthetic photometry from the spectra's noise, :math:`\\Sigma^{\\rm syn}`.

    Parameters
    ----------
    coef : array, shape (n_bins, n_coef)
    spectra_covariance : array, shape (n_bins, nwave) or (nwave, n_bins, n_bins)
        The variance of each bin's spectrum (bins independent), or the covariance between bins
        in each channel (e.g. from :meth:`SpectroPhotometricSEDs.spectra_covariances`).
    weights, design : array
        As in :func:`corrected_photometry`.

    Returns
    -------
    jax.Array, shape (n_bins * n_band, n_bins * n_band)
        Ordered bin-major (index ``b * n_band + j``), like ``photometry.ravel()``.
    """
    import jax.numpy as jnp

    p = legendre_correction(coef, design)  # (n_bins, nwave)
    w = jnp.asarray(weights)
    s = jnp.asarray(spectra_covariance)
    n_bins, n_band = p.shape[0], w.shape[0]
    if s.ndim == 2:
        if s.shape != p.shape:
            raise ShapeError(f"spectra variance {s.shape} does not match {p.shape}")
        blocks = jnp.einsum("jk,ik,bk->bji", w, w, s * p**2)
        eye = jnp.eye(n_bins)
        full = eye[:, None, :, None] * blocks[:, :, None, :]
    elif s.ndim == 3:
        if s.shape != (p.shape[1], n_bins, n_bins):
            raise ShapeError(f"spectra covariance {s.shape} should be (nwave, n_bins, n_bins)")
        full = jnp.einsum("jk,ik,bk,dk,kbd->bjdi", w, w, p, p, s)
    else:
        raise ShapeError("spectra_covariance must be 2-D (variance) or 3-D (covariance)")
    return full.reshape(n_bins * n_band, n_bins * n_band)


def synthetic_covariance_terms(spectra_covariance, weights, design) -> np.ndarray:
    """The fixed part of :math:`\\Sigma^{\\rm syn}`, quadratic in the coefficients:

    .. math::

        Q_{bjdilm} = \\sum_k W_{jk} W_{ik} L_l(x_k) L_m(x_k) S_{k,bd},\\qquad
        \\Sigma^{\\rm syn}_{bj,di} = \\sum_{lm} a_{bl} a_{dm} Q_{bjdilm},

    so that a likelihood evaluation needs no sum over channels (:func:`covariance_from_terms`).

    Returns
    -------
    numpy.ndarray
        ``(n_bins, n_band, n_band, n_coef, n_coef)`` for variances (bins independent), or
        ``(n_bins, n_band, n_bins, n_band, n_coef, n_coef)`` for covariances between bins.
    """
    w, lg = np.asarray(weights, dtype=float), np.asarray(design, dtype=float)
    s = np.asarray(spectra_covariance, dtype=float)
    if s.ndim == 2:
        return np.einsum("jk,ik,kl,km,bk->bjilm", w, w, lg, lg, s, optimize=True)
    if s.ndim == 3:
        return np.einsum("jk,ik,kl,km,kbd->bjdilm", w, w, lg, lg, s, optimize=True)
    raise ShapeError("spectra_covariance must be 2-D (variance) or 3-D (covariance)")


def covariance_from_terms(coef, terms):
    """:math:`\\Sigma^{\\rm syn}` ``(n_bins n_band)**2`` (bin-major) from
    :func:`synthetic_covariance_terms` and ``coef [n_bins, n_coef]`` (JAX)."""
    import jax.numpy as jnp

    coef = jnp.asarray(coef)
    terms = jnp.asarray(terms)
    n_bins, n_band = terms.shape[0], terms.shape[1]
    if terms.ndim == 5:
        blocks = jnp.einsum("bjilm,bl,bm->bji", terms, coef, coef)
        eye = jnp.eye(n_bins)
        full = eye[:, None, :, None] * blocks[:, :, None, :]
    else:
        full = jnp.einsum("bjdilm,bl,dm->bjdi", terms, coef, coef)
    return full.reshape(n_bins * n_band, n_bins * n_band)


def corrected_spectra(coef_draws, flux, design, variance=None):
    """Posterior mean and standard deviation of the corrected spectra :math:`P_b(\\lambda)
    f_b(\\lambda)`, carrying the correction's uncertainty (and optionally the spectrum's noise).

    Parameters
    ----------
    coef_draws : array_like, shape (n_draws, n_bins, n_coef)
        Posterior draws of the coefficients.
    flux : array_like, shape (n_bins, nwave)
        The observed spectra.
    design : array_like, shape (nwave, n_coef)
    variance : array_like, shape (n_bins, nwave), optional
        The spectra's variance: adds :math:`\\langle P^2\\rangle\\sigma^2` to the variance.

    Returns
    -------
    mean, std : numpy.ndarray, shape (n_bins, nwave)
    """
    draws = np.asarray(coef_draws, dtype=float)
    if draws.ndim != 3:
        raise ShapeError(f"coef_draws must be (n_draws, n_bins, n_coef), got {draws.shape}")
    flux = np.asarray(flux, dtype=float)
    p = draws @ np.asarray(design, dtype=float).T  # (n_draws, n_bins, nwave)
    mean = p.mean(axis=0) * flux
    var = p.var(axis=0) * flux**2
    if variance is not None:
        var = var + (p**2).mean(axis=0) * np.asarray(variance, dtype=float)
    return mean, np.sqrt(var)
