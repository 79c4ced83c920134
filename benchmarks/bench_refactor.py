"""Benchmark: the issue-15 redesign against the code before it, side by side in one run.

Before (``--before``, a checkout of an earlier commit with its own environment, e.g.
``git worktree add /tmp/before 3f9190c && (cd /tmp/before && uv sync)``) and after (this checkout)
are run alternately, each in its own process through its own ``uv run``:

* the disk model's log-density and gradient (NumPyro's potential on the unconstrained space,
  jitted, as NUTS calls it) on EMLINE_GVEL Ha-6564 of MaNGA 7815-3702 with the real DRP
  correlation (eigen path) and on the binned STELLAR_VEL map: median time per call. Before, the
  likelihood entered through ``numpyro.factor``; after, through an observed site whose
  distribution is the likelihood; the disk is also parametrised in ``v_proj = vmax sin i`` now;
* ``bayesifu fit MAPS --ext STELLAR_VEL --model disk`` at the defaults: wall and CPU time, the
  smallest bulk ESS of the seven disk parameters, the leapfrog steps (gradient evaluations) of
  the kept draws, ESS per 1000 gradients (independent of machine load) and per CPU second, and
  the divergences.

Run from the repository root: ``uv run python benchmarks/bench_refactor.py --before /tmp/before``.
Writes ``benchmarks/results/refactor.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPS = ROOT / "tests/data/manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
SNRG = ROOT / "tests/data/manga-7815-3702-SNRG.fits.gz"
NAMES = ["x0", "y0", "pa", "inc", "vsys", "vmax", "rt"]

# Runs inside each tree: time NumPyro's potential (value and gradient) of the disk model.
POTENTIAL = r"""
import json, sys, time
import numpyro
numpyro.enable_x64()
import jax, numpy as np
from numpyro.infer.util import initialize_model
import argparse
from bayesifu.cli import build_parser
from bayesifu.cli.fit import likelihood
from bayesifu.io import read_map
from bayesifu.models import disk
maps, snrg, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {}
for label, ext, channel, corr in [("EMLINE_GVEL Ha, DRP CORREL (eigen)", "EMLINE_GVEL",
                                   "Ha-6564", snrg),
                                  ("STELLAR_VEL binned (eigen)", "STELLAR_VEL", None, snrg)]:
    argv = ["fit", maps, "--ext", ext, "--correlation", corr]
    if channel:
        argv += ["--channel", channel]
    args = build_parser().parse_args(argv)
    m = read_map(maps, ext, channel=channel)
    lik = likelihood(args, m, quiet=True)
    # As the CLI calls it: a binned likelihood averages the model over its bins itself.
    info = initialize_model(jax.random.PRNGKey(0), disk.model, model_args=(lik.x, lik.y, lik))
    f = jax.jit(jax.value_and_grad(info.potential_fn))
    z = info.param_info.z
    jax.block_until_ready(f(z))
    times = []
    cpu = time.process_time()
    for _ in range(calls):
        t = time.perf_counter()
        jax.block_until_ready(f(z))
        times.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu) / calls
    out[label] = {"median_ms": 1e3 * float(np.median(times)), "min_ms": 1e3 * float(min(times)),
                  "cpu_ms": 1e3 * cpu, "n": int(lik.n)}
print("RESULT " + json.dumps(out))
"""

SUMMARY = r"""
import json, sys
import arviz as az, numpy as np
d = az.from_netcdf(sys.argv[1])
names = sys.argv[2].split(",")
ess = az.ess(d, var_names=names, method="bulk")
print("RESULT " + json.dumps({"min_ess": float(min(float(ess[k]) for k in names)),
      "divergences": int(np.asarray(d.sample_stats["diverging"]).sum()),
      "grads": int(np.asarray(d.sample_stats["n_steps"]).sum())}))
"""


def _cpu_children() -> float:
    """CPU time (user + system) of the waited-for child processes so far [s]."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(tree: Path, argv: list[str]) -> tuple[str, float, float]:
    """Run ``argv`` in ``tree``'s environment: ``(stdout, wall [s], CPU [s])``."""
    env = dict(os.environ, MPLBACKEND="Agg")
    t, cpu = time.perf_counter(), _cpu_children()
    proc = subprocess.run(["uv", "run", "--project", str(tree), *argv], cwd=tree, env=env,
                          capture_output=True, text=True)  # fmt: skip
    wall, cpu = time.perf_counter() - t, _cpu_children() - cpu
    if proc.returncode not in (0, 3):  # 3: fit wrote results but did not converge
        raise SystemExit(f"{tree}: {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout, wall, cpu


def _result(stdout: str) -> dict:
    line = next(s for s in stdout.splitlines() if s.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def potential(tree: Path, calls: int) -> dict:
    out, _, _ = _run(tree, ["python", "-c", POTENTIAL, str(MAPS), str(SNRG), str(calls)])
    return _result(out)


def fit(tree: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        nc = Path(tmp) / "stellar.nc"
        argv = ["bayesifu", "fit", str(MAPS), "--ext", "STELLAR_VEL", "--model", "disk",
                "--out", str(nc), "--no-plots", "--no-progress"]  # fmt: skip
        out, wall, cpu = _run(tree, argv)
        res = _result(_run(tree, ["python", "-c", SUMMARY, str(nc), ",".join(NAMES)])[0])
    res.update(wall_s=wall, cpu_s=cpu, ess_per_cpu_s=res["min_ess"] / cpu,
               ess_per_kgrad=1e3 * res["min_ess"] / res["grads"],
               exit_ok="did not converge" not in out)  # fmt: skip
    return res


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the old code")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--no-fit", action="store_true", help="time the log-density only")
    args = parser.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": ROOT}
    pot = {k: [] for k in trees}
    fits = {k: [] for k in trees}
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(trees)[::-1]
        for name in order:
            pot[name].append(potential(trees[name], args.calls))
            if not args.no_fit:
                fits[name].append(fit(trees[name]))
            print(name, pot[name][-1], fits[name][-1:], flush=True)
    rev = subprocess.run(["git", "-C", str(trees["before"]), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    now = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    load = os.getloadavg()[0]
    lines = [
        "## Issue-15 redesign: before vs after (bench_refactor.py)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, no GPU. Before = {rev}, after = {now}; {args.rounds} "
        f"rounds, trees alternating, each in its own process; load average {load:.1f} at the "
        "end. Compare the ratios.",
        "",
        "| log-density + gradient of the disk model | n | before [ms] median (min) | "
        "after [ms] median (min) | after / before (median) | before / after CPU [ms] per call "
        "| after / before (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label in pot["before"][0]:
        b = [p[label] for p in pot["before"]]
        a = [p[label] for p in pot["after"]]
        bm, am = min(x["median_ms"] for x in b), min(x["median_ms"] for x in a)
        bmin, amin = min(x["min_ms"] for x in b), min(x["min_ms"] for x in a)
        bc, ac = min(x["cpu_ms"] for x in b), min(x["cpu_ms"] for x in a)
        lines.append(f"| {label} | {a[0]['n']} | {bm:.3f} ({bmin:.3f}) | {am:.3f} ({amin:.3f}) | "
                     f"{am / bm:.2f} | {bc:.3f} / {ac:.3f} | {ac / bc:.2f} |")  # fmt: skip
    if args.no_fit:  # a quick re-check of the log-density: printed, results file left alone
        print("\n".join(lines))
        return
    lines += [
        "",
        "(median: the best of the rounds' medians, over the calls of each round; CPU: process "
        "time per call, all threads, the best of the rounds.)",
        "",
        "| `bayesifu fit MAPS --ext STELLAR_VEL --model disk` | wall [s] | CPU [s] | "
        "min bulk ESS | gradients (draws) | min ESS per 1000 gradients | min ESS / CPU s | "
        "divergences | converged |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in trees:
        for f in fits[name]:
            lines.append(f"| {name} | {f['wall_s']:.1f} | {f['cpu_s']:.1f} | {f['min_ess']:.0f} | "
                         f"{f['grads']} | {f['ess_per_kgrad']:.1f} | {f['ess_per_cpu_s']:.1f} | "
                         f"{f['divergences']} | {f['exit_ok']} |")  # fmt: skip
    lines += [
        "",
        "The per-call times are tenths of a millisecond and move by tens of percent with the "
        "machine's load (compare the rounds); the gradient counts and ESS are deterministic "
        "(same seeds), so ESS per 1000 gradients is the load-free figure of merit, and ESS per "
        "CPU second folds in the cost of a gradient. The fit's gain comes from the disk's "
        "v_proj = vmax sin i parametrisation (same prior, same posterior, a straighter geometry "
        "for NUTS), not from the likelihood interface, which evaluates the same factor.",
    ]
    text = "\n".join(lines) + "\n"
    out = ROOT / "benchmarks/results/refactor.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
