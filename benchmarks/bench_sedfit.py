"""Benchmark: NUTS vs emcee on the joint SED fit of many bins (the same log-density).

The target is :func:`bayesifu.models.sed.model` on simulated binned SEDs
(:func:`bayesifu.models.sed.simulated_data`): ``n_bins`` bins of 2 x 2 spaxels with the MaNGA-like
Gaussian spatial correlation, six bands, SDSS templates (``--templates``; default the two of
``bayesifu.models.sed.TEMPLATES``), A_V free per bin, redshift fixed; all bins jointly under
:class:`bayesifu.BinnedSpectraLikelihood` (exact covariance between bins in each band). The
posterior has ``(K + 1) n_bins`` dimensions for K templates (A_V, observed level and K - 1 simplex
coordinates per bin: ``3 n_bins`` with two templates, ``2 n_bins`` with one).

Measured side by side in one run, on the same model and data:

* NUTS (``bayesifu.sample``, ``--chains`` chains, default 2). ``--nuts-mass laplace`` (default):
  the dense inverse mass of the Laplace approximation, fixed (``init_mass="laplace",
  adapt_mass=False``: L-BFGS from the random start to the mode, the exact Hessian there, the
  chains started at draws from that approximation; the warmup tunes the step size only), which
  follows the correlations between bins that the spatially correlated noise creates;
  ``--nuts-mass diagonal``: a diagonal mass adapted in the warmup from a random start
  (NumPyro's default). Tree depth ``--max-tree-depth``, default NumPyro's 10;
* emcee (``sampler="emcee"``) on NumPyro's potential of the same model, ``2 * ndim + 2`` walkers
  (emcee's minimum is ``2 * ndim``), vectorised over walkers.

Reported: the bulk ESS (ArviZ, rank-normalised) of the per-bin A_V and flux, minimum and median
over bins, of ``flux_total`` and ``av_mean``; the maximum r-hat (for one NUTS chain, whose ArviZ
r-hat is undefined, that of its two halves taken as two chains); NUTS divergences and mean
leapfrog steps per draw, emcee's mean acceptance fraction; the ESS per second of wall time (all
stages) and of the production phase alone; the mean 1-minute load average during each sampler's
run. For emcee the walkers are the chains of the ESS estimate.

Run from the repository root:
``flock /tmp/bench.lock uv run python benchmarks/bench_sedfit.py --bin-side 10``
(``--bin-side 22``: 484 bins, 1452 dimensions with two templates, 968 with
``--templates spDR2-023.fit``). Writes ``benchmarks/results/sedfit.md``: the new section first,
the sections already in the file kept below it under "Earlier run" headings.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks/results/sedfit.md"
EARLIER = "## Earlier run: "


class _LoadMonitor:
    """The 1-minute load average sampled every ``every`` seconds in a background thread."""

    def __init__(self, every=10.0):
        self.every = every
        self.values = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while True:
            self.values.append(os.getloadavg()[0])
            if self._stop.wait(self.every):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.values.append(os.getloadavg()[0])

    @property
    def mean(self):
        return sum(self.values) / len(self.values)


def _ess(idata):
    import numpy as np

    from bayesifu import _arviz

    names = ["av", "flux", "flux_total", "av_mean"]
    s = _arviz.summary(idata, var_names=names)
    per_bin = s.loc[[i for i in s.index if i.startswith(("av[", "flux["))]]
    rhat = s["r_hat"]
    post = _arviz.group(idata, "posterior")
    if post.sizes["chain"] == 1:  # ArviZ needs two chains: the chain's halves as two chains
        half = post.sizes["draw"] // 2
        halves = {
            k: np.asarray(post[k])[0, : 2 * half].reshape((2, half) + post[k].shape[2:])
            for k in names
        }
        rhat = _arviz.summary(_arviz.to_inference_data(halves))["r_hat"]
    return {
        "ess_min": float(per_bin["ess_bulk"].min()),
        "ess_median": float(np.median(per_bin["ess_bulk"])),
        "ess_total": float(s.loc["flux_total", "ess_bulk"]),
        "ess_av_mean": float(s.loc["av_mean", "ess_bulk"]),
        "rhat_max": float(rhat.max()),
    }


def _stats(idata, sampler):
    import numpy as np

    from bayesifu import _arviz

    st = _arviz.group(idata, "sample_stats")
    if sampler == "nuts":
        steps = np.asarray(st["n_steps"])
        return {
            "divergences": str(int(np.asarray(st["diverging"]).sum())),
            "steps": f"{steps.mean():.0f} ({steps.min()}-{steps.max()})",
        }
    acc = float(np.asarray(st["acceptance_rate"]).mean())
    return {"divergences": "-", "steps": f"acceptance {acc:.2f}"}


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
    binned, basis, _, _ = sed.simulated_data(
        n_side=n_side, bin_size=2, sigma=args.sigma, seed=5, templates=tuple(args.templates)
    )
    lik = BinnedSpectraLikelihood(binned)
    nb = binned.n_bins
    ndim = (basis.n_templates + 1) * nb
    rows = []

    def timed(label, sampler="nuts", **kw):
        with _LoadMonitor() as load:
            begin = time.perf_counter()
            idata = sample(
                sed.model, basis, lik, sampler=sampler, seed=1, check="ignore", pointwise=False,
                **kw,
            )  # fmt: skip
            wall = time.perf_counter() - begin
        attrs = _arviz.group(idata, "posterior").attrs
        prod = float(attrs["production_time_s"])
        rows.append(
            {"label": label, "wall": wall, "prod": prod, **_ess(idata), **_stats(idata, sampler),
             "load": load.mean, "load_max": max(load.values)}
        )  # fmt: skip
        print(rows[-1], flush=True)

    nuts_options = {}
    mass = "diagonal mass adapted"
    if args.nuts_mass == "laplace":
        nuts_options.update(dense_mass=True, init_mass="laplace", adapt_mass=False)
        mass = "dense Laplace mass"
    depth = ""
    if args.max_tree_depth is not None:
        nuts_options["max_tree_depth"] = args.max_tree_depth
        depth = f", max tree depth {args.max_tree_depth}"
    timed(f"NUTS ({mass}), {args.chains} chain(s), {args.warmup} warmup + {args.draws} draws"
          f"{depth}", chains=args.chains, warmup=args.warmup, draws=args.draws,
          sampler_options=nuts_options)  # fmt: skip
    if args.emcee_steps == 0:
        return nb, ndim, rows
    walkers = 2 * ndim + 2
    timed(f"emcee, {walkers} walkers, {args.emcee_warmup} burn-in + {args.emcee_steps} steps",
          sampler="emcee", warmup=args.emcee_warmup, draws=args.emcee_steps,
          sampler_options={"walkers": walkers})  # fmt: skip
    return nb, ndim, rows


def _earlier(text):
    """The sections already in ``text``, each top-level heading turned into an "Earlier run"."""
    lines = []
    for line in text.rstrip().splitlines():
        if line.startswith("# "):
            line = EARLIER + line[2:]
        lines.append(line)
    return lines


def write(nb, ndim, rows, args, command):
    templates = ", ".join(args.templates)
    lines = [
        f"# Joint SED fit of {nb} bins ({ndim} dimensions): NUTS vs emcee",
        "",
        f"`{command}`; templates {templates}; CPU (2 cores shared with other jobs: the mean "
        "1-minute load average during each sampler's run in the last column, its maximum in "
        "brackets). ESS: bulk, rank-normalised (ArviZ); per bin over A_V and flux of every bin. "
        "r-hat: ArviZ's rank-normalised r-hat, maximum over A_V, flux, flux_total and av_mean; for "
        "the single NUTS chain that of its two halves taken as two chains. Steps: NUTS leapfrog "
        "steps per draw, mean (range); for emcee its mean acceptance fraction.",
        "",
        "| sampler | wall [s] | production [s] | min ESS (per bin) | median ESS | ESS flux_total "
        "| max r-hat | divergences | steps | min ESS / s (wall) | median ESS / s (wall) "
        "| median ESS / s (production) | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['wall']:.0f} | {r['prod']:.0f} | {r['ess_min']:.1f} | "
            f"{r['ess_median']:.1f} | {r['ess_total']:.1f} | {r['rhat_max']:.3f} | "
            f"{r['divergences']} | {r['steps']} | "
            f"{r['ess_min'] / r['wall']:.3g} | {r['ess_median'] / r['wall']:.3g} | "
            f"{r['ess_median'] / r['prod']:.3g} | {r['load']:.1f} ({r['load_max']:.1f}) |"
        )
    if len(rows) == 2 and rows[1]["ess_median"] > 0:
        nuts, emc = (r["ess_median"] / r["wall"] for r in rows)
        ratio = nuts / emc
        lines += ["", f"NUTS / emcee, median ESS per second of wall time: {ratio:.3g}"]
    earlier = _earlier(OUT.read_text()) if OUT.exists() else []
    OUT.write_text("\n".join(lines + ([""] + earlier if earlier else [])) + "\n")
    print("\n".join(lines))


def main(argv=None):
    from bayesifu.models.sed import TEMPLATES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-side", type=int, default=10, help="bins per side (n_bins = side^2)")
    parser.add_argument("--sigma", type=float, default=0.01, help="noise per spaxel and band")
    parser.add_argument(
        "--templates",
        nargs="+",
        default=list(TEMPLATES),
        help="shipped SDSS template files (default: %(default)s)",
    )
    parser.add_argument("--max-tree-depth", type=int, default=None, help="NUTS (default 10)")
    parser.add_argument(
        "--nuts-mass",
        choices=("laplace", "diagonal"),
        default="laplace",
        help="NUTS mass matrix: dense Laplace, fixed, or diagonal adapted (default: %(default)s)",
    )
    parser.add_argument("--chains", type=int, default=2, help="NUTS chains (default 2)")
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--emcee-steps", type=int, default=2000, help="0: NUTS only")
    parser.add_argument("--emcee-warmup", type=int, default=1000)
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["uv", "run", "python", "benchmarks/bench_sedfit.py", *given])
    nb, ndim, rows = run(args)
    write(nb, ndim, rows, args, command)


if __name__ == "__main__":
    main()
