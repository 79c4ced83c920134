"""Provenance of the files the command line writes: the bayesifu version, the date, the command
line, the options and every input file, each written whole.

FITS keyword values are at most 68 characters; long values (a 300-character path, a long command
line) go into ``HISTORY`` cards, split over as many cards as they need and never cut, and
:func:`read_provenance` joins them back. netCDF outputs get the same entries as attributes
(:func:`provenance_attrs`).
"""

from __future__ import annotations

import datetime
import shlex
import sys
from pathlib import Path

__all__ = ["add_provenance", "provenance_attrs", "read_provenance"]

#: Characters of a value per HISTORY card (a HISTORY card holds 72 characters, the prefix included).
_CHUNK = 60
_PREFIX = "bayesifu "


def _entries(command, options=None, inputs=(), argv=None) -> list[tuple[str, str]]:
    from .. import __version__

    argv = sys.argv if argv is None else argv
    line = " ".join(shlex.quote(str(a)) for a in ["bayesifu", *list(argv)[1:]])
    entries = [
        ("version", __version__),
        ("date", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")),
        ("command", str(command)),
        ("cmdline", line),
    ]
    for key, value in (options or {}).items():
        entries.append((f"option {key}", str(value)))
    for path in inputs:
        entries.append(("input", str(Path(path).resolve())))
    return entries


def provenance_attrs(command, options=None, inputs=(), argv=None) -> dict:
    """Provenance as a flat dict for netCDF attributes (``bayesifu_version``, ``bayesifu_date``,
    ``bayesifu_command``, ``bayesifu_cmdline``, ``bayesifu_option_<name>``,
    ``bayesifu_input_<i>``)."""
    attrs = {}
    n_inputs = 0
    for key, value in _entries(command, options, inputs, argv):
        if key == "input":
            key = f"input_{n_inputs}"
            n_inputs += 1
        attrs["bayesifu_" + key.replace(" ", "_").replace("-", "_")] = value
    return attrs


def add_provenance(header, command, options=None, inputs=(), argv=None):
    """Record provenance in a FITS ``header`` (in place; also returned).

    Short keys: ``BIFUVER`` (version), ``BIFUDATE`` (UTC date), ``BIFUCMD`` (command). Then one
    ``HISTORY`` record per entry -- ``cmdline``, each option of ``options`` and each path of
    ``inputs`` (absolute) -- written whole over as many cards as it needs: the first card starts
    ``bayesifu <name>: ``, continuation cards start ``bayesifu +``.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The header to add to (usually the primary one).
    command : str
        The sub-command, e.g. ``"bin"``.
    options : dict, optional
        Option names and values as parsed.
    inputs : sequence of path-like
        The input files.
    argv : sequence of str, optional
        The command line (default :data:`sys.argv`).
    """
    entries = _entries(command, options, inputs, argv)
    values = dict(entries[:3])
    header["BIFUVER"] = (values["version"], "bayesifu version")
    header["BIFUDATE"] = (values["date"], "UTC date written by bayesifu")
    header["BIFUCMD"] = (values["command"][:60], "bayesifu command")
    for key, value in entries[3:]:
        pieces = _split(f"{key}: {value}")
        header.add_history(_PREFIX + pieces[0])
        for piece in pieces[1:]:
            header.add_history(_PREFIX + "+" + piece)
    return header


def _split(text: str) -> list[str]:
    """``text`` in pieces of at most ``_CHUNK`` characters, none ending in a space (FITS drops
    trailing blanks of a card); non-ASCII characters escaped (``\\xe9``), as FITS needs."""
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    pieces = []
    while len(text) > _CHUNK:
        cut = _CHUNK
        while cut > 1 and text[cut - 1] == " ":
            cut -= 1
        pieces.append(text[:cut])
        text = text[cut:]
    pieces.append(text)
    return pieces


def read_provenance(header) -> list[tuple[str, str]]:
    """The ``(name, value)`` records :func:`add_provenance` wrote to ``header``, whole, after
    ``("version", ...)``, ``("date", ...)`` and ``("command", ...)``."""
    records = [
        ("version", header.get("BIFUVER", "")),
        ("date", header.get("BIFUDATE", "")),
        ("command", header.get("BIFUCMD", "")),
    ]
    texts: list[str] = []
    for card in header.get("HISTORY", []):
        card = str(card)
        if card.startswith(_PREFIX + "+") and texts:
            texts[-1] += card[len(_PREFIX) + 1 :]
        elif card.startswith(_PREFIX):
            texts.append(card[len(_PREFIX) :])
    for text in texts:
        key, _, value = text.partition(": ")
        records.append((key, value))
    return records
