"""Benchmark: a whole MUSE field, 300 x 300 spaxels x 3681 channels, end to end.

The field is synthetic, written as a MUSE ``DATA``/``STAT`` file (uncompressed float32, 1.3 GB per
extension, the size of a real MUSE WFM field): the MUSE wavelengths (4749.76-9349.76 A in air,
1.25 A), the MUSE Abell 478 cube's WCS (0.2 arcsec spaxels) and unit; the spectrum of every spaxel
is the SDSS DR2 early-type template spDR2-023 (shipped) at z = 0.0859 (the BCG of Abell 478) plus
a rotation of 200 km/s amplitude, scaled by an exponential disc (scale length 40 spaxels, peak
S/N 3 per channel, about 180 over the 3681 channels), plus Gaussian white noise of standard
deviation 1 (``STAT`` = 1). White noise: the covariance between spaxels is then zero, which the
measured correlation should find.

Pipeline, as a user types it, each step in its own process:

1. ``bayesifu bin FIELD --target-sn 20 --out bins.fits`` (Voronoi on the collapsed cube, the S/N
   with the correlation measured from the cube's noise: the defaults);
2. ``bayesifu redshift FIELD --templates spDR2-023..027 --zmin 0.05 --zmax 0.12 --out z.fits``
   (every one of the 90000 spaxels, the default three dispersions and local refinement);
3. ``bayesifu redshift FIELD --bins bins.fits ...`` (the binned spectra, with their covariance).

Measured per step: wall and CPU time, and peak memory, as the process's peak resident set
(``ru_maxrss``, which counts the pages of the memory-mapped file it has touched: the kernel can
drop those at any time) and, sampled every 0.1 s from ``/proc``, the peak of its anonymous
memory (``RssAnon``: what it allocated, the figure a memory limit has to hold). Target (issue
14): redshift grid + Voronoi binning of the field in at most 10 minutes on 2 cores, at most 4 GB.
The redshift maps are compared with the true redshift (median |dz|, fraction of unflagged spaxels
more than 0.002 off).

Run: ``uv run python benchmarks/bench_field.py [--size 300] [--workdir DIR] [--keep]``; writes
``benchmarks/results/field.md`` (at the full size only). Needs about 5.3 GB of disk for the field.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bayesifu" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "field.md"
NWAVE, WAVE0, DWAVE = 3681, 4749.76, 1.25
Z0, VROT, SCALE, PEAK_SN = 0.0859, 200.0, 40.0, 3.0
C_KMS = 299792.458
TEMPLATES = [str(DATA / "sdss-templates" / f"spDR2-02{k}.fit") for k in range(3, 8)]


def truth(n):
    """The field's amplitude and redshift maps, ``(n, n)`` each."""
    y, x = np.mgrid[0:n, 0:n] - (n - 1) / 2
    r = np.hypot(x, y)
    amp = PEAK_SN * np.exp(-r / SCALE)
    v = VROT * np.tanh(r / 10.0) * np.divide(x, r, out=np.zeros_like(r), where=r > 0)
    return amp, (1 + Z0) * (1 + v / C_KMS) - 1


def write_field(path, n, seed=0):
    """Write the synthetic field to ``path`` channel block by channel block (bounded memory)."""
    from astropy.io import fits

    from bayesifu.templates import air_to_vacuum, read_templates

    tpl = read_templates(TEMPLATES[0])
    t_wave, t_flux = tpl.wave, np.asarray(tpl.flux)[0]
    t_flux = t_flux / np.median(t_flux[(t_wave > 4500) & (t_wave < 8000)])
    wave = WAVE0 + DWAVE * np.arange(NWAVE)
    wave_vac = air_to_vacuum(wave)
    amp, z = truth(n)
    amp, scale = amp.ravel(), 1 / (1 + z.ravel())
    with fits.open(DATA / "muse-abell478-cutout.fits.gz") as ref:
        primary = ref[0].header.copy()
        head = ref["DATA"].header.copy()
    head["NAXIS1"] = head["NAXIS2"] = n
    head["NAXIS3"] = NWAVE
    head["CRPIX1"] = head["CRPIX2"] = (n + 1) / 2
    head["CRVAL3"] = WAVE0
    primary["OBJECT"] = "synthetic field (bench_field.py)"
    fits.HDUList([fits.PrimaryHDU(header=primary)]).writeto(path, overwrite=True)
    rng = np.random.default_rng(seed)
    for name in ("DATA", "STAT"):
        h = head.copy()
        h["EXTNAME"] = name
        out = fits.StreamingHDU(str(path), h)
        for k0 in range(0, NWAVE, 128):
            w = wave_vac[k0 : k0 + 128]
            if name == "STAT":
                block = np.ones((w.size, n * n), np.float32)
            else:
                rest = w[:, None] * scale[None, :]
                block = amp * np.interp(rest, t_wave, t_flux) + rng.standard_normal(rest.shape)
            out.write(block.astype(">f4").reshape(w.size, n, n))
        out.close()
    return z


def run_step(label, argv, log):
    """Run ``argv``; wall and CPU time, ru_maxrss and the sampled peak RssAnon (bytes)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    peak = {"anon": 0}

    def sample():
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("RssAnon:"):
                        peak["anon"] = max(peak["anon"], int(line.split()[1]) * 1024)
            except (OSError, ValueError):
                pass
            time.sleep(0.1)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{label}: exit {proc.returncode} (see {log.name})")
    cpu = usage.ru_utime + usage.ru_stime
    return {"step": label, "wall": wall, "cpu": cpu, "maxrss": usage.ru_maxrss * 1024,
            "anon": peak["anon"]}  # fmt: skip


def redshift_quality(path, z_true):
    """Median |dz| and the fraction of unflagged spaxels more than 0.002 from the truth."""
    from astropy.io import fits

    with fits.open(path) as h:
        zmap = np.asarray(h["Z_MAP"].data, float)
        flags = np.asarray(h["FLAGS"].data)
    good = flags == 0
    dz = np.abs(zmap - z_true)
    return float(np.nanmedian(dz[good])), float(np.mean(dz[good] > 0.002)), int(good.sum())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=300, help="spaxels per side (default 300)")
    ap.add_argument("--workdir", help="folder for the field and outputs (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the field and outputs")
    args = ap.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bayesifu-field-"))
    work.mkdir(parents=True, exist_ok=True)
    field = work / "field.fits"
    t0 = time.perf_counter()
    z_true = write_field(field, args.size)
    t_write = time.perf_counter() - t0
    print(f"wrote {field} ({field.stat().st_size / 1e9:.2f} GB) in {t_write:.0f} s")
    exe = [sys.executable, "-m", "bayesifu"]
    zopts = ["--templates", *TEMPLATES, "--zmin", "0.05", "--zmax", "0.12", "--no-progress"]
    steps = [
        ("bin (Voronoi, S/N 20, measured correlation)",
         [*exe, "bin", str(field), "--target-sn", "20", "--out", str(work / "bins.fits"),
          "--no-progress", "--overwrite"]),
        ("redshift, every spaxel",
         [*exe, "redshift", str(field), *zopts, "--out", str(work / "z.fits"), "--overwrite"]),
        ("redshift of the bins",
         [*exe, "redshift", str(field), *zopts, "--bins", str(work / "bins.fits"),
          "--out", str(work / "zbins.fits"), "--overwrite"]),
    ]  # fmt: skip
    rows = []
    with open(work / "log.txt", "w") as log:
        for label, cmd in steps:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            rows.append(run_step(label, cmd, log))
            r = rows[-1]
            print(f"{label}: {r['wall']:.0f} s, RssAnon peak {r['anon'] / 1e9:.2f} GB, "
                  f"ru_maxrss {r['maxrss'] / 1e9:.2f} GB")  # fmt: skip
    print((work / "log.txt").read_text()[-3000:])
    med, wrong, n_good = redshift_quality(work / "z.fits", z_true)
    lines = report(args.size, field, t_write, rows, (med, wrong, n_good))
    print("\n".join(lines))
    if args.size == 300:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text("\n".join(lines) + "\n")
        print(f"wrote {RESULTS}")
    if not args.keep:
        shutil.rmtree(work)


def report(n, field, t_write, rows, quality):
    med, wrong, n_good = quality
    load = os.getloadavg()[0]
    lines = [
        f"## A whole MUSE field: {n} x {n} x {NWAVE}, end to end (bench_field.py)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load:.1f} at the end. Synthetic field "
        f"(see the script): {field.stat().st_size / 1e9:.2f} GB uncompressed float32 DATA + "
        f"STAT, written in {t_write:.0f} s; each step in its own process, the file memory "
        "mapped.",
        "",
        "| step | wall [s] | CPU [s] | peak anonymous memory [GB] | peak RSS incl. mapped file "
        "pages [GB] |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['step']} | {r['wall']:.0f} | {r['cpu']:.0f} | "
                     f"{r['anon'] / 1e9:.2f} | {r['maxrss'] / 1e9:.2f} |")  # fmt: skip
    core = rows[0]["wall"] + rows[1]["wall"]
    lines += [
        "",
        f"Voronoi binning + the redshift grid of every spaxel: {core:.0f} s "
        f"({core / 60:.1f} min; target 10 min), peak anonymous memory "
        f"{max(r['anon'] for r in rows[:2]) / 1e9:.2f} GB (target 4 GB).",
        f"Redshifts of the {n_good} unflagged spaxels: median |z - z_true| {med:.2g}, "
        f"{100 * wrong:.2f}% more than 0.002 off.",
    ]
    return lines


if __name__ == "__main__":
    main()
