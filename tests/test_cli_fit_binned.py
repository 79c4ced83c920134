"""`bayesifu fit` of the binned stellar velocity field (STELLAR_VEL, bins from BINID) at the
defaults, on the shipped MaNGA 7815-3702 MAPS file (issue 12: 'fit the binned STELLAR_VEL the
same way')."""

import numpy as np
import pytest

from bayesifu import _arviz
from bayesifu.cli import main


@pytest.mark.slow
def test_binned_stellar_velocity_fit_converges_at_the_defaults(data_dir, tmp_path, capsys):
    maps = data_dir / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
    out = tmp_path / "stellar.nc"
    rc = main(["fit", str(maps), "--ext", "STELLAR_VEL", "--model", "disk", "--out", str(out),
               "--no-plots"])  # fmt: skip
    captured = capsys.readouterr()
    # Refused (exit 3) before the convergence check used ArviZ's bulk ESS: vmax 289 < 400.
    assert rc == 0, captured.out + captured.err
    idata = _arviz.from_netcdf(out)
    post = _arviz.group(idata, "posterior")
    summary = _arviz.summary(idata, var_names=["pa", "inc", "vmax"])
    assert (summary["r_hat"] <= 1.01).all(), summary
    assert (summary["ess_bulk"] >= 400).all(), summary
    # The stellar disk has the kinematic PA of the gas (165 deg from H-alpha).
    assert abs(float(post["pa"].mean()) - 165.0) < 4.0
    assert int(np.asarray(_arviz.group(idata, "sample_stats")["diverging"]).sum()) == 0
