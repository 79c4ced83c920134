"""The summary of a survey: one row per cube with its status, reason, time and headline numbers,
written to ``OUTPUT/summary.fits`` whole or not at all.

Columns: ``cube`` (the folder name), ``path``, ``status`` (``done``, ``skipped``: finished by an
earlier run, or ``failed``), ``reason`` (the one-line error of a failed cube; ``task lost: ...``
for a task that died with its worker), ``seconds``, ``n_warnings``, then the headline numbers of
the steps that ran: ``format`` (info), ``corr_source``, ``corr_sigma`` (correlation), ``n_bins``,
``median_sn`` (bin), ``median_z``, ``n_z_good``, ``n_z`` (redshift), ``fit_converged`` and
``fit_<parameter>`` posterior medians (fit). A number a cube does not have is NaN (-1 for counts,
"" for text).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._files import write_atomic

__all__ = ["summary_table", "write_summary", "SUMMARY_FILE"]

SUMMARY_FILE = "summary.fits"
_FIRST = ["cube", "path", "status", "reason", "seconds", "n_warnings"]
#: Characters of a reason kept in the table (the whole one is in the cube's FAILED file).
REASON_CHARS = 240


def _column(values):
    """A column from values of one key (None where a cube lacks it)."""
    present = [v for v in values if v is not None]
    if not present:
        return np.full(len(values), np.nan)
    if all(isinstance(v, bool | np.bool_) for v in present):
        return np.array([bool(v) if v is not None else False for v in values])
    if all(isinstance(v, int | np.integer) for v in present):
        return np.array([int(v) if v is not None else -1 for v in values], dtype=np.int64)
    if all(isinstance(v, int | float | np.number) for v in present):
        return np.array([float(v) if v is not None else np.nan for v in values])
    return np.array(["" if v is None else str(v) for v in values])


def _short(text) -> str:
    text = str(text)
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


def summary_table(records, order=None, digest=""):
    """The records of the cubes as an :class:`astropy.table.Table` (in ``order``: stem -> rank)."""
    from astropy.table import Table

    order = order or {}
    records = sorted(records, key=lambda r: (order.get(r["cube"], len(order)), r["cube"]))
    keys = list(_FIRST)
    for r in records:
        keys += [k for k in r if k not in keys]
    table = Table()
    for key in keys:
        table[key] = _column([r.get(key) for r in records])
    if len(table):
        table["reason"] = [_short(r) for r in table["reason"]]
    table.meta["DIGEST"] = digest[:16]
    table.meta["NCUBES"] = len(records)
    table.meta["NFAILED"] = sum(r["status"] == "failed" for r in records)
    return table


def write_summary(table, output) -> Path:
    """Write ``table`` to ``output/summary.fits`` whole or not at all; returns the path."""
    return write_atomic(
        Path(output) / SUMMARY_FILE, lambda tmp: table.write(tmp, format="fits", overwrite=True)
    )
