"""The truth of the simulator: thin-disk velocity field and exponential surface brightness."""

import math

import numpy as np
import pytest

from bayesifu import InputError, ShapeError
from bayesifu import simulate as sim

DISK = sim.DiskParams(x0=20.3, y0=19.7, pa=35.0, inc=55.0, vsys=120.0, vmax=210.0, rt=3.5)


def _sky_point(disk, radius, theta, perpendicular_sign=1.0):
    """Project a disk-plane point (radius [spaxel], azimuth theta from the receding axis) onto
    the sky, independently of the module: receding axis (-sin PA, cos PA), the other axis either
    perpendicular direction, foreshortened by cos(i)."""
    pa, inc = math.radians(disk.pa), math.radians(disk.inc)
    along = radius * math.cos(theta)
    across = radius * math.sin(theta) * math.cos(inc)
    ux, uy = -math.sin(pa), math.cos(pa)
    px, py = perpendicular_sign * math.cos(pa), perpendicular_sign * math.sin(pa)
    return disk.x0 + along * ux + across * px, disk.y0 + along * uy + across * py


def test_major_axis_gives_vsys_plus_minus_vrot_sin_i():
    r = 6.0
    vrot = DISK.vmax * math.tanh(r / DISK.rt) * math.sin(math.radians(DISK.inc))
    x_rec, y_rec = _sky_point(DISK, r, 0.0)
    x_app, y_app = _sky_point(DISK, r, math.pi)
    v = sim.disk_velocity([x_rec, x_app], [y_rec, y_app], DISK)
    np.testing.assert_allclose(v, [DISK.vsys + vrot, DISK.vsys - vrot], rtol=1e-12)


def test_minor_axis_and_centre_give_vsys():
    pts = [_sky_point(DISK, r, math.pi / 2, s) for r in (1.0, 4.0, 9.0) for s in (1, -1)]
    x, y = np.array(pts).T
    np.testing.assert_allclose(sim.disk_velocity(x, y, DISK), DISK.vsys, atol=1e-9)
    assert sim.disk_velocity(DISK.x0, DISK.y0, DISK) == DISK.vsys


@pytest.mark.parametrize("curve", sim.ROTATION_CURVES)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_velocity_matches_forward_projection(curve, sign):
    disk = sim.DiskParams(
        x0=10.0, y0=12.0, pa=250.0, inc=70.0, vsys=-30.0, vmax=150.0, rt=2.0, curve=curve
    )
    rng = np.random.default_rng(3)
    radius = rng.uniform(0.1, 15.0, 50)
    theta = rng.uniform(0, 2 * np.pi, 50)
    xy = np.array([_sky_point(disk, r, t, sign) for r, t in zip(radius, theta, strict=True)])
    if curve == "tanh":
        vrot = disk.vmax * np.tanh(radius / disk.rt)
    else:
        vrot = disk.vmax * 2 / np.pi * np.arctan(radius / disk.rt)
    expected = disk.vsys + vrot * np.sin(np.radians(disk.inc)) * np.cos(theta)
    np.testing.assert_allclose(sim.disk_velocity(xy[:, 0], xy[:, 1], disk), expected, atol=1e-9)
    np.testing.assert_allclose(sim.disk_radius(xy[:, 0], xy[:, 1], disk), radius, rtol=1e-12)


def test_position_angle_is_east_of_north_with_the_simulator_wcs():
    """PA = 90 deg puts the receding side east, which the simulator's WCS places at -x."""
    ifu = sim.muse_like((21, 21), seed=0)
    disk = sim.DiskParams(x0=10.0, y0=10.0, pa=90.0, inc=60.0, vsys=0.0, vmax=100.0, rt=2.0)
    v = sim.disk_velocity(np.array([5.0, 15.0]), np.array([10.0, 10.0]), disk)
    ra = ifu.wcs.pixel_to_world_values([5.0, 15.0], [10.0, 10.0])[0]
    assert v[0] > 0 > v[1]
    assert ra[0] > ra[1]  # the receding point is the one with the larger RA: east
    north = sim.DiskParams(x0=10.0, y0=10.0, pa=0.0, inc=60.0, vsys=0.0, vmax=100.0, rt=2.0)
    dec = ifu.wcs.pixel_to_world_values([10.0, 10.0], [15.0, 5.0])[1]
    assert sim.disk_velocity(10.0, 15.0, north) > 0 and dec[0] > dec[1]


def test_face_on_disk_has_no_rotation_signal():
    disk = sim.DiskParams(x0=3.0, y0=3.0, pa=10.0, inc=0.0, vsys=50.0, vmax=200.0, rt=1.0)
    y, x = np.indices((7, 7), dtype=float)
    np.testing.assert_allclose(sim.disk_velocity(x, y, disk), 50.0)


@pytest.mark.parametrize("curve,value", [("tanh", math.tanh(1.0)), ("arctan", 0.5)])
def test_rotation_curve_at_turnover_radius(curve, value):
    disk = sim.DiskParams(x0=0, y0=0, pa=0, inc=30, vsys=0, vmax=180.0, rt=2.5, curve=curve)
    assert sim.rotation_curve(2.5, disk) == pytest.approx(180.0 * value, rel=1e-12)


def test_exponential_surface_brightness_on_the_axes():
    h, peak = 4.0, 2.5
    x_maj, y_maj = _sky_point(DISK, 5.0, 0.0)
    # a point 5 spaxels from the centre on the sky along the minor axis lies at R = 5 / cos(i)
    x_min, y_min = _sky_point(DISK, 5.0 / math.cos(math.radians(DISK.inc)), math.pi / 2)
    sb = sim.exponential_surface_brightness([x_maj, x_min], [y_maj, y_min], DISK, h, peak)
    expected = peak * np.exp(-np.array([5.0, 5.0 / math.cos(math.radians(DISK.inc))]) / h)
    np.testing.assert_allclose(sb, expected, rtol=1e-12)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"inc": 90.0}, r"inc = 90.0 deg is outside \[0, 90\)"),
        ({"inc": -5.0}, r"inc = -5.0 deg is outside"),
        ({"curve": "flat"}, r"curve = 'flat' is unknown"),
        ({"rt": 0.0}, r"rt = 0.0 spaxel must be positive"),
        ({"vmax": float("nan")}, r"vmax must be a finite number"),
        ({"x0": "1"}, r"x0 must be a finite number"),
    ],
)
def test_bad_disk_parameters(change, match):
    kwargs = dict(x0=1.0, y0=1.0, pa=0.0, inc=45.0, vsys=0.0, vmax=100.0, rt=1.0)
    kwargs.update(change)
    with pytest.raises(InputError, match=match):
        sim.DiskParams(**kwargs)


def test_bad_coordinates_and_profile():
    with pytest.raises(ShapeError, match=r"x has shape \(3,\) but y has shape \(2,\)"):
        sim.disk_velocity(np.zeros(3), np.zeros(2), DISK)
    with pytest.raises(InputError, match="scale_length = -1.0 spaxel must be positive"):
        sim.exponential_surface_brightness(0.0, 0.0, DISK, -1.0)
    with pytest.raises(InputError, match="peak = nan must be finite"):
        sim.exponential_surface_brightness(0.0, 0.0, DISK, 1.0, float("nan"))


def test_disk_params_are_frozen():
    with pytest.raises(AttributeError):
        DISK.inc = 10.0
