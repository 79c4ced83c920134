"""`bayesifu demo` runs end to end on the shipped data and writes what it says."""

import pytest

from bayesifu.cli import main


# Chains this short are not converged; the demo's own defaults are checked by hand (issue note).
@pytest.mark.filterwarnings("ignore::bayesifu.sampling.ConvergenceWarning")
def test_demo_writes_table_posteriors_and_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    status = main(["demo", "--out", str(out), "--chains", "1", "--draws", "60", "--warmup", "60"])
    assert status == 0
    text = capsys.readouterr().out
    for expected in ("full covariance", "independent", "LM", "sd full/indep", "wrote to"):
        assert expected in text
    names = {p.name for p in out.iterdir()}
    assert {
        "comparison.txt",
        "posterior_full_covariance.nc",
        "posterior_independent.nc",
        "full_covariance_maps.png",
        "full_covariance_pairs.png",
        "independent_maps.png",
        "independent_pairs.png",
    } <= names
    assert all((out / n).stat().st_size > 0 for n in names)
