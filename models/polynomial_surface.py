"""Polynomial surface z = f(u, v), sampled in an orthonormal basis, reported as a power series.

The model
---------
.. math::

    z(u, v) = \\sum_{i=0}^{d_u}\\sum_{j=0}^{d_v} c_{ij}\\, u^i v^j
            = \\bar z + s_z \\sum_k \\theta_k\\, Q_k(u, v),

where :math:`Q_k` are Legendre products on standardised inputs, orthonormalised on the data points
(:class:`bayesifu.surfaces.PolynomialBasis`, :math:`Q^T Q = n I`), and :math:`\\bar z, s_z` are the
mean and standard deviation of the data. The sampler sees :math:`\\theta`, whose posterior is nearly
uncorrelated even when the power-series coefficients are hopelessly degenerate (seed 004:
:math:`u = 1/x^2`, 16 coefficients, 66 points, singular Levenberg-Marquardt covariance); every
draw is mapped back exactly to the user's coefficients :math:`c_{ij}`, recorded as ``coef``
(order ``basis.power_names``).

Priors::

    theta_k ~ Normal(0, prior_scale)        (in units of s_z; data-scaled, weak)
    scatter ~ HalfNormal(s_z)               (array data: the unknown noise [z unit])

With a likelihood object (:class:`bayesifu.MapLikelihood`) the quoted errors and covariance are
used and ``scale``/``scatter`` are optional; with plain array data the noise is the ``scatter``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesifu.errors import InputError
from bayesifu.modelling import (
    default_scatter,
    noise_terms,
    observe,
    observed_values,
    require_points,
)
from bayesifu.surfaces import PolynomialBasis

__all__ = ["model", "seed004_data", "SEED004_NAMES", "main"]

# Seed 004: n(x, y) at 6 wavelengths x [nm] (columns) and 11 temperatures y (rows).
SEED004_X = np.array([226.5, 361.05, 404.41, 589.0, 632.8, 1013.98])
SEED004_Y = np.linspace(0.0, 100.0, 11)
SEED004_Z = np.array(
    [
        [1.3945, 1.34896, 1.34415, 1.33432, 1.33306, 1.32612],
        [1.39422, 1.3487, 1.34389, 1.33408, 1.33282, 1.32591],
        [1.39336, 1.34795, 1.34315, 1.33336, 1.33211, 1.32524],
        [1.39208, 1.34682, 1.34205, 1.3323, 1.33105, 1.32424],
        [1.39046, 1.3454, 1.34065, 1.33095, 1.32972, 1.32296],
        [1.38854, 1.34373, 1.33901, 1.32937, 1.32814, 1.32145],
        [1.38636, 1.34184, 1.33714, 1.32757, 1.32636, 1.31974],
        [1.38395, 1.33974, 1.33508, 1.32559, 1.32438, 1.31784],
        [1.38132, 1.33746, 1.33284, 1.32342, 1.32223, 1.31576],
        [1.37849, 1.33501, 1.33042, 1.32109, 1.31991, 1.31353],
        [1.37547, 1.33239, 1.32784, 1.31861, 1.31744, 1.31114],
    ]
)
#: The seed's names: a_j, b_j, c_j, d_j multiply y**(j-1) / x**0, x**2, x**4, x**6.
SEED004_NAMES = [f"{g}{j}" for g in "abcd" for j in range(1, 5)]


def seed004_data():
    """Seed 004 flattened: ``(u, v, z)`` with ``u = 1/x**2``, ``v = y``; cubic in both."""
    xx, yy = np.meshgrid(SEED004_X, SEED004_Y)
    return 1.0 / xx.ravel() ** 2, yy.ravel(), SEED004_Z.ravel()


def model(
    u,
    v,
    obs=None,
    *,
    degree=(3, 3),
    basis: PolynomialBasis | None = None,
    prior_scale: float = 10.0,
    scale=None,
    scatter=None,
):
    """NumPyro program of a polynomial surface in an orthonormal basis.

    Parameters
    ----------
    u, v : array_like, shape (n,)
        The two inputs at the data points (any transformation of the coordinates).
    obs : array_like or MapLikelihood, optional
        The data (independent, unknown noise ``scatter``) or a likelihood with errors and
        covariance; ``None`` samples the prior with unit data scale.
    degree : tuple of int
        Highest powers ``(d_u, d_v)``.
    basis : PolynomialBasis, optional
        A prebuilt basis on these points (saves the QR decomposition).
    prior_scale : float
        Prior standard deviation of the orthonormal coefficients, in data standard deviations.
    scale, scatter : numpyro distribution, optional
        Error-scale factor and intrinsic scatter priors. For array data the scatter defaults to
        ``HalfNormal(s_z)`` (it is the only noise term).
    """
    basis = basis or PolynomialBasis(u, v, degree)
    if basis.n_points != np.size(u):
        raise InputError(f"basis was built on {basis.n_points} points, got {np.size(u)}")
    data = observed_values(obs)
    data = None if data is None else data.ravel()
    zbar = 0.0 if data is None else float(np.mean(data))
    zsd = 1.0 if data is None or np.std(data) == 0 else float(np.std(data))
    scatter = default_scatter(obs, scatter, lambda: zsd)
    if obs is not None:
        extra = (scale is not None) + (scatter is not None)
        require_points(data.size, basis.n_terms + extra, "polynomial surface")
    theta = numpyro.sample(
        "theta", dist.Normal(0.0, prior_scale).expand([basis.n_terms]).to_event(1)
    )
    design = jnp.asarray(basis.design(u, v))
    mu = zbar + zsd * (design @ theta)
    offset = np.zeros(basis.n_terms)
    offset[0] = zbar
    numpyro.deterministic("coef", basis.to_power(zsd * theta) + offset)
    s, t = noise_terms(scale, scatter)
    if obs is not None:
        observe(obs, mu, scale=s, scatter=t)


def main(argv=None):
    """Seed 004: the 16-coefficient surface lmfit cannot give errors for, sampled with NUTS."""
    numpyro.enable_x64()
    from bayesifu import _arviz
    from bayesifu.lmfit import lm_fit
    from bayesifu.sampling import sample

    u, v, z = seed004_data()
    basis = PolynomialBasis(u, v, (3, 3))
    idata = sample(model, u, v, z, basis=basis, chains=2, draws=1000, warmup=1000)
    coef = np.asarray(_arviz.group(idata, "posterior")["coef"]).reshape(-1, basis.n_terms)
    pd = basis.power_design(u, v)
    lm = lm_fit(
        lambda p: jnp.asarray(pd) @ jnp.stack([p[k] for k in SEED004_NAMES]),
        dict(zip(SEED004_NAMES, np.linalg.lstsq(pd, z, rcond=None)[0], strict=True)),
        data=z,
    )
    print(_arviz.summary(idata, var_names=["theta", "scatter"]))
    print(f"{'name':>5} {'posterior mean':>16} {'posterior sd':>14}")
    for k, name in enumerate(SEED004_NAMES):
        print(f"{name:>5} {coef[:, k].mean():16.6g} {coef[:, k].std():14.4g}")
    print("LM covariance:", "none -- " + lm.note if lm.covariance is None else "available")
    return idata


if __name__ == "__main__":
    main()
