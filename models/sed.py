"""Binned SEDs: non-negative template mixtures with Calzetti dust, all bins jointly.

The model
---------
For bin :math:`b` and channel :math:`j` (a spectral pixel or a photometric band), with
:func:`bayesifu.sedmodel.sed_flux`,

.. math::

    F_{bj} = \\sum_i W_{ji} \\frac{1}{1+z} \\sum_{k=1}^{K} w_{bk}\\,
    T_k\\!\\left(\\tfrac{\\lambda_i}{1+z}\\right)
    10^{-0.4 A_{V,b}\\, k'(\\lambda_i/(1+z))/R'_V},
    \\qquad w_{bk} = \\Phi_b\\, \\phi_{bk},\\quad \\phi_b \\in \\Delta^{K-1},

where :math:`T_k` are the templates normalised to unit mean flux over the channels
(:class:`bayesifu.sedmodel.SEDBasis`), so :math:`\\Phi_b` is the bin's mean *intrinsic* flux
[data unit] and :math:`\\phi_b` its template fractions; :math:`k'` is the Calzetti et al. (2000,
ApJ 533, 682, doi:10.1086/308692) curve with :math:`R'_V = 4.05`; the redshift :math:`z` is fixed
or free and shared by every bin. The binned data :math:`\\mathbf y_j` of channel :math:`j`
(all bins) follow :math:`\\mathcal N(\\mathbf F_j, s^2 \\mathbf T\\mathbf C_j\\mathbf T^{\\rm T}
+ \\tau^2)` with the exact covariance between bins
(:class:`bayesifu.BinnedSpectraLikelihood`), channels independent; with
:func:`bayesifu.sedmodel.independent_bins` the same data have the between-bin covariance dropped.

Priors (per bin unless said; each may be replaced through ``priors``)::

    av        ~ HalfNormal(1)                    [mag]    A_V >= 0
    flux      ~ HalfNormal(5 max_b <y_b>)        [data unit]  (scale from the data)
    fractions ~ Dirichlet(concentration 1_K)     (uniform on the simplex; none for K = 1)
    z         fixed (``redshift=float``) or ``redshift=<distribution>`` (shared)

Parametrisation (for NUTS). Non-negative weights as amplitude times simplex: the data fix the
overall level of a bin far better than its mix of templates, and with similar templates the
separate weights :math:`w_{b1}, w_{b2}` lie on a narrow anti-correlated ridge of constant total;
:math:`(\\Phi_b, \\phi_b)` separates the well-measured level from the shape, the stick-breaking
transform of the simplex lets a fraction approach 0 without a hard wall (the unconstrained density
decays there), and :math:`\\log\\Phi_b` is close to Gaussian at useful S/N. Dust dims the bin as a
whole, so :math:`\\Phi_b` and :math:`A_{V,b}` are strongly correlated; the sampler therefore
works in the *observed* level ``flux_obs``
:math:`= \\Phi_b\\, 10^{-0.4 A_{V,b} k'(\\lambda_{\\rm ref})/R'_V}` at the channels' mean rest
wavelength :math:`\\lambda_{\\rm ref}`, which the data fix almost independently of
:math:`A_{V,b}` (the trick of ``models/disk.py`` for :math:`v_{\\max}\\sin i`):
given ``av``, ``flux_obs`` has the ``flux`` prior scaled by that factor (Jacobian included), so the
prior of ``flux`` is exactly the one given; ``flux`` is recorded as a deterministic site.

Deterministic sites: ``flux`` [data unit], ``weights`` :math:`w_{bk}` [data unit],
``flux_total`` :math:`\\sum_b \\Phi_b`, ``av_mean`` (the mean :math:`A_V` of the bins) and, with
``mass_to_light``, ``mass`` :math:`\\sum_k w_{bk}\\Upsilon_k / n_k` (mass per unit of the
original templates' flux; a proxy in the data's flux unit). The program returns the model flux
:math:`F` (n_bins, n_channels).
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesifu.errors import InputError, ShapeError
from bayesifu.modelling import noise_terms, observe, require_points
from bayesifu.sedmodel import SEDBasis, sed_flux

__all__ = ["model", "default_priors", "simulated_data", "main", "PARAMS"]

#: The shipped SDSS templates of the examples (an early- and a late-type spectrum).
TEMPLATES = ("spDR2-023.fit", "spDR2-027.fit")
#: Per-bin parameters sampled (``flux`` through ``flux_obs``) and the shared one.
PARAMS = ("av", "flux_obs", "fractions")


def _bin_means(obs):
    """Mean over channels of each bin's data (NaN-aware) from a BinnedSpectraLikelihood."""
    grid = obs.to_map(obs.data)
    return np.nanmean(grid[:, obs.channels], axis=1)


def default_priors(obs=None) -> dict:
    """Weakly informative priors (module docstring): ``{name: distribution}``."""
    scale = 1.0
    if obs is not None:
        means = _bin_means(obs)
        scale = 5.0 * float(np.nanmax(np.abs(means))) if np.any(np.isfinite(means)) else 1.0
    return {"av": dist.HalfNormal(1.0), "flux": dist.HalfNormal(scale if scale > 0 else 1.0)}


def _n_bins(obs, n_bins, basis):
    if obs is None:
        if n_bins is None:
            raise InputError("the sed model needs obs or n_bins")
        return int(n_bins)
    nb, nwave = obs.shape
    if basis.n_channels not in (nwave, obs.channels.size):
        raise ShapeError(
            f"the basis has {basis.n_channels} channels; the data have {nwave} "
            f"({obs.channels.size} used)"
        )
    if n_bins is not None and int(n_bins) != nb:
        raise ShapeError(f"n_bins={n_bins} but the data have {nb} bins")
    return nb


def _redshift(redshift, basis):
    if isinstance(redshift, dist.Distribution):
        support = redshift.support
        lo = getattr(support, "lower_bound", None)
        hi = getattr(support, "upper_bound", None)
        z_min, z_max = basis.z_range
        if lo is None or hi is None or float(lo) < z_min - 1e-12 or float(hi) > z_max + 1e-12:
            raise InputError(
                f"the redshift prior's support must lie within the basis' z range {basis.z_range}"
                " (e.g. dist.Uniform(z_min, z_max) or a TruncatedNormal)"
            )
        return numpyro.sample("z", redshift)
    z = float(redshift)
    if not basis.z_range[0] - 1e-12 <= z <= basis.z_range[1] + 1e-12:
        raise InputError(f"redshift {z} is outside the basis' z range {basis.z_range}")
    return z


def model(
    basis: SEDBasis,
    obs=None,
    *,
    n_bins: int | None = None,
    redshift=None,
    priors: dict | None = None,
    concentration: float = 1.0,
    mass_to_light=None,
    scale=None,
    scatter=None,
):
    """NumPyro program of binned SEDs fitted jointly (module docstring).

    Parameters
    ----------
    basis : SEDBasis
        Templates prepared for the data's channels and redshift range.
    obs : BinnedSpectraLikelihood, optional
        The binned SEDs and their covariance (full, or :func:`bayesifu.sedmodel.independent_bins`);
        ``None`` samples the prior (give ``n_bins``).
    n_bins : int, optional
        Number of bins when ``obs`` is None.
    redshift : float or numpyro distribution, optional
        Fixed redshift (default ``basis.z_ref``), or the prior of a free shared redshift whose
        support lies in ``basis.z_range``.
    priors : dict, optional
        Replacements for :func:`default_priors` (``"av"``, ``"flux"``; scalar or per-bin
        batch shape).
    concentration : float
        Dirichlet concentration of the template fractions (1: uniform on the simplex).
    mass_to_light : array_like, shape (K,), optional
        Mass per unit flux of each original template, for the ``mass`` site.
    scale, scatter : numpyro distribution, optional
        Priors of the error-scale factor and of the intrinsic scatter [data unit].

    Returns
    -------
    jax.Array, shape (n_bins, n_channels)
        The model flux.
    """
    if not isinstance(basis, SEDBasis):
        raise InputError(f"the sed model needs an SEDBasis, got {type(basis).__name__}")
    nb = _n_bins(obs, n_bins, basis)
    p = default_priors(obs)
    p.update(priors or {})
    big_k = basis.n_templates
    if obs is not None:
        n_free = nb * (big_k + 1) + isinstance(redshift, dist.Distribution)
        n_free += (scale is not None) + (scatter is not None)
        require_points(obs.n, n_free, "sed")
    z = _redshift(basis.z_ref if redshift is None else redshift, basis)
    att_ref = 10.0 ** (-0.4 * basis.k_ref / basis.r_v)
    with numpyro.plate("bins", nb):
        av = numpyro.sample("av", p["av"])
        prior = p["flux"]
        flux_obs = numpyro.sample(
            "flux_obs",
            dist.TransformedDistribution(
                prior,
                dist.transforms.AffineTransform(0.0, att_ref**av, domain=prior.support),
            ),
        )
        if big_k > 1:
            simplex = dist.Dirichlet(jnp.full(big_k, concentration))
            fractions = numpyro.sample("fractions", simplex)
        else:  # one template: nothing to mix
            fractions = jnp.ones((nb, 1))
    flux = numpyro.deterministic("flux", flux_obs / att_ref**av)
    weights = numpyro.deterministic("weights", flux[:, None] * fractions)
    numpyro.deterministic("flux_total", jnp.sum(flux))
    numpyro.deterministic("av_mean", jnp.mean(av))
    if mass_to_light is not None:
        ml = np.asarray(mass_to_light, dtype=float)
        if ml.shape != (big_k,):
            raise ShapeError(f"mass_to_light must have shape ({big_k},), got {ml.shape}")
        numpyro.deterministic("mass", weights @ jnp.asarray(ml / basis.norm))
    mu = sed_flux(basis, weights, av, z)
    s, t = noise_terms(scale, scatter)
    if obs is not None:
        observe(obs, mu, scale=s, scatter=t)
    return mu


def simulated_data(
    n_side=8, bin_size=2, z=0.03, sigma=0.02, seed=1, spectral=False, templates=TEMPLATES
):
    """Binned SEDs of a simulated galaxy with MaNGA-like correlated noise, and the truth.

    Shipped SDSS templates (default spDR2-023 and spDR2-027), a square grid of ``n_side``:sup:`2`
    spaxels cut into ``bin_size`` x ``bin_size`` bins, Gaussian spatial correlation
    (:meth:`bayesifu.SpatialCorrelation.gaussian`, sigma 1.92 spaxels), six top-hat bands (or,
    with ``spectral``, 60 spectral pixels); the truth has a radial A_V gradient.

    Returns
    -------
    binned : BinnedSpectra
    basis : SEDBasis
    truth : dict
        ``weights`` (n_bins, K), ``av`` (n_bins,), ``z``.
    correlation : SpatialCorrelation
    """
    from bayesifu import datasets, read_templates
    from bayesifu.correlation import SpatialCorrelation
    from bayesifu.sedmodel import band_weights
    from bayesifu.sedmodel.simulate import simulate_binned_seds

    templates = read_templates([p for p in datasets.sdss_templates() if p.name in templates])
    if spectral:
        wave, filters = np.geomspace(3800.0, 8800.0, 60), None
    else:
        wave = np.linspace(3700.0, 9000.0, 531)
        edges = np.linspace(3800.0, 8900.0, 7)
        bands = [(wave >= a) & (wave < b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        filters = band_weights(wave, bands)
    basis = SEDBasis.from_templates(templates, wave, z=z, filters=filters)
    nb_side = n_side // bin_size
    yy, xx = np.indices((n_side, n_side))
    binid = (yy // bin_size) * nb_side + xx // bin_size
    cy, cx = np.indices((nb_side, nb_side)).reshape(2, -1) + 0.5
    r = np.hypot(cy - nb_side / 2, cx - nb_side / 2) / (nb_side / 2)
    av = 0.2 + 0.8 * np.exp(-(r**2))
    level = 4.0 * np.exp(-r)
    frac_old = 0.3 + 0.5 * r / r.max()
    weights = level[:, None] * np.stack([frac_old, 1 - frac_old], axis=1)[:, : basis.n_templates]
    weights[:, -1] += level - weights.sum(axis=1)  # one template: all the level
    corr = SpatialCorrelation.gaussian((n_side, n_side), sigma=1.92, rlim=6.4)
    binned, _ = simulate_binned_seds(
        basis, binid, weights, av, z, sigma=sigma, correlation=corr, seed=seed
    )
    return binned, basis, {"weights": weights, "av": av, "z": z}, corr


def main(argv=None):
    """Fit simulated binned SEDs with and without the covariance between bins; print the
    posterior summary and the widths of the summed flux and the mean A_V in both fits."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    args = parser.parse_args(argv)
    numpyro.enable_x64()
    from bayesifu import _arviz
    from bayesifu.likelihood import BinnedSpectraLikelihood
    from bayesifu.sampling import sample
    from bayesifu.sedmodel import independent_bins

    binned, basis, truth, _ = simulated_data()
    runs = {}
    variants = {"full covariance": binned, "independent bins": independent_bins(binned)}
    for label, data in variants.items():
        runs[label] = sample(
            model, basis, BinnedSpectraLikelihood(data), chains=args.chains, draws=args.draws,
            warmup=args.warmup,
        )  # fmt: skip
    idata = runs["full covariance"]
    print(_arviz.summary(idata, var_names=["av", "flux", "flux_total", "av_mean"]))
    print("true av:", np.round(truth["av"], 3))
    print("true flux:", np.round(truth["weights"].sum(axis=1), 3))
    for name in ("flux_total", "av_mean"):
        sd = {k: float(np.std(_arviz.group(v, "posterior")[name])) for k, v in runs.items()}
        print(f"posterior sd of {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in sd.items()))
    return idata


if __name__ == "__main__":
    main()
