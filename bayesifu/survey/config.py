"""The survey configuration: a TOML file read with :mod:`tomllib`, checked before any work.

Example (``survey.toml``)::

    inputs = ["cubes/*.fits.gz", "extra/manga-7815-3702-SNRG.fits.gz"]  # paths or globs
    output = "survey-out"                 # one folder per cube, plus summary.fits
    steps = ["info", "bin", "redshift"]   # any of info, correlation, bin, redshift, fit

    [cluster]                             # optional
    n_workers = 2                         # LocalCluster workers (one thread each)
    scheduler = "tcp://10.0.0.1:8786"     # an existing Dask scheduler instead

    [bin]                                 # the options of `bayesifu bin`, '-' written '_'
    target_sn = 10
    wave_range = [6500.0, 6700.0]

    [redshift]                            # the options of `bayesifu redshift`
    templates = ["templates/spDR2-023.fit", "templates/spDR2-024.fit"]
    zmin = 0.05
    zmax = 0.12

Each step section holds the long options of its command (``bayesifu bin --help``...) with ``_``
for ``-``: a number or string for an option with a value, a list for one that takes several (or
is repeatable), ``true`` for a flag. The pipeline sets the input file, ``--out``,
``--overwrite`` and ``--no-progress`` itself. The ``[correlation]`` step takes ``correlation``
(as ``--correlation``: ``auto``, ``none``, ``gaussian``, ``measured`` or a file),
``correlation_ext``, ``sigma``, ``rlim``, ``ext`` and ``channel``. Relative paths (inputs, output,
and the file options ``templates``, ``z_grid`` and a ``correlation`` file) are relative to the
configuration file's folder.

Every problem raises :class:`ConfigError` naming the key (``[bin] target_sn: ...``).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

__all__ = ["ConfigError", "SurveyConfig", "load_config", "STEPS", "cube_stem"]

#: The steps in the order they run; a configuration picks any of them.
STEPS = ("info", "correlation", "bin", "redshift", "fit")
#: Steps that are ``bayesifu`` commands, run through their parser and ``run`` function.
COMMAND_STEPS = ("bin", "redshift", "fit")
#: Options the pipeline sets itself (per command).
RESERVED = {"out", "overwrite", "no_progress", "progress", "help"}
RESERVED_BY_STEP = {"redshift": {"bins"}}
#: Options of the ``[correlation]`` step and their types.
CORRELATION_OPTIONS = {
    "correlation": str,
    "correlation_ext": str,
    "sigma": float,
    "rlim": float,
    "ext": str,
    "channel": str,
}
#: File-valued options whose relative paths are taken from the configuration's folder.
PATH_OPTIONS = {"templates", "z_grid"}
_TOP_KEYS = {"inputs", "output", "steps", "cluster", *STEPS}
_CLUSTER_KEYS = {"n_workers": int, "scheduler": str}


class ConfigError(InputError):
    """A survey configuration that cannot be used; the message names the key."""


class _RaisingParser(argparse.ArgumentParser):
    """An argument parser whose errors raise :class:`ConfigError` instead of exiting."""

    def error(self, message):
        raise ConfigError(message)


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """The sub-parsers of the command steps (no JAX is imported)."""
    import importlib

    root = _RaisingParser(prog="bayesifu")
    sub = root.add_subparsers(dest="command")
    before = set(sub.choices)
    for name in COMMAND_STEPS:
        importlib.import_module(f"bayesifu.cli.{name}").register(sub)
    return {name: sub.choices[name] for name in sub.choices if name not in before}


def _long_options(parser) -> dict[str, argparse.Action]:
    """``key -> action`` for every long option of ``parser`` (``--target-sn`` -> ``target_sn``)."""
    keys = {}
    for action in parser._actions:
        for opt in action.option_strings:
            if opt.startswith("--"):
                keys[opt[2:].replace("-", "_")] = action
    return keys


def _option_argv(step: str, key: str, value, action: argparse.Action) -> list[str]:
    """The command-line words of option ``key = value`` of ``step``."""
    flag = next(o for o in action.option_strings if o.startswith("--"))
    if action.nargs == 0:  # a flag
        if not isinstance(value, bool):
            raise ConfigError(f"[{step}] {key}: a flag; give true or false, got {value!r}")
        return [flag] if value else []
    if isinstance(value, bool | dict):
        raise ConfigError(f"[{step}] {key}: needs a value, got {value!r}")
    if isinstance(value, list):
        if isinstance(action, argparse._AppendAction):
            return [w for v in value for w in (flag, str(v))]
        if action.nargs is None:
            raise ConfigError(f"[{step}] {key}: takes one value, got the list {value!r}")
        return [flag, *(str(v) for v in value)]
    return [flag, str(value)]


def _translate(message: str, step: str, keys: dict) -> str:
    """An argparse message with ``--target-sn`` written as the key ``target_sn``."""
    for key, action in keys.items():
        for opt in action.option_strings:
            message = message.replace(f"argument {opt}/", "argument ")
            message = message.replace(f"{opt}", key) if opt.startswith("--") else message
    return f"[{step}] {message}"


def _resolve(value, base: Path):
    if isinstance(value, list):
        return [_resolve(v, base) for v in value]
    p = Path(str(value)).expanduser()
    return str(p if p.is_absolute() else base / p)


def _check_command_options(step: str, options: dict, base: Path, parser) -> list[str]:
    """The command-line words of a command step's section, checked by its parser."""
    keys = _long_options(parser)
    words = []
    for key, value in options.items():
        if key in RESERVED or key in RESERVED_BY_STEP.get(step, ()):
            raise ConfigError(f"[{step}] {key}: set by the survey pipeline; remove it")
        if key not in keys:
            known = ", ".join(sorted(k for k in keys if k not in RESERVED))
            raise ConfigError(f"[{step}] {key}: unknown option; known: {known}")
        if key in PATH_OPTIONS:
            value = _resolve(value, base)
        words += _option_argv(step, key, value, keys[key])
    try:  # the command's own parser checks types and required options
        parser.parse_args(["INPUT", *words, "--out", "OUT"])
    except ConfigError as err:
        raise ConfigError(_translate(str(err), step, keys)) from None
    return words


def _check_correlation_options(options: dict, base: Path) -> dict:
    out = {}
    for key, value in options.items():
        kind = CORRELATION_OPTIONS.get(key)
        if kind is None:
            known = ", ".join(CORRELATION_OPTIONS)
            raise ConfigError(f"[correlation] {key}: unknown option; known: {known}")
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if kind is float and not (ok and value > 0):
            raise ConfigError(f"[correlation] {key}: needs a number > 0, got {value!r}")
        if kind is str and not isinstance(value, str | int):
            raise ConfigError(f"[correlation] {key}: needs a string, got {value!r}")
        out[key] = value
    value = out.get("correlation", "auto")
    if str(value).lower() not in ("auto", "none", "gaussian", "measured"):
        out["correlation"] = _resolve(value, base)
    return out


def _expand_inputs(inputs, base: Path) -> list[Path]:
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise ConfigError(f"inputs: a path, a glob or a list of them, got {inputs!r}")
    paths = []
    for pattern in inputs:
        full = _resolve(pattern, base)
        found = sorted(glob.glob(full)) if glob.has_magic(full) else [full]
        if not found:
            raise ConfigError(f"inputs: {pattern!r} matches no file")
        paths += [Path(p) for p in found if Path(p) not in paths]
    stems: dict[str, Path] = {}
    for p in paths:
        other = stems.setdefault(cube_stem(p), p)
        if other != p:
            raise ConfigError(
                f"inputs: {other} and {p} have the same name {cube_stem(p)!r}; their outputs "
                "would share a folder"
            )
    return paths


def cube_stem(path) -> str:
    """The output folder name of a cube: its file name without ``.fits``/``.fit``(``.gz``)."""
    name = Path(path).name
    for suffix in (".gz", ".bz2", ".fz"):
        name = name.removesuffix(suffix)
    for suffix in (".fits", ".fit", ".fts"):
        name = name.removesuffix(suffix)
    return name or Path(path).name


def _check_steps(steps) -> tuple[str, ...]:
    if isinstance(steps, str):
        steps = [steps]
    if not isinstance(steps, list) or not steps:
        raise ConfigError(f"steps: a list of steps out of {', '.join(STEPS)}, got {steps!r}")
    for s in steps:
        if s not in STEPS:
            raise ConfigError(f"steps: unknown step {s!r}; choose from {', '.join(STEPS)}")
    return tuple(s for s in STEPS if s in steps)


def _check_cluster(cluster) -> dict:
    if not isinstance(cluster, dict):
        raise ConfigError(f"cluster: a table ([cluster]), got {cluster!r}")
    for key, value in cluster.items():
        kind = _CLUSTER_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"[cluster] {key}: unknown key; known: {', '.join(_CLUSTER_KEYS)}")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ConfigError(f"[cluster] {key}: needs a {kind.__name__}, got {value!r}")
        if key == "n_workers" and value < 1:
            raise ConfigError(f"[cluster] n_workers: must be >= 1, got {value}")
    return dict(cluster)


def _check_sections(data: dict, steps: tuple, base: Path) -> dict:
    """The checked options of every chosen step (see :attr:`SurveyConfig.options`)."""
    options = {}
    parsers = command_parsers() if any(s in COMMAND_STEPS for s in steps) else {}
    for step in STEPS:
        section = data.get(step, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{step}: a table ([{step}]), got {section!r}")
        if step not in steps:
            if section:
                raise ConfigError(f"[{step}]: options given but {step!r} is not in steps")
        elif step == "correlation":
            options[step] = _check_correlation_options(section, base)
        elif step in COMMAND_STEPS:
            options[step] = _check_command_options(step, section, base, parsers[step])
        elif section:
            raise ConfigError(f"[{step}] {next(iter(section))}: the step takes no option")
        else:
            options[step] = []
    return options


@dataclass(frozen=True)
class SurveyConfig:
    """A checked survey configuration (see the module docstring for the file).

    Attributes
    ----------
    inputs : tuple of pathlib.Path
        The cubes (and maps), globs expanded, in order.
    output : pathlib.Path
        The output folder.
    steps : tuple of str
        The chosen steps, in pipeline order.
    options : dict
        Per step: for a command step the command-line words of its options (checked by the
        command's parser); for ``correlation`` a dict of its options.
    cluster : dict
        ``n_workers`` and/or ``scheduler``.
    """

    inputs: tuple
    output: Path
    steps: tuple
    options: dict = field(default_factory=dict)
    cluster: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict, base=".") -> SurveyConfig:
        """Check a parsed configuration; relative paths are taken from folder ``base``."""
        base = Path(base)
        if not isinstance(data, dict):
            raise ConfigError("the configuration must be a TOML table")
        for key in data:
            if key not in _TOP_KEYS:
                raise ConfigError(f"{key}: unknown key; known: {', '.join(sorted(_TOP_KEYS))}")
        for key in ("inputs", "output", "steps"):
            if key not in data:
                raise ConfigError(f"{key}: missing (required)")
        if not isinstance(data["output"], str) or not data["output"]:
            raise ConfigError(f"output: a folder name, got {data['output']!r}")
        steps = _check_steps(data["steps"])
        options = _check_sections(data, steps, base)
        return cls(
            inputs=tuple(_expand_inputs(data["inputs"], base)),
            output=Path(_resolve(data["output"], base)),
            steps=steps,
            options=options,
            cluster=_check_cluster(data.get("cluster", {})),
        )

    def digest(self) -> str:
        """A hash of what decides a cube's results (steps and options, not inputs or cluster):
        a finished cube whose ``DONE`` records another digest is redone."""
        text = json.dumps({"steps": self.steps, "options": self.options}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def load_config(path) -> SurveyConfig:
    """Read and check the TOML configuration ``path`` (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"CONFIG {str(path)!r}: no such file")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"CONFIG {path}: not valid TOML: {err}") from None
    return SurveyConfig.from_dict(data, base=path.parent)
