"""Checks of the ``bayesifu fit`` options that need no JAX: run before the sampler is imported.

Every message names the option (or the MAPS argument) it is about, so a bad call answers in about
the time it takes to import astropy and read the FITS headers.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FileFormatError, InputError
from ..io.detect import detect_format
from ..io.fitsio import channel_names, extension_names, find_hdu, open_fits
from .correlation import check_correlation_option

__all__ = ["check_fit_inputs", "parse_channel"]


def parse_channel(channel):
    """``--channel`` as given, or as an int when it is a plain index such as ``"3"``."""
    if channel is None:
        return None
    text = str(channel).strip()
    return int(text) if text.isdigit() else text


def _check_numbers(args) -> None:
    for label, least in (("chains", 1), ("draws", 4), ("warmup", 0), ("seed", 0)):
        value = getattr(args, label)
        if value < least:
            raise InputError(f"--{label} must be at least {least}, got {value}")
    if args.scatter is not None and not args.scatter > 0:
        raise InputError(
            f"--scatter must be a positive prior scale [data unit], got {args.scatter}"
        )
    if not 0 < args.target_accept < 1:
        raise InputError(f"--target-accept must lie between 0 and 1, got {args.target_accept}")


def _check_out(out: str) -> None:
    path = Path(out)
    if path.is_dir():
        raise InputError(f"--out {out!r} is a folder; give a file name, e.g. posterior.nc")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"--out {out!r}: folder {str(parent)!r} does not exist")


def _channel_problem(hdu, ext: str, channel) -> str | None:
    """Why ``channel`` cannot be read from extension ``ext`` (``hdu``), or None."""
    naxis = int(hdu.header.get("NAXIS", 0))
    if naxis == 2:
        if channel is None:
            return None
        return f"--channel {channel}: {ext} is a single map with no channels; drop --channel"
    if naxis != 3:
        return None  # read_map says what is wrong with the shape
    nchan = int(hdu.header.get("NAXIS3", 0))
    names = channel_names(hdu.header)
    listed = ", ".join(sorted(names, key=names.get)) or f"indices 0..{nchan - 1}"
    if channel is None:
        return f"--channel: {ext} has {nchan} channels; choose one of {listed}"
    if isinstance(channel, int):
        if 0 <= channel < nchan:
            return None
        return f"--channel {channel}: {ext} has {nchan} channels (indices 0..{nchan - 1})"
    if channel.lower() in {k.lower() for k, v in names.items() if v < nchan}:
        return None
    return f"--channel {channel}: {ext} has no such channel; choose one of {listed}"


def _check_maps(args) -> str:
    """Check MAPS, ``--ext`` and ``--channel``; returns the format of MAPS."""
    try:
        with open_fits(args.maps) as hdul:
            kind = detect_format(hdul)
            hdu = find_hdu(hdul, args.ext)
            if hdu is None:
                present = ", ".join(n for n in extension_names(hdul) if n) or "none"
                raise InputError(
                    f"--ext {args.ext}: {args.maps} has no such extension; extensions: {present}"
                )
            problem = _channel_problem(hdu, args.ext.upper(), parse_channel(args.channel))
    except FileFormatError as err:
        raise FileFormatError(f"MAPS: {err}") from err
    if problem:
        raise InputError(problem)
    return kind


def check_fit_inputs(args) -> None:
    """Raise a :class:`~bayesifu.errors.BayesifuError` naming the option if ``args`` is unusable.

    Checks the numbers (chains, draws, warmup, seed, scatter, target acceptance), the output
    path, that MAPS is a readable FITS file with extension ``--ext`` and, for a multi-channel
    extension, the channel ``--channel``, and ``--correlation`` with its extension
    (:func:`~bayesifu.cli.correlation.check_correlation_option`).
    """
    _check_numbers(args)
    _check_out(args.out)
    kind = _check_maps(args)
    check_correlation_option(args.correlation, args.correlation_ext, kind, "MAPS")
