"""Voronoi binning: partition and connectivity properties, S/N near target, vorbin comparison."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import bayesifu as bi
from bayesifu.binning import BinningWarning, voronoi_bins
from bayesifu.errors import CovarianceError, EmptyDataError, InputError, VarianceError


def galaxy_map(n=40, seed=0, peak=400.0, scale=6.0, sky=25.0, holes=True):
    """An exponential disc with Poisson-like noise, optionally with masked holes."""
    rng = np.random.default_rng(seed)
    y, x = np.indices((n, n), dtype=float)
    r = np.hypot(x - n / 2 + 0.3, (y - n / 2 - 0.2) / 0.8)
    signal = peak * np.exp(-r / scale)
    var = signal + sky
    data = signal + rng.normal(0.0, np.sqrt(var))
    mask = np.zeros((n, n), bool)
    if holes:
        mask[rng.random((n, n)) < 0.03] = True
        mask[: n // 8, : n // 8] = True
    return bi.Map(np.abs(data), var, mask=mask)


def assert_partition(bins, m):
    """Every unmasked spaxel in exactly one bin, masked ones in none, bins 4-connected."""
    np.testing.assert_array_equal(bins.binid >= 0, m.good)
    assert np.all(bins.n_spaxels > 0)
    assert bins.n_spaxels.sum() == m.n_good
    for b in bins.bin_ids:
        _, n_parts = ndimage.label(bins.binid == b)
        assert n_parts == 1, f"bin {b} has {n_parts} parts"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tessellation", ["wvt", "cvt", "none"])
def test_partition_connected_and_near_target(seed, tessellation):
    m = galaxy_map(seed=seed)
    target = 15.0
    bins = voronoi_bins(m, target, tessellation=tessellation)
    assert_partition(bins, m)
    ref = bi.Binning(bins.binid).aggregate(m)  # independent dense-free reference S/N
    np.testing.assert_allclose(bins.sn, ref.sn, rtol=1e-10)
    multi = bins.n_spaxels > 1
    assert multi.sum() > 10
    assert 0.9 * target < np.median(bins.sn[multi]) < 1.2 * target
    assert np.mean(bins.sn[multi] > 0.7 * target) > 0.9
    assert np.std(bins.sn[multi]) / target < 0.25


def test_random_maps_property():
    """Seeded random S/N maps with random masks: the partition holds for each."""
    rng = np.random.default_rng(42)
    for _ in range(8):
        ny, nx = rng.integers(8, 30, size=2)
        signal = rng.gamma(2.0, 2.0, (ny, nx))
        mask = rng.random((ny, nx)) < rng.uniform(0, 0.3)
        mask[0, 0] = False
        m = bi.Map(signal, np.ones((ny, nx)), mask=mask)
        total = signal[~mask].sum() / np.sqrt((~mask).sum())
        target = float(rng.uniform(2.0, 0.15 * total))
        with warnings.catch_warnings():
            # islands of unmasked spaxels cut off by the random mask may stay below target
            warnings.simplefilter("ignore", BinningWarning)
            bins = voronoi_bins(m, target)
        assert_partition(bins, m)


def test_deterministic():
    m = galaxy_map(seed=3)
    a = voronoi_bins(m, 12.0)
    b = voronoi_bins(m, 12.0)
    np.testing.assert_array_equal(a.binid, b.binid)


def test_covariance_exact_reaches_target():
    """With the correlation the bins must grow until the *covariant* S/N reaches the target."""
    m = galaxy_map(n=36, seed=5, holes=False)
    corr = bi.SpatialCorrelation.gaussian(m.shape, sigma=1.92, rlim=6.4)
    target = 12.0
    indep = voronoi_bins(m, target)
    cov = voronoi_bins(m, target, correlation=corr)
    assert_partition(cov, m)
    ref = bi.Binning(cov.binid).aggregate(m, corr)
    np.testing.assert_allclose(cov.sn, ref.sn, rtol=1e-8)
    np.testing.assert_allclose(cov.sn_independent, ref.sn_independent, rtol=1e-8)
    multi = cov.n_spaxels > 1
    assert 0.85 * target < np.median(cov.sn[multi]) < 1.25 * target
    # ignoring the covariance: the same bins would look much better than they are
    assert np.median(cov.sn_independent[multi] / cov.sn[multi]) > 1.5
    assert cov.n_bins < indep.n_bins
    # the independent binning, judged with the covariance, falls short of the target
    short = bi.Binning(indep.binid).aggregate(m, corr).sn[indep.n_spaxels > 1]
    assert np.median(short) < 0.8 * target


def test_covariance_calibrated():
    m = galaxy_map(n=36, seed=6, holes=False)
    corr = bi.SpatialCorrelation.gaussian(m.shape, sigma=1.92, rlim=6.4)
    target = 12.0
    cal = voronoi_bins(m, target, correlation=corr, sn_method="calibrated")
    assert cal.sn_method == "calibrated" and cal.alpha > 1.0
    assert_partition(cal, m)
    multi = cal.n_spaxels > 1
    # judged exactly, the calibrated bins are near the target too
    assert 0.75 * target < np.median(cal.sn[multi]) < 1.35 * target
    fixed = voronoi_bins(m, target, correlation=corr, sn_method="calibrated", alpha=1.62)
    assert fixed.alpha == 1.62


def test_sn_map():
    m = galaxy_map(seed=7)
    bins = voronoi_bins(m, 10.0)
    snm = bins.sn_map()
    assert np.all(np.isnan(snm[m.mask]))
    assert np.all(np.isfinite(snm[m.good]))
    op = bins.operator("sum")
    assert op.shape == (bins.n_bins, m.data.size)
    assert "VoronoiBinning" in repr(bins)


def test_bad_inputs():
    m = galaxy_map(seed=8)
    with pytest.raises(InputError, match="cannot be reached"):
        voronoi_bins(m, 1e6)
    with pytest.raises(InputError, match="positive"):
        voronoi_bins(m, -1.0)
    with pytest.raises(InputError, match="positive"):
        voronoi_bins(m, np.nan)
    with pytest.raises(InputError, match="tessellation"):
        voronoi_bins(m, 10.0, tessellation="hex")
    with pytest.raises(InputError, match="sn_method"):
        voronoi_bins(m, 10.0, correlation=None, sn_method="magic")
    with pytest.raises(InputError, match="Map"):
        voronoi_bins(m.data, 10.0)
    with pytest.raises(EmptyDataError):
        bi.Map(np.ones((4, 4)), np.ones((4, 4)), mask=np.ones((4, 4), bool))
    with pytest.raises(VarianceError):
        bi.Map(np.ones((4, 4)), np.zeros((4, 4)))
    neg = bi.Map(m.data - 3.0, m.variance, mask=m.mask)
    with pytest.warns(BinningWarning, match="negative signal"):
        voronoi_bins(neg, 10.0)
    flat = bi.Map(np.ones((6, 6)), np.ones((6, 6)))
    with pytest.warns(BinningWarning, match="single bin"):
        voronoi_bins(flat, 5.9)
    corr = bi.SpatialCorrelation.gaussian((5, 5), sigma=1.0, rlim=3.0)
    with pytest.raises(Exception, match="does not match"):
        voronoi_bins(m, 10.0, correlation=corr)
    defined = np.ones(m.shape, bool)
    defined[20:, :] = False
    part = bi.SpatialCorrelation.gaussian(m.shape, sigma=1.0, rlim=3.0, footprint=defined)
    with pytest.raises(CovarianceError, match="footprint"):
        voronoi_bins(m, 10.0, correlation=part)


def _vorbin_example():
    vorbin = pytest.importorskip("vorbin")
    path = Path(vorbin.__file__).parent / "example" / "voronoi_2d_binning_example_input.txt"
    if not path.exists():
        pytest.skip("vorbin's SAURON example input is not installed")
    return np.loadtxt(path).T


def _grid(x, y, signal, noise, pixelsize):
    ix = np.round((x - x.min()) / pixelsize).astype(int)
    iy = np.round((y - y.min()) / pixelsize).astype(int)
    assert np.allclose((x - x.min()) / pixelsize, ix, atol=1e-3)
    shape = (iy.max() + 1, ix.max() + 1)
    data, var, mask = np.zeros(shape), np.ones(shape), np.ones(shape, bool)
    data[iy, ix], var[iy, ix], mask[iy, ix] = signal, noise**2, False
    return bi.Map(data, var, mask=mask)


@pytest.mark.filterwarnings("ignore:.*VorBin is deprecated:UserWarning")
def test_against_vorbin_sauron_example():
    """Same input, same target: a similar number of bins and a similar S/N scatter."""
    x, y, signal, noise = _vorbin_example()
    from vorbin.voronoi_2d_binning import voronoi_2d_binning

    target = 50.0
    _, _, _, _, _, sn_ref, npix_ref, _ = voronoi_2d_binning(
        x, y, signal, noise, target, plot=False, quiet=True, pixelsize=0.8
    )
    m = _grid(x, y, signal, noise, 0.8)
    ours = voronoi_bins(m, target)
    assert_partition(ours, m)
    assert abs(ours.n_bins - sn_ref.size) / sn_ref.size < 0.1
    scatter_ref = np.std(sn_ref[npix_ref > 1]) / target
    scatter = np.std(ours.sn[ours.n_spaxels > 1]) / target
    assert scatter < 1.5 * scatter_ref + 0.02
    assert abs(np.median(ours.sn[ours.n_spaxels > 1]) / target - 1) < 0.1
