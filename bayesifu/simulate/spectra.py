"""Simulated galaxy spectra with a known redshift, for calibrating redshift posteriors and flags.

Each spectrum is a random non-negative mixture of rest-frame templates (Dirichlet weights),
broadened by a random stellar velocity dispersion (so that the unbroadened templates used in the
fit are a mismatch, as for real galaxies), shifted to its redshift, multiplied by a random smooth
continuum distortion (flux calibration) and given Gaussian noise with a stated median S/N per
channel. Channels that no template reaches at that redshift are filled with the template mix's
mean level of its outermost 200 channels times the same distortion (a smooth continuation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..templates import C_KMS, Templates

__all__ = ["SimulatedSpectra", "galaxy_spectra", "wrong_peak_rates"]


@dataclass
class SimulatedSpectra:
    """Spectra ``flux`` [n, nwave] with inverse variances ``ivar``, on ``wave`` (vacuum), and the
    truth: redshift ``z``, median S/N per channel ``snr`` and dispersion ``sigma_kms``."""

    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    z: np.ndarray
    snr: np.ndarray
    sigma_kms: np.ndarray


def galaxy_spectra(
    templates: Templates,
    wave,
    z,
    snr,
    *,
    sigma_kms=(0.0, 250.0),
    distortion: float = 0.1,
    seed=None,
) -> SimulatedSpectra:
    """Simulate one spectrum per entry of ``z`` and ``snr`` (see the module docstring).

    Parameters
    ----------
    templates : Templates
        Rest-frame templates whose mixtures make the spectra.
    wave : array_like, shape (nwave,)
        Observed vacuum wavelengths [Angstrom].
    z, snr : array_like, shape (n,)
        True redshifts and median S/N per channel.
    sigma_kms : tuple of float
        Range of the uniform random velocity dispersion [km/s].
    distortion : float
        Standard deviation of the linear and quadratic Legendre terms of the multiplicative
        continuum distortion.
    seed : int or numpy.random.Generator, optional
    """
    rng = np.random.default_rng(seed)
    wave = np.asarray(wave, dtype=float)
    z, snr = np.broadcast_arrays(np.asarray(z, float), np.asarray(snr, float))
    sig = rng.uniform(*sigma_kms, z.size)
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    flux = np.empty((z.size, wave.size))
    cache: dict[float, Templates] = {}
    for s in range(z.size):
        key = round(float(sig[s]), -1)  # 10 km/s steps: a few broadened sets, reused
        if key not in cache:
            cache[key] = templates.broaden(key)
        tpl = cache[key]
        rest = np.log10(wave) - np.log10(1 + z[s])
        w = rng.dirichlet(np.ones(tpl.ntemplates))
        cols = [np.interp(rest, tpl.loglam, f, left=np.nan, right=np.nan) for f in tpl.flux]
        mix = w @ np.array(cols)  # NaN where any template of the mix stops
        inside = np.flatnonzero(np.isfinite(mix))
        if inside.size == 0:
            raise InputError(f"galaxy_spectra: the templates do not reach the data at z={z[s]}")
        lo, hi = inside[0], inside[-1]
        mix[:lo] = np.mean(mix[lo : lo + 200])
        mix[hi + 1 :] = np.mean(mix[max(hi - 199, lo) : hi + 1])
        shape = 1 + distortion * (rng.normal() * x + rng.normal() * (1.5 * x**2 - 0.5))
        flux[s] = mix * shape
    level = np.median(np.abs(flux), axis=1)
    sigma = level / snr
    noisy = flux + sigma[:, None] * rng.normal(size=flux.shape)
    ivar = np.ascontiguousarray(np.broadcast_to((1 / sigma**2)[:, None], flux.shape))
    return SimulatedSpectra(wave, noisy, ivar, z, snr, sig)


def wrong_peak_rates(z_true, z_map, flags, snr, edges, dv_kms: float = 1000.0) -> list[dict]:
    """Catastrophic-failure rates per S/N bin ``[edges[i], edges[i+1])``: for each bin the
    number of spectra, of unflagged ones, the wrong-peak fraction (``|dv| > dv_kms``) of all
    and of the unflagged, and a one-sided 95 % upper limit on the latter (Clopper-Pearson)."""
    from scipy.stats import beta

    z_true, z_map = np.asarray(z_true, float), np.asarray(z_map, float)
    wrong = ~(np.abs(C_KMS * (z_map - z_true) / (1 + z_true)) <= dv_kms)  # NaN counts as wrong
    ok = np.asarray(flags) == 0
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (snr >= lo) & (snr < hi)
        n_ok, k = int((m & ok).sum()), int((m & ok & wrong).sum())
        upper = float(beta.ppf(0.95, k + 1, n_ok - k)) if n_ok > k else 1.0
        rows.append(
            dict(
                snr_lo=lo,
                snr_hi=hi,
                n=int(m.sum()),
                n_unflagged=n_ok,
                wrong_all=float(wrong[m].mean()) if m.any() else np.nan,
                wrong_unflagged=k,
                rate_unflagged=k / n_ok if n_ok else np.nan,
                upper95=upper,
            )
        )
    return rows
