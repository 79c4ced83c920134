"""Benchmark: NUTS vs emcee on the joint SED fit of many bins (the same log-density).

The target is :func:`bayesifu.models.sed.model` on simulated binned SEDs
(:func:`bayesifu.models.sed.simulated_data`): ``n_bins`` bins of 2 x 2 spaxels with the MaNGA-like
Gaussian spatial correlation, six bands, two SDSS templates, A_V free per bin, redshift fixed; all
bins jointly under :class:`bayesifu.BinnedSpectraLikelihood` (exact covariance between bins in
each band). The posterior has ``3 n_bins`` dimensions (A_V, observed level and one simplex
coordinate per bin).

Measured side by side in one run, on the same model and data:

* NUTS (``bayesifu.sample``, one chain, diagonal mass matrix adapted in the warmup);
* emcee (``sampler="emcee"``) on NumPyro's potential of the same model, ``2 * ndim + 2`` walkers
  (emcee's minimum is ``2 * ndim``), vectorised over walkers.

Reported: the bulk ESS (ArviZ, rank-normalised) of the per-bin A_V and flux, minimum and median
over bins, of ``flux_total`` and ``av_mean``; the maximum r-hat; and the ESS per second of wall
time (all stages) and of the production phase alone. For emcee the walkers are the chains of the
ESS estimate.

Run from the repository root:
``flock /tmp/bench.lock uv run python benchmarks/bench_sedfit.py --bin-side 10``
(``--bin-side 22``: 484 bins, 1452 dimensions). Writes ``benchmarks/results/sedfit.md``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load():
    return os.getloadavg()[0]


def _ess(idata, nb):
    import numpy as np

    from bayesifu import _arviz

    s = _arviz.summary(idata, var_names=["av", "flux", "flux_total", "av_mean"])
    per_bin = s.loc[[i for i in s.index if i.startswith(("av[", "flux["))]]
    return {
        "ess_min": float(per_bin["ess_bulk"].min()),
        "ess_median": float(np.median(per_bin["ess_bulk"])),
        "ess_total": float(s.loc["flux_total", "ess_bulk"]),
        "ess_av_mean": float(s.loc["av_mean", "ess_bulk"]),
        "rhat_max": float(s["r_hat"].max()),
    }


def run(args):
    import warnings

    import numpyro
    from bayesifu.models import sed

    from bayesifu import _arviz
    from bayesifu.likelihood import BinnedSpectraLikelihood
    from bayesifu.sampling import ConvergenceWarning, sample

    numpyro.enable_x64()
    warnings.simplefilter("ignore", ConvergenceWarning)
    n_side = 2 * args.bin_side
    binned, basis, _, _ = sed.simulated_data(n_side=n_side, bin_size=2, sigma=args.sigma, seed=5)
    lik = BinnedSpectraLikelihood(binned)
    nb = binned.n_bins
    ndim = 3 * nb
    rows = []

    def timed(label, **kw):
        begin = time.perf_counter()
        idata = sample(sed.model, basis, lik, seed=1, check="ignore", pointwise=False, **kw)
        wall = time.perf_counter() - begin
        attrs = _arviz.group(idata, "posterior").attrs
        prod = float(attrs["production_time_s"])
        e = _ess(idata, nb)
        rows.append({"label": label, "wall": wall, "prod": prod, **e, "load": _load()})
        print(rows[-1], flush=True)

    timed(f"NUTS, 1 chain, {args.warmup} warmup + {args.draws} draws",
          chains=1, warmup=args.warmup, draws=args.draws)  # fmt: skip
    walkers = 2 * ndim + 2
    timed(f"emcee, {walkers} walkers, {args.emcee_warmup} burn-in + {args.emcee_steps} steps",
          sampler="emcee", warmup=args.emcee_warmup, draws=args.emcee_steps,
          sampler_options={"walkers": walkers})  # fmt: skip
    return nb, ndim, rows


def write(nb, ndim, rows, args):
    lines = [
        f"# Joint SED fit of {nb} bins ({ndim} dimensions): NUTS vs emcee",
        "",
        f"`uv run python benchmarks/bench_sedfit.py --bin-side {args.bin_side} --draws "
        f"{args.draws} --warmup {args.warmup} --emcee-steps {args.emcee_steps} --emcee-warmup "
        f"{args.emcee_warmup}`; CPU (2 cores shared with other jobs: load average in the last "
        "column). ESS: bulk, rank-normalised (ArviZ); per bin over A_V and flux of every bin.",
        "",
        "| sampler | wall [s] | production [s] | min ESS (per bin) | median ESS | ESS flux_total "
        "| max r-hat | min ESS / s (wall) | median ESS / s (wall) | median ESS / s (production) "
        "| load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['wall']:.0f} | {r['prod']:.0f} | {r['ess_min']:.1f} | "
            f"{r['ess_median']:.1f} | {r['ess_total']:.1f} | {r['rhat_max']:.3f} | "
            f"{r['ess_min'] / r['wall']:.3g} | {r['ess_median'] / r['wall']:.3g} | "
            f"{r['ess_median'] / r['prod']:.3g} | {r['load']:.1f} |"
        )
    if len(rows) == 2 and rows[1]["ess_median"] > 0:
        nuts, emc = (r["ess_median"] / r["wall"] for r in rows)
        ratio = nuts / emc
        lines += ["", f"NUTS / emcee, median ESS per second of wall time: {ratio:.3g}"]
    out = ROOT / "benchmarks/results/sedfit.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-side", type=int, default=10, help="bins per side (n_bins = side^2)")
    parser.add_argument("--sigma", type=float, default=0.01, help="noise per spaxel and band")
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--emcee-steps", type=int, default=2000)
    parser.add_argument("--emcee-warmup", type=int, default=1000)
    args = parser.parse_args(argv)
    nb, ndim, rows = run(args)
    write(nb, ndim, rows, args)


if __name__ == "__main__":
    main()
