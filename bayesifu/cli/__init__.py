"""The ``bayesifu`` command line: ``bayesifu <command> [options]``.

Each command lives in its own module of this package and provides ``register(subparsers)``, which
adds an ``argparse`` sub-parser whose ``func`` default runs the command with the parsed arguments
and returns an exit status. Any :class:`bayesifu.errors.BayesifuError` becomes a one-line message on
standard error and exit status 1.
"""

import argparse
import importlib
import os
import sys

__all__ = ["main", "COMMANDS"]

#: Modules of this package that define a command, in the order ``--help`` lists them.
COMMANDS = ["demo", "info", "fit", "bin", "redshift", "match", "sedfit", "survey"]


def _setup_jax():
    """Entry-point set-up that must happen before JAX's first operation: float64 and one XLA
    host device per default chain (4), even on 2 cores, since parallel chains beat vectorised
    ones there (benchmarks/results/sampling.md). Done through the environment when JAX is not
    imported yet, so that commands without a sampler do not import it."""
    if "jax" in sys.modules:
        import numpyro

        numpyro.set_host_device_count(max(4, os.cpu_count() or 1))
        numpyro.enable_x64()
        return
    flag = "--xla_force_host_platform_device_count"
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(flag)]
    flags.insert(0, f"{flag}={max(4, os.cpu_count() or 1)}")
    os.environ["XLA_FLAGS"] = " ".join(flags)
    os.environ["JAX_ENABLE_X64"] = "1"


def _setup_matplotlib():
    """The commands write figures to files: matplotlib's non-interactive Agg backend unless
    ``MPLBACKEND`` names another. Only here, at the entry point, and only before matplotlib is
    imported: the library never chooses a backend."""
    if "matplotlib" not in sys.modules:
        os.environ.setdefault("MPLBACKEND", "Agg")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line naming the option (exit status 2),
    with a pointer to ``--help`` instead of the whole usage text."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bayesifu",
        description="Bayesian inference on IFU data products with the full spatial covariance.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    from ..errors import BayesifuError

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.cmdline = ["bayesifu", *argv]  # the command line as given, for provenance records
    _setup_jax()
    _setup_matplotlib()
    try:
        return int(args.func(args) or 0)
    except BayesifuError as err:
        print(f"bayesifu {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bayesifu {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
