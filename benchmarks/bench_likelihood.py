"""Benchmark: the full-covariance map likelihood (value + gradient) against a dense baseline.

Side by side in one run:

1. MaNGA scale (74 x 74 grid, a disk of about 3,500 spaxels, Gaussian correlation sigma 1.92
   spaxels with the positive-definite kernel taper): ``bayesifu.MapLikelihood`` (banded factor,
   LAPACK and pure-JAX scan solvers) against
   ``numpyro.distributions.MultivariateNormal(scale_tril=dense Cholesky factor)`` on the same
   covariance and data, both jitted with the factor closed over as a constant. The floor is the
   bytes of factor read per evaluation over 16 GB/s (value: one pass, value + gradient: two).
2. Scaling with N from 1e3 to 1e5 spaxels (MUSE-like: disk footprints on square grids, Gaussian
   sigma 0.8 spaxels): set-up time (correlation + factorisation), peak resident memory and value +
   gradient time, each size in a fresh process.

Usage: ``uv run python benchmarks/bench_likelihood.py [--max-side 358] [--reps 30]``. Writes
``benchmarks/results/likelihood.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]

RESULTS = Path(__file__).parent / "results" / "likelihood.md"
BANDWIDTH_GBS = 16.0


def _setup_jax():
    import jax
    import numpyro

    numpyro.enable_x64()
    return jax


def disk_map(side, seed=0, radius=None):
    """A Map on a ``side x side`` grid with a disk footprint (default: the inscribed circle)."""
    import bayesifu as bi

    yy, xx = np.indices((side, side))
    c = (side - 1) / 2
    radius = side / 2 - 0.55 if radius is None else radius
    good = np.hypot(yy - c, xx - c) < radius
    rng = np.random.default_rng(seed)
    variance = rng.uniform(0.5, 2.0, (side, side))
    data = rng.normal(size=(side, side)) * np.sqrt(variance)
    return bi.Map(data, variance, mask=~good, name=f"disk{side}")


def time_call(fn, *args, reps=30):
    """Median and minimum wall time [ms] of ``fn(*args)`` after warm-up calls."""
    return time_interleaved({"f": lambda: fn(*args)}, reps, burst=1)["f"]


def time_interleaved(fns, rounds, burst=10, warmup=5):
    """Median and minimum wall time [ms] of each zero-argument callable in ``fns``.

    In each of ``rounds`` rounds every callable runs ``burst`` times in a row (as a sampler calls
    a likelihood), each call timed and blocked on (``jax.block_until_ready``); taking the
    callables in turn within each round exposes them alike to changes of the machine's load.
    """
    import jax

    for fn in fns.values():
        for _ in range(warmup):
            jax.block_until_ready(fn())
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(burst):
                t0 = time.perf_counter()
                jax.block_until_ready(fn())
                times[name].append(time.perf_counter() - t0)
    return {k: (1e3 * float(np.median(v)), 1e3 * float(np.min(v))) for k, v in times.items()}


def manga_section(reps):
    """Ours (LAPACK, scan) vs numpyro MultivariateNormal with a dense Cholesky factor.

    All value and value + gradient functions are timed round robin in one loop. The profile
    times the two host band passes alone (numpy, no JAX) in the same loop, so that the JAX
    overhead of ours is the difference.
    """
    jax = _setup_jax()
    import jax.numpy as jnp
    import numpyro.distributions as dist

    import bayesifu as bi
    from bayesifu.likelihood.factors import _HostBandSolver

    m = disk_map(74, radius=33.4)  # about 3,500 spaxels, a 127-fibre MaNGA bundle
    corr = bi.SpatialCorrelation.gaussian(m.shape, sigma=1.92, taper="kernel")
    rows, fns, liks = [], {}, {}
    for solver in ("lapack", "scan"):
        t0 = time.perf_counter()
        lik = bi.MapLikelihood(m, corr, method="banded", solver=solver)
        setup = time.perf_counter() - t0
        liks[solver] = lik
        what = f"bayesifu MapLikelihood ({lik.method}, {solver})"
        model = jnp.zeros(lik.n)
        val, vg = jax.jit(lik.log_prob), jax.jit(jax.value_and_grad(lik.log_prob))
        fns[what, "val"] = lambda f=val, x=model: f(x)
        fns[what, "vg"] = lambda f=vg, x=model: f(x)
        rows.append(
            {
                "what": what,
                "setup_s": setup,
                "bytes": lik.factor.factor_bytes,
                "logp": float(val(model)),
            }
        )
    lik = liks["lapack"]
    r = corr.submatrix(m.good).toarray()
    if lik.nugget:
        r = (1 - lik.nugget) * r + lik.nugget * np.eye(lik.n)
    cov = lik.sigma[:, None] * r * lik.sigma[None]
    t0 = time.perf_counter()
    chol = jnp.asarray(np.linalg.cholesky(cov))
    setup = time.perf_counter() - t0
    y = jnp.asarray(lik.data)

    def baseline(model):
        return dist.MultivariateNormal(model, scale_tril=chol).log_prob(y)

    what = "numpyro MultivariateNormal(scale_tril=dense Cholesky)"
    model = jnp.zeros(lik.n)
    bval, bvg = jax.jit(baseline), jax.jit(jax.value_and_grad(baseline))
    fns[what, "val"] = lambda: bval(model)
    fns[what, "vg"] = lambda: bvg(model)
    rows.append(
        {"what": what, "setup_s": setup, "bytes": lik.n * lik.n * 8, "logp": float(bval(model))}
    )
    host = _HostBandSolver(lik.factor._cb, lik.factor.perm)
    z = np.asarray(lik.data)
    fns["passes", "vg"] = lambda: host(z, "R", 1)
    fns["passes", "val"] = lambda: host(z, "N", 1)
    timed = time_interleaved(fns, reps, burst=10)
    for row in rows:
        row["val"], row["vg"] = timed[row["what"], "val"], timed[row["what"], "vg"]
    profile = {"passes_vg": timed["passes", "vg"], "passes_val": timed["passes", "val"]}
    return lik, rows, profile


def peak_rss_gb():
    """Peak resident memory of this process [GB] (VmHWM; reset by exec, unlike ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def scaling_worker(side, reps):
    """One size, in its own process: print a JSON line with set-up, memory and timing."""
    jax = _setup_jax()
    import jax.numpy as jnp

    import bayesifu as bi

    m = disk_map(side)
    jax.block_until_ready(jnp.zeros(4) + 1.0)  # JAX start-up is not set-up
    rss0 = peak_rss_gb()
    t0 = time.perf_counter()
    corr = bi.SpatialCorrelation.gaussian(m.shape, sigma=0.8, taper="kernel")
    t1 = time.perf_counter()
    lik = bi.MapLikelihood(m, corr, method="banded")
    setup = time.perf_counter() - t0
    rss1 = peak_rss_gb()
    vg = jax.jit(jax.value_and_grad(lik.log_prob))
    med, best = time_call(vg, jnp.zeros(lik.n), reps=reps)
    rss2 = peak_rss_gb()
    out = {
        "side": side,
        "n": lik.n,
        "method": lik.method,
        "bandwidth": lik.settings.get("bandwidth"),
        "setup_s": setup,
        "corr_s": t1 - t0,
        "rss_before_gb": rss0,
        "rss_setup_gb": rss1,
        "rss_peak_gb": rss2,
        "vg_ms": med,
        "vg_min_ms": best,
        "bytes": lik.factor.factor_bytes,
    }
    print(json.dumps(out))


def run_scaling(sides, reps):
    rows = []
    for side in sides:
        cmd = [sys.executable, __file__, "--worker", str(side), "--reps", str(reps)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"  side {side}: {rows[-1]}", flush=True)
    return rows


def floor_ms(nbytes, passes):
    return 1e3 * passes * nbytes / (BANDWIDTH_GBS * 1e9)


def report(lik, manga_rows, scaling_rows, profile, rounds=30, burst=10):
    base = manga_rows[-1]
    lines = [
        "## Likelihood: value + gradient (bench_likelihood.py)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        "no GPU available for this task (CPU only). 1-minute load average when the run ended: "
        f"{os.getloadavg()[0]:.1f} (other processes slow both sides: compare ratios).",
        "",
        f"### MaNGA scale: 74 x 74 grid, {lik.n} spaxels in a disk, Gaussian sigma 1.92 "
        f"(kernel taper), method {lik.method}, bandwidth {lik.settings.get('bandwidth')}, "
        f"nugget {lik.nugget:.3g}",
        "",
        "| implementation | set-up [s] | value [ms] median (min) | value+grad [ms] median (min) "
        "| factor [MB] | floor value+grad [ms] | speed-up vs baseline, median (min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in manga_rows:
        lines.append(
            f"| {row['what']} | {row['setup_s']:.2f} | {row['val'][0]:.2f} ({row['val'][1]:.2f}) "
            f"| {row['vg'][0]:.2f} ({row['vg'][1]:.2f}) | {row['bytes'] / 1e6:.1f} "
            f"| {floor_ms(row['bytes'], 2):.2f} | {base['vg'][0] / row['vg'][0]:.1f}x "
            f"({base['vg'][1] / row['vg'][1]:.1f}x) |"
        )
    diff = abs(manga_rows[0]["logp"] - base["logp"])
    ours = manga_rows[0]
    pv, pg = profile["passes_val"], profile["passes_vg"]
    lines += [
        "",
        f"log_prob agreement ours vs baseline: |difference| = {diff:.2e}. Floor = bytes of "
        f"factor read / {BANDWIDTH_GBS:g} GB/s (value + gradient reads the factor twice). "
        f"Timing: {rounds} rounds; in each, every entry runs {burst} times in a row (as in a "
        "sampler), entries in turn, after warm-up, blocked on the result; median and minimum "
        "over all calls; speed-ups are ratios of medians (of minima).",
        "",
        "Where the time of ours (lapack) goes: the host band passes alone (BLAS dtbsv on the "
        f"band, numpy, no JAX) take {pg[0]:.2f} ms median ({pg[1]:.2f} min) for the two passes "
        f"of value + gradient and {pv[0]:.2f} ({pv[1]:.2f}) for the one pass of a value; the "
        f"rest, {ours['vg'][0] - pg[0]:.2f} ms median ({ours['vg'][1] - pg[1]:.2f} min), is "
        "the JAX dispatch, the host callback and the element-wise work. The passes stream the "
        f"factor at {2 * ours['bytes'] / pg[1] / 1e6:.1f} GB/s (best repeat).",
        "",
        "### Scaling with N (Gaussian sigma 0.8 spaxels, kernel taper, disk footprints)",
        "",
        "| grid | N | method | bandwidth | set-up [s] (of which correlation) "
        "| peak RSS [GB] (before set-up) | value+grad [ms] median (min) | factor [MB] "
        "| floor [ms] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in scaling_rows:
        lines.append(
            f"| {r['side']}x{r['side']} | {r['n']} | {r['method']} | {r['bandwidth']} "
            f"| {r['setup_s']:.1f} ({r['corr_s']:.1f}) "
            f"| {r['rss_peak_gb']:.2f} ({r['rss_before_gb']:.2f}) "
            f"| {r['vg_ms']:.1f} ({r['vg_min_ms']:.1f}) | {r['bytes'] / 1e6:.0f} "
            f"| {floor_ms(r['bytes'], 2):.1f} |"
        )
    if len(scaling_rows) > 1:
        n = np.array([r["n"] for r in scaling_rows], float)
        for key, label in (("setup_s", "set-up"), ("vg_ms", "value+grad"), ("bytes", "factor")):
            v = np.array([r[key] for r in scaling_rows], float)
            slope = np.polyfit(np.log(n), np.log(v), 1)[0]
            lines.append(f"\n{label} grows as N^{slope:.2f} over this range.")
    lines.append(
        "\nBanded factor: memory 8 N (b + 1) bytes and set-up O(N b^2) with the bandwidth b "
        "about 2 x (grid side) for sigma 0.8 (rlim 2.7): on a square grid b ~ sqrt(N), so "
        "memory ~ N^1.5 and set-up ~ N^2; each evaluation reads the factor twice."
    )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30, help="rounds (MaNGA: x10 calls)")
    parser.add_argument("--max-side", type=int, default=358)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        scaling_worker(args.worker, args.reps)
        return 0
    print("MaNGA scale ...", flush=True)
    lik, manga_rows, profile = manga_section(args.reps)
    sides = [s for s in (36, 80, 160, 300, 358) if s <= args.max_side]
    print("scaling ...", flush=True)
    scaling_rows = run_scaling(sides, max(10, args.reps))
    text = report(lik, manga_rows, scaling_rows, profile, rounds=args.reps)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
