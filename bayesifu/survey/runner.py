"""Run a survey: one task per cube on Dask (or in this process), resumable, failures recorded.

Each cube is written into ``OUTPUT/.<stem>.tmp-<random>/`` and the folder renamed to
``OUTPUT/<stem>/`` when the cube is finished (an older ``OUTPUT/<stem>/`` is replaced only then),
with a ``DONE`` file (JSON: the configuration's digest, the input file's size and modification
time, and the cube's record). A cube that fails is renamed there too, for its ``log.txt``, with a
``FAILED`` file instead. Started again, a survey skips the cubes whose ``DONE`` has the
configuration's digest and the input file as it is now, and redoes the rest (failed ones,
half-written temporary folders, cubes finished with other options, inputs replaced since).
``OUTPUT/summary.fits`` lists every cube (:mod:`bayesifu.survey.summary`); it is rewritten after
each cube.

The parent process imports no JAX: the work runs in the workers, each of which turns on float64
(``numpyro.enable_x64()``) before JAX runs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from .._files import write_atomic
from .config import SurveyConfig, cube_stem, load_config

__all__ = ["run_survey", "process_cube", "cube_status", "DEFAULT_WORKERS", "SERIAL"]

#: LocalCluster workers when neither the call nor the configuration says.
DEFAULT_WORKERS = 2
#: ``scheduler`` value that runs every cube in this process, one after the other (no Dask).
SERIAL = "serial"
DONE, FAILED = "DONE", "FAILED"


def _write_json(path: Path, record: dict) -> None:
    text = json.dumps(record, indent=1, sort_keys=True, default=str) + "\n"
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))


def input_stamp(path) -> dict:
    """Size and modification time of an input file: a cube replaced under the same name (new
    data, another reduction) is not the cube a finished folder was made from."""
    st = Path(path).stat()
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def cube_status(folder, digest: str, path=None) -> dict | None:
    """The record of a finished cube in ``folder`` whose ``DONE`` has ``digest`` (and, given
    ``path``, was made from that file as it is now: :func:`input_stamp`), else None."""
    done = Path(folder) / DONE
    if not done.is_file():
        return None
    try:
        saved = json.loads(done.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("digest") != digest:
        return None
    if path is not None and saved.get("input") != input_stamp(path):
        return None
    return saved.get("record")


def _clear(output: Path, stem: str) -> None:
    """Remove the temporary folders an interrupted run left of cube ``stem``."""
    for tmp in [*output.glob(f".{stem}.tmp-*"), *output.glob(f".{stem}.old-*")]:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: Path, final: Path) -> None:
    """Rename the folder ``tmp`` to ``final``; an older ``final`` (unfinished, failed, or made
    with other options) is kept until then, moved aside and removed after."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _enable_x64() -> None:
    """float64 for JAX in this (worker) process, before JAX runs: ``numpyro.enable_x64()`` if
    JAX is imported already, else through the environment, which JAX reads when it is imported
    (so that a pipeline that needs no JAX, ``info`` alone, does not pay for importing it)."""
    if "jax" in sys.modules:
        import numpyro

        numpyro.enable_x64()
    else:
        os.environ["JAX_ENABLE_X64"] = "1"


def process_cube(path, config: SurveyConfig, digest: str) -> dict:
    """Run the pipeline on one cube into ``config.output/<stem>/``; returns its record.

    Never raises for a failing cube: the record then has ``status = "failed"`` and the
    exception's one-line ``reason``. Runs where it is called (a Dask worker, or this process).
    """
    from .pipeline import one_line, run_pipeline

    _enable_x64()
    output, stem = Path(config.output), cube_stem(path)
    _clear(output, stem)
    tmp = output / f".{stem}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    record = {"cube": stem, "path": str(path), "status": "done", "reason": ""}
    try:
        record.update(run_pipeline(path, config, tmp))
    except Exception as err:
        record.update(status="failed", reason=one_line(err))
    record["seconds"] = time.perf_counter() - start
    marker = DONE if record["status"] == "done" else FAILED
    _write_json(tmp / marker, {"digest": digest, "input": input_stamp(path), "record": record})
    _move_into_place(tmp, output / stem)  # the finished folder appears whole
    return record


def _lost(path, err) -> dict:
    """The record of a cube whose task itself died (a worker killed, say)."""
    from .pipeline import one_line

    reason = f"task lost: {one_line(err)}"
    return {"cube": cube_stem(path), "path": str(path), "status": "failed", "reason": reason}


def _plan(config: SurveyConfig, digest: str):
    """``(records of cubes already finished, paths to run)``."""
    finished, todo = [], []
    for path in config.inputs:
        record = cube_status(Path(config.output) / cube_stem(path), digest, path)
        if record is None:
            todo.append(path)
        else:
            finished.append({**record, "status": "skipped"})
    return finished, todo


def _run_serial(todo, config, digest):
    for path in todo:
        yield process_cube(path, config, digest)


def _run_dask(todo, config, digest, client):
    from distributed import as_completed

    futures = {}
    for path in todo:
        key = f"bayesifu-survey-{cube_stem(path)}-{uuid.uuid4().hex[:8]}"
        futures[client.submit(process_cube, path, config, digest, key=key, pure=False)] = path
    for future in as_completed(futures):
        try:
            record = future.result()
        except Exception as err:  # the task itself died: the others go on
            record = _lost(futures[future], err)
        yield record


def _client(scheduler, n_workers, config):
    """``(client, cluster or None)`` for ``scheduler`` (an address or None: a LocalCluster),
    both to be closed by the caller."""
    from distributed import Client, LocalCluster

    address = scheduler or config.cluster.get("scheduler")
    if address:
        return Client(address), None
    n = n_workers or config.cluster.get("n_workers", DEFAULT_WORKERS)
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(cluster), cluster


def run_survey(config, *, scheduler=None, n_workers=None, client=None, progress=True):
    """Run the survey ``config`` (a :class:`SurveyConfig` or a TOML path); returns the summary.

    Parameters
    ----------
    config : SurveyConfig or path-like
        The configuration (:func:`bayesifu.survey.load_config`).
    scheduler : str, optional
        The address of a running Dask scheduler (``tcp://host:8786``, e.g. of a dask-jobqueue
        ``SLURMCluster``), or ``"serial"`` to run every cube in this process without Dask.
        Default: the configuration's ``[cluster] scheduler``, else a new
        ``LocalCluster(n_workers, threads_per_worker=1)``, closed at the end.
    n_workers : int, optional
        Workers of the LocalCluster (default: ``[cluster] n_workers``, else 2).
    client : distributed.Client, optional
        A client to submit to (then ``scheduler`` and ``n_workers`` are not used; not closed).
    progress : bool
        Show a progress bar over cubes (on a terminal; elsewhere a line every 10 s).

    Returns
    -------
    astropy.table.Table
        One row per cube (:func:`bayesifu.survey.summary.summary_table`), also written to
        ``OUTPUT/summary.fits``.
    """
    from .._progress import progress as _progress
    from .summary import summary_table, write_summary

    if not isinstance(config, SurveyConfig):
        config = load_config(config)
    digest = config.digest()
    Path(config.output).mkdir(parents=True, exist_ok=True)
    records, todo = _plan(config, digest)
    order = {cube_stem(p): i for i, p in enumerate(config.inputs)}
    if scheduler == SERIAL and client is None:
        stream, own = _run_serial(todo, config, digest), ()
    else:
        own = () if client is not None else _client(scheduler, n_workers, config)
        stream = _run_dask(todo, config, digest, client or own[0])
    try:  # a bar on a terminal, a line now and then in a log (bayesifu._progress)
        for record in _progress(stream, total=len(todo), desc="bayesifu survey", unit="cubes",
                                enabled=progress):  # fmt: skip
            records.append(record)
            write_summary(summary_table(records, order, digest), config.output)
    finally:  # what this call opened, it closes
        for thing in own:
            if thing is not None:
                thing.close()
    table = summary_table(records, order, digest)
    write_summary(table, config.output)
    return table
