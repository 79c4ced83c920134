"""Output files written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import InputError

__all__ = ["write_atomic"]


def write_atomic(path, write: Callable[[str], object], overwrite: bool = True) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place.

    The move is :func:`os.replace`, so an interrupted or failed write never leaves a partial
    file under the final name (nor replaces an older file). Missing parent folders are created;
    the file gets the usual permissions (``0666`` less the umask), not ``mkstemp``'s ``0600``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass overwrite=True (or --overwrite) to replace it")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
