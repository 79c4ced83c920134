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
from pathlib import Path

import numpy as np

from ..errors import BayesifuError, InputError

__all__ = ["register", "run", "MODELS"]

#: Model files usable from the command line, with the parameters shown in the pair plot.
MODELS = {
    "disk": ("x0", "y0", "pa", "inc", "vsys", "vmax", "rt"),
    "plane": ("z0", "gx", "gy"),
    "sersic": ("x0", "y0", "pa", "q", "ie", "re", "n"),
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit",
        help="fit a model (disk, plane, sersic) to a map with the full spatial covariance",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("maps", help="DAP MAPS file (or any map read_map understands)")
    p.add_argument("--ext", default="EMLINE_GVEL", help="extension (default EMLINE_GVEL)")
    p.add_argument("--channel", default=None, help="channel name or index, e.g. Ha-6564")
    p.add_argument("--model", choices=sorted(MODELS), default="disk")
    p.add_argument(
        "--correlation",
        default="gaussian",
        help="FILE with a CORREL table (e.g. the SNRG file), 'gaussian' (sigma 1.92, "
        "rlim 6.4 spaxels; reduced-rank path, white intrinsic scatter) or 'none' (independent "
        "spaxels); default gaussian",
    )
    p.add_argument("--correlation-ext", default="CORREL", help="extension of FILE")
    p.add_argument("--sampler", choices=["nuts", "emcee"], default="nuts")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--scatter",
        type=float,
        default=None,
        help="fit an intrinsic scatter with a HalfNormal prior of this scale [data unit]",
    )
    p.add_argument("--out", default="posterior.nc", help="netCDF output (default posterior.nc)")
    p.add_argument("--no-plots", action="store_true", help="do not write PNGs")
    p.set_defaults(func=run)


def _correlation(args, shape):
    from ..correlation import SpatialCorrelation

    choice = args.correlation
    if choice.lower() == "none":
        return None
    if choice.lower() == "gaussian":
        return SpatialCorrelation.gaussian(shape, sigma=1.92, rlim=6.4)
    if not Path(choice).exists():
        raise InputError(
            f"--correlation {choice!r}: no such file (give a FITS file, 'gaussian' or 'none')"
        )
    return SpatialCorrelation.from_fits(choice, args.correlation_ext, shape=shape)


def _spaxel_flux(path, m):
    """``SPX_MFLUX`` and its variance from the MAPS file, if usable on every bin member."""
    from ..io import read_map

    try:
        flux = read_map(path, "SPX_MFLUX")
    except BayesifuError:
        return None
    good = m.good
    ok = np.isfinite(flux.variance[good]) & (flux.variance[good] > 0) & (flux.data[good] > 0)
    return flux if ok.all() and not flux.mask[good].any() else None


def is_binned(m) -> bool:
    """True if some valid spaxels of ``m`` share a bin (``BINID``): per-spaxel maps such as the
    emission lines of a HYB10 MAPS file carry a BINID with one spaxel per bin."""
    if m.binid is None:
        return False
    ids = m.binid[m.good]
    return np.unique(ids).size < ids.size


def likelihood(args, m):
    """The likelihood of map ``m``: per spaxel, or over the bins of a binned map (``BINID``)."""
    from ..binning import BinnedMapLikelihood
    from ..likelihood import EIGEN_MAX_N, MapLikelihood

    corr = _correlation(args, m.shape)
    method = "auto"
    if args.correlation.lower() == "gaussian" and m.n_good <= EIGEN_MAX_N:
        # The tapered Gaussian is positive-definite, so "auto" would take the banded path, whose
        # intrinsic scatter is correlated like the noise. A sigma = 1.92 Gaussian claims almost
        # no noise power at high spatial frequencies, where real maps do have power (white-ish
        # measurement and model scatter): there, scatter correlated like the noise must grow to
        # ~14 km/s on 7815-3702 H-alpha and inflates every posterior width ~10x. The eigen path
        # is the same density without scatter, and its scatter is white (s^2 C + tau^2 I at full
        # rank), as with the real CORREL matrix; tests/test_cli_fit.py shows the difference.
        method = "eigen"
    if not is_binned(m):
        return MapLikelihood(m, corr, method=method)
    flux = _spaxel_flux(args.maps, m)
    lik = BinnedMapLikelihood(
        m,
        corr,
        flux=None if flux is None else flux.data,
        spaxel_variance=None if flux is None else flux.variance,
        method=method,
    )
    weights = "uniform" if flux is None else "SPX_MFLUX"
    print(
        f"binned map (BINID): {lik.n} bins of {lik.n_spaxels} spaxels; model averaged over "
        f"each bin with {weights} weights"
    )
    return lik


def _disk_start(lik):
    """NUTS initialisation at the best LM disk fit (see :func:`bayesifu.disk_lm_fit`), or None."""
    import jax.numpy as jnp
    from numpyro.infer import init_to_value

    from ..lmfit import disk_lm_fit  # the LM start lives in the library

    best = disk_lm_fit(lik)
    if best is None:
        return None
    values = best.values
    print("chains start at the LM fit: " + ", ".join(f"{k}={v:.3g}" for k, v in values.items()))
    return init_to_value(values={k: jnp.asarray(v) for k, v in values.items()})


def run(args) -> int:
    import numpyro.distributions as dist

    from .. import _arviz
    from ..io import read_map
    from ..sampling import sample

    for label in ("chains", "draws"):
        if getattr(args, label) < 1:
            raise InputError(f"--{label} must be at least 1, got {getattr(args, label)}")
    if Path(args.out).is_dir():
        raise InputError(f"--out {args.out!r} is a folder; give a file name, e.g. posterior.nc")
    m = read_map(args.maps, args.ext, channel=args.channel)
    lik = likelihood(args, m)
    module = importlib.import_module(f"bayesifu.models.{args.model}")
    kwargs = {} if args.scatter is None else {"scatter": dist.HalfNormal(args.scatter)}
    what = "bins" if is_binned(m) else "spaxels"
    print(f"bayesifu fit: {m.name}: {lik.n} {what}, likelihood {lik.method} (dof {lik.dof})")
    options = {"progress_bar": True}
    if args.model == "disk":
        start = _disk_start(lik)
        if start is not None:
            options["init_strategy"] = start
            if args.sampler == "nuts":  # warmup starts preconditioned, as in bayesifu demo
                options["init_mass"] = "laplace"
    idata = sample(
        module.model,
        lik.x,
        lik.y,
        lik,
        sampler=args.sampler,
        chains=args.chains,
        draws=args.draws,
        warmup=args.warmup,
        seed=args.seed,
        out=args.out,
        sampler_options=options,
        **kwargs,
    )
    names = list(MODELS[args.model]) + (["scatter"] if args.scatter is not None else [])
    print(_arviz.summary(idata, var_names=names).to_string())
    print(f"posterior written to {args.out}")
    if not args.no_plots:
        stem = str(Path(args.out).with_suffix(""))
        post = _arviz.group(idata, "posterior")
        draws = {k: np.asarray(post[k]).reshape(-1) for k in names}
        medians = {k: float(np.median(v)) for k, v in draws.items()}
        written = [
            plot_pairs(idata, names, f"{stem}_pairs.png"),
            plot_maps(module.model, medians, lik, m, f"{stem}_maps.png", **kwargs),
        ]
        print("plots written: " + ", ".join(written))
    return 0


def plot_pairs(idata, names, path: str) -> str:
    """Posterior pairs of ``names`` (:func:`bayesifu.plots.plot_pairs`) written to ``path``."""
    from .. import plots

    fig = plots.plot_pairs(idata, var_names=list(names), kind="scatter")
    plots.save_figure(fig, path, dpi=90, bbox_inches="tight")
    return path


def plot_maps(model, params: dict, lik, m, path: str, title: str = "", **kwargs) -> str:
    """Data, model (at ``params``), residual and whitened-residual maps written to ``path``."""
    from .. import plots
    from ..sampling import predict

    mu = next(iter(predict(model, dict(params), lik.x, lik.y, lik, **kwargs).values()))
    binned = hasattr(lik, "bin_model")
    if binned:  # the model of each bin, shown on its spaxels
        mu = np.asarray(lik.bin_model(mu))
    elif mu.size != m.data.size:
        mu = np.broadcast_to(mu, (lik.n,))
    else:
        mu = mu.ravel()[lik.index]
    white = lik.whiten_spaxels(
        lik.data - mu, scale=params.get("error_scale", 1.0), scatter=params.get("scatter", 0.0)
    )

    def as_map(values):
        if binned:
            return lik.to_map(values)
        out = np.full(m.shape, np.nan)
        out.ravel()[lik.index] = np.asarray(values)
        return out

    fig = plots.plot_fit_panels(m, as_map(mu), whitened=as_map(white), unit=m.unit or None)
    if title:
        fig.suptitle(title)
    plots.save_figure(fig, path, dpi=110, bbox_inches="tight")
    return path
