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
        "rlim 6.4 spaxels) or 'none' (independent spaxels); default gaussian",
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


def disk_lm_fit(lik):
    """Best of four Levenberg-Marquardt disk fits (starting PA 0, 90, 180, 270 deg), or None.

    A velocity field has local optima (e.g. the PA flipped by 180 deg with vmax of the other
    sign is excluded by the prior, but chains started at random can stall near it).
    """
    import jax.numpy as jnp

    from ..kinematics import DiskParams, disk_velocity
    from ..lmfit import lm_fit

    x = jnp.asarray(lik.x, dtype=float)
    y = jnp.asarray(lik.y, dtype=float)
    best = None
    for pa in (0.0, 90.0, 180.0, 270.0):
        guess = dict(x0=float(np.mean(lik.x)), y0=float(np.mean(lik.y)), pa=pa, inc=45.0,
                     vsys=float(np.median(lik.data)), vmax=100.0, rt=3.0)  # fmt: skip
        try:
            fit = lm_fit(lambda p: disk_velocity(x, y, DiskParams(**p)), guess, lik=lik)
        except BayesifuError:  # this start leaves the model's domain; try the next
            continue
        ok = 5 < fit.values["inc"] < 85 and fit.values["vmax"] > 0 and fit.values["rt"] > 0
        if ok and (best is None or fit.chi2 < best.chi2):
            best = fit
    if best is not None:
        best.values["pa"] = best.values["pa"] % 360.0
    return best


def _disk_start(lik):
    """NUTS initialisation at the best LM disk fit (see :func:`disk_lm_fit`), or None."""
    import jax.numpy as jnp
    from numpyro.infer import init_to_value

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
    from ..likelihood import MapLikelihood
    from ..sampling import sample

    for label in ("chains", "draws"):
        if getattr(args, label) < 1:
            raise InputError(f"--{label} must be at least 1, got {getattr(args, label)}")
    m = read_map(args.maps, args.ext, channel=args.channel)
    lik = MapLikelihood(m, _correlation(args, m.shape))
    module = importlib.import_module(f"bayesifu.models.{args.model}")
    kwargs = {} if args.scatter is None else {"scatter": dist.HalfNormal(args.scatter)}
    print(f"bayesifu fit: {m.name}: {lik.n} spaxels, likelihood {lik.method} (dof {lik.dof})")
    options = {"progress_bar": True}
    if args.model == "disk":
        start = _disk_start(lik)
        if start is not None:
            options["init_strategy"] = start
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
            plot_pairs(draws, f"{stem}_pairs.png"),
            plot_maps(module.model, medians, lik, m, f"{stem}_maps.png", **kwargs),
        ]
        print("plots written: " + ", ".join(written))
    return 0


def plot_pairs(draws: dict, path: str) -> str:
    """Corner plot of posterior draws ``{name: (ndraws,)}``: histograms and pairwise scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(draws)
    k = len(names)
    fig, axes = plt.subplots(k, k, figsize=(1.9 * k + 1, 1.9 * k + 1), squeeze=False)
    for i, yi in enumerate(names):
        for j, xj in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                ax.hist(draws[xj], bins=40, color="0.3", histtype="step")
                ax.set_yticks([])
            else:
                ax.plot(draws[xj], draws[yi], ".", ms=1.5, color="C0", alpha=0.3, rasterized=True)
            if i == k - 1:
                ax.set_xlabel(xj)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(yi)
            elif j > 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=7)
            for label in ax.get_xticklabels():
                label.set_rotation(45)
    fig.suptitle("posterior pairs")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_maps(model, params: dict, lik, m, path: str, **kwargs) -> str:
    """Data, model (posterior medians), residual maps and the whitened-residual histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..sampling import predict

    latent = {k: v for k, v in params.items()}
    mu = next(iter(predict(model, latent, lik.x, lik.y, lik, **kwargs).values()))
    mu = np.broadcast_to(mu, (lik.n,)) if mu.size != m.data.size else mu.ravel()[lik.index]
    resid = lik.data - mu
    scale = params.get("error_scale", 1.0)
    scatter = params.get("scatter", 0.0)
    white = np.asarray(lik.whiten(resid, scale=scale, scatter=scatter))

    def as_map(values):
        out = np.full(m.shape, np.nan)
        out.ravel()[lik.index] = values
        return out

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    lo, hi = np.percentile(lik.data, [2, 98])
    r = np.percentile(np.abs(resid), 98)
    panels = [
        ("data", as_map(lik.data), "RdBu_r", (lo, hi)),
        ("model (posterior median)", as_map(mu), "RdBu_r", (lo, hi)),
        ("residual data - model", as_map(resid), "RdBu_r", (-r, r)),
    ]
    unit = f" [{m.unit}]" if m.unit else ""
    for ax, (title, img, cmap, (vmin, vmax)) in zip(axes[:3], panels, strict=True):
        im = ax.imshow(img, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(title + unit)
        ax.set_xlabel("x [spaxel]")
        ax.set_ylabel("y [spaxel]")
        fig.colorbar(im, ax=ax, fraction=0.046)
    ax = axes[3]
    edge = max(4.0, float(np.percentile(np.abs(white), 99)))
    ax.hist(white, bins=np.linspace(-edge, edge, 41), density=True, color="0.4", alpha=0.6)
    t = np.linspace(-edge, edge, 200)
    ax.plot(t, np.exp(-0.5 * t**2) / np.sqrt(2 * np.pi), "C3", label="N(0, 1)")
    note = f", scatter {scatter:.3g}" if "scatter" in params else ""
    ax.set_title(f"whitened residual ({white.size} dof{note})\nchi2/dof = {np.mean(white**2):.2f}")
    ax.set_xlabel("whitened residual")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
