"""Sersic (or exponential) surface-brightness profile fitted to a flux map.

The model
---------
.. math::

    I(x, y) = I_e \\exp\\left\\{-b_n\\left[(R/R_e)^{1/n} - 1\\right]\\right\\},

with :math:`R` the elliptical radius (centre :math:`x_0, y_0`, position angle of the major axis
from north through east, axis ratio :math:`q`) and :math:`b_n` from Ciotti & Bertin (1999, A&A 352,
447, arXiv:astro-ph/9911078). ``n = 1`` (``fix_n=1.0``) is the exponential disk with scale length
:math:`h = R_e / b_1`. The data follow a multivariate normal with the full spatial covariance.

Derived quantity ``total_flux`` (Graham & Driver 2005, PASA 22, 118, doi:10.1071/AS05001):

.. math::

    F = 2\\pi n\\, q\\, R_e^2 I_e\\, e^{b_n} \\Gamma(2n) / b_n^{2n}.

Priors (arguments)::

    x0, y0 ~ Normal(centre of the data, 3) [spaxel]
    pa     ~ Uniform(0, 180) [deg]       (a profile is symmetric under PA -> PA + 180)
    q      ~ Uniform(0.1, 1)
    ie     ~ LogNormal(log(median of the data), 2)
    re     ~ LogNormal(log 5, 1) [spaxel]
    n      ~ Uniform(0.4, 8)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln

from bayesifu.modelling import (
    default_scatter,
    noise_terms,
    observe,
    observed_values,
    require_points,
)
from bayesifu.surfaces import SersicParams, sersic, sersic_bn

__all__ = ["model", "default_priors", "main", "PARAMS"]

PARAMS = ("x0", "y0", "pa", "q", "ie", "re", "n")


def default_priors(x, y, data=None) -> dict:
    """Weakly informative priors: ``{name: distribution}``."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    level = 1.0 if data is None else max(float(np.median(np.abs(data))), 1e-30)
    return {
        "x0": dist.Normal(0.5 * (x.min() + x.max()), 3.0),
        "y0": dist.Normal(0.5 * (y.min() + y.max()), 3.0),
        "pa": dist.Uniform(0.0, 180.0),
        "q": dist.Uniform(0.1, 1.0),
        "ie": dist.LogNormal(np.log(level), 2.0),
        "re": dist.LogNormal(np.log(5.0), 1.0),
        "n": dist.Uniform(0.4, 8.0),
    }


def model(x, y, obs=None, *, priors=None, fix_n: float | None = None, scale=None, scatter=None):
    """NumPyro program of a Sersic profile.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Pixel coordinates [spaxel] of the data.
    obs : MapLikelihood or array_like, optional
        The flux map with its covariance (or an array with white noise ``scatter``).
    priors : dict, optional
        Replacements for :func:`default_priors`.
    fix_n : float, optional
        Fix the Sersic index (1.0: exponential disk).
    scale, scatter : numpyro distribution, optional
        Error-scale factor and intrinsic-scatter priors.
    """
    data = observed_values(obs)
    p = default_priors(x, y, data)
    p.update(priors or {})
    scatter = default_scatter(obs, scatter, lambda: float(np.std(data)) + 1e-30)
    names = [k for k in PARAMS if not (k == "n" and fix_n is not None)]
    if obs is not None:
        extra = (scale is not None) + (scatter is not None)
        require_points(data.size, len(names) + extra, "sersic")
    values = {k: numpyro.sample(k, p[k]) for k in names}
    if fix_n is not None:
        values["n"] = jnp.asarray(float(fix_n))
    params = SersicParams(**values)
    bn = sersic_bn(params.n)
    log_f = (
        jnp.log(2 * jnp.pi * params.n * params.q * params.re**2 * params.ie)
        + bn
        + gammaln(2 * params.n)
        - 2 * params.n * jnp.log(bn)
    )
    numpyro.deterministic("total_flux", jnp.exp(log_f))
    mu = sersic(jnp.asarray(x, dtype=float), jnp.asarray(y, dtype=float), params)
    s, t = noise_terms(scale, scatter)
    if obs is not None:
        observe(obs, mu, scale=s, scatter=t)


def main(argv=None):
    """Fit a Sersic profile to a simulated flux map with exact correlated noise."""
    numpyro.enable_x64()
    from bayesifu import _arviz, simulate
    from bayesifu.likelihood import MapLikelihood
    from bayesifu.sampling import sample

    sim = simulate.manga_like(n_fibres=19, n_exposures=9, seed=5)
    xx, yy = sim.coordinates()
    truth = SersicParams(x0=16.2, y0=15.7, pa=30.0, q=0.6, ie=2.0, re=4.0, n=1.5)
    m = sim.observe(np.asarray(sersic(xx, yy, truth)), noise_sigma=0.05, seed=6)
    lik = MapLikelihood(m, sim.correlation())
    idata = sample(model, lik.x, lik.y, lik, chains=2, draws=500)
    print(_arviz.summary(idata, var_names=list(PARAMS)))
    print("truth:", truth)
    return idata


if __name__ == "__main__":
    main()
