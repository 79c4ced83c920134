"""Measuring the correlation from the noise: simulated correlated noise and the real MUSE cut-out.

White noise convolved with a Gaussian kernel of width ``s`` (>= 1 spaxel, so the sampled kernel's
autocorrelation is the continuous one to 1e-4) has a Gaussian correlation of width
``s * sqrt(2)``: the measurement must recover it within 10%.
"""

import numpy as np
import pytest
from astropy.io import fits
from scipy.linalg import eigvalsh
from scipy.ndimage import gaussian_filter

from bayesifu import Cube, SpatialCorrelation
from bayesifu.correlation.measure import (
    box_ratio_model,
    box_sums,
    measure_correlation,
    residual_maps,
)
from bayesifu.errors import EmptyDataError, InputError, ShapeError


def correlated_noise(rng, n_maps, shape, s, pad=12):
    ny, nx = shape
    white = rng.normal(size=(n_maps, ny + 2 * pad, nx + 2 * pad))
    maps = np.array([gaussian_filter(w, s, mode="constant", truncate=6.0) for w in white])
    maps = maps[:, pad:-pad, pad:-pad]
    return maps / maps.std()


@pytest.mark.parametrize("s", [1.0, 1.6])
def test_recovers_injected_correlation(s):
    rng = np.random.default_rng(11)
    noise = correlated_noise(rng, 240, (36, 36), s)
    n_wave = noise.shape[0]
    continuum = np.linspace(10.0, 30.0, n_wave)[:, None, None] * np.ones((1, 36, 36))
    variance = np.full(noise.shape, 2.0)  # the "pipeline" variance is twice the true one
    corr = SpatialCorrelation.measured(continuum + noise, variance, kmax=6)
    p = corr.params
    truth = s * np.sqrt(2)
    assert abs(p["sigma"] / truth - 1) < 0.10
    assert 0 < p["sigma_err"] < 0.05 * truth
    # differenced pairs: true variance 2, pipeline says 4 -> scale 0.5
    assert p["scale"] == pytest.approx(0.5, rel=0.05)
    assert 0 < p["scale_err"] < 0.05
    assert corr.source == "measured"
    assert corr.params["taper"] == "kernel"
    corner = np.zeros(corr.shape, bool)
    corner[:16, :16] = True
    assert eigvalsh(corr.submatrix(corner).toarray(), subset_by_index=[0, 0])[0] > -1e-12


def test_clipping_drops_maps_with_lines():
    """Maps with a strong emission line are dropped; without clipping they bias sigma."""
    rng = np.random.default_rng(8)
    noise = correlated_noise(rng, 200, (30, 30), 1.0)
    line = np.zeros_like(noise)
    yy, xx = np.mgrid[:30, :30]
    blob = 40 * np.exp(-((yy - 15.0) ** 2 + (xx - 15.0) ** 2) / (2 * 4.0**2))
    line[100] = blob  # one channel of a pair: the difference keeps the line
    line[150] = blob
    data = noise + line
    variance = np.ones_like(data)
    clipped = measure_correlation(data, variance, kmax=5)
    unclipped = measure_correlation(data, variance, kmax=5, clip=None)
    assert clipped.n_clipped >= 2
    assert abs(clipped.sigma / np.sqrt(2) - 1) < 0.10
    assert unclipped.sigma > 1.2 * clipped.sigma


def test_white_noise_gives_small_sigma_and_flat_ratio():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(200, 30, 30))
    fit = measure_correlation(z, np.ones_like(z), difference=False, kmax=4)
    np.testing.assert_allclose(fit.ratio, 1.0, atol=0.05)
    assert fit.sigma < 0.35


def test_box_sums_match_direct_loop():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 7, 6))
    z[1, 2, 3] = np.nan
    sum_sq, count = box_sums(z, 3)
    for m in range(3):
        for k in (1, 2, 3):
            sums = [
                z[m, y : y + k, x : x + k].sum()
                for y in range(7 - k + 1)
                for x in range(6 - k + 1)
                if np.isfinite(z[m, y : y + k, x : x + k]).all()
            ]
            assert count[m, k - 1] == len(sums)
            assert sum_sq[m, k - 1] == pytest.approx(np.sum(np.square(sums)))


def test_box_ratio_model_matches_dense_sum():
    """(1/k^2) sum over pairs in a k x k box of rho, from the dense correlation matrix."""
    sigma, k = 1.1, 4
    corr = SpatialCorrelation.gaussian((k, k), sigma=sigma, rlim=5 * sigma)
    dense = corr.matrix.toarray().sum() / k**2
    assert box_ratio_model([k], sigma, "kernel", 5.0)[0] == pytest.approx(dense, rel=1e-12)
    assert box_ratio_model([1], sigma)[0] == pytest.approx(1.0)


def test_residual_maps_pairs_and_ranges():
    wave = np.arange(10.0)
    data = np.arange(10.0)[:, None, None] * np.ones((1, 2, 2))
    data[3, 0, 0] = np.nan
    var = np.ones_like(data)
    z = residual_maps(data, var, wave=wave, wave_ranges=[(0, 4), (6, 9)], subtract_mean=False)
    # channels 0-4 -> pairs (0,1), (2,3); channels 6-9 -> (6,7), (8,9)
    assert z.shape == (4, 2, 2)
    np.testing.assert_allclose(z[0], -1 / np.sqrt(2))
    assert np.isnan(z[1, 0, 0])
    z = residual_maps(data, var, subtract_mean=True)
    np.testing.assert_allclose(np.nanmean(z, axis=(1, 2)), 0, atol=1e-12)


def test_accepts_cube():
    rng = np.random.default_rng(4)
    noise = correlated_noise(rng, 80, (24, 24), 1.0)
    cube = Cube(noise, np.ones_like(noise), np.linspace(5000, 5100, 80))
    corr = SpatialCorrelation.measured(cube, kmax=4, wave_ranges=[(5000, 5100)])
    assert corr.shape == (24, 24)
    assert abs(corr.params["sigma"] / np.sqrt(2) - 1) < 0.15


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"variance": None}, InputError, "variance"),
        ({"kmax": 1}, InputError, "kmax"),
        ({"taper": "box"}, InputError, "taper"),
        ({"n_boot": 3}, InputError, "n_boot"),
        ({"wave_ranges": [(0, 1)]}, InputError, "wave"),
        ({"wave_ranges": [(0, 1)], "wave": np.arange(3)}, ShapeError, "wave"),
        ({"kmax": 50}, EmptyDataError, "kmax"),
        ({"mask": np.ones((2, 2), bool)}, ShapeError, "mask"),
    ],
)
def test_bad_input(kwargs, error, match):
    data = np.random.default_rng(0).normal(size=(8, 10, 10))
    args = {"variance": np.ones_like(data), **kwargs}
    with pytest.raises(error, match=match):
        measure_correlation(data, **args)


def test_bad_shapes():
    with pytest.raises(ShapeError, match="nmaps, ny, nx"):
        residual_maps(np.ones((3, 4)), np.ones((3, 4)))


def test_real_muse_cutout(data_dir):
    """Line- and sky-line-poor stretches of the Abell 478 cut-out: sigma about half a spaxel.

    The whole cube (4800-5250, 5650-5850, 5950-6250 Angstrom) gives 0.509 +- 0.002 spaxels.
    """
    with fits.open(data_dir / "muse-abell478-cutout.fits.gz") as hdul:
        header = hdul["DATA"].header
        data = hdul["DATA"].data.astype(float)
        variance = hdul["STAT"].data.astype(float)
    wave = header["CRVAL3"] + header["CD3_3"] * (np.arange(data.shape[0]) + 1 - header["CRPIX3"])
    fit = measure_correlation(
        data, variance, wave=wave, wave_ranges=[(7000, 7100), (7350, 7500)], kmax=5
    )
    assert 0.45 < fit.sigma < 0.6
    assert fit.sigma_err < 0.03
    assert 0.7 < fit.scale < 0.95
    assert np.all(np.abs(fit.ratio - fit.ratio_model) < 4 * fit.ratio_err)


def exact_box_ratios(corr, kmax):
    """Mean over complete k x k boxes of (1/k^2) sum_{j,l in box} rho_jl, from the exact matrix."""
    ny, nx = corr.shape
    rho = corr.matrix
    out = []
    for k in range(1, kmax + 1):
        values = []
        for y in range(ny - k + 1):
            for x in range(nx - k + 1):
                if corr.defined[y : y + k, x : x + k].all():
                    v = np.zeros(ny * nx)
                    v[(np.arange(y, y + k)[:, None] * nx + np.arange(x, x + k)).ravel()] = 1
                    values.append(v @ (rho @ v) / k**2)
        out.append(np.mean(values))
    return np.array(out)


@pytest.mark.parametrize("setup", ["manga", "muse"])
def test_recovers_simulator_correlation(setup):
    """Noise from the simulator's exact T N T^T: box ratios and the Gaussian width agree."""
    from bayesifu.simulate.resampling import gaussian_correlation_sigma
    from bayesifu.simulate.setups import manga_like, muse_like

    ifu = manga_like(seed=1) if setup == "manga" else muse_like((30, 30), seed=1)
    exact = ifu.correlation()
    noise = ifu.draw_noise(size=300, seed=2)
    variance = np.broadcast_to(ifu.variance_map(), noise.shape)
    fit = measure_correlation(noise, variance, difference=False, subtract_mean=False, kmax=5)
    np.testing.assert_array_less(np.abs(fit.ratio - exact_box_ratios(exact, 5)), 4 * fit.ratio_err)
    assert abs(fit.sigma / gaussian_correlation_sigma(exact) - 1) < 0.10
    assert fit.scale == pytest.approx(1.0, abs=4 * fit.scale_err + 0.01)


def test_measurement_in_channel_blocks_is_the_whole_cube_measurement(monkeypatch):
    """The cube is read block by block of channels (bounded memory for a whole MUSE field): the
    fit on the real cut-out is the same for blocks of 4 channels as for one block of all 560."""
    import bayesifu as bi
    from bayesifu import containers
    from bayesifu.correlation import measure
    from bayesifu.datasets import muse_abell478

    cube = bi.read_cube(muse_abell478())
    monkeypatch.setattr(containers, "CHANNEL_BLOCK", 10_000)  # one block: the whole cube at once
    whole = measure.measure_correlation(cube)
    monkeypatch.setattr(containers, "CHANNEL_BLOCK", 4)
    small = measure.measure_correlation(cube)
    assert (small.n_maps, small.n_clipped) == (whole.n_maps, whole.n_clipped)
    np.testing.assert_allclose(small.ratio, whole.ratio, rtol=1e-12)
    assert small.sigma == pytest.approx(whole.sigma, rel=1e-10)
