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

Run: ``uv run python benchmarks/bench_survey.py [--n-cubes 8]``; writes
``benchmarks/results/survey.md``.
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

CONFIG = """\
inputs = ["cubes/*.fits.gz"]
output = "{output}"
steps = ["info", "correlation", "bin", "redshift"]
[correlation]
correlation = "measured"
[bin]
target_sn = 30
[redshift]
templates = [{templates}]
zmin = 0.07
zmax = 0.10
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


def _setup(folder: Path, n: int) -> None:
    (folder / "cubes").mkdir()
    for i in range(n):
        os.symlink(DATA / "muse-abell478-cutout.fits.gz", folder / "cubes" / f"c{i:03d}.fits.gz")
    tpl = ", ".join(f'"{DATA / "sdss-templates" / f"spDR2-02{k}.fit"}"' for k in (3, 4, 5, 6, 7))
    for mode in ("serial", "dask"):
        text = CONFIG.format(output=f"out-{mode}", templates=tpl)
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
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _setup(folder, args.n_cubes)
        serial, serial_cubes, serial_cpu = _time(folder, "serial")
        dask, dask_cubes, dask_cpu = _time(folder, "dask")
        same = _same(folder, args.n_cubes)
    load_after = os.getloadavg()[0]
    n = args.n_cubes
    rate_s, rate_d = n / serial * 3600, n / dask * 3600
    lines = [
        "## Survey throughput: one process vs Dask with 2 workers (bench_survey.py)",
        "",
        f"{n} copies of the MUSE Abell 478 cut-out (30 x 30 x 560), pipeline info -> "
        "correlation (measured) -> bin (S/N 30) -> redshift (5 SDSS templates + emission "
        "lines, z 0.07-0.10, on the bins). Wall times include imports and the cluster's start.",
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
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
