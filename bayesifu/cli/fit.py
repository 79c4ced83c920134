"""``bayesifu fit``: sample the posterior of a surface model of a map with the full covariance.

Example::

    bayesifu fit manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz --ext EMLINE_GVEL \\
        --channel Ha-6564 --model disk --correlation manga-7815-3702-SNRG.fits.gz \\
        --out posterior.nc

prints an ArviZ summary, writes the posterior (netCDF) and PNGs beside it: the posterior pairs
(``<out>_pairs.png``) and the data, model, residual and whitened-residual panels
(``<out>_maps.png``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

from .correlation import add_correlation_options

__all__ = ["register", "run", "MODELS", "EXIT_NOT_CONVERGED"]

DRAWS = 1000
WARMUP = 500

#: Model files usable from the command line, with the parameters shown in the pair plot.
MODELS = {
    "disk": ("x0", "y0", "pa", "inc", "vsys", "vmax", "rt"),
    "plane": ("z0", "gx", "gy"),
    "sersic": ("x0", "y0", "pa", "q", "ie", "re", "n"),
}


#: Exit status of a fit that ran but did not converge (results and plots are still written).
EXIT_NOT_CONVERGED = 3
EPILOG = f"""exit status: 0 converged (no divergences, r-hat <= 1.01, bulk ESS >= 100 per chain);
1 bad input (one line on stderr naming the option); {EXIT_NOT_CONVERGED} the sampler ran but did not
converge: the posterior, summary and plots are still written, and stderr says what went wrong."""


def register(subparsers) -> None:
    import argparse

    p = subparsers.add_parser(
        "fit",
        help="fit a model (disk, plane, sersic) to a map with the full spatial covariance",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("maps", metavar="MAPS", help="DAP MAPS file (or any map read_map understands)")
    p.add_argument("--ext", default="EMLINE_GVEL", help="extension to fit (default: %(default)s)")
    p.add_argument(
        "--channel",
        default=None,
        help="channel name or 0-based index of a multi-channel extension, e.g. Ha-6564 "
        "(default: none; required for EMLINE_GVEL)",
    )
    p.add_argument(
        "--model", choices=sorted(MODELS), default="disk", help="model (default: %(default)s)"
    )
    add_correlation_options(p, "gaussian")
    p.add_argument(
        "--sampler", choices=["nuts", "emcee"], default="nuts", help="(default: %(default)s)"
    )
    p.add_argument("--chains", type=int, default=4, help="chains (default: %(default)s)")
    p.add_argument(
        "--draws", type=int, default=DRAWS, help="kept draws per chain (default: %(default)s)"
    )
    p.add_argument(
        "--warmup", type=int, default=WARMUP, help="warmup steps per chain (default: %(default)s)"
    )
    p.add_argument(
        "--target-accept",
        type=float,
        default=0.9,
        help="NUTS target acceptance probability (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument(
        "--scatter",
        type=float,
        default=None,
        metavar="SCALE",
        help="scale [data unit] of the HalfNormal prior of the intrinsic scatter (default: the "
        "RMS of the residuals of the LM disk fit on independent spaxels, or the standard "
        "deviation of the data for the other models)",
    )
    noise.add_argument(
        "--no-scatter",
        action="store_true",
        help="no intrinsic scatter: only the quoted errors and their correlation",
    )
    p.add_argument("--out", default="posterior.nc", help="netCDF output (default: %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="do not write the PNGs")
    p.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="hide the sampler's progress bar (shown only on a terminal)",
    )
    p.set_defaults(func=run)


def likelihood(args, m, correlation=None, quiet=False):
    """The likelihood of map ``m``: per spaxel, or over the bins of a binned map (``BINID``).

    ``correlation`` replaces ``args.correlation`` (e.g. ``"none"``); ``quiet`` prints nothing.
    """
    from ..io import read_flux_weights
    from ..likelihood import BinnedMapLikelihood, MapLikelihood
    from .correlation import resolve_correlation

    choice = args.correlation if correlation is None else correlation
    corr = resolve_correlation(choice, args.correlation_ext, m.shape, file=args.maps,
                               command="bayesifu fit")[0]  # fmt: skip
    # the scatter model is the likelihoods' default (scatter_model="auto": white where the dense
    # path fits), so a Python user of MapLikelihood(m, corr) gets this posterior
    if not m.is_binned:
        return MapLikelihood(m, corr)
    flux = read_flux_weights(args.maps, m)
    lik = BinnedMapLikelihood(
        m,
        corr,
        flux=None if flux is None else flux.data,
        spaxel_variance=None if flux is None else flux.variance,
    )
    weights = "uniform" if flux is None else "SPX_MFLUX"
    if not quiet:
        print(
            f"binned map (BINID): {lik.n} bins of {lik.n_spaxels} spaxels; model averaged "
            f"over each bin with {weights} weights"
        )
    return lik


def _lm_start(args, m):
    """The multi-start LM disk fit on independent spaxels (bins), printed: ``(fit, rms, tau)``,
    or Nones. ``rms`` is the RMS of its residuals, ``tau`` the white scatter that maximises the
    independent likelihood at the fit [data unit]."""
    from ..lmfit import disk_lm_search, disk_residual_scatter

    lik = likelihood(args, m, correlation="none", quiet=True)
    fits, failures = disk_lm_search(lik)
    for line in failures:
        print(f"LM start {line}")
    if not fits:
        print(
            "LM: no start converged inside the disk's domain; the chains start at random draws "
            "of the prior (expect slow mixing: check r-hat and the exit status)"
        )
        return None, None, None
    best = fits[0]
    rms, tau = disk_residual_scatter(lik, best)
    print(
        f"LM (independent {'bins' if m.is_binned else 'spaxels'}) from start '{best.start}': "
        + ", ".join(f"{k}={v:.4g}" for k, v in best.values.items())
        + f"; reduced chi-square {best.redchi:.1f}, residual RMS {rms:.3g}; chains start there"
    )
    return best, rms, tau


def _scatter_prior(args, m, lik, rms):
    """The HalfNormal prior of the intrinsic scatter (printed), or None with ``--no-scatter``."""
    import numpyro.distributions as dist

    if args.no_scatter:
        print("intrinsic scatter: none (--no-scatter)")
        return None
    if args.scatter is not None:
        scale, why = args.scatter, "--scatter"
    elif rms is not None:
        scale, why = rms, "RMS of the LM residuals"
    else:
        scale, why = float(np.std(lik.data)), "standard deviation of the data"
    print(f"intrinsic scatter: HalfNormal({scale:.3g} {m.unit or 'data unit'}) ({why})")
    return dist.HalfNormal(scale)


def _sample_options(args, start: dict | None) -> dict:
    import jax.numpy as jnp
    from numpyro.infer import init_to_value

    from .._progress import sampler_progress_bar

    # NumPyro's bar writes a line per update off a terminal (a log file): only on a terminal
    options = {"progress_bar": sampler_progress_bar(getattr(args, "progress", True))}
    if args.sampler == "nuts":
        # a handful of strongly correlated parameters (inc with vmax): a dense mass matrix
        options.update(target_accept=args.target_accept, dense_mass=True)
    if start is not None:
        values = {k: jnp.asarray(v) for k, v in start.items()}
        options["init_strategy"] = init_to_value(values=values)
        if args.sampler == "nuts":  # warmup starts preconditioned at the mode (Laplace)
            options["init_mass"] = "laplace"
    return options


def _sample(args, module, lik, kwargs, options):
    """:func:`bayesifu.sample` that returns ``(idata, problems)`` instead of raising on
    non-convergence (the results are written first)."""
    from ..errors import SamplingError
    from ..sampling import sample

    try:
        idata = sample(module.model, lik.x, lik.y, lik, sampler=args.sampler,
                       chains=args.chains, draws=args.draws, warmup=args.warmup, seed=args.seed,
                       out=args.out, check="raise", sampler_options=options, **kwargs)  # fmt: skip
    except SamplingError as err:
        if getattr(err, "idata", None) is None:
            raise
        return err.idata, str(err)
    return idata, ""


def _add_provenance(idata, args) -> None:
    """Provenance (:func:`bayesifu.io.provenance.provenance_attrs`) in the attributes of every
    group, and ``--out`` written again with it."""
    from .. import _arviz
    from ..io.provenance import provenance_attrs
    from .checks import cli_options
    from .correlation import correlation_inputs

    inputs = [args.maps, *correlation_inputs(args.correlation)]
    attrs = provenance_attrs("fit", options=cli_options(args), inputs=inputs,
                             argv=getattr(args, "cmdline", None))  # fmt: skip
    _arviz.update_attrs(idata, attrs)
    _arviz.to_netcdf(idata, args.out)


def run(args) -> int:
    from ..io import read_map
    from .fit_inputs import check_fit_inputs, parse_channel

    check_fit_inputs(args)  # before JAX is imported: a bad call answers in seconds
    m = read_map(args.maps, args.ext, channel=parse_channel(args.channel))
    from .. import _arviz

    lik = likelihood(args, m)
    module = importlib.import_module(f"bayesifu.models.{args.model}")
    what = "bins" if m.is_binned else "spaxels"
    print(f"bayesifu fit: {m.name}: {lik.n} {what}, likelihood {lik.method} (dof {lik.dof})")
    lm, rms, tau = _lm_start(args, m) if args.model == "disk" else (None, None, None)
    scatter = _scatter_prior(args, m, lik, rms)
    kwargs = {} if scatter is None else {"scatter": scatter}
    start = None
    if lm is not None:
        start = module.init_values(dict(lm.values, **({} if scatter is None else {"scatter": tau})))
    idata, problems = _sample(args, module, lik, kwargs, _sample_options(args, start))
    _add_provenance(idata, args)
    names = list(MODELS[args.model]) + ([] if scatter is None else ["scatter"])
    print(_arviz.summary(idata, var_names=names, round_to=3).to_string())
    print(f"posterior written to {args.out}")
    if not args.no_plots:
        stem = str(Path(args.out).with_suffix(""))
        post = _arviz.group(idata, "posterior")
        medians = {k: float(np.median(np.asarray(post[k]))) for k in names}
        written = [
            plot_pairs(idata, names, f"{stem}_pairs.png", units=param_units(names, m.unit)),
            plot_maps(module.model, medians, lik, m, f"{stem}_maps.png", **kwargs),
        ]
        print("plots written: " + ", ".join(written))
    if problems:
        print(
            f"bayesifu fit: did not converge (exit status {EXIT_NOT_CONVERGED}): {problems}",
            file=sys.stderr,
        )
        return EXIT_NOT_CONVERGED
    return 0


def param_units(names, data_unit=None) -> dict:
    """Units of the parameters of the command-line models, for axis labels: positions and
    lengths [spaxel], angles [deg], values (``vsys``, ``vmax``, ``z0``, ``ie``, ``scatter``) in
    the data's unit, gradients in data unit per spaxel."""
    unit = data_unit or "data unit"
    table = {"x0": "spaxel", "y0": "spaxel", "rt": "spaxel", "re": "spaxel", "pa": "deg",
             "inc": "deg", "vsys": unit, "vmax": unit, "z0": unit, "ie": unit, "scatter": unit,
             "gx": f"{unit}/spaxel", "gy": f"{unit}/spaxel"}  # fmt: skip
    return {k: table[k] for k in names if k in table}


def plot_pairs(idata, names, path: str, units=None) -> str:
    """Posterior pairs of ``names`` (:func:`bayesifu.plots.plot_pairs`, axis labels with
    ``units``) written to ``path``."""
    from .. import plots

    fig = plots.plot_pairs(idata, var_names=list(names), kind="scatter", units=units)
    plots.save_figure(fig, path, dpi=90, bbox_inches="tight")
    return path


def plot_maps(model, params: dict, lik, m, path: str, title: str = "", **kwargs) -> str:
    """Data, model (at ``params``), residual and whitened-residual maps
    (:func:`bayesifu.plots.plot_model_fit`) written to ``path``."""
    from .. import plots

    fig = plots.plot_model_fit(model, params, lik, m, title=title, **kwargs)
    plots.save_figure(fig, path, dpi=110, bbox_inches="tight")
    return path
