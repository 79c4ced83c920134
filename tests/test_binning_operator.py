"""Aggregation operator T, T C T^T against dense numpy and astropy's Covariance, annuli."""

import numpy as np
import pytest
import scipy.sparse as sp
from astropy.nddata import Covariance

import bayesifu as bi
from bayesifu.binning import Binning, BinningWarning, elliptical_radius
from bayesifu.errors import CovarianceError, EmptyDataError, InputError, ShapeError, VarianceError


def gaussian_correlation(shape, sigma=1.5, rlim=4.0):
    """An independent dense reference: rho = exp(-d^2 / (2 sigma^2)) for d < rlim."""
    y, x = np.indices(shape)
    pts = np.column_stack([x.ravel(), y.ravel()]).astype(float)
    d = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    rho = np.where(d < rlim, np.exp(-0.5 * (d / sigma) ** 2), 0.0)
    return rho


@pytest.fixture
def small_map():
    rng = np.random.default_rng(1)
    shape = (7, 9)
    data = rng.normal(5.0, 1.0, shape)
    var = rng.uniform(0.5, 2.0, shape)
    mask = np.zeros(shape, bool)
    mask[0, :3] = True
    return bi.Map(data, var, mask=mask)


@pytest.fixture
def blocks():
    y, x = np.indices((7, 9))
    binid = (y // 3) * 3 + x // 3
    binid[6, 8] = -1
    return binid


def dense_operator(binid, mask, weights):
    ids = np.unique(binid[binid >= 0])
    t = np.zeros((ids.size, binid.size))
    for i, b in enumerate(ids):
        sel = (binid.ravel() == b) & ~mask.ravel()
        w = np.ones(sel.sum()) if weights is None else weights.ravel()[sel]
        t[i, sel] = w / (1.0 if weights is None else w.sum())
    return t


@pytest.mark.parametrize("weights", ["sum", "mean", "ivar", "array"])
def test_operator_matches_dense(small_map, blocks, weights):
    b = Binning(blocks)
    mask = small_map.mask
    if weights == "sum":
        ref = dense_operator(blocks, mask, None)
        t = b.operator("sum", mask=mask)
    elif weights == "mean":
        ref = dense_operator(blocks, mask, np.ones(blocks.shape))
        t = b.operator("mean", mask=mask)
    elif weights == "ivar":
        ref = dense_operator(blocks, mask, 1.0 / small_map.variance)
        t = b.operator("ivar", variance=small_map.variance, mask=mask)
    else:
        w = np.arange(blocks.size, dtype=float).reshape(blocks.shape) + 1.0
        ref = dense_operator(blocks, mask, w)
        t = b.operator(w, mask=mask)
    assert sp.issparse(t)
    np.testing.assert_allclose(t.toarray(), ref, rtol=1e-12, atol=1e-15)


def test_aggregate_covariance_matches_dense_and_astropy(small_map, blocks):
    rho = gaussian_correlation(small_map.shape)
    corr = bi.SpatialCorrelation(small_map.shape, sp.csr_array(rho), source="test")
    b = Binning(blocks)
    res = b.aggregate(small_map, corr, weights="mean")
    t = dense_operator(blocks, small_map.mask, np.ones(blocks.shape))
    sd = np.where(small_map.mask, 0.0, np.sqrt(small_map.variance)).ravel()
    cov = rho * np.outer(sd, sd)
    d = np.where(small_map.mask, 0.0, small_map.data).ravel()
    np.testing.assert_allclose(res.values, t @ d, rtol=1e-12)
    np.testing.assert_allclose(res.covariance.toarray(), t @ cov @ t.T, rtol=1e-12, atol=1e-14)
    ref = Covariance.from_matrix_multiplication(t, cov)
    np.testing.assert_allclose(res.to_astropy().to_dense(), ref.to_dense(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.variance_independent, t**2 @ sd**2, rtol=1e-12)
    np.testing.assert_allclose(res.sn, res.values / np.sqrt(np.diag(t @ cov @ t.T)))
    assert np.all(res.noise_ratio >= 1.0)  # positive correlations only increase the noise


def test_aggregate_independent(small_map, blocks):
    res = Binning(blocks).aggregate(small_map, None, weights="sum")
    t = dense_operator(blocks, small_map.mask, None)
    sd2 = np.where(small_map.mask, 0.0, small_map.variance).ravel()
    np.testing.assert_allclose(res.covariance.toarray(), t @ np.diag(sd2) @ t.T, atol=1e-14)
    np.testing.assert_allclose(res.noise_ratio, 1.0)
    np.testing.assert_array_equal(res.n_spaxels, (t > 0).sum(axis=1))


def test_reconstruct_roundtrip(blocks):
    b = Binning(blocks)
    values = np.arange(b.n_bins, dtype=float) * 2.0
    m = b.reconstruct(values)
    np.testing.assert_array_equal(np.isnan(m), blocks < 0)
    for i, bid in enumerate(b.bin_ids):
        assert np.all(m[blocks == bid] == values[i])
    with pytest.raises(ShapeError):
        b.reconstruct(values[:-1])


def test_non_contiguous_ids():
    binid = np.array([[5, 5, -1], [12, 12, 5]])
    b = Binning(binid)
    np.testing.assert_array_equal(b.bin_ids, [5, 12])
    np.testing.assert_array_equal(b.n_spaxels, [3, 2])
    cx, cy = b.centroids()
    np.testing.assert_allclose(cx, [(0 + 1 + 2) / 3, 0.5])
    np.testing.assert_allclose(cy, [1 / 3, 1.0])


def test_empty_bin_warns(small_map):
    binid = np.zeros(small_map.shape, int)
    binid[0, :3] = 1  # exactly the masked spaxels
    with pytest.warns(BinningWarning, match="every spaxel masked"):
        res = Binning(binid).aggregate(small_map)
    assert np.isnan(res.values[1]) and np.isfinite(res.values[0])


def test_annuli_match_brute_force():
    shape, center, pa, e = (31, 25), (12.3, 15.1), 30.0, 0.4
    edges = [0, 2, 5, 9]
    b = Binning.annuli(shape, center, edges, pa=pa, ellipticity=e)
    y, x = np.indices(shape)
    t = np.deg2rad(pa)
    # major axis direction (north = +y, through east = -x)
    u = np.array([-np.sin(t), np.cos(t)])
    v = np.array([np.cos(t), np.sin(t)])
    for yy, xx in [(15, 12), (20, 10), (3, 3), (15, 20)]:
        d = np.array([xx - center[0], yy - center[1]])
        r = np.hypot(d @ u, (d @ v) / (1 - e))
        expect = np.searchsorted(edges, r, side="right") - 1 if r < edges[-1] else -1
        assert b.binid[yy, xx] == expect
    # a point on the major axis at distance 4 lies in the annulus [2, 5)
    p = np.array(center) + 4 * u
    assert elliptical_radius(shape, center, pa, e)[0, 0] > 0
    r_major = np.hypot(*(p - np.array(center)))
    assert 2 <= r_major < 5


def test_aperture_profile_with_covariance(small_map):
    rho = gaussian_correlation(small_map.shape)
    corr = bi.SpatialCorrelation(small_map.shape, sp.csr_array(rho), source="test")
    ap = Binning.aperture(small_map.shape, (4, 3), 2.5)
    res = ap.aggregate(small_map, corr)
    assert res.values.shape == (1,) and res.noise_ratio[0] > 1.5


def test_bad_inputs(small_map, blocks):
    with pytest.raises(ShapeError):
        Binning(np.zeros(5, int))
    with pytest.raises(InputError):
        Binning(np.full((2, 2), -3))
    with pytest.raises(InputError):
        Binning(np.array([[0.5, 1.0]]))
    with pytest.raises(EmptyDataError):
        Binning(np.full((3, 3), -1))
    b = Binning(blocks)
    with pytest.raises(InputError, match="weights must be"):
        b.operator("median")
    with pytest.raises(InputError, match="ivar"):
        b.operator("ivar")
    with pytest.raises(VarianceError):
        b.operator("ivar", variance=np.zeros(blocks.shape))
    with pytest.raises(ShapeError):
        b.operator(np.ones((2, 2)))
    with pytest.raises(InputError):
        b.operator(-np.ones(blocks.shape))
    with pytest.raises(InputError, match="sum to zero"):
        b.operator(np.zeros(blocks.shape))
    with pytest.raises(InputError, match="bayesifu.Map"):
        b.aggregate(small_map.data)
    with pytest.raises(ShapeError):
        Binning(np.zeros((3, 3), int)).aggregate(small_map)
    with pytest.raises(InputError, match="SpatialCorrelation"):
        b.aggregate(small_map, np.eye(blocks.size))
    defined = np.ones(blocks.shape, bool)
    defined[3] = False
    partial = bi.SpatialCorrelation(
        small_map.shape, sp.diags_array(defined.ravel().astype(float)).tocsr(), defined=defined
    )
    with pytest.raises(CovarianceError, match="footprint"):
        b.aggregate(small_map, partial)
    with pytest.raises(InputError):
        Binning.annuli((5, 5), (2, 2), [3, 1])
    with pytest.raises(InputError):
        Binning.annuli((5, 5), (2, 2), [0, 1], ellipticity=1.0)
    with pytest.raises(EmptyDataError):
        Binning.annuli((5, 5), (50, 50), [0, 1])
