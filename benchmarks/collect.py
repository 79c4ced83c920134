"""Assemble BENCHMARKS.md from the sections the benchmark scripts write to benchmarks/results/.

Run every benchmark first (each writes ``benchmarks/results/<topic>.md``), then::

    uv run python benchmarks/collect.py
"""

import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = [
    ("correlation.md", "uv run python benchmarks/bench_correlation.py"),
    ("likelihood.md", "uv run python benchmarks/bench_likelihood.py"),
    ("calibration.md", "uv run python benchmarks/calibration_report.py"),
    ("binning.md", "uv run python benchmarks/bench_binning.py"),
    ("match.md", "uv run python benchmarks/bench_match.py"),
    ("survey.md", "uv run python benchmarks/bench_survey.py --n-cubes 16"),
    ("survey_manga.md", "uv run python benchmarks/bench_survey.py --manga --n-cubes 8"),
    ("field.md", "uv run python benchmarks/bench_field.py"),
    (
        "sedfit.md",
        "uv run python benchmarks/bench_sedfit.py --bin-side 22 --templates "
        "spDR2-023.fit --warmup 300 --draws 1000 --emcee-warmup 50 --emcee-steps 80",
    ),
    ("sampling.md", "uv run python benchmarks/bench_sampling.py"),
    ("real_disk_fit.md", "uv run python benchmarks/real_disk_fit.py"),
    ("fit_cli.md", "uv run python benchmarks/bench_fit_cli.py"),
    (
        "refactor.md",
        "git worktree add /tmp/before 3f9190c && (cd /tmp/before && uv sync) && "
        "uv run python benchmarks/bench_refactor.py --before /tmp/before",
    ),
    ("redshift.md", "uv run python benchmarks/bench_redshift.py"),
    ("redshift_flags.md", "uv run python benchmarks/redshift_flags.py"),
    ("redshift_gof.md", "uv run python benchmarks/redshift_gof.py"),
    (
        "redshift_abell478_cube.md",
        "uv run python benchmarks/bench_redshift.py --cube CUBE --templates "
        "TEMPLATES/spDR2-02[3-7].fit --out benchmarks/results/redshift_abell478_cube.md",
    ),
    ("abell478/abell478.md", "uv run python benchmarks/abell478_redshift.py --cube CUBE --disk"),
]


def main():
    parts = [
        "# Benchmarks",
        "",
        "Speed, memory and calibration of bayesifu against named baselines, each measured side by "
        "side in one run by the script named under its section. Machine: "
        f"{platform.machine()}, 2 CPU cores, Python {platform.python_version()}; no GPU was "
        "available for these runs. Ratios are the figures of merit; absolute times depend on load.",
        "",
    ]
    for name, command in ORDER:
        path = ROOT / "benchmarks" / "results" / name
        if not path.exists():
            parts += [f"## {name[:-3]}", "", f"Not run yet: `{command}`.", ""]
            continue
        parts += [path.read_text().rstrip(), "", f"Reproduce: `{command}`", ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(parts))
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
