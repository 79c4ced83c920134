r"""Continuous redshift refinement: NUTS on the redshift and the template coefficients.

The model
---------
The spectrum :math:`d_k` (inverse variances :math:`w_k`) is

.. math::

    d_k \sim N\!\left([A(z)\,c]_k,\; w_k^{-1}\right), \qquad
    z \sim U(z_{lo}, z_{hi}), \qquad c \sim \text{flat} \;(\text{lines: } N(0, s_i^2)),

with :math:`A(z)` the redshifted templates and Legendre terms of
:func:`bayesifu.redshift.forward.model_spectrum`: the grid model of
:mod:`bayesifu.redshift.grid` with :math:`z` continuous. Marginalising :math:`c` gives exactly
the grid posterior :math:`p(z|d) \propto e^{-\chi^2_{min}/2} |A^T W A|^{-1/2}` (uniform in z),
so the two must agree wherever both apply; this program adds the joint posterior of the
coefficients and a redshift free of the grid step. Start it around the grid peak
(:func:`inputs_from_grid`): the window :math:`(z_{lo}, z_{hi})` is a few posterior widths
around the MAP, the chain starts at the MAP with the best-fit coefficients.

Parametrisation
---------------
Template coefficients are strongly correlated (templates overlap, and the Legendre terms absorb
the continuum), so the coefficients are sampled whitened at the grid MAP :math:`z_0`: with the
precision :math:`M = A(z_0)^T W A(z_0) + P` (:math:`P` the prior precision) and its Cholesky
factor :math:`M = L L^T`,

.. math::  c = \hat c + L^{-T} u,

with :math:`\hat c` the best-fit coefficients. The Jacobian is constant, so a flat prior on
:math:`c` is a flat prior on :math:`u`, and at :math:`z = z_0` the conditional posterior of
:math:`u` is exactly :math:`N(0, I)`: NUTS sees an almost isotropic target. ``coeffs`` is recorded
as a deterministic site. :func:`refine` samples it with :func:`bayesifu.sample` (ArviZ results,
the usual convergence checks).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from bayesifu.redshift.forward import model_spectrum

__all__ = ["model", "inputs_from_grid", "refine", "main"]


def model(  # noqa: PLR0913 -- the forward model's arrays, named as the grid fit names them
    log_wave,
    ivar,
    loglam0,
    dloglam,
    tpl_flux,
    poly,
    z_lo,
    z_hi,
    prior_sd=None,
    obs=None,
    *,
    centre=None,
    unwhiten=None,
):
    r"""NumPyro program of a redshifted template spectrum.

    Parameters
    ----------
    log_wave : array_like, shape (nk,)
        log10 observed vacuum wavelengths of the pixels with data.
    ivar : array_like, shape (nk,)
        Inverse variances (> 0).
    loglam0, dloglam : float
        Template grid [log10 Angstrom, dex].
    tpl_flux : array_like, shape (nt, npix)
        Templates (finite over the range needed for ``z_lo <= z <= z_hi``).
    poly : array_like, shape (npoly, nk)
        Legendre terms at the pixels.
    z_lo, z_hi : float
        Redshift window (uniform prior).
    prior_sd : array_like, shape (nt + npoly,), optional
        Standard deviation of a normal prior per coefficient; ``inf`` (default) for flat.
    obs : array_like, shape (nk,), optional
        The spectrum.
    centre, unwhiten : array_like, shapes (p,) and (p, p), optional
        :math:`\hat c` and :math:`L^{-T}` of the whitened parametrisation (module docstring;
        :func:`inputs_from_grid` computes them): the sampled site is then ``u`` and ``coeffs``
        is deterministic. Without them ``coeffs`` is sampled directly.
    """
    p = tpl_flux.shape[0] + poly.shape[0]
    z = numpyro.sample("z", dist.Uniform(z_lo, z_hi))
    flat = dist.ImproperUniform(constraints.real_vector, (), event_shape=(p,))
    if unwhiten is None:
        coeffs = numpyro.sample("coeffs", flat)
    else:
        u = numpyro.sample("u", flat)
        coeffs = numpyro.deterministic("coeffs", centre + unwhiten @ u)
    if prior_sd is not None:
        sd = jnp.asarray(prior_sd)
        finite = jnp.isfinite(sd)
        safe = jnp.where(finite, sd, 1.0)
        numpyro.factor("coeff_prior", jnp.sum(jnp.where(finite, -0.5 * (coeffs / safe) ** 2, 0)))
    mean = model_spectrum(z, coeffs, log_wave, loglam0, dloglam, tpl_flux, poly)
    numpyro.deterministic("model_sum", jnp.sum(mean))
    numpyro.sample("obs", dist.Normal(mean, 1.0 / jnp.sqrt(ivar)), obs=obs)


def inputs_from_grid(post, index: int, flux, ivar, width: float = 6.0):
    """Model arguments for spectrum ``index`` of a grid result ``post``.

    ``flux, ivar`` are that spectrum on the used channels of the grid fit
    (``post.design.used``); the window is the grid MAP plus or minus ``width`` posterior
    standard deviations (at least two grid cells). The coefficients are whitened at the MAP
    (module docstring). Returns ``(kwargs, init_values)``.
    """
    d = post.design
    s = post.summary()
    z_map = float(np.ravel(s.z_map)[index])
    sd = float(np.ravel(s.z_std)[index])
    cell = float(post.z_grid[1] - post.z_grid[0]) * (1 + z_map)
    half = max(width * sd, 2 * cell)
    good = ivar > 0
    tpl = np.nan_to_num(d.templates.flux)
    prec = d.prior_precision(flux[None], ivar[None])[0]
    kwargs = dict(
        log_wave=jnp.asarray(np.log10(d.wave[good])),
        ivar=jnp.asarray(ivar[good]),
        loglam0=float(d.templates.loglam0),
        dloglam=float(d.templates.dloglam),
        tpl_flux=jnp.asarray(tpl),
        poly=jnp.asarray(d.poly[:, good]),
        z_lo=z_map - half,
        z_hi=z_map + half,
        prior_sd=jnp.asarray(np.where(prec > 0, 1 / np.sqrt(np.where(prec > 0, prec, 1)), np.inf)),
        obs=jnp.asarray(flux[good]),
    )
    centre = np.ravel(post.coeffs.reshape(-1, d.p)[index])
    kwargs.update(centre=jnp.asarray(centre), unwhiten=jnp.asarray(_unwhiten(kwargs, z_map, prec)))
    return kwargs, {"z": z_map, "u": jnp.zeros(d.p)}


def _unwhiten(kwargs, z, prec) -> np.ndarray:
    """:math:`L^{-T}` with :math:`L L^T = A(z)^T W A(z) + P` (``prec``: the diagonal of P)."""
    args = [kwargs[k] for k in ("log_wave", "loglam0", "dloglam", "tpl_flux", "poly")]
    design = jax.jacfwd(lambda c: model_spectrum(z, c, *args))(jnp.zeros(prec.size))
    a = np.asarray(design)
    chol = np.linalg.cholesky(a.T @ (np.asarray(kwargs["ivar"])[:, None] * a) + np.diag(prec))
    return np.linalg.inv(chol).T


def refine(kwargs, init, *, chains=2, draws=500, warmup=300, seed=0, check="warn", **options):
    """NUTS on :func:`model` from ``init`` through :func:`bayesifu.sample`: ArviZ results.

    ``kwargs, init`` are from :func:`inputs_from_grid`; ``options`` go to ``sampler_options``
    (default a dense mass matrix).
    """
    from numpyro.infer import init_to_value

    from bayesifu import sample

    options = {"dense_mass": True, "init_strategy": init_to_value(values=init), **options}
    return sample(model, sampler="nuts", chains=chains, draws=draws, warmup=warmup, seed=seed,
                  check=check, sampler_options=options, **kwargs)  # fmt: skip


def main(argv=None):
    """Simulate a spectrum from template files, fit it on the grid, refine it with NUTS."""
    import bayesifu as bi
    from bayesifu.redshift import log_z_grid

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("templates", nargs="+", help="template files (e.g. SDSS spDR2-023..027)")
    parser.add_argument("--z", type=float, default=0.0859, help="true redshift")
    parser.add_argument("--snr", type=float, default=3.0, help="signal-to-noise per pixel")
    parser.add_argument("--draws", type=int, default=500, help="draws per chain")
    parser.add_argument("--warmup", type=int, default=300, help="warmup iterations per chain")
    args = parser.parse_args(argv)
    numpyro.enable_x64()
    tpl = bi.read_templates(args.templates)
    wave = np.linspace(4800.0, 7000.0, 700)
    rng = np.random.default_rng(1)
    cols = np.array([np.interp(np.log10(wave / (1 + args.z)), tpl.loglam, f) for f in tpl.flux])
    truth = cols.mean(axis=0)
    truth /= np.median(truth)
    flux = truth + rng.normal(size=wave.size) / args.snr
    ivar = np.full(wave.size, args.snr**2)
    post = bi.redshift_posterior(
        flux[None],
        tpl,
        log_z_grid(args.z - 0.03, args.z + 0.03, 1e-4),
        wave=wave,
        ivar=ivar[None],
        medium="vacuum",
    )
    s = post.summary()
    kwargs, init = inputs_from_grid(post, 0, flux, ivar)
    idata = refine(kwargs, init, draws=args.draws, warmup=args.warmup)
    z = np.asarray(idata.posterior["z"])
    print(f"grid: z = {s.z_mean[0]:.6f} +- {s.z_std[0]:.6f}")
    print(f"NUTS: z = {z.mean():.6f} +- {z.std():.6f}")
    return idata


if __name__ == "__main__":
    main()
