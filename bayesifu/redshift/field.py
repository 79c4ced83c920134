"""The redshifts of a whole field spread over Dask workers, in tiles of rows.

A MUSE field (300 x 300 spaxels x 3681 channels, 1.3 GB per extension) is one file; on one
machine :func:`~bayesifu.redshift.redshift_posterior` already uses every core (threads over
chunks of spaxels). On a cluster (``dask-jobqueue`` on SLURM, say) :func:`redshift_field` sends
tiles of rows to the workers instead: each worker opens the file itself (memory mapped, once per
worker process), fits its tile and returns only the tile's summary (about 20 numbers per spaxel,
not the p(z) of every spaxel), so neither the cube nor the posteriors travel over the network.
The summary equals the single-process one (each spectrum's fit does not depend on its
neighbours): flags exactly, numbers to round-off, since the small batched solves group the
spectra differently (tested on a LocalCluster of 2 workers).
"""

from __future__ import annotations

import os
from dataclasses import fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..containers import Cube
from ..errors import InputError
from .summary import RedshiftSummary

__all__ = ["redshift_field", "ROWS_PER_TASK"]

#: Rows of spaxels per task by default (300 x 20 spectra: a few seconds to a minute each).
ROWS_PER_TASK = 20


@lru_cache(maxsize=2)
def _open(path: str, stamp: tuple):
    """The cube of ``path`` in this process, opened once per file version (``stamp``)."""
    from ..io import read_cube

    return read_cube(path)


def _stamp(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns)


def _rows_of(path: str) -> int:
    """Rows of spaxels of the cube in ``path`` (runs on a worker, which keeps the cube open)."""
    return int(_open(path, _stamp(path)).spatial_shape[0])


def _tile(path: str, rows: tuple, templates, z_grid, options: dict) -> RedshiftSummary:
    """The summary of rows ``rows = (y0, y1)`` of the cube in ``path`` (runs on a worker)."""
    from .batch import redshift_posterior

    cube = _open(path, _stamp(path))
    sl = slice(*rows)
    tile = Cube(
        cube.flux[:, sl],
        cube.variance[:, sl],
        cube.wave,
        mask=None if cube.mask is None else cube.mask[:, sl],
        wave_medium=cube.wave_medium,
        unit=cube.unit,
        name=f"{cube.name}[rows {rows[0]}:{rows[1]}]",
    )
    return redshift_posterior(tile, templates, z_grid, **options).summary()


def _stacked(parts: list[RedshiftSummary]) -> RedshiftSummary:
    """The tiles' summaries as one, rows in order."""
    return RedshiftSummary(
        **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(parts[0])}
    )


def redshift_field(
    path, templates, z_grid, *, client, rows_per_task: int = ROWS_PER_TASK, **options
) -> RedshiftSummary:
    """Summaries of the redshift posterior of every spaxel of the cube in ``path``, by tiles.

    Parameters
    ----------
    path : str or Path
        The cube file (any format :func:`bayesifu.read_cube` reads; every worker must see it at
        this path, as on a cluster's shared file system).
    templates : Templates
        Rest-frame templates, as for :func:`~bayesifu.redshift.redshift_posterior`.
    z_grid : array_like
        Redshifts or a range, as for :func:`~bayesifu.redshift.redshift_posterior`.
    client : distributed.Client
        The Dask client whose workers fit the tiles (e.g. on a ``LocalCluster``, or a
        ``dask_jobqueue.SLURMCluster``).
    rows_per_task : int
        Rows of spaxels per task.
    **options
        Keyword options of :func:`~bayesifu.redshift.redshift_posterior` (``npoly``,
        ``dispersions``, ``range_check``, ...). ``workers`` defaults to 1 (one thread per
        task: Dask's worker threads run the tasks side by side).

    Returns
    -------
    RedshiftSummary
        Shaped ``(ny, nx)``, as ``redshift_posterior(cube, ...).summary()``.
    """
    path = str(Path(path))
    if not Path(path).is_file():
        raise InputError(f"redshift_field: {path}: no such file")
    if rows_per_task < 1:
        raise InputError(f"rows_per_task must be >= 1, got {rows_per_task}")
    for name in ("data", "wave", "ivar", "variance", "mask", "medium"):
        if name in options:
            raise InputError(f"redshift_field: the cube comes from {path}; {name}= is not used")
    options.setdefault("workers", 1)
    options["progress"] = False
    # The shape is read by a worker: opening the cube here would read (and check) the whole
    # file on the client, which fits nothing.
    ny = client.submit(_rows_of, path, pure=False).result()
    tiles = [(y0, min(y0 + rows_per_task, ny)) for y0 in range(0, ny, rows_per_task)]
    futures = [
        client.submit(_tile, path, rows, templates, z_grid, options, pure=False) for rows in tiles
    ]
    return _stacked(client.gather(futures))
