"""The NUTS refinement (models/redshift.py) agrees with the grid posterior."""

import numpy as np
import pytest
from bayesifu.models import redshift as zmodel

import bayesifu as bi
from bayesifu.redshift import log_z_grid


@pytest.mark.parametrize("snr", [6.0])
@pytest.mark.slow
def test_nuts_matches_grid_posterior(data_dir, snr):
    tpl = bi.read_templates(sorted((data_dir / "sdss-templates").glob("spDR2-02[3-7].fit")))
    wave = np.linspace(4800.0, 7000.0, 700)
    z_true = 0.0859
    rng = np.random.default_rng(5)
    cols = np.array([np.interp(np.log10(wave / (1 + z_true)), tpl.loglam, f) for f in tpl.flux])
    truth = cols[0] / np.median(cols[0])
    flux = truth + rng.normal(size=wave.size) / snr
    ivar = np.full(wave.size, snr**2)
    post = bi.redshift_posterior(
        flux[None], tpl, log_z_grid(0.05, 0.12, 1e-4), wave=wave, ivar=ivar[None], medium="vacuum"
    )
    s = post.summary()
    assert s.n_peaks[0] == 1  # a single peak: the NUTS window holds the whole posterior
    kwargs, init = zmodel.inputs_from_grid(post, 0, flux, ivar)
    samples = zmodel.run_nuts(kwargs, init, num_warmup=150, num_samples=300).get_samples()
    z = np.asarray(samples["z"])
    assert abs(z.mean() - s.z_mean[0]) < 0.3 * s.z_std[0]
    assert 0.75 < z.std() / s.z_std[0] < 1.33
    lo, hi = np.percentile(z, [16, 84])
    assert abs(lo - s.z_lo68[0]) < 0.35 * s.z_std[0] and abs(hi - s.z_hi68[0]) < 0.35 * s.z_std[0]
