"""Tests of the orthogonal polynomial basis, planes and Sersic profiles against numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bayesifu.models.polynomial_surface import seed004_data
from jax.test_util import check_grads
from scipy.special import gammaincinv

from bayesifu.errors import InputError, ShapeError
from bayesifu.surfaces import (
    PlaneParams,
    PolynomialBasis,
    SersicParams,
    exponential,
    plane,
    radial_gradient,
    sersic,
    sersic_bn,
)


def test_basis_is_orthonormal_and_converts_exactly():
    rng = np.random.default_rng(0)
    u, v = rng.uniform(2, 5, 50), rng.uniform(-1, 30, 50)
    basis = PolynomialBasis(u, v, (2, 3))
    q = basis.design(u, v)
    np.testing.assert_allclose(q.T @ q, 50 * np.eye(12), atol=1e-9)
    theta = rng.standard_normal(12)
    coef = np.asarray(basis.to_power(theta))
    # independent check: evaluate the power series directly
    direct = sum(coef[i * 4 + j] * u**i * v**j for i in range(3) for j in range(4))
    np.testing.assert_allclose(q @ theta, direct, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(basis.from_power(coef), theta, rtol=1e-8, atol=1e-8)
    assert basis.power_names[5] == "c_1_1"
    np.testing.assert_allclose(basis.power_design(u, v) @ coef, direct, rtol=1e-9)


def test_seed004_basis_is_well_conditioned_where_power_series_is_not():
    u, v, _ = seed004_data()
    basis = PolynomialBasis(u, v, (3, 3))
    assert np.linalg.cond(basis.design(u, v)) < 1.0 + 1e-8
    assert np.linalg.cond(basis.power_design(u, v)) > 1e15


def test_plane_radial_and_exponential():
    x = np.array([0.0, 3.0, 5.0])
    y = np.array([1.0, -2.0, 4.0])
    z = plane(x, y, PlaneParams(z0=1.0, gx=0.5, gy=-0.25), x_ref=1.0, y_ref=2.0)
    np.testing.assert_allclose(z, 1.0 + 0.5 * (x - 1) - 0.25 * (y - 2))
    # along the major axis (PA = 0: +y) the elliptical radius is the distance
    r = radial_gradient(np.array([2.0, 2.0]), np.array([5.0, 2.0]), 2.0, 2.0, 0.0, 0.5, 0.0, 1.0)
    np.testing.assert_allclose(r, [3.0, 0.0])
    # along the minor axis (x) distances are stretched by 1/q
    r = radial_gradient(np.array([4.0]), np.array([2.0]), 2.0, 2.0, 0.0, 0.5, 0.0, 1.0)
    np.testing.assert_allclose(r, [4.0])
    e = exponential(np.array([2.0]), np.array([5.0]), 2.0, 2.0, 0.0, 0.5, 3.0, 1.5)
    np.testing.assert_allclose(e, 3.0 * np.exp(-2.0))


@pytest.mark.parametrize(("n", "rtol"), [(0.5, 1e-3), (1.0, 1e-5), (2.0, 1e-5), (6.0, 1e-5)])
def test_sersic_bn_is_half_light(n, rtol):
    """b_n solves gamma(2n, b_n) = Gamma(2n) / 2: the inverse regularised incomplete gamma."""
    assert float(sersic_bn(n)) == pytest.approx(gammaincinv(2 * n, 0.5), rel=rtol)


def test_sersic_value_at_re_and_centre():
    p = SersicParams(x0=0.0, y0=0.0, pa=0.0, q=1.0, ie=2.0, re=3.0, n=1.0)
    np.testing.assert_allclose(sersic(jnp.array([0.0]), jnp.array([3.0]), p), [2.0])
    centre = sersic(jnp.array([0.0]), jnp.array([0.0]), p)
    np.testing.assert_allclose(centre, [2.0 * np.exp(float(sersic_bn(1.0)))])


def test_check_grads():
    x = jnp.linspace(-5, 5, 9)
    y = jnp.linspace(4, -3, 9)
    p = SersicParams(x0=0.3, y0=-0.2, pa=25.0, q=0.7, ie=2.0, re=3.0, n=1.7)
    check_grads(jax.jit(lambda q: sersic(x, y, q)), (p,), order=1, modes=["rev"])
    pp = PlaneParams(z0=1.0, gx=0.1, gy=0.2)
    check_grads(lambda q: plane(x, y, q), (pp,), order=1, modes=["rev"])
    u, v, _ = seed004_data()
    basis = PolynomialBasis(u, v, (3, 3))
    check_grads(basis.to_power, (jnp.ones(16),), order=1, modes=["rev"])


def test_bad_input():
    with pytest.raises(ShapeError):
        PolynomialBasis(np.arange(5.0), np.arange(4.0), (1, 1))
    with pytest.raises(InputError, match="distinct values"):
        PolynomialBasis(np.ones(10), np.arange(10.0), (1, 1))
    with pytest.raises(InputError, match="cannot determine"):
        PolynomialBasis(np.arange(5.0), np.arange(5.0), (2, 2))
    with pytest.raises(InputError, match="non-negative"):
        PolynomialBasis(np.arange(5.0), np.arange(5.0), (-1, 1))
    with pytest.raises(InputError, match="finite"):
        PolynomialBasis(np.array([0.0, np.nan, 1.0]), np.arange(3.0), (1, 0))
