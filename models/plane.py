"""Plane (linear gradient) fitted to a map, e.g. a metallicity or velocity gradient.

The model
---------
.. math::

    z(x, y) = z_0 + g_x (x - x_{\\rm ref}) + g_y (y - y_{\\rm ref}),

with the data following a multivariate normal with the full spatial covariance
(:class:`bayesifu.MapLikelihood`), an optional error-scale factor and intrinsic scatter. The
reference point defaults to the centre of the data, which decorrelates :math:`z_0` from the
gradients. Derived quantities: the gradient magnitude ``g`` :math:`= \\sqrt{g_x^2 + g_y^2}`
[z unit / spaxel] and its direction ``g_angle`` [deg] measured like a position angle (from north,
+y, through east, -x).

Priors (arguments)::

    z0     ~ Normal(mean of the data, 10 x its standard deviation)
    gx, gy ~ Normal(0, gradient_scale)      [z unit / spaxel]
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesifu.modelling import (
    default_scatter,
    noise_terms,
    observe,
    observed_values,
    require_points,
)
from bayesifu.surfaces import PlaneParams, plane

__all__ = ["model", "main"]


def model(
    x,
    y,
    obs=None,
    *,
    z0=None,
    gradient_scale: float = 1.0,
    x_ref: float | None = None,
    y_ref: float | None = None,
    scale=None,
    scatter=None,
):
    """NumPyro program of a plane.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Pixel coordinates [spaxel] of the data (``lik.x, lik.y``).
    obs : MapLikelihood or array_like, optional
        The data with their covariance (or an array with unknown white noise ``scatter``).
    z0 : numpyro distribution, optional
        Prior of the value at the reference point.
    gradient_scale : float
        Standard deviation of the normal priors of ``gx`` and ``gy`` [z unit / spaxel].
    x_ref, y_ref : float, optional
        Reference point [spaxel]; default the mean of ``x`` and ``y``.
    scale, scatter : numpyro distribution, optional
        Error-scale factor and intrinsic-scatter priors.
    """
    x_ref = float(np.mean(x)) if x_ref is None else x_ref
    y_ref = float(np.mean(y)) if y_ref is None else y_ref
    x = jnp.asarray(x, dtype=float)
    y = jnp.asarray(y, dtype=float)
    data = observed_values(obs)
    if z0 is None:
        centre = 0.0 if data is None else float(np.mean(data))
        width = 1.0 if data is None else 10.0 * float(np.std(data)) + 1e-3 * abs(centre) + 1e-12
        z0 = dist.Normal(centre, width)
    scatter = default_scatter(obs, scatter, lambda: float(np.std(data)) + 1e-12)
    if obs is not None:
        require_points(data.size, 3 + (scale is not None) + (scatter is not None), "plane")
    params = PlaneParams(
        z0=numpyro.sample("z0", z0),
        gx=numpyro.sample("gx", dist.Normal(0.0, gradient_scale)),
        gy=numpyro.sample("gy", dist.Normal(0.0, gradient_scale)),
    )
    numpyro.deterministic("g", jnp.hypot(params.gx, params.gy))
    numpyro.deterministic("g_angle", jnp.rad2deg(jnp.arctan2(-params.gx, params.gy)) % 360.0)
    mu = plane(x, y, params, x_ref, y_ref)
    s, t = noise_terms(scale, scatter)
    if obs is not None:
        observe(obs, mu, scale=s, scatter=t)


def main(argv=None):
    """Fit a plane to a simulated MaNGA-like map with exact correlated noise."""
    numpyro.enable_x64()
    from bayesifu import _arviz, simulate
    from bayesifu.likelihood import MapLikelihood
    from bayesifu.sampling import sample

    sim = simulate.manga_like(n_fibres=19, n_exposures=9, seed=3)
    xx, yy = sim.coordinates()
    truth = 8.6 - 0.02 * (xx - 16) + 0.01 * (yy - 16)
    m = sim.observe(truth, noise_sigma=0.05, seed=4)
    lik = MapLikelihood(m, sim.correlation())
    idata = sample(model, lik.x, lik.y, lik, x_ref=16.0, y_ref=16.0, chains=2, draws=500)
    print(_arviz.summary(idata, var_names=["z0", "gx", "gy", "g"]))
    print("truth: z0 = 8.6, gx = -0.02, gy = 0.01")
    return idata


if __name__ == "__main__":
    main()
