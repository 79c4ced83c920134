"""Pure-JAX forward model of the line-of-sight velocity field of a thin rotating disk.

Conventions (identical to :mod:`bayesifu.simulate.galaxy`, which makes the simulated truths):

* Positions are 0-based pixel coordinates, spaxel centres at integers: ``x`` is the numpy column
  (FITS axis 1), ``y`` the numpy row (FITS axis 2). The centre and the turnover radius are in
  spaxels.
* North is +y and east is -x. The position angle ``pa`` [deg] is that of the *receding* half of the
  major axis, from north through east: the receding axis is the unit vector
  :math:`(-\\sin PA, \\cos PA)` in ``(x, y)`` (the MaNGA DAP and ``kinemetry`` convention; Krajnovic
  et al. 2006, MNRAS 366, 787, doi:10.1111/j.1365-2966.2005.09902.x).
* The inclination ``inc`` [deg] is 0 for a face-on disk.

With :math:`\\Delta x = x - x_0` and :math:`\\Delta y = y - y_0`,

.. math::

    x_d = -\\Delta x \\sin PA + \\Delta y \\cos PA, \\qquad
    y_d = -(\\Delta x \\cos PA + \\Delta y \\sin PA) / \\cos i, \\qquad
    R = \\sqrt{x_d^2 + y_d^2},

    v(x, y) = v_{\\rm sys} + v_{\\rm rot}(R) \\sin i \\; x_d / R,

with :math:`v_{\\rm rot}(R) = v_{\\max} \\tanh(R/r_t)` or
:math:`v_{\\max} (2/\\pi) \\arctan(R/r_t)` (Courteau 1997, AJ 114, 2402, doi:10.1086/118656).
The ratio :math:`v_{\\rm rot}(R)/R` is evaluated in a form that stays finite and differentiable at
:math:`R = 0`.

Beam smearing (:func:`smeared_disk_velocity`) is the flux-weighted convolution with a circular
Gaussian PSF, :math:`v_{\\rm obs} = [P * (F v)] / [P * F]`, computed on a grid supersampled by an
integer factor and averaged back to the spaxels (e.g. Begeman 1987, PhD thesis; Di Teodoro &
Fraternali 2015, MNRAS 451, 3021, doi:10.1093/mnras/stv1213).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import jax
import jax.numpy as jnp
import numpy as np

from .errors import InputError, ShapeError

__all__ = [
    "DiskParams",
    "ROTATION_CURVES",
    "rotation_curve",
    "disk_plane",
    "disk_velocity",
    "smeared_disk_velocity",
]

ROTATION_CURVES = ("tanh", "arctan")


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class DiskParams:
    """Parameters of a thin rotating disk, a JAX pytree (every field is a leaf).

    Fields may be floats or JAX arrays (traced values in a model), so no validation happens here;
    priors in :mod:`bayesifu.models.disk` keep them in range.

    Parameters
    ----------
    x0, y0 : float
        Kinematic centre [spaxel] (0-based; x = column, y = row).
    pa : float
        Position angle of the receding major axis [deg], north (+y) through east (-x).
    inc : float
        Inclination [deg], 0 = face-on, below 90.
    vsys : float
        Systemic velocity [km/s].
    vmax : float
        Asymptotic rotation speed [km/s].
    rt : float
        Turnover radius [spaxel], > 0.
    """

    x0: float
    y0: float
    pa: float
    inc: float
    vsys: float
    vmax: float
    rt: float

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names, in order."""
        return tuple(f.name for f in fields(cls))


def _check_curve(curve: str) -> None:
    if curve not in ROTATION_CURVES:
        raise InputError(f"rotation curve {curve!r} is unknown; choose one of {ROTATION_CURVES}")


def rotation_curve(radius, vmax, rt, curve: str = "tanh"):
    """Circular speed :math:`v_{\\rm rot}(R)` [km/s] at disk radius ``radius`` [spaxel]."""
    _check_curve(curve)
    u = jnp.asarray(radius) / rt
    if curve == "tanh":
        return vmax * jnp.tanh(u)
    return vmax * (2.0 / jnp.pi) * jnp.arctan(u)


def _speed_over_radius(radius, vmax, rt, curve: str):
    """:math:`v_{\\rm rot}(R)/R`, finite with a finite gradient at R = 0 (series near 0)."""
    u = radius / rt
    small = u < 1e-4
    u_safe = jnp.where(small, 1.0, u)
    if curve == "tanh":
        ratio = jnp.where(small, 1.0 - u**2 / 3.0, jnp.tanh(u_safe) / u_safe)
    else:
        ratio = (2.0 / jnp.pi) * jnp.where(small, 1.0 - u**2 / 3.0, jnp.arctan(u_safe) / u_safe)
    return vmax * ratio / rt


def disk_plane(x, y, params: DiskParams):
    """Disk-plane coordinates ``(x_d, y_d)`` [spaxel]; ``x_d`` runs along the receding axis."""
    pa = jnp.deg2rad(params.pa)
    dx = jnp.asarray(x) - params.x0
    dy = jnp.asarray(y) - params.y0
    x_d = -dx * jnp.sin(pa) + dy * jnp.cos(pa)
    y_d = -(dx * jnp.cos(pa) + dy * jnp.sin(pa)) / jnp.cos(jnp.deg2rad(params.inc))
    return x_d, y_d


def disk_velocity(x, y, params: DiskParams, curve: str = "tanh"):
    """Line-of-sight velocity [km/s] of a thin rotating disk at pixel positions ``(x, y)``.

    Parameters
    ----------
    x, y : array_like
        Pixel coordinates [spaxel] of the same shape.
    params : DiskParams
        The disk.
    curve : {"tanh", "arctan"}
        The rotation-curve shape.

    Returns
    -------
    jax.Array
        :math:`v_{\\rm sys} + v_{\\rm rot}(R) \\sin i \\, x_d / R`, shaped like ``x``.
    """
    _check_curve(curve)
    if jnp.shape(x) != jnp.shape(y):
        raise ShapeError(f"x has shape {jnp.shape(x)} but y has shape {jnp.shape(y)}")
    x_d, y_d = disk_plane(x, y, params)
    r2 = x_d**2 + y_d**2
    radius = jnp.sqrt(jnp.where(r2 > 0, r2, 1.0)) * (r2 > 0)
    ratio = _speed_over_radius(radius, params.vmax, params.rt, curve)
    return params.vsys + ratio * jnp.sin(jnp.deg2rad(params.inc)) * x_d


def _gaussian_kernel(sigma_psf: float, oversample: int):
    """Normalised 2-D Gaussian on the supersampled grid, out to 4 sigma."""
    s = sigma_psf * oversample
    half = int(np.ceil(4 * s))
    t = np.arange(-half, half + 1, dtype=float)
    g = np.exp(-0.5 * (t / s) ** 2)
    k = np.outer(g, g)
    return jnp.asarray(k / k.sum())


def smeared_disk_velocity(
    params: DiskParams,
    shape: tuple[int, int],
    sigma_psf: float,
    *,
    flux=None,
    curve: str = "tanh",
    oversample: int = 3,
):
    """Beam-smeared velocity map [km/s] of a thin disk on a ``(ny, nx)`` spaxel grid.

    The velocity and the flux are evaluated on a grid ``oversample`` times finer than the
    spaxels; the flux-weighted velocity is convolved with a circular Gaussian PSF of standard
    deviation ``sigma_psf`` [spaxel] (zero padding outside the map), divided by the convolved flux,
    and averaged over the sub-pixels of each spaxel:

    .. math::

        v_{\\rm obs} = \\frac{P * (F v)}{P * F}.

    Parameters
    ----------
    params : DiskParams
        The disk.
    shape : tuple of int
        The map shape ``(ny, nx)``.
    sigma_psf : float
        PSF standard deviation [spaxel] (FWHM / 2.3548), > 0.
    flux : array_like, shape (ny, nx), optional
        Surface brightness used as weight (e.g. the line flux map; each spaxel's value is used
        for its sub-pixels). Default uniform, which is a documented approximation: a centrally
        concentrated flux smears the inner rotation curve more.
    curve : {"tanh", "arctan"}
        Rotation-curve shape.
    oversample : int
        Sub-pixels per spaxel along each axis (odd keeps the spaxel centre on a sub-pixel).

    Returns
    -------
    jax.Array, shape (ny, nx)
    """
    if not (np.isfinite(sigma_psf) and sigma_psf > 0):
        raise InputError(f"sigma_psf = {sigma_psf} spaxel must be positive and finite")
    if int(oversample) != oversample or oversample < 1:
        raise InputError(f"oversample = {oversample} must be a positive integer")
    ny, nx = (int(s) for s in shape)
    k = int(oversample)
    offs = (np.arange(k) + 0.5) / k - 0.5
    ys = (np.arange(ny)[:, None] + offs[None, :]).ravel()
    xs = (np.arange(nx)[:, None] + offs[None, :]).ravel()
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    v = disk_velocity(jnp.asarray(xx), jnp.asarray(yy), params, curve)
    if flux is None:
        f = jnp.ones((ny * k, nx * k))
    else:
        flux = jnp.asarray(flux, dtype=float)
        if flux.shape != (ny, nx):
            raise ShapeError(f"flux map has shape {flux.shape}, expected {(ny, nx)}")
        f = jnp.repeat(jnp.repeat(jnp.clip(flux, 0.0), k, axis=0), k, axis=1)
    kernel = _gaussian_kernel(float(sigma_psf), k)
    num = jax.scipy.signal.convolve2d(f * v, kernel, mode="same")
    den = jax.scipy.signal.convolve2d(f, kernel, mode="same")
    den_safe = jnp.where(den > 0, den, 1.0)
    v_obs = jnp.where(den > 0, num / den_safe, params.vsys)
    return v_obs.reshape(ny, k, nx, k).mean(axis=(1, 3))
