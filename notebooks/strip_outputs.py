"""Strip outputs, execution counts and run metadata from the notebooks, in place.

Run from the repository root before committing a notebook::

    uv run python notebooks/strip_outputs.py            # every notebooks/*.ipynb
    uv run python notebooks/strip_outputs.py a.ipynb    # chosen files
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

__all__ = ["strip"]

HERE = Path(__file__).resolve().parent


def strip(path) -> bool:
    """Remove outputs from the notebook at ``path``; return whether it changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    after = nbformat.writes(nb)
    if after != before:
        nbformat.write(nb, path)
    return after != before


def main(argv=None) -> int:
    paths = [Path(p) for p in (argv or [])] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        if strip(path):
            print(f"stripped {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
