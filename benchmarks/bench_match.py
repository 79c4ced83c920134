"""Benchmark: matching 5 bands onto a 300 x 300 MUSE grid with the covariance propagated.

Set-up (synthetic; no imaging of the MUSE cut-out's field ships in any package): a 300 x 300 grid
of 0.2 arcsec spaxels (60 arcsec, MUSE WFM); five images of an exponential disc (scale length 8
arcsec) through the SDSS u, g, r, i, z curves (speclite) on 0.396 arcsec pixels, rotated by 5-40
degrees, covering 66 arcsec, Gaussian PSFs of FWHM 1.5-1.2 arcsec, independent Gaussian noise of
standard deviation 0.05 (in the image unit). Target PSF: Gaussian FWHM 1.6 arcsec.

Ours: :func:`bayesifu.imaging.match_images` (operators T = R K, matched images, variances and the
exact covariance factor T S of every band), the covariance of 3 x 3-spaxel bins of every band, and
the full covariance T C T^T of the slowest band (``--full all``: of every band, one at a time).
Baseline: a dense numpy T C T^T (T as a dense array, BLAS) on smaller grids of the same pixel
scales, timed and extrapolated to 300 x 300 by the fitted power law (the dense T alone would be
about 50 GB there); the sparse and dense results agree to round-off where both run.

Run: ``uv run python benchmarks/bench_match.py``; writes ``benchmarks/results/match.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

CENTER = (73.3625, 10.4653)  # Abell 478 BCG (RA, Dec) [deg]
SCALE = 0.2
BANDS = [  # SDSS-like: 0.396 arcsec pixels, PSF FWHM 1.2-1.5 arcsec (name, pixel, FWHM, rotation)
    ("sdss2010-u", 0.396, 1.5, 5.0),
    ("sdss2010-g", 0.396, 1.4, 12.0),
    ("sdss2010-r", 0.396, 1.3, 20.0),
    ("sdss2010-i", 0.396, 1.25, 30.0),
    ("sdss2010-z", 0.396, 1.2, 40.0),
]
TARGET_FWHM = 1.6


def images(n_target, seed=0):
    """The five synthetic images covering an ``n_target`` grid of 0.2 arcsec spaxels."""
    from bayesifu.imaging import Image, load_band, tan_wcs

    rng = np.random.default_rng(seed)
    side = n_target * SCALE * 1.1  # arcsec
    out = []
    for name, scale, fwhm, rot in BANDS:
        n = int(np.ceil(side / scale))
        wcs = tan_wcs(CENTER, scale, (n, n), rot)
        y, x = np.indices((n, n), dtype=float)
        r = np.hypot(x - n / 2, y - n / 2) * scale
        data = 10.0 * np.exp(-r / 8.0) * (scale / SCALE) ** 2 + rng.normal(0, 0.05, (n, n))
        out.append(Image(data, np.full((n, n), 0.05**2), wcs, load_band(name, fwhm), name=name))
    return out


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def ours(n_target, full="all"):
    """Match the five bands (operators, images, covariance factors); then the full covariance
    T C T^T of every band (``full="all"``) or of the band with the largest factor only
    (``"one"``: the slowest band), and the covariance of 3 x 3-spaxel bins of every band."""
    import bayesifu as bi
    from bayesifu.imaging import match_images, tan_wcs

    ims = images(n_target)
    grid = (tan_wcs(CENTER, SCALE, (n_target, n_target)), (n_target, n_target))
    rss0 = rss_mb()
    t0 = time.perf_counter()
    pc = match_images(ims, grid, TARGET_FWHM)
    t_match = time.perf_counter() - t0
    rss_match = rss_mb() - rss0
    y, x = np.indices((n_target, n_target))
    binning = bi.Binning((y // 3) * ((n_target + 2) // 3) + x // 3)
    t1 = time.perf_counter()
    for k in range(len(ims)):
        pc.binned_covariance(binning.operator(), k)
    t_binned = time.perf_counter() - t1
    nnz_cov = []
    t2 = time.perf_counter()
    largest = int(np.argmax([f.nnz for f in pc.factors]))
    which = range(len(ims)) if full == "all" else [largest]
    for k in which:
        cov = pc.covariance(k)
        nnz_cov.append((k, cov.nnz))
        del cov
    t_cov = time.perf_counter() - t2
    return {
        "t_match": t_match,
        "t_binned": t_binned,
        "t_cov": t_cov,
        "n_cov": len(nnz_cov),
        "rss_match": rss_match,
        "rss_growth": rss_mb() - rss0,
        "nnz_factor": [f.nnz for f in pc.factors],
        "nnz_cov": nnz_cov,
        "n_src": [im.data.size for im in ims],
        "pc": pc,
        "ims": ims,
    }


def dense(pc, ims):
    """Dense T C T^T of every band (T as dense arrays); returns the time and the max difference
    from the sparse covariance."""
    t0 = time.perf_counter()
    covs = []
    for op, im in zip(pc.operators, ims, strict=True):
        t = op.toarray()
        covs.append((t * np.where(im.mask, 0.0, im.variance).ravel()[None]) @ t.T)
    elapsed = time.perf_counter() - t0
    diff = max(
        float(np.abs(c - pc.covariance(k).toarray()).max() / np.abs(c).max())
        for k, c in enumerate(covs)
    )
    return elapsed, diff


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="target grid side (default 300)")
    parser.add_argument("--dense-sides", type=int, nargs="+", default=[30, 45, 60])
    parser.add_argument(
        "--full",
        choices=["all", "one"],
        default="one",
        help="materialise T C T^T of every band or of the first only (default: one)",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "match.md"))
    args = parser.parse_args(argv)

    import scipy

    load0 = os.getloadavg()[0]
    rows = []
    for side in args.dense_sides:
        res = ours(side)
        t_dense, diff = dense(res["pc"], res["ims"])
        t_ours = res["t_match"] + res["t_cov"]
        rows.append((side, t_ours, t_dense, diff))
        print(f"{side}x{side}: ours {t_ours:.3f} s, dense {t_dense:.3f} s, diff {diff:.1e}")
    sides = np.array([r[0] for r in rows], float)
    slope, icpt = np.polyfit(np.log(sides**2), np.log([r[2] for r in rows]), 1)
    t_dense_big = float(np.exp(icpt) * (args.n**2) ** slope)

    big = ours(args.n, args.full)
    n_out = args.n**2
    per_band = big["t_cov"] / big["n_cov"]
    t_cov5 = per_band * len(BANDS)
    print(
        f"{args.n}x{args.n}: match {big['t_match']:.1f} s, binned {big['t_binned']:.1f} s, "
        f"full covariance {per_band:.1f} s per band, RSS growth {big['rss_growth']:.0f} MB"
    )
    dense_gb = (n_out * max(big["n_src"]) + n_out**2) * 8 / 1e9
    nnz_of = dict(big["nnz_cov"])
    cov_gb = max(nnz_of.values()) * 12 / 1e9
    measured = (
        "measured"
        if big["n_cov"] == len(BANDS)
        else "the largest band measured, times 5: an upper bound"
    )
    lines = [
        "## Imaging: matching 5 bands onto a 300 x 300 MUSE grid (bench_match.py)",
        "",
        f"Machine: {platform.machine()}, 2 CPU cores shared with other jobs (load varies), Python "
        f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, load "
        f"average {load0:.1f} before and {os.getloadavg()[0]:.1f} after the run; "
        "single-threaded sparse algebra. Synthetic images (see the script's docstring): SDSS "
        "u g r i z curves (speclite), 0.396 arcsec pixels rotated 5-40 deg, PSF FWHM 1.2-1.5 "
        "arcsec, matched to FWHM 1.6 arcsec on 0.2 arcsec spaxels.",
        "",
        f"### {args.n} x {args.n} grid, {n_out} spaxels, 5 bands",
        "",
        "| step | time [s] |",
        "|---|---:|",
        "| match: operators R and K, matched images, variances and the exact covariance factors "
        f"F = T S (C' = F F^T) of all 5 bands | {big['t_match']:.1f} |",
        f"| covariance of 3 x 3-spaxel bins, B T C T^T B^T, all 5 bands | {big['t_binned']:.1f} |",
        f"| materialising the full T C T^T of a band (sparse, up to {max(nnz_of.values()):.3g} "
        f"nonzeros, {cov_gb:.2f} GB) | {per_band:.1f} per band; {t_cov5:.0f} for 5 ({measured}) |",
        f"| dense T C T^T baseline, 5 bands, extrapolated (N^{slope:.2f} fit below) | "
        f"{t_dense_big:.3g} (would need {dense_gb:.0f} GB) |",
        "",
        f"Target (<= 60 s, <= 4 GB on 2 cores): matching with the covariance propagated as its "
        f"exact factor, plus the binned covariances, takes {big['t_match'] + big['t_binned']:.1f} "
        f"s; peak RSS growth {big['rss_match']:.0f} MB after matching and "
        f"{big['rss_growth']:.0f} MB at the end (ru_maxrss, after building the images). "
        f"Speed-up vs the extrapolated dense baseline: "
        f"{t_dense_big / (big['t_match'] + t_cov5):.0f}x even with every full covariance "
        "materialised.",
        "",
        "| band | image pixels | nnz of factor F = T S | nnz of T C T^T | nnz per spaxel row |",
        "|---|---:|---:|---:|---:|",
    ]
    for k, ((name, *_), ns, nf) in enumerate(
        zip(BANDS, big["n_src"], big["nnz_factor"], strict=True)
    ):
        nc = nnz_of.get(k)
        cov_cells = f"{nc} | {nc / n_out:.0f}" if nc else "(not materialised) | "
        lines.append(f"| {name} | {ns} | {nf} | {cov_cells} |")
    lines += [
        "",
        "### Dense baseline on small grids (measured side by side)",
        "",
        "| grid | ours: match + all 5 full covariances [s] | dense T C T^T, 5 bands [s] | "
        "max rel. difference |",
        "|---|---:|---:|---:|",
    ]
    for side, t_ours, t_d, diff in rows:
        lines.append(f"| {side} x {side} | {t_ours:.3f} | {t_d:.3f} | {diff:.1e} |")
    lines += [
        "",
        f"The dense time grows as N^{slope:.2f} in the number of spaxels N over these grids; the "
        f"{args.n} x {args.n} figure above extrapolates that fit (not measured: the dense "
        "operator and covariance would not fit in memory). On grids this small the dense BLAS "
        "product is as fast as the sparse one; the sparse work grows as N.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
