"""``bayesifu survey CONFIG``: run a pipeline of steps over many cubes on Dask.

Reads the TOML configuration (:mod:`bayesifu.survey.config`), runs one task per cube on a
``LocalCluster`` (or the scheduler of ``--scheduler``), skips the cubes finished by an earlier
run, records failures without stopping, and writes ``OUTPUT/summary.fits``.
"""

from __future__ import annotations

import sys

__all__ = ["register", "run", "EXIT_SOME_FAILED"]

#: Exit status when the survey ran but at least one cube failed (see the summary's reasons).
EXIT_SOME_FAILED = 4


def register(subparsers) -> None:
    """Add the ``survey`` sub-command."""
    p = subparsers.add_parser(
        "survey",
        help="run a pipeline (info, correlation, bin, redshift, fit) over many cubes on Dask",
        description="Run the steps of a TOML configuration over its list or glob of cubes, one "
        "Dask task per cube: resumable (finished cubes are skipped), a failing cube recorded "
        "with its reason, a summary table in OUTPUT/summary.fits.",
        epilog=f"exit status: 0 every cube finished; 1 bad configuration (one line naming the "
        f"key); {EXIT_SOME_FAILED} some cubes failed (reasons in the summary and their FAILED "
        "files).",
    )
    p.add_argument("config", metavar="CONFIG", help="TOML configuration file")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="address of a running Dask scheduler (e.g. tcp://10.0.0.1:8786 of a "
        "dask-jobqueue SLURMCluster), or 'serial' for this process without Dask (default: the "
        "configuration's [cluster] scheduler, else a LocalCluster)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="LocalCluster workers, one thread each (default: [cluster] n_workers, else 2)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the survey; returns 0, or :data:`EXIT_SOME_FAILED` if a cube failed."""
    from ..errors import InputError
    from ..survey import load_config, run_survey

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    config = load_config(args.config)
    table = run_survey(
        config, scheduler=args.scheduler, n_workers=args.workers, progress=not args.no_progress
    )
    counts = {s: int((table["status"] == s).sum()) for s in ("done", "skipped", "failed")}
    print(
        f"{len(table)} cubes: {counts['done']} done, {counts['skipped']} skipped (finished "
        f"earlier), {counts['failed']} failed; wrote {config.output / 'summary.fits'}"
    )
    for row in table[table["status"] == "failed"]:
        print(f"bayesifu survey: {row['cube']} failed: {row['reason']}", file=sys.stderr)
    return EXIT_SOME_FAILED if counts["failed"] else 0
