"""Output files are written whole or not at all (bayesifu._files.write_atomic and its users)."""

import os
from pathlib import Path

import pytest

from bayesifu._files import write_atomic
from bayesifu.errors import InputError


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "result.fits"
    target.write_text("old")

    def broken(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, broken)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.fits"]


def test_creates_parent_folders_and_usual_permissions(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    write_atomic(target, lambda tmp: Path(tmp).write_text("new"))
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_refuses_overwrite_and_folders(tmp_path):
    target = tmp_path / "x.nc"
    target.write_text("keep")
    with pytest.raises(InputError, match="exists"):
        write_atomic(target, lambda tmp: None, overwrite=False)
    with pytest.raises(InputError, match="folder"):
        write_atomic(tmp_path, lambda tmp: None)
