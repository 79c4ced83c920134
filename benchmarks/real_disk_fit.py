"""Fit the H-alpha velocity field of MaNGA 7815-3702 with and without the spatial covariance.

Fits a thin rotating disk (``bayesifu.models.disk``, tanh rotation curve) to EMLINE_GVEL channel
Ha-6564 (with its IVAR and MASK) of the DAP MAPS file in ``tests/data`` using

(a) the full covariance from the real DRP correlation matrix (the CORREL table of the SNRG file)
    and from the Gaussian approximation (sigma = 1.92 spaxels, rlim = 6.4 spaxels),
(b) independent spaxels,
(c) a Levenberg-Marquardt fit with lmfit-style errors (independent spaxels),

each without and with an intrinsic-scatter term, and prints the posterior table and the ratio of
posterior widths. It also fits the binned stellar velocity map (STELLAR_VEL, bins of the BINID
channel 'Stellar continua', :class:`bayesifu.BinnedMapLikelihood` with the CORREL correlation
propagated to the bins, and independent bins), with intrinsic scatter. Run from the repository
root::

    uv run python benchmarks/real_disk_fit.py [--draws 1000] [--warmup 1000] [--fits stellar]

``--fits`` runs only the H-alpha or only the stellar rows; the section of the results file of the
other is kept.

Writes ``benchmarks/results/real_disk_fit.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks/results/real_disk_fit.md"
HALPHA = "## Real data: H-alpha velocity field of MaNGA 7815-3702 (thin disk, tanh curve)"
STELLAR = "## Real data: binned stellar velocity field of MaNGA 7815-3702 (thin disk, tanh curve)"
SCATTER = (
    "## Real data: why the Gaussian approximation + scatter gave 10x wider posteriors (H-alpha)"
)
MAPS = ROOT / "tests/data/manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
SNRG = ROOT / "tests/data/manga-7815-3702-SNRG.fits.gz"
NAMES = ("x0", "y0", "pa", "inc", "vsys", "vmax", "rt")


def _sample_row(lik, lm_start, scatter, args):
    """Posterior mean and sd of every parameter (NUTS from the LM optimum), time and dof."""
    import numpyro.distributions as dist
    from bayesifu.models import disk
    from numpyro.infer import init_to_value

    from bayesifu import _arviz
    from bayesifu.sampling import sample

    start = time.perf_counter()
    idata = sample(
        disk.model,
        lik.x,
        lik.y,
        lik,
        scatter=dist.HalfNormal(30.0) if scatter else None,
        chains=args.chains,
        draws=args.draws,
        warmup=args.warmup,
        seed=1,
        sampler_options={
            "init_strategy": init_to_value(values=lm_start),
            "dense_mass": True,  # inc and vmax are strongly correlated
        },
    )
    post = _arviz.group(idata, "posterior")
    row = {
        k: (float(post[k].mean()), float(post[k].std()))
        for k in (*NAMES, *(("scatter",) if scatter else ()))
    }
    row["_time"] = time.perf_counter() - start
    row["_dof"] = lik.dof
    return row


def _stellar_fits(args, progress):
    """The binned STELLAR_VEL map: LM, then full covariance (CORREL) and independent + scatter."""
    import jax.numpy as jnp
    import numpy as np

    import bayesifu as bi
    from bayesifu.kinematics import DiskParams, disk_velocity
    from bayesifu.lmfit import lm_fit

    vmap = bi.read_map(MAPS, "STELLAR_VEL")
    flux = bi.read_map(MAPS, "SPX_MFLUX")  # luminosity weights and spaxel noise (g band)
    weights = {"flux": flux.data, "spaxel_variance": flux.variance}
    correl = bi.SpatialCorrelation.from_fits(SNRG, "CORREL")
    liks = {
        "stellar full (CORREL)": bi.BinnedMapLikelihood(vmap, correl, **weights),
        "stellar independent": bi.BinnedMapLikelihood(vmap, None, **weights),
    }
    ind = liks["stellar independent"]
    x = jnp.asarray(ind.x, dtype=float)
    y = jnp.asarray(ind.y, dtype=float)
    guess = dict(x0=float(np.mean(ind.x)), y0=float(np.mean(ind.y)), pa=163.0, inc=50.0,
                 vsys=float(np.median(ind.data)), vmax=150.0, rt=3.0)  # fmt: skip
    lm = lm_fit(lambda p: ind.bin_model(disk_velocity(x, y, DiskParams(**p))), guess, lik=ind)
    print(f"stellar LM: {lm.values} ({lm.seconds:.2f} s, reduced chi2 {lm.redchi:.1f})", flush=True)
    rows = {
        "stellar LM (independent)": {
            **{k: (lm.values[k], np.nan if lm.errors is None else lm.errors[k]) for k in NAMES},
            "_time": lm.seconds,
            "_dof": lm.dof,
        }
    }
    lm_start = {k: jnp.asarray(v) for k, v in lm.values.items()}
    for label, lik in liks.items():
        key = f"{label} + scatter"
        rows[key] = _sample_row(lik, lm_start, True, args)
        print(f"{key} (n {lik.n} bins, dof {lik.dof}): {rows[key]}", flush=True)
        progress(rows, lm, {k: (v.n, v.dof) for k, v in liks.items()})
    return rows


def _laplace(lik, start):
    """Mode and Laplace sd of the disk + scatter (flat priors): L-BFGS-B, then the Hessian as
    central differences of the JAX gradient (reverse mode: the banded path has no forward mode)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from scipy.optimize import minimize

    from bayesifu.kinematics import DiskParams, disk_velocity

    x = jnp.asarray(lik.x, dtype=float)
    y = jnp.asarray(lik.y, dtype=float)

    def nlp(t):
        return -lik.log_prob(disk_velocity(x, y, DiskParams(*t[:7])), scatter=t[7])

    f, g = jax.jit(nlp), jax.jit(jax.grad(nlp))
    bounds = [(None, None)] * 3 + [(5, 85), (None, None), (1, 2000), (0.1, 50), (0.05, 100)]
    sol = minimize(lambda t: float(f(jnp.asarray(t))), start, method="L-BFGS-B", bounds=bounds,
                   jac=lambda t: np.asarray(g(jnp.asarray(t))))  # fmt: skip
    h = np.zeros((8, 8))
    for i in range(8):
        e = np.zeros(8)
        e[i] = 1e-4 * max(1.0, abs(sol.x[i]))
        h[i] = np.asarray(g(jnp.asarray(sol.x + e))) - np.asarray(g(jnp.asarray(sol.x - e)))
        h[i] /= 2 * e[i]
    sd = np.sqrt(np.diag(np.linalg.inv(0.5 * (h + h.T))))
    return {k: (float(m), float(s)) for k, m, s in zip((*NAMES, "scatter"), sol.x, sd, strict=True)}


def _scatter_models():
    """Laplace posteriors of the H-alpha disk + scatter under the two scatter models."""
    import numpy as np

    import bayesifu as bi

    vmap = bi.read_map(MAPS, "EMLINE_GVEL", channel="Ha-6564")
    gauss = bi.SpatialCorrelation.gaussian(vmap.shape, sigma=1.92, rlim=6.4)
    liks = {
        "full (CORREL), eigen: white scatter": bi.MapLikelihood(
            vmap, bi.SpatialCorrelation.from_fits(SNRG, "CORREL")
        ),
        "full (Gaussian), banded: scatter correlated like the noise": bi.MapLikelihood(
            vmap, gauss, method="banded"
        ),
        "full (Gaussian), eigen: white scatter": bi.MapLikelihood(vmap, gauss, method="eigen"),
        "full (Gaussian), banded, nugget auto": bi.MapLikelihood(vmap, gauss, nugget="auto"),
        "independent": bi.MapLikelihood(vmap),
    }
    start = np.array([20.66, 21.32, 165.0, 22.0, 0.4, 229.0, 4.5, 3.0])  # near the CORREL fit
    rows = {}
    for label, lik in liks.items():
        rows[label] = _laplace(lik, start)
        print(f"{label} ({lik.method}, dof {lik.dof}): {rows[label]}", flush=True)
    return rows


def _fits(args, progress):
    import jax.numpy as jnp
    import numpy as np

    from bayesifu.correlation import SpatialCorrelation
    from bayesifu.io import read_map
    from bayesifu.kinematics import DiskParams, disk_velocity
    from bayesifu.likelihood import MapLikelihood
    from bayesifu.lmfit import lm_fit

    vmap = read_map(MAPS, "EMLINE_GVEL", channel="Ha-6564")
    correlations = {
        "full (CORREL)": SpatialCorrelation.from_fits(SNRG, "CORREL"),
        "full (Gaussian)": SpatialCorrelation.gaussian(vmap.shape, sigma=1.92, rlim=6.4),
        "independent": None,
    }
    # the Gaussian on the reduced-rank path (white scatter), the default of MapLikelihood
    # (scatter_model="auto") and so of `bayesifu fit --correlation gaussian`; see the
    # scatter-models section for why
    liks = {
        k: MapLikelihood(vmap, c, method="eigen" if k == "full (Gaussian)" else "auto")
        for k, c in correlations.items()
    }
    ind = liks["independent"]
    x = jnp.asarray(ind.x, dtype=float)
    y = jnp.asarray(ind.y, dtype=float)
    guess = {
        "x0": float(np.mean(ind.x)),
        "y0": float(np.mean(ind.y)),
        "pa": 163.0,  # catalogue PA (data/README.md)
        "inc": 50.0,
        "vsys": float(np.median(ind.data)),
        "vmax": 150.0,
        "rt": 3.0,
    }
    lm = lm_fit(lambda p: disk_velocity(x, y, DiskParams(**p)), guess, lik=ind)
    print(f"LM: {lm.values} ({lm.seconds:.2f} s, reduced chi2 {lm.redchi:.1f})", flush=True)
    # start every chain at the LM optimum: the real field has local optima that chains started
    # at random points of the prior do not all escape
    lm_start = {k: jnp.asarray(v) for k, v in lm.values.items()}
    rows = {
        "LM (independent)": {
            **{k: (lm.values[k], np.nan if lm.errors is None else lm.errors[k]) for k in NAMES},
            "_time": lm.seconds,
            "_dof": lm.dof,
        }
    }
    for scatter in (True, False) if args.without_scatter else (True,):
        for label, lik in liks.items():
            key = f"{label}{' + scatter' if scatter else ''}"
            rows[key] = _sample_row(lik, lm_start, scatter, args)
            print(f"{key}: {rows[key]}", flush=True)
            progress(rows, lm)
    return rows, vmap, lm


def _table(rows, timed=True) -> str:
    lines = ["| fit | " + " | ".join(NAMES) + " | scatter |" + (" time [s] |" if timed else "")]
    lines.append("|---" * (len(NAMES) + 2 + timed) + "|")
    for key, r in rows.items():
        cells = [f"{r[k][0]:.2f} ± {r[k][1]:.2f}" for k in NAMES]
        sc = f"{r['scatter'][0]:.1f} ± {r['scatter'][1]:.1f}" if "scatter" in r else "-"
        time_cell = f" {r['_time']:.1f} |" if timed else ""
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {sc} |" + time_cell)
    return "\n".join(lines)


def _ratios(rows, pairs=None) -> str:
    pairs = pairs or [
        ("full (CORREL)", "independent"),
        ("full (Gaussian)", "independent"),
        ("full (CORREL)", "full (Gaussian)"),
        ("LM (independent)", "independent"),
        ("full (CORREL) + scatter", "independent + scatter"),
        ("full (Gaussian) + scatter", "independent + scatter"),
    ]
    lines = ["| width ratio | " + " | ".join(NAMES) + " |", "|---" * (len(NAMES) + 1) + "|"]
    for a, b in pairs:
        if a not in rows or b not in rows:
            continue
        cells = [f"{rows[a][k][1] / rows[b][k][1]:.2f}" for k in NAMES]
        lines.append(f"| sd {a} / sd {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_section(heading, body) -> str:
    """Replace (or add) the section ``heading`` of the results file, keeping the others."""
    old = OUT.read_text() if OUT.exists() else ""
    sections = {
        b.splitlines()[0]: b.rstrip() + "\n" for b in re.split(r"(?m)^(?=## )", old) if b.strip()
    }
    sections[heading] = f"{heading}\n\n{body.rstrip()}\n"
    order = [HALPHA, SCATTER, STELLAR]
    order += [k for k in sections if k not in order]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(sections[k] for k in order if k in sections))
    return sections[heading]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Real-data disk fit of MaNGA 7815-3702")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument(
        "--fits", choices=["all", "halpha", "stellar", "scatter-models"], default="all"
    )
    parser.add_argument(
        "--without-scatter",
        action="store_true",
        help="H-alpha: also fit without intrinsic scatter (does not converge: reduced chi2 49)",
    )
    args = parser.parse_args(argv)
    import numpyro

    numpyro.set_host_device_count(min(4, os.cpu_count() or 1))
    numpyro.enable_x64()
    command = (
        "Command: `uv run python benchmarks/real_disk_fit.py "
        f"--draws {args.draws} --warmup {args.warmup} --fits {args.fits}"
        + (" --without-scatter`" if args.without_scatter else "`")
    )
    load_start = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())

    def progress(rows, lm):
        text = "\n".join(
            [
                f"EMLINE_GVEL Ha-6564 (IVAR, MASK); posterior mean ± sd ({args.chains} chains x "
                f"{args.draws} draws, NUTS, dense mass matrix, chains started at the LM optimum; "
                "Gaussian approximation sigma 1.92, rlim 6.4 on the reduced-rank path with white "
                "scatter); "
                f"LM: lmfit-style errors (reduced chi-square {lm.redchi:.1f}). "
                "Units: spaxel, deg, km/s.",
                "",
                _table(rows),
                "",
                _ratios(rows),
                "",
                f"{command}; load average (1, 5, 15 min) {load_start} at the start, "
                + "{:.2f} {:.2f} {:.2f} now (2-core machine; times are wall-clock).".format(
                    *os.getloadavg()
                ),
            ]
        )
        return _write_section(HALPHA, text)

    def progress_stellar(rows, lm, sizes):
        load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
        text = "\n".join(
            [
                "STELLAR_VEL (IVAR, MASK) over the unique bins of BINID 'Stellar continua' "
                "(`bayesifu.BinnedMapLikelihood`): the DAP's per-bin variances, the correlation "
                "between bins propagated from the CORREL matrix through the stacking operator "
                "(T rho T^T, noise from SPX_MFLUX_IVAR), the model averaged over each bin's "
                "spaxels with SPX_MFLUX weights; intrinsic scatter HalfNormal(30 km/s). Bins "
                "(n) and degrees of freedom (rank): "
                + ", ".join(f"{k}: n {n}, dof {d}" for k, (n, d) in sizes.items())
                + f". Posterior mean ± sd ({args.chains} chains x {args.draws} draws, NUTS, "
                "dense mass matrix, chains started at the LM optimum of independent bins); LM: "
                f"lmfit-style errors (reduced chi-square {lm.redchi:.1f}). Units: spaxel, deg, "
                "km/s.",
                "",
                _table(rows),
                "",
                _ratios(
                    rows,
                    [
                        ("stellar full (CORREL) + scatter", "stellar independent + scatter"),
                        ("stellar LM (independent)", "stellar independent + scatter"),
                    ],
                ),
                "",
                f"{command}; load average (1, 5, 15 min) {load_start} at the start, {load} now "
                "(2-core machine shared with other jobs; times are wall-clock).",
            ]
        )
        return _write_section(STELLAR, text)

    if args.fits == "scatter-models":
        rows = _scatter_models()
        text = "\n".join(
            [
                "Posterior mode ± Laplace sd (flat priors; Hessian from JAX gradients) of the "
                "thin disk + intrinsic scatter on EMLINE_GVEL Ha-6564. The tapered Gaussian "
                "(sigma 1.92, rlim 6.4) is positive-definite (eigenvalues 19.8 ... 9.5e-4), so "
                "`method='auto'` alone would take the banded path, whose scatter is correlated "
                "like the noise. The Gaussian claims ~1e-4 of the noise power in its "
                "high-frequency modes where the data residuals have ~white power of order the "
                "quoted errors; scatter "
                "correlated like the noise can only cover that by growing to 14 km/s, which "
                "widens every parameter ~10x (the NUTS row of the table above). A nugget does "
                "not help (it lifts those modes to 1e-6 of the largest). The reduced-rank path "
                "is the same density without scatter and adds white scatter: 1.9 km/s and "
                "widths close to the real-CORREL fit. It is the default of `MapLikelihood` "
                "(`scatter_model='auto'`: white scatter wherever the dense path fits), and so of "
                "`bayesifu fit --correlation gaussian`.",
                "",
                _table(rows, timed=False),
                "",
                "Command: `uv run python benchmarks/real_disk_fit.py --fits scatter-models`",
            ]
        )
        print(_write_section(SCATTER, text))
    if args.fits in ("all", "halpha"):
        rows, vmap, lm = _fits(args, progress)
        print(progress(rows, lm))
    if args.fits in ("all", "stellar"):
        _stellar_fits(args, progress_stellar)
        print(OUT.read_text())


if __name__ == "__main__":
    main()
