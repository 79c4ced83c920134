"""Checks of command-line input that need no JAX, shared by the commands: each raises
:class:`~bayesifu.errors.InputError` (or :class:`~bayesifu.errors.FileFormatError`) with a
one-line message that names the option, so that a bad call answers in seconds."""

from __future__ import annotations

from pathlib import Path

from ..errors import FileFormatError, InputError

__all__ = ["check_fits_file", "check_positive", "check_out_file", "cli_options"]


def check_fits_file(path, label: str) -> str:
    """The format of the FITS file ``path`` (:func:`bayesifu.io.detect_format`); ``label`` names
    the argument in the message (``"FILE"``, ``"--correlation"``)."""
    from ..io import detect_format
    from ..io.fitsio import open_fits

    p = Path(path)
    if p.is_dir():
        raise InputError(f"{label} {str(path)!r} is a folder, not a FITS file")
    if not p.exists():
        raise InputError(f"{label} {str(path)!r}: no such file")
    try:
        with open_fits(p) as hdul:
            return detect_format(hdul)
    except FileFormatError as err:
        raise FileFormatError(f"{label}: {err}") from err


def check_positive(value, option: str, what: str = "") -> None:
    """``value`` must be a finite number > 0 (``option`` names it in the message)."""
    if not (value > 0 and value != float("inf")):
        extra = f" ({what})" if what else ""
        raise InputError(f"{option} must be > 0{extra}, got {value}")


def check_out_file(out, overwrite: bool, option: str = "--out") -> None:
    """``out`` names a file in an existing folder, and does not exist unless ``overwrite``."""
    path = Path(out)
    if path.is_dir():
        raise InputError(f"{option} {str(out)!r} is a folder; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{option} {str(out)!r}: folder {str(parent)!r} does not exist")
    if path.exists() and not overwrite:
        raise InputError(f"{option} {str(out)!r} exists; pass --overwrite to replace it")


def cli_options(args) -> dict:
    """The parsed options of a command, for provenance records (without the internals)."""
    return {k: v for k, v in vars(args).items() if k not in ("func", "command", "cmdline")}
