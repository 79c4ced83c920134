"""Spectral matching of IFU spectra to photometry: a Legendre correction per bin, as a posterior.

The model
---------
For bin (or spaxel) :math:`b` with observed spectrum :math:`f_{bk}` (channels :math:`k`) and
photometry :math:`m_{bj}` (bands :math:`j`) on the same footprint and PSF, the spectrum is wrong by
a smooth factor

.. math::

    P_b(\\lambda) = \\sum_{l=0}^{d} a_{bl}\\, L_l(x(\\lambda)),\\qquad x\\in[-1, 1]
    \\text{ over the spectrum's range},

and the photometry is the synthetic photometry of the corrected spectrum,

.. math::

    m_{bj} = \\sum_k W_{jk}\\, P_b(\\lambda_k)\\, f^{\\rm true}_{bk} + \\epsilon_{bj},

with :math:`\\mathbf W` the band-averaging weights (:func:`bayesifu.imaging.photometry_matrix`)
and :math:`\\epsilon` the photometric noise (covariance :math:`\\Sigma^{\\rm phot}`, between bins
in each band, from :meth:`SpectroPhotometricSEDs.photometry_covariance`).

Choice: the spectrum is the noisy *shape*, :math:`f = f^{\\rm true} + e`, :math:`e\\sim
N(0, S)`, and :math:`f^{\\rm true}` has a flat prior; marginalising it analytically gives

.. math::

    \\mathbf m \\mid \\mathbf a, \\mathbf f \\sim N\\big(\\mathbf W(P\\,\\mathbf f),\\;
    \\Sigma^{\\rm phot} + \\Sigma^{\\rm syn}(\\mathbf a)\\big),\\qquad
    \\Sigma^{\\rm syn}_{bj,di} = \\sum_k W_{jk}W_{ik}P_b(\\lambda_k)P_d(\\lambda_k) S_{k,bd},

exact for Gaussian noise (:func:`bayesifu.imaging.synthetic_covariance`; :math:`S_k` is the
covariance between bins in channel :math:`k`, or their variance alone). This keeps the parameter
count at :math:`n_{\\rm bins}(d+1)` instead of adding every channel of every spectrum. The spectra
carry no information about :math:`\\mathbf a` beyond that, so with :math:`n_{\\rm band}` bands
and :math:`d + 1 > n_{\\rm band}` coefficients (or narrow bands that cannot tell high orders
apart) the likelihood is flat along some directions: Levenberg-Marquardt's covariance is singular
there, while the posterior falls back to the prior -- wide, not missing.

Priors (documented defaults; :math:`a_0` is the grey scale, the others the shape)::

    a_b0 ~ Normal(1, 0.2)          (the spectrum's flux scale is right to ~20 %)
    a_bl ~ Normal(0, 0.1),  l >= 1 (a smooth tilt/curvature of ~10 % across the range)

Recorded: ``coef`` ``(n_bins, d + 1)``, ``photometry_model`` ``(n_bins, n_band)`` and, unless
``record_correction=False``, ``correction`` :math:`P_b(\\lambda_k)` ``(n_bins, nwave)``; the
corrected spectra and their uncertainty follow with :func:`bayesifu.imaging.corrected_spectra`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesifu.errors import InputError, ShapeError
from bayesifu.imaging.filters import Band
from bayesifu.imaging.spectral import (
    corrected_photometry,
    covariance_from_terms,
    legendre_correction,
    legendre_design,
    photometry_design,
    photometry_matrix,
    synthetic_covariance_terms,
)

__all__ = ["model", "inputs_from_seds", "photometric_covariance", "cutout_bands", "main"]

#: Default prior (mean, sd) of the grey scale a_0 and sd of the higher orders.
A0_PRIOR = (1.0, 0.2)
ORDER_SD = 0.1


def photometric_covariance(photometry_covariance, n_bins, n_band) -> np.ndarray:
    """The dense ``(n_bins n_band)**2`` photometric covariance, bin-major.

    ``photometry_covariance`` is ``(n_band, n_bins, n_bins)`` (between bins in each band; bands
    independent) or ``(n_bins, n_band)`` (variances only)."""
    c = np.asarray(photometry_covariance, dtype=float)
    if c.shape == (n_bins, n_band):
        return np.diag(c.ravel())
    if c.shape != (n_band, n_bins, n_bins):
        raise ShapeError(
            f"photometry_covariance must be ({n_band}, {n_bins}, {n_bins}) or ({n_bins}, "
            f"{n_band}), got {c.shape}"
        )
    full = np.zeros((n_bins, n_band, n_bins, n_band))
    j = np.arange(n_band)
    full[:, j, :, j] = c
    return full.reshape(n_bins * n_band, n_bins * n_band)


def _prior(n_bins, n_coef, a0_prior, order_sd):
    loc = np.zeros((n_bins, n_coef))
    loc[:, 0] = a0_prior[0]
    sd = np.full((n_bins, n_coef), float(order_sd))
    sd[:, 0] = a0_prior[1]
    return dist.Normal(jnp.asarray(loc), jnp.asarray(sd)).to_event(2)


def model(  # noqa: PLR0913 -- the data arrays and the documented prior options
    flux,
    weights,
    design,
    obs=None,
    *,
    photometry_covariance,
    spectra_covariance,
    a0_prior=A0_PRIOR,
    order_sd=ORDER_SD,
    record_correction=True,
):
    """NumPyro program of the multiplicative Legendre correction of binned spectra.

    Parameters
    ----------
    flux : array_like, shape (n_bins, nwave)
        Observed spectra [unit].
    weights : array_like, shape (n_band, nwave)
        Band-averaging weights :math:`\\mathbf W` (:func:`~bayesifu.imaging.photometry_matrix`).
    design : array_like, shape (nwave, d + 1)
        Legendre design (:func:`~bayesifu.imaging.legendre_design`).
    obs : array_like, shape (n_bins, n_band), optional
        Observed photometry [unit]; ``None`` samples the prior predictive.
    photometry_covariance : array_like
        ``(n_band, n_bins, n_bins)`` or ``(n_bins, n_band)`` (see :func:`photometric_covariance`)
        [unit**2].
    spectra_covariance : array_like
        ``(n_bins, nwave)`` variances or ``(nwave, n_bins, n_bins)`` covariances [unit**2].
    a0_prior : (float, float)
        Mean and sd of the Normal prior of :math:`a_0`.
    order_sd : float
        Sd of the zero-mean Normal priors of :math:`a_{l\\geq 1}`.
    record_correction : bool
        Record ``correction`` (``n_bins * nwave`` numbers per draw).
    """
    flux = np.asarray(flux, dtype=float)
    n_bins, nwave = flux.shape
    n_band, n_coef = np.shape(weights)[0], np.shape(design)[1]
    if np.shape(weights)[1] != nwave or np.shape(design)[0] != nwave:
        raise ShapeError(f"weights {np.shape(weights)} and design {np.shape(design)} vs {nwave}")
    if obs is not None and np.shape(obs) != (n_bins, n_band):
        raise ShapeError(f"obs must be ({n_bins}, {n_band}), got {np.shape(obs)}")
    if a0_prior[1] <= 0 or order_sd <= 0:
        raise InputError("prior standard deviations must be positive")
    cov_phot = jnp.asarray(photometric_covariance(photometry_covariance, n_bins, n_band))
    # everything that does not depend on the coefficients is summed over channels once
    m_design = jnp.asarray(photometry_design(flux, weights, design))
    terms = jnp.asarray(synthetic_covariance_terms(spectra_covariance, weights, design))
    coef = numpyro.sample("coef", _prior(n_bins, n_coef, a0_prior, order_sd))
    mu = jnp.einsum("bjl,bl->bj", m_design, coef)
    numpyro.deterministic("photometry_model", mu)
    if record_correction:
        numpyro.deterministic("correction", legendre_correction(coef, design))
    cov = cov_phot + covariance_from_terms(coef, terms)
    numpyro.sample(
        "obs",
        dist.MultivariateNormal(mu.ravel(), covariance_matrix=cov),
        obs=None if obs is None else jnp.ravel(jnp.asarray(obs)),
    )


def inputs_from_seds(seds, degree=2, bins=None, full_covariance=True):
    """Model arguments from :class:`~bayesifu.imaging.SpectroPhotometricSEDs`.

    Parameters
    ----------
    seds : SpectroPhotometricSEDs
    degree : int
        Legendre degree :math:`d`.
    bins : array_like of int, optional
        Rows to fit (default: :attr:`~SpectroPhotometricSEDs.complete` bins).
    full_covariance : bool
        Keep the covariance between bins (else variances only, bins independent).

    Returns
    -------
    args, kwargs : tuple, dict
        For ``bayesifu.sample(model, *args, **kwargs)``.
    """
    bins = np.flatnonzero(seds.complete) if bins is None else np.asarray(bins)
    if bins.size == 0:
        raise InputError("no bin has complete photometry and spectra to match")
    w = photometry_matrix(seds.wave, seds.bands, medium=seds.wave_medium)
    design = legendre_design(seds.wave, degree)
    flux = seds.spectra.flux[bins]
    if full_covariance:
        pc = seds.photometry_covariances()[:, bins][:, :, bins]
        sc = seds.spectra_covariances()[:, bins][:, :, bins]
    else:
        pc = np.array([np.diag(c)[bins] for c in seds.photometry_covariances()]).T
        sc = seds.spectra.variance[bins]
    kwargs = {"obs": seds.photometry[bins], "photometry_covariance": pc, "spectra_covariance": sc}
    return (flux, w, design), kwargs


def cutout_bands(n=5, lo=6830.0, hi=7470.0) -> list:
    """``n`` adjacent top-hat bands (2 A ramps) tiling ``lo``-``hi`` [Angstrom, vacuum].

    The MUSE cut-out of the tests covers 6801-7500 A in air, in which speclite has one band
    (suprime-IB709); these stand in for a set of intermediate bands."""
    edges = np.linspace(lo, hi, n + 1)
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        wave = np.array([a - 2.0, a, b, b + 2.0])
        out.append(Band(f"tophat-{a:.0f}-{b:.0f}", wave, np.array([0.0, 1.0, 1.0, 0.0])))
    return out


def _simulate(cube, bands, truth, degree, phot_frac, seed):
    """Photometry of 2x2-binned real spectra corrected by ``truth`` (n_bins, d + 1), with noise."""
    from bayesifu.binning import Binning, bin_spectra

    ny, nx = cube.spatial_shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    binid = np.where((yy // 2 < 3) & (xx // 2 < 3), (yy // 2) * 3 + xx // 2, -1)
    binid = np.roll(binid, (12, 12), axis=(0, 1))
    spec = bin_spectra(cube, Binning(binid))
    w = photometry_matrix(cube.wave, bands, medium=cube.wave_medium)
    design = legendre_design(cube.wave, degree)
    n_bins = spec.n_bins
    true_phot = np.asarray(corrected_photometry(truth[:n_bins], spec.flux, w, design))
    rng = np.random.default_rng(seed)
    sd = phot_frac * np.abs(true_phot)
    # the binned spectra are the observed ones; the photometry sees the true (unknown) spectra
    noise_f = rng.standard_normal(spec.flux.shape) * np.sqrt(spec.variance)
    phot = np.asarray(corrected_photometry(truth[:n_bins], spec.flux - noise_f, w, design))
    phot = phot + sd * rng.standard_normal(phot.shape)
    args = (spec.flux, w, design)
    kwargs = {"obs": phot, "photometry_covariance": sd**2, "spectra_covariance": spec.variance}
    return args, kwargs


def main(argv=None):
    """The real MUSE cut-out's spectra (9 bins of 2x2 spaxels) with a known correction, and five
    top-hat bands: the posterior of the correction at degree 2, and at degree 5 (six coefficients,
    five bands) where least squares is singular and the posterior is wide along the null space."""
    numpyro.enable_x64()
    from bayesifu import _arviz, read_cube
    from bayesifu.datasets import muse_abell478
    from bayesifu.imaging import corrected_spectra
    from bayesifu.sampling import sample

    cube = read_cube(muse_abell478())
    bands = cutout_bands()
    truth = np.tile([1.1, -0.05, 0.03, 0.0, 0.0, 0.0], (9, 1))
    for degree in (2, 5):
        args, kwargs = _simulate(cube, bands, truth[:, : degree + 1], degree, 0.01, seed=1)
        idata = sample(model, *args, **kwargs, chains=2, draws=500, warmup=500)
        coef = np.asarray(_arviz.group(idata, "posterior")["coef"])
        coef = coef.reshape(-1, *coef.shape[2:])
        mean, sd = corrected_spectra(coef, args[0], args[2], kwargs["spectra_covariance"])
        print(f"degree {degree}: bin 0 posterior of a (truth {truth[0, : degree + 1]}):")
        print("  mean", np.round(coef[:, 0].mean(axis=0), 4))
        print("  sd  ", np.round(coef[:, 0].std(axis=0), 4))
        frac = np.median(sd[0] / mean[0])
        print(f"  corrected spectrum of bin 0: median fractional sd {frac:.3g}")
    return idata


if __name__ == "__main__":
    main()
