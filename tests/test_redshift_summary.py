"""Summaries of grid posteriors against scipy.stats, peaks and flags."""

import numpy as np
import pytest
from scipy import stats

from bayesifu.errors import ShapeError
from bayesifu.redshift import FLAGS, describe_flags, log_z_grid, per_spaxel, summarize

ZG = log_z_grid(0.0, 0.2, 1e-4)
U = np.log10(1 + ZG)
DU = U[1] - U[0]


def gaussian_logpdf(center_u, sigma_u):
    return -0.5 * ((U - center_u) / sigma_u) ** 2


def test_intervals_match_normal_quantiles():
    mu, sig = U[400] + 0.3 * DU, 6 * DU
    logp = gaussian_logpdf(mu, sig)[None]
    s = summarize(ZG, logp, -2 * logp)
    for got, q in (
        (s.z_median, 0.5),
        (s.z_lo68, 0.16),
        (s.z_hi68, 0.84),
        (s.z_lo95, 0.025),
        (s.z_hi95, 0.975),
    ):
        ref = 10 ** stats.norm.ppf(q, mu, sig) - 1
        assert abs(got[0] - ref) < 0.1 * DU * np.log(10) * (1 + ref)
    assert s.z_map[0] == pytest.approx(10**mu - 1, abs=1e-9)
    assert not s.laplace[0] and s.flags[0] == 0 and s.n_peaks[0] == 1


def test_narrow_posterior_uses_laplace_from_curvature():
    mu, sig = U[400] + 0.2 * DU, 0.2 * DU  # far narrower than a grid cell
    s = summarize(ZG, gaussian_logpdf(mu, sig)[None], np.zeros((1, ZG.size)))
    assert s.laplace[0]
    np.testing.assert_allclose(s.z_lo68[0], 10 ** stats.norm.ppf(0.16, mu, sig) - 1, rtol=1e-6)
    np.testing.assert_allclose(s.z_hi95[0], 10 ** stats.norm.ppf(0.975, mu, sig) - 1, rtol=1e-6)
    np.testing.assert_allclose(s.z_map[0], 10**mu - 1, rtol=1e-9)


def test_two_peaks_probabilities_and_flags():
    a, b = U[300], U[600]
    sig = 3 * DU
    logp = np.logaddexp(
        np.log(0.7) + stats.norm.logpdf(U, a, sig), np.log(0.3) + stats.norm.logpdf(U, b, sig)
    )[None]
    chi2 = (-2 * logp).copy()
    s = summarize(ZG, logp, chi2)
    assert s.n_peaks[0] == 2
    np.testing.assert_allclose(s.peak_prob[0, :2], [0.7, 0.3], atol=1e-6)
    np.testing.assert_allclose(s.peak_z[0, :2], ZG[[300, 600]])
    assert s.delta_chi2[0] == pytest.approx(2 * np.log(0.7 / 0.3), rel=1e-6)
    assert set(describe_flags(s.flags[0])) == {"SMALL_DELTA_CHI2", "MULTIPLE_PEAKS"}
    s = summarize(ZG, logp, chi2, p_min=0.5, delta_chi2_min=1.0)
    assert s.n_peaks[0] == 1 and s.flags[0] == 0


def test_edge_negative_model_coverage_and_no_data_flags():
    logp = np.vstack(
        [gaussian_logpdf(U[0], 3 * DU), gaussian_logpdf(U[500], 3 * DU), np.full(ZG.size, np.nan)]
    )
    chi2 = np.zeros_like(logp)
    s = summarize(
        ZG, logp, chi2, coverage=np.array([1.0, 0.2, 0.0]), model_sum=np.array([1.0, -1.0, np.nan])
    )
    assert s.flags[0] == FLAGS["Z_AT_EDGE"]
    assert s.flags[1] == FLAGS["LITTLE_COVERAGE"] | FLAGS["NEGATIVE_MODEL"]
    assert s.flags[2] & FLAGS["NO_DATA"] and np.isnan(s.z_map[2]) and np.isnan(s.z_hi95[2])
    valid = np.zeros(ZG.size, bool)
    valid[100:] = True
    edge = gaussian_logpdf(U[100], 3 * DU)
    edge[:100] = -np.inf
    s = summarize(ZG, edge[None], chi2[:1], valid_z=valid)
    assert s.flags[0] & FLAGS["Z_AT_EDGE"]


def test_velocity_and_reshape():
    s = summarize(ZG, np.tile(gaussian_logpdf(U[500], 3 * DU), (6, 1)), np.zeros((6, ZG.size)))
    r = s.reshaped((2, 3))
    assert r.z_map.shape == (2, 3) and r.peak_z.shape == (2, 3, 5)
    v = r.velocity(ZG[500])
    np.testing.assert_allclose(v, 0.0, atol=1e-6)


def test_shape_mismatch():
    with pytest.raises(ShapeError, match="summarize"):
        summarize(ZG, np.zeros((2, 5)), np.zeros((2, 5)))


def test_per_spaxel_puts_each_bins_value_on_its_spaxels():
    binid = np.array([[0, 0, -1], [1, 2, 2]])
    z = np.array([0.1, 0.2, 0.3])
    flags = np.array([4, 0, 1])
    pdf = np.arange(6.0).reshape(3, 2)
    on_z, on_flags, on_pdf = (per_spaxel(v, binid) for v in (z, flags, pdf))
    for y, x in np.ndindex(binid.shape):  # reference: spaxel by spaxel
        b = binid[y, x]
        if b < 0:
            assert np.isnan(on_z[y, x]) and on_flags[y, x] == 0 and np.isnan(on_pdf[y, x]).all()
        else:
            assert on_z[y, x] == z[b] and on_flags[y, x] == flags[b]
            np.testing.assert_array_equal(on_pdf[y, x], pdf[b])
    assert on_flags.dtype == flags.dtype and on_pdf.shape == (2, 3, 2)
    assert per_spaxel(z, None) is z


def test_poor_fit_and_better_outside_follow_their_definitions():
    logp = np.tile(gaussian_logpdf(U[400], 3 * DU), (5, 1))
    chi2 = np.full(logp.shape, 1500.0)
    chi2[:, 400] = 1000.0  # chi2_min of every row
    dof = np.array([800.0, 800.0, 1200.0, 950.0, 800.0])
    # (chi2_min - dof) / (chi2_null - dof) = 200 / 500, 200 / 240, -200 / -100 (no excess),
    # 50 / 60 (an excess of 60 < 5 sqrt(2 dof) = 218: noise, not judged) and 200 / 1200.
    chi2_null = np.array([1300.0, 1040.0, 1100.0, 1010.0, 2000.0])
    outside = np.array([990.5, 991.5, np.nan, 2000.0, 995.0])  # better by 9.5, 8.5, -, -, 5
    s = summarize(ZG, logp, chi2, dof=dof, chi2_null=chi2_null, chi2_outside=outside,
                  min_signal_chi2=0.0)  # fmt: skip
    poor = (s.flags & FLAGS["POOR_FIT"]) != 0
    better = (s.flags & FLAGS["BETTER_OUTSIDE"]) != 0
    assert poor.tolist() == [False, True, False, False, False]
    assert better.tolist() == [True, False, False, False, False]
    strict = summarize(ZG, logp, chi2, dof=dof, chi2_null=chi2_null, max_unexplained=0.3)
    assert ((strict.flags & FLAGS["POOR_FIT"]) != 0).tolist() == [True, True, False, False, False]
    assert describe_flags(FLAGS["POOR_FIT"] | FLAGS["BETTER_OUTSIDE"]) == [
        "POOR_FIT",
        "BETTER_OUTSIDE",
    ]
