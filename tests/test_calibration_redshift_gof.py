"""The goodness-of-fit flags POOR_FIT and BETTER_OUTSIDE, checked by simulation.

A grid that misses the true redshift, or templates that do not describe the spectra, used to
give confident wrong redshifts without any flag (on the real Abell 478 cut-out, a 0.20-0.22 grid
put 701 of 900 spaxels at z 0.213, unflagged; the truth is 0.086). Spectra simulated from the
SDSS templates (:func:`bayesifu.simulate.galaxy_spectra`, with a dispersion of 0-250 km/s and
a 10 % flux-calibration distortion) on the 700 A window of the cut-out (6801-7500 A):

- fitted on a grid that holds their redshift, POOR_FIT and BETTER_OUTSIDE must be rare
  (they would throw away good redshifts);
- fitted on a grid that misses it, no spectrum with signal may come out unflagged.
"""

import numpy as np
import pytest
from scipy.stats import binom

import bayesifu as bi
from bayesifu.redshift import FLAGS
from bayesifu.simulate import galaxy_spectra
from bayesifu.templates import air_to_vacuum

N = 800
GRID = (0.3, 0.6)


@pytest.fixture(scope="module")
def fitted(data_dir):
    paths = sorted((data_dir / "sdss-templates").glob("spDR2-02[3-7].fit"))
    tpl = bi.read_templates(paths)
    wave = air_to_vacuum(6801.14 + 1.25 * np.arange(560))
    rng = np.random.default_rng(41)
    inside = np.arange(N) % 2 == 0
    z = np.where(inside, rng.uniform(0.32, 0.58, N), rng.uniform(0.62, 0.95, N))
    snr = 10 ** rng.uniform(np.log10(3), np.log10(30), N)
    sim = galaxy_spectra(tpl, wave, z, snr, seed=42)
    kw = dict(wave=wave, ivar=sim.ivar, medium="vacuum")
    s = bi.redshift_posterior(sim.flux, tpl, GRID, **kw).summary()
    unchecked = bi.redshift_posterior(sim.flux, tpl, GRID, range_check=None, **kw).summary()
    return z, inside, s, unchecked


def _wrong(z, zmap):
    return ~(np.abs(zmap - z) / (1 + z) * 299792.458 < 1000)


@pytest.mark.calibration
def test_grid_holding_the_redshift_rarely_flags_poor_fit_or_better_outside(fitted):
    z, inside, s, _ = fitted
    bits = FLAGS["POOR_FIT"] | FLAGS["BETTER_OUTSIDE"]
    has_signal = inside & ((s.flags & FLAGS["LOW_SIGNAL"]) == 0)
    n, k = int(has_signal.sum()), int(np.sum((s.flags[has_signal] & bits) != 0))
    print(f"truth on the grid: {k} of {n} spectra with signal flagged POOR_FIT/BETTER_OUTSIDE")
    assert n > 150
    # At most 2 % of good spectra lost, as a one-sided binomial bound at 3 sigma.
    assert binom.sf(k - 1, n, 0.02) > 1.35e-3, (k, n)


@pytest.mark.calibration
def test_grid_missing_the_redshift_leaves_no_unflagged_wrong_answer(fitted):
    z, inside, s, _ = fitted
    out = ~inside
    has_signal = out & ((s.flags & FLAGS["LOW_SIGNAL"]) == 0)
    unflagged_wrong = out & (s.flags == 0) & _wrong(z, s.z_map)
    caught = np.sum((s.flags[has_signal] & FLAGS["BETTER_OUTSIDE"]) != 0)
    print(
        f"truth off the grid: {caught} of {has_signal.sum()} with signal flagged "
        f"BETTER_OUTSIDE; {unflagged_wrong.sum()} of {out.sum()} unflagged and wrong"
    )
    assert has_signal.sum() > 150
    assert unflagged_wrong.sum() == 0


@pytest.mark.calibration
def test_without_the_range_check_wrong_redshifts_pass_unflagged(fitted):
    # The old behaviour, so that the test above can fail: the same spectra, the same grid.
    z, inside, _, unchecked = fitted
    out = ~inside
    n = np.sum(out & (unchecked.flags == 0) & _wrong(z, unchecked.z_map))
    print(f"without the range check: {n} of {out.sum()} off the grid unflagged and wrong")
    assert n > 50
