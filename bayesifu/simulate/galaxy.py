"""The truth of a simulation: a thin rotating disk and its exponential surface brightness (numpy).

This module is deliberately independent of :mod:`bayesifu.kinematics` (the JAX forward model that
is fitted): two implementations of the same conventions, written apart and tested to agree
(``tests/test_kinematics.py``), so a sign or angle error in one shows up as a failed test instead of
being shared by the truth and the fit.

Conventions (the pure-JAX forward model used for fitting must follow the same ones):

* Positions are pixel coordinates on the ``(ny, nx)`` grid, 0-based, spaxel centres at integers:
  ``x`` is the numpy column (FITS axis 1), ``y`` the numpy row (FITS axis 2). The centre
  ``(x0, y0)`` and the turnover radius ``rt`` are in spaxels.
* The sky orientation is that of a standard celestial WCS, north = +y and east = -x (RA
  decreases with x, ``CDELT1 < 0``), as in MaNGA and MUSE cubes.
* The position angle ``pa`` [deg] is that of the *receding* half of the major axis, measured from
  north through east (counter-clockwise on the sky as displayed with east to the left): the
  receding major axis points along the unit vector :math:`(-\\sin PA, \\cos PA)` in ``(x, y)``.
  This is the convention of the MaNGA DAP and of kinematic fitting codes such as ``kinemetry``
  and ``fit_kinematic_pa`` (Krajnovic et al. 2006, MNRAS 366, 787,
  doi:10.1111/j.1365-2966.2005.09902.x).
* The inclination ``inc`` [deg] is 0 for a face-on disk; it must lie in ``[0, 90)``.

With :math:`\\Delta x = x - x_0`, :math:`\\Delta y = y - y_0`, the coordinates in the disk plane are

.. math::

    x_d = -\\Delta x \\sin PA + \\Delta y \\cos PA, \\qquad
    y_d = -(\\Delta x \\cos PA + \\Delta y \\sin PA) / \\cos i, \\qquad
    R = \\sqrt{x_d^2 + y_d^2},

and the line-of-sight velocity of a thin disk in circular rotation is

.. math::

    v(x, y) = v_{\\rm sys} + v_{\\rm rot}(R) \\, \\sin i \\, x_d / R

(:math:`v = v_{\\rm sys}` at :math:`R = 0`), with the rotation curve
:math:`v_{\\rm rot}(R) = v_{\\max} \\tanh(R / r_t)` (``curve="tanh"``) or
:math:`v_{\\rm rot}(R) = v_{\\max} (2/\\pi) \\arctan(R / r_t)` (``curve="arctan"``; Courteau 1997,
AJ 114, 2402, doi:10.1086/118656). The surface brightness is exponential in the disk radius,
:math:`I(x, y) = I_0 \\exp(-R / h)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ShapeError

__all__ = ["DiskParams", "ROTATION_CURVES", "rotation_curve", "disk_radius", "disk_velocity"]
__all__ += ["exponential_surface_brightness"]

ROTATION_CURVES = ("tanh", "arctan")


@dataclass(frozen=True)
class DiskParams:
    """Parameters of a thin rotating disk (the truth of a simulated velocity field).

    Parameters
    ----------
    x0, y0 : float
        Kinematic centre [spaxel], 0-based pixel coordinates (x = column, y = row).
    pa : float
        Position angle of the receding half of the major axis [deg], from north (+y) through
        east (-x).
    inc : float
        Inclination [deg], 0 = face-on; must lie in ``[0, 90)``.
    vsys : float
        Systemic velocity [km/s].
    vmax : float
        Asymptotic rotation speed [km/s] (may be negative, which flips the receding side).
    rt : float
        Turnover radius of the rotation curve [spaxel], > 0.
    curve : {"tanh", "arctan"}
        Shape of the rotation curve (see the module docstring).
    """

    x0: float
    y0: float
    pa: float
    inc: float
    vsys: float
    vmax: float
    rt: float
    curve: str = "tanh"

    def __post_init__(self):
        for name in ("x0", "y0", "pa", "inc", "vsys", "vmax", "rt"):
            value = getattr(self, name)
            if not isinstance(value, int | float | np.integer | np.floating) or not math.isfinite(
                value
            ):
                raise InputError(f"DiskParams.{name} must be a finite number, got {value!r}")
        if not 0.0 <= self.inc < 90.0:
            raise InputError(
                f"DiskParams.inc = {self.inc} deg is outside [0, 90): a thin disk seen edge-on "
                "(90 deg) has no defined deprojection"
            )
        if self.rt <= 0:
            raise InputError(f"DiskParams.rt = {self.rt} spaxel must be positive")
        if self.curve not in ROTATION_CURVES:
            raise InputError(
                f"DiskParams.curve = {self.curve!r} is unknown; choose one of {ROTATION_CURVES}"
            )


def rotation_curve(radius, params: DiskParams) -> np.ndarray:
    """Circular speed :math:`v_{\\rm rot}(R)` [km/s] at disk radius ``radius`` [spaxel]."""
    r = np.asarray(radius, dtype=float) / params.rt
    if params.curve == "tanh":
        return params.vmax * np.tanh(r)
    return params.vmax * (2.0 / np.pi) * np.arctan(r)


def _coordinates(x, y):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ShapeError(f"x has shape {x.shape} but y has shape {y.shape}; they must agree")
    return x, y


def _disk_plane(x, y, params: DiskParams):
    """Disk-plane coordinates ``(x_d, y_d)`` [spaxel]; ``x_d`` runs along the receding axis."""
    x, y = _coordinates(x, y)
    pa = np.deg2rad(params.pa)
    dx, dy = x - params.x0, y - params.y0
    x_d = -dx * np.sin(pa) + dy * np.cos(pa)
    y_d = -(dx * np.cos(pa) + dy * np.sin(pa)) / np.cos(np.deg2rad(params.inc))
    return x_d, y_d


def disk_radius(x, y, params: DiskParams) -> np.ndarray:
    """Deprojected radius :math:`R` [spaxel] in the disk plane of the points ``(x, y)`` [spaxel]."""
    x_d, y_d = _disk_plane(x, y, params)
    return np.hypot(x_d, y_d)


def disk_velocity(x, y, params: DiskParams) -> np.ndarray:
    """Line-of-sight velocity [km/s] of a thin rotating disk at pixel positions ``(x, y)``.

    Parameters
    ----------
    x, y : array_like
        Pixel coordinates [spaxel] of the same shape (x = column, y = row).
    params : DiskParams
        The disk.

    Returns
    -------
    numpy.ndarray
        :math:`v_{\\rm sys} + v_{\\rm rot}(R) \\sin i \\, x_d / R`, shaped like ``x``.
    """
    x_d, y_d = _disk_plane(x, y, params)
    radius = np.hypot(x_d, y_d)
    cos_theta = np.divide(x_d, radius, out=np.zeros_like(radius), where=radius > 0)
    v_rot = rotation_curve(radius, params)
    return params.vsys + v_rot * np.sin(np.deg2rad(params.inc)) * cos_theta


def exponential_surface_brightness(x, y, params: DiskParams, scale_length, peak=1.0):
    """Exponential surface brightness :math:`I_0 \\exp(-R / h)` of the disk at ``(x, y)``.

    Parameters
    ----------
    x, y : array_like
        Pixel coordinates [spaxel] of the same shape.
    params : DiskParams
        The disk (its centre, position angle and inclination set the elliptical isophotes).
    scale_length : float
        The disk scale length :math:`h` [spaxel], > 0.
    peak : float
        The central surface brightness :math:`I_0` [flux unit per spaxel].
    """
    if not (math.isfinite(scale_length) and scale_length > 0):
        raise InputError(f"scale_length = {scale_length} spaxel must be positive and finite")
    if not math.isfinite(peak):
        raise InputError(f"peak = {peak} must be finite")
    return peak * np.exp(-disk_radius(x, y, params) / scale_length)
