"""SpatialCorrelation: Gaussian construction, validation, covariance and propagation.

Every fast path is compared with a dense numpy reference or with astropy's Covariance.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from astropy.nddata import Covariance
from scipy.linalg import eigvalsh

from bayesifu import SpatialCorrelation
from bayesifu.correlation import propagate_covariance
from bayesifu.correlation.kernels import kernel_autocorrelation, offsets_within, wendland_31
from bayesifu.errors import CovarianceError, InputError, ShapeError, VarianceError


def dense_gaussian(shape, sigma, rlim, footprint=None):
    """Hard-cut Gaussian correlation built densely from all pairs (the mangadap recipe)."""
    ny, nx = shape
    y, x = np.divmod(np.arange(ny * nx), nx)
    dist = np.hypot(y[:, None] - y[None], x[:, None] - x[None])
    rho = np.where(dist <= rlim, np.exp(-(dist**2) / (2 * sigma**2)), 0.0)
    if footprint is not None:
        on = np.asarray(footprint).ravel()
        rho = rho * on[:, None] * on[None]
    return rho, dist


def disc(shape, radius):
    ny, nx = shape
    y, x = np.mgrid[:ny, :nx]
    return np.hypot(y - (ny - 1) / 2, x - (nx - 1) / 2) <= radius


def footprints():
    rng = np.random.default_rng(3)
    return {
        "full": np.ones((20, 17), bool),
        "disc": disc((24, 24), 10.5),
        "random": rng.random((18, 22)) < 0.7,
        "ring": disc((26, 26), 12) & ~disc((26, 26), 5),
    }


def min_eig(corr, good):
    return eigvalsh(corr.submatrix(good).toarray(), subset_by_index=[0, 0])[0]


# ----------------------------------------------------------------------------- construction
@pytest.mark.parametrize("shape", [(9, 13), (1, 7), (15, 15)])
def test_hard_cut_matches_dense_reference(shape):
    corr = SpatialCorrelation.gaussian(shape, sigma=1.5, rlim=4.2, taper=None)
    ref, _ = dense_gaussian(shape, 1.5, 4.2)
    np.testing.assert_allclose(corr.matrix.toarray(), ref, rtol=1e-14, atol=0)
    assert corr.defined.all()
    assert corr.params == {"sigma": 1.5, "rlim": 4.2, "rho_tol": None, "taper": None}


def test_wendland_matches_dense_reference():
    shape = (12, 11)
    corr = SpatialCorrelation.gaussian(shape, sigma=1.2, rlim=5.0, taper="wendland")
    ref, dist = dense_gaussian(shape, 1.2, 5.0)
    ref = ref * np.clip(1 - dist / 5.0, 0, None) ** 4 * (4 * dist / 5.0 + 1)
    ref[ref == 0] = 0
    np.testing.assert_allclose(corr.matrix.toarray(), ref, rtol=1e-13, atol=1e-300)


def test_kernel_matches_quadrature_reference():
    """The kernel construction equals a direct 2-D quadrature of the kernel autocorrelation."""
    sigma, rlim = 1.92, 6.4
    s, radius = sigma / np.sqrt(2), rlim / 2
    h = 1 / 32
    u = np.arange(-radius - 1, radius + 1 + h / 2, h)
    uy, ux = np.meshgrid(u, u, indexing="ij")

    def kern(ay, ax):
        r2 = ay**2 + ax**2
        return np.where(r2 <= radius**2, np.exp(-r2 / (2 * s**2)), 0.0)

    norm = np.sum(kern(uy, ux) ** 2)
    for dy, dx in [(0, 1), (1, 1), (0, 3), (2, 3), (0, 6)]:
        ref = np.sum(kern(uy, ux) * kern(uy + dy, ux + dx)) / norm
        got = kernel_autocorrelation(sigma, rlim, np.array([dy]), np.array([dx]))[0]
        assert got == pytest.approx(ref, abs=3e-3)


def test_kernel_without_truncation_is_the_gaussian():
    dy, dx, dist = offsets_within(6)
    rho = kernel_autocorrelation(1.3, 60.0, dy, dx)
    np.testing.assert_allclose(rho, np.exp(-(dist**2) / (2 * 1.3**2)), atol=1e-10)


def test_footprint_and_undefined_rows():
    good = disc((15, 15), 6)
    corr = SpatialCorrelation.gaussian((15, 15), sigma=1.92, rlim=6.4, taper=None, footprint=good)
    ref, _ = dense_gaussian((15, 15), 1.92, 6.4, good)
    np.testing.assert_allclose(corr.matrix.toarray(), ref, rtol=1e-14)
    np.testing.assert_array_equal(corr.defined, good)
    with pytest.raises(CovarianceError, match="no defined correlation"):
        corr.submatrix(np.ones((15, 15), bool))


def test_rho_tol_drops_small_values():
    corr = SpatialCorrelation.gaussian((10, 10), sigma=1.92, rlim=6.4, taper=None, rho_tol=0.01)
    ref, _ = dense_gaussian((10, 10), 1.92, 6.4)
    ref[ref < 0.01] = 0
    np.testing.assert_allclose(corr.matrix.toarray(), ref, rtol=1e-14)


def test_default_rlim_is_manga_value():
    corr = SpatialCorrelation.gaussian((5, 5))
    assert corr.params["rlim"] == pytest.approx(6.4)
    assert corr.params["taper"] == "kernel"


def test_number_of_pairs_is_n_times_k():
    """O(N k) storage: the stored pairs are exactly the in-grid (spaxel, offset) pairs."""
    shape = (30, 40)
    corr = SpatialCorrelation.gaussian(shape, sigma=1.0, rlim=3.0, taper=None)
    dy, dx, _ = offsets_within(3.0)
    ny, nx = shape
    expected = sum(max(ny - abs(a), 0) * max(nx - abs(b), 0) for a, b in zip(dy, dx, strict=True))
    assert corr.matrix.nnz == expected


@pytest.mark.parametrize("name", list(footprints()))
@pytest.mark.parametrize("taper", ["kernel", "wendland"])
def test_tapered_is_positive_definite(name, taper):
    good = footprints()[name]
    corr = SpatialCorrelation.gaussian(good.shape, sigma=1.92, rlim=6.4, taper=taper)
    assert min_eig(corr, good) >= -1e-12


@pytest.mark.parametrize("name", ["full", "disc", "ring"])
def test_hard_cut_is_indefinite(name):
    good = footprints()[name]
    corr = SpatialCorrelation.gaussian(good.shape, sigma=1.92, rlim=6.4, taper=None)
    assert min_eig(corr, good) < -1e-3


def test_wendland_function():
    r = np.array([0.0, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(wendland_31(r), [1.0, 0.5**4 * 3, 0.0, 0.0])


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sigma": 0.0}, InputError, "sigma"),
        ({"sigma": -1.0}, InputError, "sigma"),
        ({"sigma": np.nan}, InputError, "sigma"),
        ({"sigma": 2.0, "rlim": 1.0}, InputError, "rlim"),
        ({"taper": "hann"}, InputError, "taper"),
        ({"rho_tol": 1.5}, InputError, "rho_tol"),
        ({"footprint": np.ones((3, 3), bool)}, ShapeError, "footprint"),
    ],
)
def test_gaussian_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        SpatialCorrelation.gaussian((5, 5), **kwargs)


def test_gaussian_bad_shape():
    with pytest.raises(ShapeError, match="grid shape"):
        SpatialCorrelation.gaussian((5, 5, 5))


def _pair(value_01, value_10=None, diag=1.0):
    m = np.eye(2) * diag
    m[0, 1] = value_01
    m[1, 0] = value_01 if value_10 is None else value_10
    return m


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        (_pair(np.nan), "NaN or infinite"),
        (_pair(1.5), r"outside \[-1, 1\]"),
        (_pair(0.3, 0.2), "not symmetric"),
        (_pair(0.3, diag=2.0), "diagonal"),
    ],
)
def test_constructor_rejects_invalid_matrix(matrix, match):
    with pytest.raises(CovarianceError, match=match):
        SpatialCorrelation((1, 2), matrix, source="test input")


def test_constructor_rejects_entries_outside_defined():
    m = sp.csr_array(_pair(0.3))
    with pytest.raises(CovarianceError, match="undefined"):
        SpatialCorrelation((1, 2), m, defined=np.array([[True, False]]))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (((2, 2), np.eye(3)), "expected"),
        (((2, 2), np.eye(4), np.ones((3, 3), bool)), "defined"),
        (((0, 4), np.eye(0)), "grid shape"),
    ],
)
def test_constructor_shape_errors(args, match):
    with pytest.raises(ShapeError, match=match):
        SpatialCorrelation(*args)


def test_submatrix_shape_error():
    corr = SpatialCorrelation.gaussian((4, 4))
    with pytest.raises(ShapeError, match="does not match"):
        corr.submatrix(np.ones((3, 4), bool))


# ----------------------------------------------------------------------- covariance, propagation
@pytest.fixture
def small():
    rng = np.random.default_rng(5)
    good = disc((9, 8), 3.8)
    corr = SpatialCorrelation.gaussian((9, 8), sigma=1.3, rlim=4.0, footprint=good)
    variance = np.where(good, rng.uniform(0.5, 3.0, (9, 8)), np.nan)
    return corr, variance, good


def test_covariance_compressed_matches_dense(small):
    corr, variance, good = small
    mask = np.zeros(good.shape, bool)
    mask[4, 4] = True
    cov = corr.covariance(variance, mask=mask)
    use = good & ~mask
    sd = np.sqrt(variance[use])
    ref = corr.matrix.toarray()[np.ix_(use.ravel(), use.ravel())] * sd[:, None] * sd[None]
    assert isinstance(cov, Covariance)
    np.testing.assert_allclose(cov.to_dense(), ref, rtol=1e-12, atol=1e-15)


def test_covariance_full_grid(small):
    corr, variance, good = small
    cov = corr.covariance(variance, compress=False)
    assert cov.data_shape == (9, 8)
    sd = np.sqrt(np.where(good, variance, 0)).ravel()
    np.testing.assert_allclose(
        cov.to_dense(), corr.matrix.toarray() * sd[:, None] * sd[None], rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_covariance_bad_variance(small, bad):
    corr, variance, good = small
    variance = variance.copy()
    variance[4, 4] = bad
    with pytest.raises(VarianceError, match="variance"):
        corr.covariance(variance)


def test_covariance_shape_errors(small):
    corr, variance, _ = small
    with pytest.raises(ShapeError, match="variance"):
        corr.covariance(variance[:-1])
    with pytest.raises(ShapeError, match="mask"):
        corr.covariance(variance, mask=np.zeros((2, 2), bool))


def binning_operator(shape, good, size):
    """Mean over size x size blocks of the spaxels in ``good``."""
    ny, nx = shape
    y, x = np.divmod(np.arange(ny * nx), nx)
    block = (y // size) * ((nx + size - 1) // size) + x // size
    on = good.ravel()
    ids = np.unique(block[on])
    rows = np.searchsorted(ids, block[on])
    t = sp.coo_array((np.ones(on.sum()), (rows, np.flatnonzero(on))), (len(ids), ny * nx))
    t = sp.csr_array(t)
    return sp.csr_array(t / t.sum(axis=1)[:, None])


def test_propagate_covariance_matches_astropy_and_dense(small):
    corr, variance, good = small
    t = binning_operator(good.shape, good, 3)
    cov = corr.covariance(variance, compress=False)
    out = propagate_covariance(cov, t)
    ref_astropy = Covariance.from_matrix_multiplication(sp.csr_matrix(t), cov.to_sparse())
    np.testing.assert_allclose(out.toarray(), ref_astropy.to_dense(), rtol=1e-12, atol=1e-15)
    dense = t.toarray() @ cov.to_dense() @ t.toarray().T
    np.testing.assert_allclose(out.toarray(), dense, rtol=1e-12, atol=1e-15)


def test_propagate_returns_correlation_and_variance(small):
    corr, variance, good = small
    t = binning_operator(good.shape, good, 2)
    out_corr, out_var = corr.propagate(t, variance)
    sd = np.sqrt(np.where(good, variance, 0)).ravel()
    c = corr.matrix.toarray() * sd[:, None] * sd[None]
    dense = t.toarray() @ c @ t.toarray().T
    np.testing.assert_allclose(out_var.ravel(), np.diag(dense), rtol=1e-12)
    d = np.sqrt(np.diag(dense))
    np.testing.assert_allclose(out_corr.matrix.toarray(), dense / d[:, None] / d[None], atol=1e-12)
    assert out_corr.shape == (1, t.shape[0])
    assert out_corr.source == "propagated"


def test_propagate_smoothing_keeps_grid():
    """A square smoothing operator on the grid: output on the same grid, still PSD."""
    shape = (10, 10)
    corr = SpatialCorrelation.gaussian(shape, sigma=1.0)
    n = 100
    t = sp.eye(n, format="csr") * 0.5 + sp.eye(n, k=1, format="csr") * 0.25
    t = t + sp.eye(n, k=-1, format="csr") * 0.25
    out, var = corr.propagate(t)
    assert out.shape == shape
    assert np.all(np.isfinite(var))
    assert np.linalg.eigvalsh(out.matrix.toarray()).min() > -1e-12


def test_propagate_bad_operator(small):
    corr, variance, good = small
    with pytest.raises(ShapeError, match="columns"):
        corr.propagate(np.ones((2, 5)), variance)
    with pytest.raises(CovarianceError, match="undefined"):
        corr.propagate(np.ones((1, good.size)), variance)
    t = binning_operator(good.shape, good, 3)
    with pytest.raises(ShapeError, match="out_shape"):
        corr.propagate(t, variance, out_shape=(t.shape[0] + 1, 1))
    with pytest.raises(ShapeError, match="cannot act"):
        propagate_covariance(sp.eye(4), np.ones((2, 3)))


def test_from_covariance_round_trip(small):
    corr, variance, good = small
    cov = corr.covariance(variance, compress=False)
    back, var = SpatialCorrelation.from_covariance(cov, corr.shape)
    np.testing.assert_allclose(back.matrix.toarray(), corr.matrix.toarray(), atol=1e-14)
    np.testing.assert_allclose(var[good], variance[good], rtol=1e-14)
    assert np.isnan(var[~good]).all()
    np.testing.assert_array_equal(back.defined, good)


def test_from_covariance_bad_input():
    with pytest.raises(CovarianceError, match="negative"):
        SpatialCorrelation.from_covariance(sp.diags([1.0, -1.0]), (1, 2))
    with pytest.raises(ShapeError, match="does not fit"):
        SpatialCorrelation.from_covariance(sp.eye(4), (3, 2))
    not_psd = np.array([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(CovarianceError, match=r"outside \[-1, 1\]"):
        SpatialCorrelation.from_covariance(not_psd, (1, 2))


def test_repr():
    assert "gaussian" in repr(SpatialCorrelation.gaussian((3, 3)))
