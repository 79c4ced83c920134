"""Pure-JAX forward model of a redshifted template spectrum (used by ``models/redshift.py``).

The same model as the grid posterior (:mod:`bayesifu.redshift.grid`): templates linearly
interpolated in log10 wavelength at ``log10(lambda_obs) - log10(1+z)``, plus Legendre terms.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["redshifted_templates", "model_spectrum"]


def redshifted_templates(z, log_wave, loglam0: float, dloglam: float, flux):
    """Template values at the observed pixels for redshift ``z``: ``[ntemplates, nk]``.

    Parameters
    ----------
    z : float or jax scalar
        Redshift.
    log_wave : array_like, shape (nk,)
        log10 of the observed vacuum wavelengths [log10 Angstrom].
    loglam0, dloglam : float
        The template grid (first pixel and step, [dex]).
    flux : array_like, shape (ntemplates, npix)
        Template fluxes (finite: the caller checks coverage).
    """
    pos = (log_wave - jnp.log10(1.0 + z) - loglam0) / dloglam
    j = jnp.clip(jnp.floor(pos), 0, flux.shape[1] - 2)
    f = pos - j
    j = j.astype(jnp.int32)
    return (1.0 - f) * flux[:, j] + f * flux[:, j + 1]


def model_spectrum(z, coeffs, log_wave, loglam0, dloglam, flux, poly):
    """``A(z) c``: templates at ``z`` and polynomial terms ``poly [npoly, nk]`` weighted by
    ``coeffs [ntemplates + npoly]``."""
    basis = jnp.concatenate([redshifted_templates(z, log_wave, loglam0, dloglam, flux), poly])
    return coeffs @ basis
