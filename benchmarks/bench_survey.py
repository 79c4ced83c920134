"""Benchmark: survey throughput [cubes per hour], one process against Dask with 2 workers.

Set-up: N copies (``--n-cubes``, default 8) of the shipped MUSE Abell 478 cut-out (30 x 30
spaxels x 560 channels, the real cube) under different names, through the pipeline
info -> correlation (measured from the noise) -> bin (Voronoi, target S/N 30 on the collapsed
cube) -> redshift (SDSS DR2 templates 23-27 + emission lines, z 0.07-0.10, dispersion 0, on the
bins): the steps of a MaNGA-sized survey on a small cube.

Baseline: ``run_survey(config, scheduler="serial")`` in a fresh Python process (the cubes one
after another, every library free to use both cores). Ours: ``run_survey(config)`` with a
``LocalCluster(n_workers=2, threads_per_worker=1)`` in a fresh process. Each wall time includes
the imports and, for Dask, the cluster's start and close: what a user waits for. Scaling
efficiency = (Dask throughput) / (2 x single-process throughput). Both runs must give the same
bins and redshift maps (checked bit for bit).

With ``--manga``, the cubes are MaNGA-sized instead: synthetic 42 x 42 spaxels x 4563
channels (MaNGA's LOGCUBE grid, 3621.6-10353.8 A in vacuum, 1e-4 dex), the SDSS template
spDR2-023 at z = 0.0294 (MaNGA 7815-3702's redshift) with rotation of 150 km/s, scaled by an
exponential disc (peak S/N 8 per channel), plus white noise of unit variance, written as
generic FITS (FLUX/IVAR/WAVE, float32); the redshift grid is 0.02-0.04 (the range check fits
0-1 as well).

Run: ``uv run python benchmarks/bench_survey.py [--n-cubes 8] [--manga]``; writes
``benchmarks/results/survey.md`` (``survey_manga.md`` with ``--manga``).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bayesifu" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "survey.md"
RESULTS_MANGA = ROOT / "benchmarks" / "results" / "survey_manga.md"

CONFIG = """\
inputs = ["cubes/*.fits*"]
output = "{output}"
steps = ["info", "correlation", "bin", "redshift"]
[correlation]
correlation = "measured"
[bin]
target_sn = 30
[redshift]
templates = [{templates}]
zmin = {zmin}
zmax = {zmax}
dispersions = [0]
emission_lines = true
"""

RUN = """\
import sys, time
from bayesifu.survey import run_survey
if __name__ == "__main__":
    t = time.perf_counter()
    table = run_survey(sys.argv[1], scheduler={scheduler!r}, progress=False)
    assert all(table["status"] == "done"), list(table["reason"])
    print(time.perf_counter() - t, float(sum(table["seconds"])))
"""


def _manga_cube(path: Path) -> None:
    """A synthetic MaNGA-sized cube (module docstring) as generic FITS."""
    from astropy.io import fits

    import bayesifu as bi

    tpl = bi.read_templates([DATA / "sdss-templates" / "spDR2-023.fit"])
    wave = 10 ** (np.log10(3621.6) + 1e-4 * np.arange(4563))
    n, z0, c = 42, 0.0294, 299792.458
    y, x = np.mgrid[0:n, 0:n] - (n - 1) / 2
    amp = 8.0 * np.exp(-np.hypot(x, y) / 8.0)
    z = (1 + z0) * (1 + 150.0 / c * np.tanh(x / 5.0)) - 1
    rest_t, flux_t = np.asarray(tpl.wave), np.asarray(tpl.flux[0])
    shape = flux_t / np.nanmedian(flux_t)
    cube = np.empty((wave.size, n, n), dtype=np.float32)
    rng = np.random.default_rng(7)
    for j in range(n):
        for i in range(n):
            spec = np.interp(wave / (1 + z[j, i]), rest_t, shape, left=np.nan, right=np.nan)
            cube[:, j, i] = amp[j, i] * np.nan_to_num(spec, nan=1.0)
    cube += rng.standard_normal(cube.shape).astype(np.float32)
    hdu = fits.ImageHDU(wave, name="WAVE")
    hdu.header["MEDIUM"] = "vacuum"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(cube, name="FLUX"),
         fits.ImageHDU(np.ones_like(cube), name="IVAR"), hdu]
    ).writeto(path)  # fmt: skip


def _setup(folder: Path, n: int, manga: bool) -> None:
    (folder / "cubes").mkdir()
    if manga:
        source, zrange = folder / "manga-sized.fits", (0.02, 0.04)
        _manga_cube(source)
    else:
        source, zrange = DATA / "muse-abell478-cutout.fits.gz", (0.07, 0.10)
    suffix = ".fits" if manga else ".fits.gz"
    for i in range(n):
        os.symlink(source, folder / "cubes" / f"c{i:03d}{suffix}")
    tpl = ", ".join(f'"{DATA / "sdss-templates" / f"spDR2-02{k}.fit"}"' for k in (3, 4, 5, 6, 7))
    for mode in ("serial", "dask"):
        text = CONFIG.format(output=f"out-{mode}", templates=tpl, zmin=zrange[0], zmax=zrange[1])
        (folder / f"{mode}.toml").write_text(text)


def _cpu() -> float:
    """CPU time [s] of the finished child processes (and theirs: the Dask workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(folder: Path, mode: str) -> tuple[float, float, float]:
    """Wall time [s] of a whole survey run in a fresh process, the sum of the cubes' own times
    [s] (the summary's ``seconds``: the pipeline alone, start-up left out) and the CPU time [s]
    of the run's processes."""
    script = folder / f"run_{mode}.py"
    script.write_text(RUN.format(scheduler="serial" if mode == "serial" else None))
    start, cpu = time.perf_counter(), _cpu()
    out = subprocess.run(
        [sys.executable, str(script), str(folder / f"{mode}.toml")],
        capture_output=True, text=True, cwd=folder, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
    return wall, float(out.stdout.split()[-1]), _cpu() - cpu


def _same(folder: Path, n: int) -> bool:
    from astropy.io import fits

    for i in range(n):
        for name, ext in (("bins.fits", "BINID"), ("redshift.fits", "Z_MAP")):
            a = fits.getdata(folder / "out-serial" / f"c{i:03d}" / name, ext)
            b = fits.getdata(folder / "out-dask" / f"c{i:03d}" / name, ext)
            if not np.array_equal(a, b, equal_nan=True):
                return False
    return True


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cubes", type=int, default=8)
    parser.add_argument("--manga", action="store_true", help="synthetic MaNGA-sized cubes")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _setup(folder, args.n_cubes, args.manga)
        serial, serial_cubes, serial_cpu = _time(folder, "serial")
        dask, dask_cubes, dask_cpu = _time(folder, "dask")
        same = _same(folder, args.n_cubes)
    load_after = os.getloadavg()[0]
    n = args.n_cubes
    rate_s, rate_d = n / serial * 3600, n / dask * 3600
    what = (
        "a synthetic MaNGA-sized cube (42 x 42 x 4563, see the script)"
        if args.manga
        else "the MUSE Abell 478 cut-out (30 x 30 x 560)"
    )
    zr = "0.02-0.04" if args.manga else "0.07-0.10"
    title = "MaNGA-sized cubes" if args.manga else "cut-outs"
    lines = [
        f"## Survey throughput, {title}: one process vs Dask with 2 workers (bench_survey.py)",
        "",
        f"{n} copies of {what}, pipeline info -> "
        "correlation (measured) -> bin (S/N 30) -> redshift (5 SDSS templates + emission "
        f"lines, z {zr}, on the bins). Wall times include imports and the cluster's start.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
        f"Python {platform.python_version()}, load average {load_before:.1f} before and "
        f"{load_after:.1f} after the run.",
        "",
        "| run | wall [s] | cubes per hour | mean time per cube in its process [s] | CPU time "
        "[s] | cores busy (CPU / wall) |",
        "|---|---|---|---|---|---|",
        f'| single process (`scheduler="serial"`) | {serial:.1f} | {rate_s:.0f} | '
        f"{serial_cubes / n:.1f} | {serial_cpu:.0f} | {serial_cpu / serial:.2f} |",
        f"| Dask LocalCluster, 2 workers x 1 thread | {dask:.1f} | {rate_d:.0f} | "
        f"{dask_cubes / n:.1f} | {dask_cpu:.0f} | {dask_cpu / dask:.2f} |",
        "",
        f"Speed-up {serial / dask:.2f}x; scaling efficiency {rate_d / (2 * rate_s):.2f} "
        f"(1 = perfect on 2 workers). Same bins and redshift maps, bit for bit: {same}.",
        "The time per cube includes each process's first-cube imports (JAX, matplotlib); the "
        "wall time adds Python's start and, for Dask, the cluster's start and close.",
        "",
    ]
    (RESULTS_MANGA if args.manga else RESULTS).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
