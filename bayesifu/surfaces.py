"""Pure-JAX surfaces z = f(x, y): polynomials in an orthogonal basis, planes, Sersic profiles.

Polynomial surfaces
-------------------
A tensor-product polynomial of degrees :math:`(d_u, d_v)` in two inputs,

.. math::

    z(u, v) = \\sum_{i=0}^{d_u} \\sum_{j=0}^{d_v} c_{ij} \\, u^i v^j,

is badly conditioned in the power-series coefficients :math:`c_{ij}` when the inputs are far
from 0 or span very different ranges (seed 004: :math:`u = 1/x^2 \\sim 10^{-6}`, whose
Levenberg-Marquardt covariance is singular). :class:`PolynomialBasis` fits in an orthonormal
basis instead: Legendre polynomials of the inputs standardised to :math:`[-1, 1]`, orthonormalised
on the data points by a QR decomposition, so that the design matrix :math:`Q` has
:math:`Q^T Q = n I`. The coefficients :math:`\\theta` of that basis are well identified and
nearly uncorrelated; the power-series coefficients are an exact linear map of them,
:math:`c = W \\theta` (:meth:`PolynomialBasis.to_power`), applied to every posterior draw.
See Bjorck 1996, *Numerical Methods for Least Squares Problems*, doi:10.1137/1.9781611971484.

Other surfaces
--------------
:func:`plane` (a linear gradient), :func:`radial_gradient` (linear in deprojected radius, e.g.
metallicity gradients), :func:`sersic` (Sersic 1963; :math:`b_n` from Ciotti & Bertin 1999,
A&A 352, 447, arXiv:astro-ph/9911078) and :func:`exponential` (the :math:`n = 1` disk).
Geometry follows :mod:`bayesifu.kinematics`: pixel coordinates, PA of the major axis from north
(+y) through east (-x).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from numpy.polynomial import Legendre, Polynomial
from numpy.polynomial.legendre import legvander

from .errors import InputError, ShapeError

__all__ = [
    "PolynomialBasis",
    "PlaneParams",
    "SersicParams",
    "plane",
    "radial_gradient",
    "sersic",
    "sersic_bn",
    "exponential",
]


def _as_points(u, v):
    u = np.asarray(u, dtype=float).ravel()
    v = np.asarray(v, dtype=float).ravel()
    if u.shape != v.shape:
        raise ShapeError(f"u has {u.size} points but v has {v.size}; they must agree")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(v))):
        raise InputError("polynomial surface inputs u, v must be finite")
    return u, v


def _legendre_to_power(degree: int, domain) -> np.ndarray:
    """Matrix K, K[i, k] = coefficient of u**i in the Legendre P_k mapped from ``domain``."""
    k_mat = np.zeros((degree + 1, degree + 1))
    for k in range(degree + 1):
        coef = Legendre.basis(k, domain=domain).convert(kind=Polynomial).coef
        k_mat[: coef.size, k] = coef
    return k_mat


class PolynomialBasis:
    """Orthonormal tensor-product polynomial basis in two inputs, built on the data points.

    Parameters
    ----------
    u, v : array_like
        The inputs at the data points (e.g. ``u = 1 / x**2``, ``v = y``), any matching shape.
    degree : tuple of int
        ``(d_u, d_v)``: highest power of ``u`` and of ``v``; ``(d_u + 1) * (d_v + 1)`` terms.

    Notes
    -----
    Raises :class:`~bayesifu.errors.InputError` if the points cannot determine the surface
    (fewer distinct values of an input than its degree + 1, or fewer points than terms).
    """

    def __init__(self, u, v, degree):
        u, v = _as_points(u, v)
        du, dv = (int(d) for d in degree)
        if du < 0 or dv < 0:
            raise InputError(f"polynomial degree {degree} must be non-negative")
        self.degree = (du, dv)
        for name, values, d in (("u", u, du), ("v", v, dv)):
            if np.unique(values).size < d + 1:
                raise InputError(
                    f"input {name} has {np.unique(values).size} distinct values, too few for "
                    f"degree {d}: lower the degree or add data"
                )
        if u.size < self.n_terms:
            raise InputError(
                f"{u.size} data points cannot determine a surface with {self.n_terms} terms"
            )
        self.domain_u = (float(u.min()), float(u.max()))
        self.domain_v = (float(v.min()), float(v.max()))
        self.n_points = u.size
        q, r = np.linalg.qr(self._legendre_design(u, v))
        self._r_inv = np.linalg.solve(r, np.eye(self.n_terms)) * np.sqrt(u.size)
        k_mat = np.kron(
            _legendre_to_power(du, self.domain_u), _legendre_to_power(dv, self.domain_v)
        )
        self._w = k_mat @ self._r_inv

    @property
    def n_terms(self) -> int:
        """The number of coefficients, ``(d_u + 1) * (d_v + 1)``."""
        return (self.degree[0] + 1) * (self.degree[1] + 1)

    @property
    def power_names(self) -> list[str]:
        """Names ``c_i_j`` of the power-series coefficients (of ``u**i * v**j``), in order."""
        du, dv = self.degree
        return [f"c_{i}_{j}" for i in range(du + 1) for j in range(dv + 1)]

    @staticmethod
    def _scale(values, domain):
        lo, hi = domain
        return 2.0 * (values - lo) / (hi - lo) - 1.0 if hi > lo else np.zeros_like(values)

    def _legendre_design(self, u, v):
        lu = legvander(self._scale(u, self.domain_u), self.degree[0])
        lv = legvander(self._scale(v, self.domain_v), self.degree[1])
        return (lu[:, :, None] * lv[:, None, :]).reshape(u.size, -1)

    def design(self, u, v) -> np.ndarray:
        """Orthonormal design matrix ``(n, n_terms)`` at points ``(u, v)``.

        On the points the basis was built on, its columns satisfy :math:`Q^T Q = n I`.
        """
        u, v = _as_points(u, v)
        return self._legendre_design(u, v) @ self._r_inv

    def power_design(self, u, v) -> np.ndarray:
        """Design matrix of the raw power series, columns ``u**i * v**j`` in :attr:`power_names`
        order (for checks; badly conditioned by nature)."""
        u, v = _as_points(u, v)
        du, dv = self.degree
        return (
            np.vander(u, du + 1, increasing=True)[:, :, None]
            * np.vander(v, dv + 1, increasing=True)[:, None, :]
        ).reshape(u.size, -1)

    def to_power(self, theta):
        """Power-series coefficients :math:`c = W \\theta` (batch axes lead)."""
        return jnp.asarray(theta) @ jnp.asarray(self._w).T

    def from_power(self, coef) -> np.ndarray:
        """Orthonormal-basis coefficients of a power series (inverse of :meth:`to_power`)."""
        return np.linalg.solve(self._w, np.asarray(coef, dtype=float).T).T


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PlaneParams:
    """A plane :math:`z = z_0 + g_x (x - x_{\\rm ref}) + g_y (y - y_{\\rm ref})` (a pytree).

    Parameters
    ----------
    z0 : float
        Value at the reference point [z unit].
    gx, gy : float
        Gradients along x and y [z unit / spaxel].
    """

    z0: float
    gx: float
    gy: float


def plane(x, y, params: PlaneParams, x_ref: float = 0.0, y_ref: float = 0.0):
    """Evaluate a plane at pixel positions ``(x, y)`` [spaxel]; see :class:`PlaneParams`."""
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    return params.z0 + params.gx * (x - x_ref) + params.gy * (y - y_ref)


def _elliptical_radius(x, y, x0, y0, pa, q):
    """Elliptical radius [spaxel]: major axis at ``pa`` [deg] (north through east), axis ratio q."""
    pa_r = jnp.deg2rad(pa)
    dx = jnp.asarray(x) - x0
    dy = jnp.asarray(y) - y0
    x_maj = -dx * jnp.sin(pa_r) + dy * jnp.cos(pa_r)
    y_min = -(dx * jnp.cos(pa_r) + dy * jnp.sin(pa_r)) / q
    r2 = x_maj**2 + y_min**2
    return jnp.sqrt(jnp.where(r2 > 0, r2, 1.0)) * (r2 > 0)


def radial_gradient(x, y, x0, y0, pa, q, z0, slope):
    """Linear radial gradient :math:`z = z_0 + s R` in the elliptical radius R [spaxel].

    ``q`` is the axis ratio (``cos i`` for a thin disk) and ``slope`` is in [z unit / spaxel].
    """
    return z0 + slope * _elliptical_radius(x, y, x0, y0, pa, q)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class SersicParams:
    """Sersic surface-brightness profile (a pytree).

    Parameters
    ----------
    x0, y0 : float
        Centre [spaxel].
    pa : float
        Position angle of the major axis [deg], north (+y) through east (-x).
    q : float
        Axis ratio b/a, in (0, 1].
    ie : float
        Surface brightness at the effective radius [flux unit].
    re : float
        Effective (half-light) radius along the major axis [spaxel], > 0.
    n : float
        Sersic index, > 0.
    """

    x0: float
    y0: float
    pa: float
    q: float
    ie: float
    re: float
    n: float


def sersic_bn(n):
    """:math:`b_n` with :math:`\\Gamma(2n) = 2\\gamma(2n, b_n)`: the asymptotic series of
    Ciotti & Bertin (1999); relative error below 1e-5 for n >= 1, 7e-4 at n = 0.5, 2.5e-3 at
    n = 0.4."""
    n = jnp.asarray(n)
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n**2)


def sersic(x, y, params: SersicParams):
    """Sersic profile :math:`I_e \\exp\\{-b_n [(R/R_e)^{1/n} - 1]\\}` at ``(x, y)`` [spaxel]."""
    r = _elliptical_radius(x, y, params.x0, params.y0, params.pa, params.q)
    bn = sersic_bn(params.n)
    ratio = jnp.where(r > 0, r / params.re, 1.0)
    power = jnp.where(r > 0, ratio ** (1.0 / params.n), 0.0)
    return params.ie * jnp.exp(-bn * (power - 1.0))


def exponential(x, y, x0, y0, pa, q, i0, h):
    """Exponential disk :math:`I_0 \\exp(-R/h)` in the elliptical radius R; h [spaxel]."""
    return i0 * jnp.exp(-_elliptical_radius(x, y, x0, y0, pa, q) / h)
