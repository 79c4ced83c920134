"""One cube through the chosen steps, in this process, writing into a given folder.

The command steps (``bin``, ``redshift``, ``fit``) run the commands themselves: the options of
the configuration are parsed by the command's own parser and its ``run`` function is called, so
a survey gives the same files as ``bayesifu bin ...`` by hand. ``info`` writes the description of
``bayesifu info`` to ``info.txt``; ``correlation`` writes the chosen correlation to
``correlation.fits`` (extension ``CORREL``), which the later steps then use unless their section
names a ``correlation`` of its own; ``redshift`` after ``bin`` on a cube uses its bins.

Files of a cube's folder: ``info.txt``, ``correlation.fits``, ``bins.fits`` (+ ``bins.png``),
``redshift.fits`` (+ PNGs), ``posterior.nc`` (+ PNGs) as chosen, and ``log.txt`` with what the
commands printed and every warning.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cli.correlation import CUBE_KINDS
from ..errors import BayesifuError
from .config import SurveyConfig

__all__ = ["run_pipeline", "PipelineError", "one_line", "OUTPUTS"]

#: Output file of each step in a cube's folder.
OUTPUTS = {
    "info": "info.txt",
    "correlation": "correlation.fits",
    "bin": "bins.fits",
    "redshift": "redshift.fits",
    "fit": "posterior.nc",
}


class PipelineError(BayesifuError):
    """A step of the pipeline failed; the message names the step."""


@dataclass
class _Context:
    path: Path
    folder: Path
    config: SurveyConfig
    log: object
    kind: str = ""
    files: dict = field(default_factory=dict)


def _kind(path) -> str:
    from ..cli.checks import check_fits_file

    return check_fits_file(path, "input")


def _step_info(ctx: _Context) -> dict:
    from ..cli.info import describe

    lines = describe(ctx.path)
    (ctx.folder / OUTPUTS["info"]).write_text("\n".join(lines) + "\n")
    return {"format": ctx.kind}


def _shape(ctx: _Context, opts: dict):
    """The grid of the input and the cube (None for a map)."""
    import bayesifu as bi

    if ctx.kind in CUBE_KINDS:
        cube = bi.read_cube(ctx.path)
        return cube.spatial_shape, cube
    return bi.read_map(ctx.path, opts.get("ext"), opts.get("channel")).shape, None


def _step_correlation(ctx: _Context) -> dict:
    from ..cli.correlation import check_correlation_option, resolve_correlation

    opts = ctx.config.options["correlation"]
    value, ext = opts.get("correlation", "auto"), opts.get("correlation_ext", "CORREL")
    check_correlation_option(value, ext, ctx.kind, "input")
    shape, cube = _shape(ctx, opts)
    kw = {k: float(opts[k]) for k in ("sigma", "rlim") if k in opts}
    corr, source, desc = resolve_correlation(
        value, ext, shape, file=ctx.path, cube=cube, command="bayesifu survey", **kw
    )
    print(f"correlation: {desc}", file=ctx.log)
    if corr is None:  # independent spaxels: the later steps are told so
        ctx.files["correlation"] = "none"
        return {"corr_source": source, "corr_sigma": np.nan}
    out = ctx.folder / OUTPUTS["correlation"]
    corr.write(out, ext="CORREL")
    ctx.files["correlation"] = str(out)
    return {"corr_source": source, "corr_sigma": float(corr.params.get("sigma", np.nan))}


def _command_argv(ctx: _Context, step: str, extra=()) -> list[str]:
    words = list(ctx.config.options[step])
    if "correlation" in ctx.files and "--correlation" not in words:
        words += ["--correlation", ctx.files["correlation"], "--correlation-ext", "CORREL"]
    out = str(ctx.folder / OUTPUTS[step])
    return [step, str(ctx.path), *words, *extra, "--out", out, "--no-progress"]


def _run_command(ctx: _Context, argv: list[str]) -> int:
    """Parse ``argv`` with the command's parser and call its ``run``; returns its status.
    ``--overwrite`` is added where the command has it (the folder is new, but a command may
    refuse a file that an earlier step of the pipeline wrote)."""
    from .config import command_parsers

    parser = command_parsers()[argv[0]]
    if "--overwrite" in parser._option_string_actions:
        argv = [*argv, "--overwrite"]
    args = parser.parse_args(argv[1:])
    args.command = argv[0]
    args.cmdline = ["bayesifu", *argv]
    return int(args.func(args) or 0)


def _step_bin(ctx: _Context) -> dict:
    from astropy.io import fits

    _run_command(ctx, _command_argv(ctx, "bin"))
    out = ctx.folder / OUTPUTS["bin"]
    ctx.files["bins"] = str(out)
    with fits.open(out) as hdul:
        sn = np.asarray(hdul["BINS"].data["SN"], dtype=float)
        return {"n_bins": int(hdul[0].header["NBINS"]), "median_sn": float(np.median(sn))}


def _step_redshift(ctx: _Context) -> dict:
    from astropy.io import fits

    extra = []
    if "bins" in ctx.files and ctx.kind in CUBE_KINDS:
        extra = ["--bins", ctx.files["bins"]]
    words = ctx.config.options["redshift"]
    if "--workers" not in words and "-j" not in words:
        extra += ["--workers", "1"]  # one cube per worker: no threads of its own
    _run_command(ctx, _command_argv(ctx, "redshift", extra))
    with fits.open(ctx.folder / OUTPUTS["redshift"]) as hdul:
        z = np.asarray(hdul["Z_MAP"].data, dtype=float)
        good = (np.asarray(hdul["FLAGS"].data) == 0) & np.isfinite(z)
    median = float(np.median(z[good])) if good.any() else np.nan
    return {"median_z": median, "n_z_good": int(good.sum()), "n_z": int(np.isfinite(z).sum())}


def _step_fit(ctx: _Context) -> dict:
    from .. import _arviz
    from ..cli.fit import EXIT_NOT_CONVERGED

    rc = _run_command(ctx, _command_argv(ctx, "fit"))
    if rc not in (0, EXIT_NOT_CONVERGED):
        raise PipelineError(f"fit: exit status {rc}")
    idata = _arviz.from_netcdf(ctx.folder / OUTPUTS["fit"])
    posterior = _arviz.group(idata, "posterior")
    headline = {"fit_converged": rc == 0}
    for name in posterior.data_vars:
        values = np.asarray(posterior[name])
        if values.ndim == 2:  # (chain, draw): a scalar parameter
            headline[f"fit_{name}"] = float(np.median(values))
    return headline


_STEPS = {
    "info": _step_info,
    "correlation": _step_correlation,
    "bin": _step_bin,
    "redshift": _step_redshift,
    "fit": _step_fit,
}


def _log_warnings(caught, log) -> int:
    for w in caught:
        print(f"warning: {w.category.__name__}: {w.message}", file=log)
    return len(caught)


def run_pipeline(path, config: SurveyConfig, folder) -> dict:
    """Run the steps of ``config`` on the file ``path``, writing into the existing ``folder``.

    Returns the headline numbers of the steps (``format``, ``corr_source``, ``n_bins``,
    ``median_sn``, ``median_z``, ``fit_<parameter>`` ...) and ``n_warnings``. Raises the first
    error of a step, its message prefixed with the step's name.
    """
    folder = Path(folder)
    with open(folder / "log.txt", "w") as log:
        ctx = _Context(Path(path), folder, config, log)
        headline = {"n_warnings": 0}
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            ctx.kind = _prefixed("input", _kind, ctx.path)
            for step in config.steps:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    result = _prefixed(step, _STEPS[step], ctx)
                headline["n_warnings"] += _log_warnings(caught, log)
                headline.update(result)
        sys.stdout.flush()
    return headline


def one_line(err: BaseException) -> str:
    """The one-line reason of an error: its message (first line) for a bayesifu error, else the
    exception's type and message."""
    text = str(err).strip().splitlines()
    text = text[0] if text else ""
    if isinstance(err, BayesifuError) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _prefixed(step, func, *args):
    """``func(*args)``, any error re-raised as a :class:`PipelineError` naming the step."""
    try:
        return func(*args)
    except SystemExit as err:  # a command's parser or run exiting
        raise PipelineError(f"{step}: exited with status {err.code}") from err
    except Exception as err:
        raise PipelineError(f"{step}: {one_line(err)}") from err
