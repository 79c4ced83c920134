"""Constant value fitted to a map: the null model of a velocity field (no rotation, no gradient).

The model
---------
.. math::

    v(x, y) = v_0,

with the data following a multivariate normal with the full spatial covariance
(:class:`bayesifu.MapLikelihood`), an optional error-scale factor and intrinsic scatter. Compare it
with :mod:`bayesifu.models.plane` and :mod:`bayesifu.models.disk` by PSIS-LOO
(:func:`arviz.compare` on the results of :func:`bayesifu.sample`).

Priors (arguments)::

    v0 ~ Normal(median of the data, 10 x its standard deviation)
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

__all__ = ["model", "main"]


def model(x, y, obs=None, *, v0=None, scale=None, scatter=None):
    """NumPyro program of a constant map.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Pixel coordinates [spaxel] of the data (``lik.x, lik.y``); only their number is used.
    obs : MapLikelihood or array_like, optional
        The data with their covariance (or an array with unknown white noise ``scatter``).
    v0 : numpyro distribution, optional
        Prior of the constant.
    scale, scatter : numpyro distribution, optional
        Error-scale factor and intrinsic-scatter priors.
    """
    data = observed_values(obs)
    if v0 is None:
        centre = 0.0 if data is None else float(np.median(data))
        width = 1.0 if data is None else 10.0 * float(np.std(data)) + 1e-3 * abs(centre) + 1e-12
        v0 = dist.Normal(centre, width)
    scatter = default_scatter(obs, scatter, lambda: float(np.std(data)) + 1e-12)
    if obs is not None:
        require_points(data.size, 1 + (scale is not None) + (scatter is not None), "constant")
    value = numpyro.sample("v0", v0)
    s, t = noise_terms(scale, scatter)
    if obs is not None:
        observe(obs, jnp.broadcast_to(value, np.shape(x)), scale=s, scatter=t)


def main(argv=None):
    """Fit a constant to a simulated MaNGA-like map with exact correlated noise."""
    numpyro.enable_x64()
    from bayesifu import _arviz, simulate
    from bayesifu.likelihood import MapLikelihood
    from bayesifu.sampling import sample

    sim = simulate.manga_like(n_fibres=19, n_exposures=9, seed=3)
    xx, _ = sim.coordinates()
    m = sim.observe(np.full(xx.shape, 25.0), noise_sigma=5.0, seed=4)
    lik = MapLikelihood(m, sim.correlation())
    idata = sample(model, lik.x, lik.y, lik, chains=2, draws=500)
    print(_arviz.summary(idata, var_names=["v0"]))
    print("truth: v0 = 25")
    return idata


if __name__ == "__main__":
    main()
