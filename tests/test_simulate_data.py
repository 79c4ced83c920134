"""Simulated maps and cubes, and every bad-input path of bayesifu.simulate."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import chi2

import bayesifu as bi
from bayesifu import CovarianceError, InputError, ShapeError, VarianceError
from bayesifu import simulate as sim

DISK = sim.DiskParams(x0=20.5, y0=20.0, pa=150.0, inc=50.0, vsys=30.0, vmax=180.0, rt=4.0)


@pytest.fixture(scope="module")
def manga():
    return sim.manga_like(37, 9, seed=1)


def test_velocity_map_is_truth_plus_resampled_noise(manga):
    vmap, truth = manga.velocity_map(DISK, noise_sigma=12.0, seed=3)
    x, y = manga.coordinates()
    assert isinstance(vmap, bi.Map) and vmap.unit == "km/s"
    np.testing.assert_array_equal(truth, sim.disk_velocity(x, y, DISK))
    np.testing.assert_array_equal(vmap.mask, ~manga.footprint)
    # the noise is T (sigma sqrt(N) z) with z from the same seed
    z = np.random.default_rng(3).standard_normal((manga.n_native, 1))[:, 0]
    noise = manga.operator @ (12.0 * np.sqrt(manga.native_variance) * z)
    inside = manga.footprint
    np.testing.assert_allclose(vmap.data[inside], (truth.ravel() + noise)[inside.ravel()])
    np.testing.assert_allclose(
        vmap.variance[inside], manga.covariance(12.0).diagonal()[inside.ravel()], rtol=1e-12
    )
    assert vmap.wcs.wcs.cdelt[0] < 0 < vmap.wcs.wcs.cdelt[1]


def test_maps_are_deterministic_for_a_seed(manga):
    a, _ = manga.velocity_map(DISK, 10.0, seed=9)
    b, _ = manga.velocity_map(DISK, 10.0, seed=9)
    c, _ = manga.velocity_map(DISK, 10.0, seed=10)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data[a.good], c.data[c.good])


def test_cube_truth_places_the_line_at_the_disk_velocity():
    ifu = sim.muse_like((12, 12), seed=2)
    disk = sim.DiskParams(x0=5.5, y0=6.0, pa=40.0, inc=60.0, vsys=500.0, vmax=150.0, rt=2.0)
    spec = sim.LineCubeSpec(
        wave=np.arange(6540.0, 6620.0, 0.05), line_rest=6562.80, wave_medium="air", continuum=0.0
    )
    cube, truth = ifu.cube(disk, spec, noise_sigma=1e-3, seed=1)
    assert isinstance(cube, bi.Cube) and cube.shape == (spec.wave.size, 12, 12)
    assert cube.wave_medium == "air" and cube.spaxel_scale == 0.2
    velocity = sim.disk_velocity(*ifu.coordinates(), disk)
    peak = spec.wave[np.argmax(truth, axis=0)]
    np.testing.assert_allclose(peak, 6562.80 * (1 + velocity / 299792.458), atol=0.05)
    brightness = truth.max(axis=0)
    np.testing.assert_allclose(
        brightness, sim.exponential_surface_brightness(*ifu.coordinates(), disk, 5.0), rtol=1e-3
    )


def test_cube_noise_has_the_exact_covariance_per_channel():
    """Chi-square of the cube residuals with the exact per-channel covariance follows chi2(dof)."""
    ifu = sim.muse_like((7, 6), n_exposures=2, seed=6, exposure_variance=[1.0, 4.0])
    spec = sim.LineCubeSpec()
    sigma = np.linspace(0.02, 0.2, spec.wave.size)
    cube, truth = ifu.cube(DISK, spec, noise_sigma=sigma, seed=4)
    resid = (cube.flux - truth).reshape(spec.wave.size, -1)
    base = ifu.covariance(dense=True)
    stat = sum(r @ np.linalg.solve(s**2 * base, r) for r, s in zip(resid, sigma, strict=True))
    dof = resid.size
    assert chi2.sf(stat, dof) > 1e-4 and chi2.cdf(stat, dof) > 1e-4
    np.testing.assert_allclose(
        cube.variance, sigma[:, None, None] ** 2 * np.diag(base).reshape(7, 6)
    )


def test_cube_is_masked_outside_the_footprint(manga):
    cube, _ = manga.cube(DISK, seed=2)
    outside = ~manga.footprint
    assert cube.mask[:, outside].all() and not cube.mask[:, manga.footprint].any()
    assert cube.channel_map(0).n_good == manga.n_spaxels
    again, _ = manga.cube(DISK, seed=2)
    np.testing.assert_array_equal(cube.flux, again.flux)


def test_observe_any_truth(manga):
    truth = np.full(manga.shape, 5.0)
    m = manga.observe(truth, 0.5, seed=1, unit="mag")
    assert m.unit == "mag" and m.n_good == manga.n_spaxels


def test_geometry_helpers():
    assert [sim.grids.manga_grid_size(n) for n in sim.grids.MANGA_BUNDLES] == [32, 42, 52, 62, 72]
    for n in sim.grids.MANGA_BUNDLES:
        fibres = sim.grids.hexagonal_bundle(n)
        assert fibres.shape == (n, 2)
        d = np.hypot(*(fibres[:, None, :] - fibres[None, :, :]).transpose(2, 0, 1))
        np.testing.assert_allclose(d[d > 0].min(), 2.5)
    dith = sim.grids.manga_dither_offsets()
    sides = np.hypot(*(dith - np.roll(dith, 1, axis=0)).T)
    np.testing.assert_allclose(sides, 2.5 / np.sqrt(3))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: sim.manga_like(30), InputError, r"n_fibres = 30 is not a MaNGA bundle size"),
        (lambda: sim.manga_like(19, 0), InputError, r"n_exposures = 0 must be a positive"),
        (lambda: sim.manga_like(19, 3, dither_jitter=-1.0), InputError, "dither_jitter"),
        (lambda: sim.manga_like(19, 3, kernel_sigma=-0.7), InputError, "kernel_sigma"),
        (lambda: sim.manga_like(19, 3, rlim=float("inf")), InputError, "rlim"),
        (lambda: sim.manga_like(19, 3, min_depth=1.5), InputError, r"min_depth = 1.5"),
        (lambda: sim.manga_like(19, 3, seed="a"), InputError, "seed must be an int"),
        (
            lambda: sim.manga_like(19, 3, exposure_variance=[1.0, 2.0]),
            ShapeError,
            r"exposure_variance has shape \(2,\), expected \(3,\)",
        ),
        (
            lambda: sim.manga_like(19, 3, exposure_variance=[1.0, -2.0, 1.0]),
            VarianceError,
            r"exposure_variance: 1 exposure\(s\) have a non-positive",
        ),
        (lambda: sim.muse_like((0, 5)), ShapeError, "two positive integers"),
        (lambda: sim.muse_like((5,)), ShapeError, "two positive integers"),
        (lambda: sim.muse_like((5.5, 5)), ShapeError, "two positive integers"),
        (lambda: sim.muse_like("ab"), ShapeError, "two positive integers"),
        (lambda: sim.muse_like((4, 4), n_exposures=-1), InputError, "n_exposures = -1"),
        (lambda: sim.LineCubeSpec(wave=[3.0, 2.0]), InputError, "strictly increasing"),
        (lambda: sim.LineCubeSpec(line_sigma=0.0), InputError, "must be positive"),
        (lambda: sim.LineCubeSpec(wave_medium="glass"), InputError, "'air' or 'vacuum'"),
        (lambda: sim.shepard_operator(np.zeros((3, 3)), (4, 4), 1, 2), ShapeError, r"\(n, 2\)"),
        (
            lambda: sim.drizzle_operator(np.full((3, 2), np.nan), (4, 4)),
            InputError,
            "NaN or infinite",
        ),
        (lambda: sim.shepard_operator(np.zeros((3, 2)), (4, 4), 0, 2), InputError, "sigma"),
        (
            lambda: sim.spaxel_covariance(sp.eye_array(3), [1.0, 1.0]),
            ShapeError,
            r"native variance has shape \(2,\), expected \(3,\)",
        ),
        (
            lambda: sim.spaxel_covariance(sp.eye_array(2), [1.0, -1.0]),
            CovarianceError,
            "non-negative",
        ),
        (lambda: sim.resampling.keep_rows(sp.eye_array(3), [True]), ShapeError, "3 spaxels"),
    ],
)
def test_bad_input_raises_bayesifu_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    "noise,error,match",
    [
        (-1.0, VarianceError, "noise_sigma must be positive and finite"),
        (0.0, VarianceError, "noise_sigma must be positive and finite"),
        (float("nan"), VarianceError, "noise_sigma must be positive and finite"),
        ([1.0, 2.0], ShapeError, r"noise_sigma has shape \(2,\)"),
    ],
)
def test_bad_noise(manga, noise, error, match):
    with pytest.raises(error, match=match):
        manga.velocity_map(DISK, noise_sigma=noise, seed=1)
    with pytest.raises(error, match=match):
        manga.cube(DISK, noise_sigma=noise, seed=1)
    with pytest.raises(error, match=match):
        manga.covariance(noise)


def test_bad_calls_on_an_instrument(manga):
    with pytest.raises(InputError, match="disk must be a DiskParams, got dict"):
        manga.velocity_map({"inc": 10}, 1.0)
    with pytest.raises(InputError, match="disk must be a DiskParams"):
        manga.cube(None)
    with pytest.raises(ShapeError, match=r"truth has shape \(3, 3\), expected the grid"):
        manga.observe(np.zeros((3, 3)), 1.0)
    with pytest.raises(InputError, match="too large"):
        sim.muse_like((150, 150), n_exposures=1, seed=0).covariance(dense=True)
    with pytest.raises(ShapeError, match="operator has shape"):
        sim.SimulatedIFU(
            "x", (2, 2), sp.eye_array(3), np.zeros((3, 2)), np.zeros(3, int), np.ones(3), 0.2
        )
    with pytest.raises(ShapeError, match=r"native_variance has shape \(2,\)"):
        sim.SimulatedIFU(
            "x", (1, 3), sp.eye_array(3), np.zeros((3, 2)), np.zeros(3, int), np.ones(2), 0.2
        )
    with pytest.raises(VarianceError, match="1 native variance"):
        sim.SimulatedIFU(
            "x", (1, 3), sp.eye_array(3), np.zeros((3, 2)), np.zeros(3, int), [1, 0, 1], 0.2
        )
    identity = bi.SpatialCorrelation((2, 2), sp.eye_array(4))
    with pytest.raises(CovarianceError, match="no off-diagonal pairs"):
        sim.gaussian_correlation_sigma(identity)
