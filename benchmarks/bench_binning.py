"""Benchmark: Voronoi binning to a target S/N, bayesifu vs vorbin, side by side in one run.

Maps: an exponential disc (peak 1000, scale length n/8 spaxels) with noise variance signal + 25,
on n x n grids; target S/N 20. vorbin (Cappellari & Copin 2003) runs on the 150 x 150 grid only
(it grows faster than N log N; about 13 s there on a quiet 2-core machine). bayesifu also runs with
the exact covariance of the Gaussian MaNGA correlation (sigma 1.92, rlim 6.4 spaxels).

Run: ``uv run python benchmarks/bench_binning.py [--no-vorbin]``; writes
``benchmarks/results/binning.md``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

import bayesifu as bi

__all__ = ["galaxy", "main"]

TARGET = 20.0


def galaxy(n: int, seed: int = 0) -> bi.Map:
    """An exponential disc on an ``n x n`` grid with Poisson-like noise."""
    y, x = np.indices((n, n), dtype=float)
    signal = 1000.0 * np.exp(-np.hypot(x - n / 2, y - n / 2) / (n / 8))
    var = signal + 25.0
    data = signal + np.random.default_rng(seed).normal(0.0, np.sqrt(var))
    return bi.Map(data, var, name=f"disc {n}x{n}")


def _time(fn, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _ours(m, correlation=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bi.binning.BinningWarning)
        return bi.voronoi_bins(m, TARGET, correlation=correlation)


def _vorbin(m):
    from vorbin.voronoi_2d_binning import voronoi_2d_binning

    y, x = np.indices(m.shape, dtype=float)
    out = voronoi_2d_binning(
        x.ravel(),
        y.ravel(),
        m.data.ravel(),
        np.sqrt(m.variance.ravel()),
        TARGET,
        plot=False,
        quiet=True,
        pixelsize=1.0,
    )
    return out[5], out[6]  # S/N and pixels per bin


def _scatter(sn, npix):
    multi = npix > 1
    return np.std(sn[multi]) / TARGET


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-vorbin", action="store_true", help="skip the vorbin baseline")
    args = parser.parse_args(argv)
    rows = []
    m150 = galaxy(150)
    t_ours, b = _time(lambda: _ours(m150), repeat=2)
    rows.append(
        ("150x150", "bayesifu (independent)", t_ours, b.n_bins, _scatter(b.sn, b.n_spaxels))
    )
    if not args.no_vorbin:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_vb, (sn, npix) = _time(lambda: _vorbin(m150))
        rows.append(("150x150", "vorbin 3.x", t_vb, sn.size, _scatter(sn, npix)))
    corr150 = bi.SpatialCorrelation.gaussian(m150.shape, sigma=1.92, rlim=6.4)
    t, b = _time(lambda: _ours(m150, corr150))
    rows.append(
        ("150x150", "bayesifu (exact covariance)", t, b.n_bins, _scatter(b.sn, b.n_spaxels))
    )
    m300 = galaxy(300)
    t300, b = _time(lambda: _ours(m300))
    rows.append(("300x300", "bayesifu (independent)", t300, b.n_bins, _scatter(b.sn, b.n_spaxels)))
    corr300 = bi.SpatialCorrelation.gaussian(m300.shape, sigma=1.92, rlim=6.4)
    t, b = _time(lambda: _ours(m300, corr300))
    rows.append(
        ("300x300", "bayesifu (exact covariance)", t, b.n_bins, _scatter(b.sn, b.n_spaxels))
    )

    lines = [
        "## Voronoi binning (benchmarks/bench_binning.py)",
        "",
        f"Exponential disc, target S/N {TARGET:g}; wall time of one call "
        "(best of 2 for the first).",
        "S/N scatter: standard deviation of the S/N of multi-spaxel bins over the target.",
        "",
        "| grid | code | time [s] | bins | S/N scatter |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {g} | {c} | {t:.2f} | {n} | {s:.3f} |" for g, c, t, n, s in rows]
    if not args.no_vorbin:
        lines += ["", f"Speed-up over vorbin on 150x150: **{t_vb / t_ours:.1f}x**."]
    text = "\n".join(lines) + "\n"
    out = Path(__file__).parent / "results" / "binning.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
