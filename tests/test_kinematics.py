"""Tests of the pure-JAX disk forward model against the numpy simulator and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from bayesifu.errors import InputError, ShapeError
from bayesifu.kinematics import DiskParams, disk_velocity, rotation_curve, smeared_disk_velocity
from bayesifu.simulate import galaxy

TRUTH = dict(x0=20.3, y0=21.7, pa=163.0, inc=52.0, vsys=12.0, vmax=180.0, rt=4.5)


def _reference(x, y, p, curve):
    """Independent numpy implementation (direct trigonometry, no shared code)."""
    pa, inc = np.deg2rad(p["pa"]), np.deg2rad(p["inc"])
    dx, dy = x - p["x0"], y - p["y0"]
    # rotate so the receding major axis, direction (-sin PA, cos PA), is the first axis
    along = dx * -np.sin(pa) + dy * np.cos(pa)
    across = dx * -np.cos(pa) - dy * np.sin(pa)
    r = np.hypot(along, across / np.cos(inc))
    vrot = p["vmax"] * (
        np.tanh(r / p["rt"]) if curve == "tanh" else np.arctan(r / p["rt"]) * 2 / np.pi
    )
    return p["vsys"] + vrot * np.sin(inc) * along / r


@pytest.mark.parametrize("curve", ["tanh", "arctan"])
def test_matches_reference_and_simulator(curve):
    y, x = np.mgrid[0:42, 0:42].astype(float) + 0.01
    v = np.asarray(disk_velocity(jnp.asarray(x), jnp.asarray(y), DiskParams(**TRUTH), curve))
    np.testing.assert_allclose(v, _reference(x, y, TRUTH, curve), rtol=1e-12, atol=1e-9)
    truth = galaxy.DiskParams(**TRUTH, curve=curve)
    np.testing.assert_allclose(v, galaxy.disk_velocity(x, y, truth), rtol=1e-12, atol=1e-9)


def test_receding_side_along_pa():
    """With PA = 90 deg the receding axis points to -x (east)."""
    p = DiskParams(x0=10.0, y0=10.0, pa=90.0, inc=60.0, vsys=0.0, vmax=100.0, rt=1.0)
    v = disk_velocity(jnp.array([5.0, 15.0]), jnp.array([10.0, 10.0]), p)
    assert v[0] > 50 and v[1] < -50


def test_centre_finite_with_gradient():
    p = DiskParams(x0=3.0, y0=4.0, pa=30.0, inc=40.0, vsys=5.0, vmax=100.0, rt=2.0)
    v = disk_velocity(jnp.array([3.0]), jnp.array([4.0]), p)
    assert v[0] == pytest.approx(5.0)
    g = jax.grad(lambda q: disk_velocity(jnp.array([3.0]), jnp.array([4.0]), q)[0])(p)
    assert all(np.isfinite(leaf) for leaf in jax.tree_util.tree_leaves(g))


@pytest.mark.parametrize("curve", ["tanh", "arctan"])
@pytest.mark.slow
def test_check_grads(curve):
    x = jnp.linspace(0.0, 30.0, 13)
    y = jnp.linspace(30.0, 2.0, 13)
    p = DiskParams(**TRUTH)
    check_grads(
        jax.jit(lambda q: disk_velocity(x, y, q, curve)), (p,), order=2, modes=["fwd", "rev"]
    )


@pytest.mark.slow
def test_smeared_check_grads_and_limits():
    p = DiskParams(x0=7.2, y0=6.8, pa=40.0, inc=50.0, vsys=0.0, vmax=150.0, rt=2.0)
    check_grads(
        jax.jit(lambda q: smeared_disk_velocity(q, (14, 14), 1.0)), (p,), order=1, modes=["rev"]
    )
    # a tiny PSF reproduces the sub-pixel average of the unsmeared field
    sharp = smeared_disk_velocity(p, (14, 14), 0.02, oversample=5)
    offs = (np.arange(5) + 0.5) / 5 - 0.5
    yy, xx = np.mgrid[0:14, 0:14].astype(float)
    avg = np.mean([disk_velocity(xx + a, yy + b, p) for a in offs for b in offs], axis=0)
    np.testing.assert_allclose(sharp, avg, atol=1e-6)
    # smearing lowers the amplitude near the centre
    wide = smeared_disk_velocity(p, (14, 14), 2.0)
    assert np.abs(wide[4:10, 4:10]).max() < np.abs(avg[4:10, 4:10]).max()


def test_smeared_flux_weighting_matches_direct_sum():
    p = DiskParams(x0=5.0, y0=5.0, pa=0.0, inc=60.0, vsys=0.0, vmax=100.0, rt=2.0)
    flux = np.exp(-np.hypot(*np.mgrid[0:11, 0:11] - 5.0) / 2.0)
    got = np.asarray(smeared_disk_velocity(p, (11, 11), 1.2, flux=flux, oversample=1))
    yy, xx = np.mgrid[0:11, 0:11].astype(float)
    v = np.asarray(disk_velocity(xx, yy, p))
    half = int(np.ceil(4 * 1.2))
    want = np.empty_like(v)
    for j in range(11):
        for i in range(11):
            w = np.exp(-0.5 * ((xx - i) ** 2 + (yy - j) ** 2) / 1.2**2)
            w *= (np.abs(xx - i) <= half) & (np.abs(yy - j) <= half)
            want[j, i] = np.sum(w * flux * v) / np.sum(w * flux)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)


def test_bad_input():
    p = DiskParams(**TRUTH)
    with pytest.raises(InputError, match="rotation curve"):
        disk_velocity(jnp.zeros(3), jnp.zeros(3), p, curve="flat")
    with pytest.raises(InputError, match="rotation curve"):
        rotation_curve(1.0, 1.0, 1.0, curve="linear")
    with pytest.raises(ShapeError, match="shape"):
        disk_velocity(jnp.zeros(3), jnp.zeros(4), p)
    with pytest.raises(InputError, match="sigma_psf"):
        smeared_disk_velocity(p, (5, 5), -1.0)
    with pytest.raises(InputError, match="oversample"):
        smeared_disk_velocity(p, (5, 5), 1.0, oversample=0)
    with pytest.raises(ShapeError, match="flux"):
        smeared_disk_velocity(p, (5, 5), 1.0, flux=np.ones((4, 4)))
