"""Thin rotating disk fitted to a line-of-sight velocity map.

The model
---------
.. math::

    v(x, y) = v_{\\rm sys} + v_{\\rm rot}(R)\\, \\sin i \\; x_d / R, \\qquad
    v_{\\rm rot}(R) = v_{\\max} \\tanh(R / r_t)
    \\ \\text{or}\\ v_{\\max} \\tfrac{2}{\\pi}\\arctan(R/r_t),

with the disk-plane coordinates :math:`(x_d, y_d)` and radius :math:`R` of
:mod:`bayesifu.kinematics` (PA of the receding major axis from north through east, pixel units).
Optionally the map is beam-smeared by a Gaussian PSF (flux-weighted), and for a binned map
(e.g. STELLAR_VEL with BINID) the spaxel model is averaged into bins, :math:`\\mu = T v`.

The data :math:`y` (the valid spaxels or bins) follow a multivariate normal with the full spatial
covariance :math:`s^2 C + \\tau^2` (:class:`bayesifu.MapLikelihood`, or a binned likelihood with
:math:`T C T^T`); the error-scale factor :math:`s` and the intrinsic scatter :math:`\\tau` are
optional parameters.

Priors (every one is an argument and may be replaced by any numpyro distribution)::

    x0, y0 ~ Normal(centre of the data, 3) [spaxel]
    pa     ~ Uniform(0, 360) [deg]        (give Uniform(-180, 180) if the PA is near 0)
    inc    ~ Uniform(5, 85) [deg]
    vsys   ~ Normal(median of the data, 50) [km/s]
    vmax   ~ HalfNormal(300) [km/s]
    rt     ~ LogNormal(log 3, 1) [spaxel]

The sampler works in ``v_proj`` :math:`= v_{\\max} \\sin i`, the best-constrained amplitude,
instead of :math:`v_{\\max}`: at low inclination the posterior of ``(inc, vmax)`` is a narrow
banana along :math:`v_{\\max} \\sin i` = const that NUTS integrates badly (divergences), while
``(inc, v_proj)`` is close to independent. The prior is unchanged: given ``inc``, ``v_proj`` is
the ``vmax`` prior scaled by :math:`\\sin i` (Jacobian included), and ``vmax`` is recorded as a
deterministic site. Start values in ``vmax`` are converted with :func:`init_values`.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesifu.errors import InputError
from bayesifu.kinematics import DiskParams, disk_velocity, smeared_disk_velocity
from bayesifu.modelling import noise_terms, observe, observed_values, require_points

__all__ = ["model", "default_priors", "init_values", "main", "PARAMS"]

PARAMS = DiskParams.names()


def default_priors(x, y, data=None) -> dict:
    """Weakly informative priors centred on the data: ``{name: distribution}``."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    vsys = 0.0 if data is None else float(np.median(data))
    return {
        "x0": dist.Normal(0.5 * (x.min() + x.max()), 3.0),
        "y0": dist.Normal(0.5 * (y.min() + y.max()), 3.0),
        "pa": dist.Uniform(0.0, 360.0),
        "inc": dist.Uniform(5.0, 85.0),
        "vsys": dist.Normal(vsys, 50.0),
        "vmax": dist.HalfNormal(300.0),
        "rt": dist.LogNormal(np.log(3.0), 1.0),
    }


def init_values(values: dict) -> dict:
    """Start values for :func:`model` from values of the disk parameters: ``vmax`` (with
    ``inc``) becomes the sampled ``v_proj``; every other entry is passed through."""
    out = dict(values)
    if "vmax" in out:
        if "inc" not in out:
            raise InputError("a start value of vmax needs one of inc (v_proj = vmax sin inc)")
        out["v_proj"] = out.pop("vmax") * np.sin(np.deg2rad(out["inc"]))
    return out


def _sample_disk(p: dict) -> DiskParams:
    """Sample the disk parameters, ``vmax`` through ``v_proj = vmax sin(inc)``."""
    values = {name: numpyro.sample(name, p[name]) for name in PARAMS if name != "vmax"}
    sin_i = jnp.sin(jnp.deg2rad(values["inc"]))
    prior = p["vmax"]
    v_proj = numpyro.sample(
        "v_proj",
        dist.TransformedDistribution(
            prior, dist.transforms.AffineTransform(0.0, sin_i, domain=prior.support)
        ),
    )
    values["vmax"] = numpyro.deterministic("vmax", v_proj / sin_i)
    return DiskParams(**values)


def model(
    x,
    y,
    obs=None,
    *,
    priors: dict | None = None,
    curve: str = "tanh",
    psf_sigma: float | None = None,
    flux=None,
    operator=None,
    scale=None,
    scatter=None,
):
    """NumPyro program of a thin rotating disk.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Pixel coordinates [spaxel] where the model is evaluated: the valid spaxels
        (``lik.x, lik.y``), or every spaxel of the bins when ``operator`` is given.
    obs : MapLikelihood or CorrelatedNormal, optional
        The observed map and its covariance; ``None`` samples the prior only.
    priors : dict, optional
        Replacements for :func:`default_priors` (e.g. ``{"inc": dist.Normal(50, 5)}``).
    curve : {"tanh", "arctan"}
        Rotation-curve shape.
    psf_sigma : float, optional
        Gaussian PSF sigma [spaxel] for beam smearing (needs a MapLikelihood ``obs``; the model
        is computed on its whole grid, weighted by ``flux``).
    flux : array_like, shape (ny, nx), optional
        Surface brightness that weights the beam smearing.
    operator : array_like, shape (n_bins, n), optional
        Binning matrix: the model of bin ``b`` is ``operator[b] @ v(x, y)``.
    scale, scatter : numpyro distribution, optional
        Priors of the error-scale factor and of the intrinsic scatter [km/s].
    """
    if psf_sigma is not None and getattr(obs, "index", None) is None:
        raise InputError("beam smearing needs obs to be a MapLikelihood (its grid shape)")
    data = observed_values(obs)
    p = default_priors(x, y, data)
    p.update(priors or {})
    if obs is not None:
        n_free = len(PARAMS) + (scale is not None) + (scatter is not None)
        require_points(data.size, n_free, "disk")
    params = _sample_disk(p)
    if psf_sigma is not None:
        mu = smeared_disk_velocity(params, obs.shape, psf_sigma, flux=flux, curve=curve)
    else:
        mu = disk_velocity(jnp.asarray(x, dtype=float), jnp.asarray(y, dtype=float), params, curve)
        if operator is not None:
            mu = jnp.asarray(operator) @ mu
    s, t = noise_terms(scale, scatter)
    if obs is not None:
        observe(obs, mu, scale=s, scatter=t)


def simulated_map(noise_sigma=10.0, seed=1):
    """A MaNGA-like simulated velocity map with exact correlated noise, and its truth."""
    from bayesifu import simulate

    sim = simulate.manga_like(n_fibres=19, n_exposures=9, seed=seed)
    truth = simulate.DiskParams(x0=16.3, y0=15.8, pa=120.0, inc=55.0, vsys=20.0, vmax=180.0, rt=3.0)
    vmap, _ = sim.velocity_map(truth, noise_sigma=noise_sigma, seed=seed + 1)
    return vmap, sim.correlation(), truth


def main(argv=None):
    """Fit a simulated disk with the full covariance and print the posterior summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    args = parser.parse_args(argv)
    numpyro.enable_x64()
    from bayesifu import _arviz
    from bayesifu.likelihood import MapLikelihood
    from bayesifu.sampling import sample

    vmap, corr, truth = simulated_map()
    lik = MapLikelihood(vmap, corr)
    idata = sample(
        model, lik.x, lik.y, lik, chains=args.chains, draws=args.draws, warmup=args.warmup
    )
    print(_arviz.summary(idata, var_names=list(PARAMS)))
    print("truth:", truth)
    return idata


if __name__ == "__main__":
    main()
