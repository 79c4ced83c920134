"""Template bases for SED fits: redshifted, attenuated and resampled or band-averaged.

A bin's flux density in channel :math:`j` is

.. math::

    F_{bj} = \\sum_i W_{ji}\\, \\frac{1}{1+z} \\sum_k w_{bk}\\, T_k\\!\\left(\\frac{\\lambda_i}{1+z}
    \\right) 10^{-0.4 A_{V,b}\\, k'(\\lambda_i/(1+z))/R'_V},

where :math:`T_k` are rest-frame templates (:math:`L_\\lambda`), :math:`\\lambda_i` the observed
wavelengths at which the model is evaluated, :math:`k'` the Calzetti et al. (2000) curve
(:mod:`.attenuation`), :math:`w_{bk} \\ge 0` the template weights and :math:`A_{V,b} \\ge 0` the
attenuation of bin :math:`b`. The factor :math:`1/(1+z)` is the stretching of
:math:`f_\\lambda` by the redshift (the luminosity distance is absorbed in the weights). For
spectral channels :math:`W` is the identity (``filters=None``: channels are the wavelengths
:math:`\\lambda_i`); for photometric bands a caller passes the band-averaging matrix :math:`W`
(``n_band x n_wave``, e.g. :func:`band_weights`), so nothing here depends on a filter package.

Templates are sampled at :math:`\\lambda_i/(1+z)` by linear interpolation on their own grid (a
point sampling, not a flux-conserving rebinning: use templates at least as finely sampled as the
data, as the SDSS ones are for MaNGA). Each template is divided by its mean model flux over the
channels at the reference redshift without dust, so the weights are in the data's flux unit and
:math:`\\sum_k w_{bk}` is the bin's mean intrinsic flux over the channels; :attr:`SEDBasis.norm`
converts back to the templates' own units.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, ShapeError
from ..templates import Templates
from .attenuation import R_V, _calzetti_k, check_calzetti_range

__all__ = ["SEDBasis", "sed_flux", "band_weights"]


@dataclass(frozen=True)
class SEDBasis:
    """Templates prepared for :func:`sed_flux` on given observed wavelengths and redshifts.

    Build it with :meth:`from_templates`. It holds constants only (closed over by JAX).

    Attributes
    ----------
    wave : numpy.ndarray, shape (n_wave,)
        Observed wavelengths of the model [Angstrom].
    rest_wave : numpy.ndarray, shape (n_rest,)
        Rest wavelengths of the (cropped) templates [Angstrom].
    flux : numpy.ndarray, shape (n_templates, n_rest)
        Templates, each divided by :attr:`norm`.
    norm : numpy.ndarray, shape (n_templates,)
        Mean model flux of each original template over the channels (z = ``z_ref``, no dust).
    filters : numpy.ndarray, shape (n_channels, n_wave), or None
        Band-averaging matrix :math:`W` (None: channels are :attr:`wave`).
    z_range : tuple of float
        Redshifts for which the templates and the attenuation curve cover :attr:`wave`.
    z_ref : float
        Reference redshift (middle of :attr:`z_range`).
    ref_wave : float
        Mean rest wavelength of the channels at ``z_ref`` [Angstrom] (weighted by :math:`W`).
    names : tuple of str
        Template names.
    r_v : float
        :math:`R'_V` of the attenuation curve.
    """

    wave: np.ndarray
    rest_wave: np.ndarray
    flux: np.ndarray
    norm: np.ndarray
    filters: np.ndarray | None
    z_range: tuple
    z_ref: float
    ref_wave: float
    names: tuple
    r_v: float = R_V

    @property
    def n_templates(self) -> int:
        """Number of templates :math:`K`."""
        return self.flux.shape[0]

    @property
    def k_ref(self) -> float:
        """Calzetti :math:`k'` at :attr:`ref_wave` (a concrete number, usable inside ``jit``)."""
        return float(_calzetti_k(np.float64(self.ref_wave), self.r_v, np))

    @property
    def n_channels(self) -> int:
        """Number of model channels (bands, or wavelengths when there is no filter matrix)."""
        return self.wave.size if self.filters is None else self.filters.shape[0]

    @classmethod
    def from_templates(cls, templates, wave, z=0.0, filters=None, r_v: float = R_V) -> SEDBasis:
        """Prepare templates for the observed wavelengths ``wave`` and redshift(s) ``z``.

        Parameters
        ----------
        templates : Templates or tuple (rest_wave, flux)
            :func:`bayesifu.read_templates` output (e.g. the shipped SDSS templates), or any
            basis: rest wavelengths [Angstrom], shape (n_rest,), increasing, and
            non-negative fluxes, shape (K, n_rest).
        wave : array_like, shape (n_wave,)
            Observed wavelengths [Angstrom]: a spectrum's channels, or the grid of ``filters``.
        z : float or tuple (z_min, z_max)
            The fixed redshift, or the range a free redshift may take.
        filters : array_like, shape (n_band, n_wave), optional
            Band-averaging weights :math:`W` (each row the weights of one band on ``wave``).
        r_v : float
            :math:`R'_V` of the attenuation curve.

        Raises
        ------
        InputError
            If a template does not cover the rest wavelengths :math:`\\lambda/(1+z)` for every
            ``z`` in the range, has negative or non-finite values there, or if those wavelengths
            leave the validity range of the Calzetti curve.
        """
        rest, flux, names = _as_arrays(templates)
        wave = np.asarray(wave, dtype=float)
        if wave.ndim != 1 or wave.size < 1 or np.any(~np.isfinite(wave)) or np.any(wave <= 0):
            raise InputError("wave must be a 1-D array of positive wavelengths [Angstrom]")
        z_min, z_max = (float(z), float(z)) if np.ndim(z) == 0 else map(float, z)
        if not -1.0 < z_min <= z_max:
            raise InputError(f"redshift range must satisfy -1 < z_min <= z_max, got {z}")
        if filters is not None:
            filters = np.asarray(filters, dtype=float)
            if filters.ndim != 2 or filters.shape[1] != wave.size:
                raise ShapeError(
                    f"filters must have shape (n_band, {wave.size}), got {filters.shape}"
                )
            if np.any(~np.isfinite(filters)) or np.any(filters.sum(axis=1) <= 0):
                raise InputError("filters: every band needs finite weights with a positive sum")
        need = (wave.min() / (1 + z_max), wave.max() / (1 + z_min))
        check_calzetti_range(np.array(need), "SEDBasis")
        lo = max(int(np.searchsorted(rest, need[0], side="right")) - 1, 0)
        hi = min(int(np.searchsorted(rest, need[1], side="left")) + 1, rest.size)
        rest, flux = rest[lo:hi], flux[:, lo:hi]  # the pixels the interpolation can reach
        covered = rest[0] <= need[0] and rest[-1] >= need[1]
        for name, f in zip(names, flux, strict=True):
            if not covered or np.any(~np.isfinite(f)) or np.any(f < 0):
                raise InputError(
                    f"template {name}: needs finite, non-negative flux at rest wavelengths "
                    f"{need[0]:.6g}-{need[1]:.6g} Angstrom (observed {wave.min():.6g}-"
                    f"{wave.max():.6g} at z = {z_min:g}-{z_max:g})"
                )
        z_ref = 0.5 * (z_min + z_max)
        raw = cls(wave, rest, flux, np.ones(len(names)), filters, (z_min, z_max), z_ref, 0.0,
                  tuple(names), float(r_v))  # fmt: skip
        model = np.asarray(sed_flux(raw, np.eye(len(names)), np.zeros(len(names)), z_ref))
        norm = model.mean(axis=1)
        if np.any(~(norm > 0)):
            bad = [n for n, v in zip(names, norm, strict=True) if not v > 0]
            raise InputError(f"templates {bad}: zero flux in every channel")
        if filters is None:
            ref = wave.mean()
        else:
            ref = float(np.mean(filters @ wave / filters.sum(axis=1)))
        return cls(wave, rest, flux / norm[:, None], norm, filters, (z_min, z_max), z_ref,
                   float(ref / (1 + z_ref)), tuple(names), float(r_v))  # fmt: skip


def sed_flux(basis: SEDBasis, weights, a_v, z):
    """Model flux of every bin in every channel (module docstring, :math:`F_{bj}`).

    Parameters
    ----------
    basis : SEDBasis
    weights : array_like, shape (n_bins, K)
        Template weights :math:`w_{bk} \\ge 0` [data flux unit].
    a_v : array_like, shape (n_bins,)
        Attenuation :math:`A_V \\ge 0` [mag].
    z : float or jax.Array
        Redshift, within ``basis.z_range`` (not checked when traced).

    Returns
    -------
    jax.Array, shape (n_bins, n_channels)
        Pure JAX: jit-able and differentiable in ``weights``, ``a_v`` and ``z``.
    """
    if not isinstance(z, jax.core.Tracer):
        z_min, z_max = basis.z_range
        if not z_min - 1e-12 <= float(z) <= z_max + 1e-12:
            raise InputError(f"z = {float(z):g} is outside the basis' range {basis.z_range}")
    rest = jnp.asarray(basis.wave) / (1.0 + z)
    tpl = jax.vmap(lambda f: jnp.interp(rest, jnp.asarray(basis.rest_wave), f))(
        jnp.asarray(basis.flux)
    )
    k = _calzetti_k(rest, basis.r_v)  # the basis checked the range for its z_range
    att = 10.0 ** (-0.4 * jnp.asarray(a_v)[:, None] * k / basis.r_v)
    flux = (jnp.asarray(weights) @ tpl) * att / (1.0 + z)
    if basis.filters is not None:
        flux = flux @ jnp.asarray(basis.filters).T
    return flux


def band_weights(wave, transmission, photon_counting: bool = True) -> np.ndarray:
    """Band-averaging matrix :math:`W` from filter transmission curves on a wavelength grid.

    .. math::

        W_{ji} = \\frac{R_j(\\lambda_i)\\, \\lambda_i^{p}\\, \\Delta\\lambda_i}
        {\\sum_i R_j(\\lambda_i)\\, \\lambda_i^{p}\\, \\Delta\\lambda_i},

    with :math:`p = 1` for a photon-counting detector and :math:`p = 0` for an energy one, so that
    :math:`\\sum_i W_{ji} f_\\lambda(\\lambda_i)` is the band-averaged :math:`f_\\lambda`.

    Parameters
    ----------
    wave : array_like, shape (n_wave,)
        Increasing wavelengths [Angstrom].
    transmission : array_like, shape (n_band, n_wave)
        Filter throughput of each band on ``wave`` (>= 0).
    photon_counting : bool
        Weight by :math:`\\lambda` (photon-counting) or not.
    """
    wave = np.asarray(wave, dtype=float)
    r = np.atleast_2d(np.asarray(transmission, dtype=float))
    if r.shape[1] != wave.size or np.any(np.diff(wave) <= 0):
        raise InputError("band_weights: transmission must be (n_band, n_wave) on increasing wave")
    if np.any(r < 0) or np.any(r.sum(axis=1) <= 0):
        raise InputError("band_weights: transmissions must be >= 0 with a positive sum")
    dlam = np.gradient(wave)
    w = r * dlam * (wave if photon_counting else 1.0)
    return w / w.sum(axis=1, keepdims=True)


def _as_arrays(templates):
    """``(rest_wave, flux, names)`` of a Templates object or a ``(wave, flux)`` pair."""
    if isinstance(templates, Templates):
        rest, flux, names = templates.wave, np.asarray(templates.flux, float), templates.names
    else:
        try:
            rest, flux = templates
        except (TypeError, ValueError) as err:
            raise InputError("templates must be Templates or a (rest_wave, flux) pair") from err
        rest = np.asarray(rest, dtype=float)
        flux = np.atleast_2d(np.asarray(flux, dtype=float))
        names = [f"template{k}" for k in range(flux.shape[0])]
    if rest.ndim != 1 or flux.shape[1:] != rest.shape or np.any(np.diff(rest) <= 0):
        raise InputError(
            f"templates: rest wavelengths must increase and match the flux, got {rest.shape} "
            f"and {flux.shape}"
        )
    return rest, flux, list(names)
