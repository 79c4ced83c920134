"""The README's Python example runs as written, and its fit recovers the simulated truth."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_example_runs_and_recovers_truth(capsys):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "vmax" in out and "r_hat" in out
    post = namespace["idata"].posterior
    truth = namespace["truth"]
    for name in ("pa", "inc", "vsys", "vmax"):
        draws = np.asarray(post[name]).ravel()
        lo, hi = np.quantile(draws, [0.001, 0.999])
        assert lo < getattr(truth, name) < hi, name
