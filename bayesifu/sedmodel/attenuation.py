"""Dust attenuation of a stellar continuum: the curve of Calzetti et al. (2000).

Calzetti et al. (2000, ApJ 533, 682, doi:10.1086/308692, eq. 4) give the attenuation of the
stellar continuum of starburst galaxies, with :math:`\\lambda` in micron,

.. math::

    k'(\\lambda) = \\begin{cases}
    2.659\\,(-2.156 + 1.509/\\lambda - 0.198/\\lambda^2 + 0.011/\\lambda^3) + R'_V,
    & 0.12 \\le \\lambda \\le 0.63, \\\\
    2.659\\,(-1.857 + 1.040/\\lambda) + R'_V, & 0.63 \\le \\lambda \\le 2.20,
    \\end{cases}

with :math:`R'_V = 4.05 \\pm 0.80` (their eq. 5), so that the attenuated flux is
:math:`F_{\\rm obs}(\\lambda) = F_{\\rm int}(\\lambda)\\, 10^{-0.4\\, E_s(B-V)\\, k'(\\lambda)}
= F_{\\rm int}(\\lambda)\\, 10^{-0.4\\, A_V k'(\\lambda) / R'_V}` with :math:`A_V = R'_V
E_s(B-V)` (a foreground screen of the stars). The two branches are the paper's; they meet at
0.63 micron to 0.025 in :math:`k'` (the paper's own rounding). The formula is valid from 0.12 to
2.20 micron (1200-22000 Angstrom) only: :func:`calzetti_k` refuses concrete wavelengths outside
that range rather than extrapolating.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError

__all__ = ["calzetti_k", "calzetti_attenuation", "check_calzetti_range", "CALZETTI_RANGE", "R_V"]

#: Wavelength range [Angstrom] of the Calzetti et al. (2000) curve.
CALZETTI_RANGE = (1200.0, 22000.0)
#: Total-to-selective attenuation :math:`R'_V` of Calzetti et al. (2000), eq. 5.
R_V = 4.05
_BREAK = 6300.0  # [Angstrom] where the two branches of eq. 4 meet


def check_calzetti_range(wave, what: str = "Calzetti (2000) attenuation") -> None:
    """Raise :class:`~bayesifu.errors.InputError` unless every rest wavelength ``wave``
    [Angstrom] lies in :data:`CALZETTI_RANGE` (1200-22000 Angstrom)."""
    wave = np.asarray(wave, dtype=float)
    lo, hi = CALZETTI_RANGE
    if wave.size and (not np.all(np.isfinite(wave)) or wave.min() < lo or wave.max() > hi):
        raise InputError(
            f"{what}: rest wavelengths {np.nanmin(wave):.6g}-{np.nanmax(wave):.6g} Angstrom leave "
            f"the curve's validity range {lo:g}-{hi:g} Angstrom (Calzetti et al. 2000)"
        )


def calzetti_k(wave, r_v: float = R_V):
    """The attenuation curve :math:`k'(\\lambda)` of Calzetti et al. (2000), eq. 4.

    Parameters
    ----------
    wave : array_like
        Rest-frame wavelength [Angstrom], within :data:`CALZETTI_RANGE`. Concrete values are
        checked (:class:`~bayesifu.errors.InputError` outside the range); traced values (inside
        ``jax.jit``) cannot be, so the caller checks the range it will use
        (:class:`~bayesifu.sedmodel.SEDBasis` does, for its redshift range).
    r_v : float
        :math:`R'_V` (default 4.05, the paper's value).

    Returns
    -------
    jax.Array
        :math:`k'(\\lambda)` [dimensionless], the shape of ``wave``.
    """
    if not isinstance(wave, jax.core.Tracer):
        check_calzetti_range(wave)
    return _calzetti_k(jnp.asarray(wave, dtype=float), r_v)


def _calzetti_k(wave, r_v, xp=jnp):
    """Eq. 4 of Calzetti et al. (2000) without the range check (``wave`` [Angstrom]); ``xp`` is
    ``jax.numpy`` or ``numpy``."""
    x = 1e4 / wave  # inverse micron
    blue = 2.659 * (-2.156 + 1.509 * x - 0.198 * x**2 + 0.011 * x**3)
    red = 2.659 * (-1.857 + 1.040 * x)
    return xp.where(wave < _BREAK, blue, red) + r_v


def calzetti_attenuation(wave, a_v, r_v: float = R_V):
    """Transmitted fraction :math:`10^{-0.4 A_V k'(\\lambda)/R'_V}` of a dust screen.

    Parameters
    ----------
    wave : array_like, shape (n,)
        Rest-frame wavelength [Angstrom] (see :func:`calzetti_k`).
    a_v : float or array_like, shape (...)
        V-band attenuation :math:`A_V \\ge 0` [mag]; a concrete negative value raises
        :class:`~bayesifu.errors.InputError` (a model keeps it non-negative by its prior).
    r_v : float
        :math:`R'_V`.

    Returns
    -------
    jax.Array, shape (..., n)
    """
    if not isinstance(a_v, jax.core.Tracer) and np.any(np.asarray(a_v) < 0):
        raise InputError(f"A_V must be >= 0 mag, got {np.min(a_v):.6g}")
    k = calzetti_k(wave, r_v)
    return 10.0 ** (-0.4 * jnp.asarray(a_v)[..., None] * k / r_v)
