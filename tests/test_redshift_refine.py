"""The local refinement grid against a brute-force per-redshift numpy reference."""

import numpy as np
import pytest
from numpy.polynomial import legendre
from test_redshift_grid import smooth_templates

from bayesifu.redshift import log_z_grid
from bayesifu.redshift.grid import Design
from bayesifu.redshift.refine import local_loglike, local_offsets


def reference_loglike(flux, ivar, wave, tpl, z, npoly, prec):
    """0.5 (b^T M^-1 b - log|M| + log|P|) at one redshift (P: the proper part of the prior
    precision), A(z) by np.interp, numpy.linalg."""
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    poly = [legendre.legval(x, np.eye(npoly)[q]) for q in range(npoly)]
    shifted = np.log10(wave) - np.log10(1 + z)
    a = np.vstack([np.interp(shifted, tpl.loglam, np.nan_to_num(f)) for f in tpl.flux] + poly).T
    m = a.T @ (ivar[:, None] * a) + np.diag(prec)
    b = a.T @ (ivar * flux)
    norm = np.sum(np.log(prec[prec > 0]))
    return 0.5 * (b @ np.linalg.solve(m, b) - np.linalg.slogdet(m)[1] + norm)


@pytest.mark.parametrize("npoly,lines", [(3, False), (2, True)])
def test_local_loglike_matches_brute_force(npoly, lines):
    tpl = smooth_templates(lines=lines)
    rng = np.random.default_rng(5)
    wave = np.linspace(5200.0, 6400.0, 400)
    z_grid = log_z_grid(0.02, 0.12, 1e-4)
    model = np.array([np.interp(np.log10(wave / 1.07312), tpl.loglam, f) for f in tpl.flux])
    flux = np.tile(model.sum(axis=0), (4, 1)) + 0.05 * rng.normal(size=(4, wave.size))
    ivar = np.full(flux.shape, 1 / 0.05**2) * rng.uniform(0.5, 2, flux.shape)
    ivar[1, 90:170] = 0.0  # a masked stretch
    design = Design(wave, np.ones(wave.size, bool), tpl, z_grid, npoly)
    u = np.log10(1 + z_grid)
    m_center = np.array([300, 301, design.m_a, design.m_b])  # the last two at the edges
    prec = design.prior_precision(flux, ivar)
    offsets = local_offsets()
    active = np.array([True, True, True, True])
    out = local_loglike(design, flux, ivar, m_center, prec, offsets, active)
    for s in range(4):
        shift = m_center[s] + offsets
        inside = (shift >= design.m_a) & (shift <= design.m_b)
        assert np.all(np.isneginf(out[s, ~inside])) and np.all(np.isfinite(out[s, inside]))
        z_loc = 10 ** (u[0] + shift[inside] * (u[1] - u[0])) - 1
        ref = [reference_loglike(flux[s], ivar[s], wave, tpl, z, npoly, prec[s]) for z in z_loc]
        np.testing.assert_allclose(out[s, inside], ref, rtol=1e-9, atol=1e-6)
    assert (~inside).any()  # the edge case was exercised
    skipped = local_loglike(design, flux, ivar, m_center, prec, offsets, ~active)
    assert np.all(np.isneginf(skipped))
