"""``bayesifu demo``: the headline result on real data shipped with the package.

Fits a thin rotating disk to the H-alpha velocity field of MaNGA 7815-3702 (DAP EMLINE_GVEL,
channel Ha-6564, with its IVAR and MASK) three ways -- NUTS with the full spatial covariance (the
real DRP CORREL matrix), NUTS with independent spaxels, and Levenberg-Marquardt -- prints the
parameters and their uncertainties side by side, and writes the posteriors (netCDF) and plots (PNG).
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["register", "run"]

PARAMS = ("x0", "y0", "pa", "inc", "vsys", "vmax", "rt")
#: Scale [km/s] of the HalfNormal prior of the intrinsic scatter: the thin disk does not describe
#: every spaxel of a real galaxy (LM's reduced chi-square is about 49), so both NUTS fits carry an
#: intrinsic-scatter term; without it the full-covariance fit is misspecified and does not converge.
SCATTER_PRIOR = 20.0
UNITS = {
    "x0": "spaxel",
    "y0": "spaxel",
    "pa": "deg",
    "inc": "deg",
    "vsys": "km/s",
    "vmax": "km/s",
    "rt": "spaxel",
}


def register(subparsers):
    p = subparsers.add_parser(
        "demo",
        help="fit the H-alpha velocity field of MaNGA 7815-3702 (shipped) three ways",
        description=__doc__.splitlines()[0] + " " + " ".join(__doc__.splitlines()[2:6]),
    )
    p.add_argument(
        "--out", default="bayesifu-demo-output", help="output folder (default: %(default)s)"
    )
    p.add_argument("--chains", type=int, default=4, help="NUTS chains (default: %(default)s)")
    p.add_argument("--draws", type=int, default=400, help="draws per chain (default: %(default)s)")
    p.add_argument(
        "--warmup", type=int, default=400, help="warmup steps per chain (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="hide the progress bars (NumPyro's bar is shown only on a terminal)",
    )
    p.set_defaults(func=run)


def check_demo_inputs(args) -> None:
    """Raise :class:`~bayesifu.errors.InputError` naming the option if ``args`` is unusable;
    needs no JAX, so a bad call answers in seconds."""
    from ..errors import InputError

    for label, least in (("chains", 1), ("draws", 4), ("warmup", 0), ("seed", 0)):
        value = getattr(args, label)
        if value < least:
            raise InputError(f"--{label} must be at least {least}, got {value}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {args.out!r} is a file; give a folder for the demo's outputs")


def _say(text):
    print(text, flush=True)


def _summaries(idata, names=PARAMS):
    from .. import _arviz

    post = _arviz.group(idata, "posterior")
    return {k: (float(post[k].mean()), float(post[k].std())) for k in names}


#: Convergence thresholds of the conclusion line (the same as ``bayesifu fit``'s exit status).
RHAT_MAX = 1.01
ESS_PER_CHAIN = 100


def _diagnostics(idata, names=PARAMS) -> dict:
    """``{name: (r-hat, bulk ESS)}`` (NaN where undefined, e.g. r-hat of one chain)."""
    from .. import _arviz

    table = _arviz.summary(idata, var_names=list(names))
    return {k: (float(table.loc[k, "r_hat"]), float(table.loc[k, "ess_bulk"])) for k in names}


def _fmt(value, spec) -> str:
    return "n/a" if value != value else format(value, spec)  # NaN: undefined


def _table(full, indep, lm, diag_full=None, diag_indep=None) -> str:
    """The comparison table; with diagnostics, the largest r-hat and the smallest bulk ESS of
    the two NUTS fits for each parameter."""
    head = (
        f"{'parameter':<14}{'full covariance':>20}{'independent':>20}{'LM':>20}"
        f"{'sd full/indep':>15}{'sd full/LM':>12}"
    )
    if diag_full is not None:
        head += f"{'r-hat (max)':>13}{'ESS bulk (min)':>16}"
    lines = [head, "-" * len(head)]
    for k in PARAMS:
        f, i = full[k], indep[k]
        lm_val = lm.values[k]
        lm_err = None if lm.errors is None else lm.errors[k]
        lm_txt = f"{lm_val:.2f} ± " + ("n/a" if lm_err is None else f"{lm_err:.2f}")
        ratio_lm = "n/a" if not lm_err else f"{f[1] / lm_err:.2f}"
        line = (
            f"{k + ' [' + UNITS[k] + ']':<14}{f'{f[0]:.2f} ± {f[1]:.2f}':>20}"
            f"{f'{i[0]:.2f} ± {i[1]:.2f}':>20}{lm_txt:>20}{f[1] / i[1]:>15.2f}{ratio_lm:>12}"
        )
        if diag_full is not None:
            rhat = max(diag_full[k][0], diag_indep[k][0])
            ess = min(diag_full[k][1], diag_indep[k][1])
            line += f"{_fmt(rhat, '.3f'):>13}{_fmt(ess, '.0f'):>16}"
        lines.append(line)
    return "\n".join(lines)


def _conclusion(full, indep, diag_full, diag_indep, chains) -> str:
    """One line drawn from the numbers: the full-covariance PA, how much wider its posterior is
    than the independent fit's, and whether the chains converged."""
    ratios = sorted(full[k][1] / indep[k][1] for k in PARAMS)
    median = ratios[len(ratios) // 2]
    pa, pa_sd = full["pa"]
    text = (
        f"Full covariance: PA {pa:.1f} ± {pa_sd:.1f} deg, posterior widths {median:.2f}x the "
        f"independent fit's (median over {len(ratios)} parameters, "
        f"range {ratios[0]:.2f}-{ratios[-1]:.2f}x); "
    )
    rhats = [(d[k][0], k, fit) for fit, d in (("full", diag_full), ("indep", diag_indep))
             for k in PARAMS]  # fmt: skip
    esss = [(d[k][1], k, fit) for fit, d in (("full", diag_full), ("indep", diag_indep))
            for k in PARAMS]  # fmt: skip
    least_ess = ESS_PER_CHAIN * chains
    low = min(esss)
    if any(r != r for r, _, _ in rhats):
        return text + (
            f"r-hat undefined with {chains} chain(s), so convergence is not checked "
            f"(smallest bulk ESS {low[0]:.0f}); run --chains 4 or more"
        )
    worst = max(rhats)
    if worst[0] <= RHAT_MAX and low[0] >= least_ess:
        return text + (
            f"all chains converged (r-hat <= {RHAT_MAX}, bulk ESS >= {least_ess}: "
            f"max r-hat {worst[0]:.3f}, min ESS {low[0]:.0f})"
        )
    problems = []
    if worst[0] > RHAT_MAX:
        problems.append(f"r-hat up to {worst[0]:.3f} ({worst[1]}, {worst[2]} fit) > {RHAT_MAX}")
    if low[0] < least_ess:
        problems.append(f"bulk ESS down to {low[0]:.0f} ({low[1]}, {low[2]} fit) < {least_ess}")
    return text + "NOT converged: " + "; ".join(problems) + "; run more --draws/--warmup"


def _fit(lik, label, args, out: Path, stem: str, start_values: dict):
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from numpyro.infer import init_to_value

    from .._progress import sampler_progress_bar
    from ..models import disk
    from ..sampling import sample

    _say(f"  NUTS, {label}: {args.chains} chains x ({args.warmup} warmup + {args.draws} draws)")
    start = time.perf_counter()
    idata = sample(
        disk.model,
        lik.x,
        lik.y,
        lik,
        scatter=dist.HalfNormal(SCATTER_PRIOR),
        chains=args.chains,
        draws=args.draws,
        warmup=args.warmup,
        seed=args.seed,
        out=out / f"{stem}.nc",
        sampler_options={
            "init_strategy": init_to_value(
                values={k: jnp.asarray(v) for k, v in disk.init_values(start_values).items()}
            ),
            "dense_mass": True,
            "init_mass": "laplace",  # warmup starts preconditioned (benchmarks/bench_sampling.py)
            "progress_bar": sampler_progress_bar(args.progress),
        },
    )
    _add_provenance(idata, args, out / f"{stem}.nc")
    _say(f"    done in {time.perf_counter() - start:.1f} s -> {out / (stem + '.nc')}")
    return idata


def _add_provenance(idata, args, path: Path) -> None:
    """Provenance (:func:`bayesifu.io.provenance.provenance_attrs`) in the attributes of every
    group, and the netCDF file at ``path`` written again with it."""
    from .. import _arviz
    from ..datasets import manga_7815_3702
    from ..io.provenance import provenance_attrs
    from .checks import cli_options

    files = manga_7815_3702()
    attrs = provenance_attrs("demo", options=cli_options(args), inputs=[files.maps, files.snrg],
                             argv=getattr(args, "cmdline", None))  # fmt: skip
    _arviz.update_attrs(idata, attrs)
    _arviz.to_netcdf(idata, path)


def _plots(vmap, lik, idata, out: Path, stem: str, title: str):
    from .. import _arviz
    from ..models import disk
    from .fit import plot_maps, plot_pairs

    post = _arviz.group(idata, "posterior")
    medians = {k: float(post[k].median()) for k in (*PARAMS, "scatter")}
    return [
        plot_maps(disk.model, medians, lik, vmap, str(out / f"{stem}_maps.png"), title=title),
        plot_pairs(idata, PARAMS, str(out / f"{stem}_pairs.png"), units=UNITS),
    ]


def run(args) -> int:
    """Run the demo; returns the exit status (0)."""
    check_demo_inputs(args)  # before JAX is imported: a bad call answers in seconds
    from ..correlation import SpatialCorrelation
    from ..datasets import manga_7815_3702
    from ..errors import SamplingError
    from ..io import read_map
    from ..likelihood import MapLikelihood
    from ..lmfit import disk_lm_fit

    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = manga_7815_3702()
    _say("bayesifu demo: thin-disk fit of the H-alpha velocity field of MaNGA 7815-3702")
    vmap = read_map(files.maps, "EMLINE_GVEL", channel="Ha-6564")
    corr = SpatialCorrelation.from_fits(files.snrg, "CORREL")
    _say(f"  data: {files.maps.name} EMLINE_GVEL[Ha-6564], {vmap.n_good} unmasked spaxels")
    _say(f"  correlation: real DRP CORREL table of {files.snrg.name}")
    lik_full = MapLikelihood(vmap, corr)
    lik_ind = MapLikelihood(vmap, None)
    _say(
        f"  full-covariance likelihood: {lik_full.n} spaxels, {lik_full.dof} degrees of freedom "
        f"(method {lik_full.settings.get('method')})"
    )

    lm = disk_lm_fit(lik_ind)
    if lm is None:
        raise SamplingError("no Levenberg-Marquardt disk fit converged to start the chains from")
    _say(
        f"  Levenberg-Marquardt (independent spaxels): {lm.seconds:.2f} s, "
        f"reduced chi-square {lm.redchi:.1f}; the chains start there"
    )
    idata_full = _fit(
        lik_full, "full covariance", args, out, "posterior_full_covariance", lm.values
    )
    idata_ind = _fit(lik_ind, "independent spaxels", args, out, "posterior_independent", lm.values)

    full, indep = _summaries(idata_full), _summaries(idata_ind)
    diag_full, diag_ind = _diagnostics(idata_full), _diagnostics(idata_ind)
    table = _table(full, indep, lm, diag_full, diag_ind)
    sf = _summaries(idata_full, ("scatter",))["scatter"]
    si = _summaries(idata_ind, ("scatter",))["scatter"]
    table += (
        f"\nintrinsic scatter [km/s]: full covariance {sf[0]:.2f} ± {sf[1]:.2f}, "
        f"independent {si[0]:.2f} ± {si[1]:.2f}"
    )
    table += "\n" + _conclusion(full, indep, diag_full, diag_ind, args.chains)
    _say("")
    _say(
        "posterior mean ± sd (NUTS, disk + intrinsic scatter) and LM best fit ± lmfit-style error:"
    )
    _say(table)
    (out / "comparison.txt").write_text(table + "\n")

    pngs = _plots(
        vmap, lik_full, idata_full, out, "full_covariance", "7815-3702 H-alpha, full covariance"
    )
    pngs += _plots(
        vmap, lik_ind, idata_ind, out, "independent", "7815-3702 H-alpha, independent spaxels"
    )
    _say("")
    _say(f"wrote to {out.resolve()}:")
    for name in sorted(p.name for p in out.iterdir()):
        _say(f"  {name}")
    _say(f"total time {time.perf_counter() - t0:.0f} s")
    return 0
