"""One progress helper for every command: a tqdm bar on a terminal, occasional plain lines
(``redshift: 400/900 spectra (44%)``) when standard error is not a terminal (a log file, a pipe,
a batch job), and nothing when disabled (``--no-progress``).

Use it like tqdm::

    for spectrum in progress(spectra, total=len(spectra), desc="redshift", unit="spectra"):
        ...
"""

from __future__ import annotations

import sys
import time

__all__ = ["progress", "is_terminal", "sampler_progress_bar"]

#: Time [s] between two plain lines off a terminal.
PLAIN_INTERVAL = 10.0


def is_terminal(stream=None) -> bool:
    """True if ``stream`` (default standard error) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def sampler_progress_bar(enabled: bool = True, stream=None) -> bool:
    """Whether to let the sampler (NumPyro) draw its own bar: only on a terminal and when enabled;
    off a terminal its bar writes a line per update."""
    return bool(enabled) and is_terminal(stream)


def _plain(iterable, total, desc, unit, stream, interval):
    label = f"{desc}: " if desc else ""
    last = time.monotonic()
    printed = False
    for done, item in enumerate(iterable, start=1):
        yield item
        now = time.monotonic()
        final = total is not None and done == total
        if now - last >= interval or (final and printed):
            last, printed = now, True
            if total:
                text = f"{label}{done}/{total} {unit} ({100 * done // total}%)"
            else:
                text = f"{label}{done} {unit}"
            print(text, file=stream, flush=True)


def progress(iterable, total=None, desc="", enabled=True, unit="it", stream=None,
             interval=PLAIN_INTERVAL):  # fmt: skip
    """Wrap ``iterable`` like :func:`tqdm.tqdm`, yielding its items.

    Parameters
    ----------
    iterable : iterable
        What to iterate over.
    total : int, optional
        Number of items (default ``len(iterable)`` when it has one).
    desc : str
        Label of the bar or line, e.g. the command name.
    enabled : bool
        False (``--no-progress``): no output at all.
    unit : str
        What an item is, e.g. ``"spectra"``.
    stream : file, optional
        Where to write (default standard error); a terminal gets a tqdm bar, anything else a
        plain line each time ``interval`` [s] have passed since the last one (or the start), and
        a last line at the end if any was written: work quicker than ``interval`` prints nothing.
    interval : float
        Least time [s] between two plain lines.
    """
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    if not enabled:
        return iter(iterable)
    stream = sys.stderr if stream is None else stream
    if is_terminal(stream):
        from tqdm import tqdm

        return iter(tqdm(iterable, total=total, desc=desc or None, unit=unit, file=stream))
    return _plain(iterable, total, desc, unit, stream, interval)
