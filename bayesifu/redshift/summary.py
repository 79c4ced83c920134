"""Summaries of grid redshift posteriors: MAP, median, intervals, peaks and ZWARN-like flags.

The flags follow the spirit of redrock's ``ZWARN`` bits (Bailey et al. 2023, AJ 165, 144,
doi:10.3847/1538-3881/acff2f): a set bit means *do not trust the point estimate blindly*.

========================  ====  ==============================================================
flag                      bit   meaning
========================  ====  ==============================================================
``NO_DATA``               1     fewer pixels with data than linear coefficients (nothing to fit),
                                or, on a per-spaxel map of binned spectra, a spaxel in no bin
``LITTLE_COVERAGE``       2     under ``min_coverage`` of the wavelength channels have data
``SMALL_DELTA_CHI2``      4     a separate peak has a chi-square within ``delta_chi2_min``
``Z_AT_EDGE``             8     the MAP lies in the outermost cell(s) of the valid grid
``NEGATIVE_MODEL``        16    the best-fit model summed over the pixels with data is negative
``MULTIPLE_PEAKS``        32    more than one peak holds at least ``p_min`` of the probability
``LOW_SIGNAL``            64    the templates improve chi-square over the polynomial alone by
                                less than ``min_signal_chi2`` (no detectable signal)
``TEMPLATE_COVERAGE``     128   at the MAP the templates cover under ``min_template_coverage``
                                of the pixels with data (the rest is modelled by the
                                polynomials alone)
``POOR_FIT``              256   the templates leave more than ``max_unexplained`` of the
                                chi-square excess over the noise that the polynomials alone
                                leave: ``chi2_min - dof > max_unexplained (chi2_null - dof)``
                                (wrong templates, or a partial match at a wrong redshift);
                                judged where that excess exceeds 5 sqrt(2 dof)
``BETTER_OUTSIDE``        512   a redshift outside the grid (within the posterior's
                                ``range_check``) fits better by more than ``delta_chi2_min``:
                                the true redshift is probably outside the grid
========================  ====  ==============================================================

``POOR_FIT`` and ``BETTER_OUTSIDE`` catch confident wrong answers that the other flags miss:
on the real MUSE cube of Abell 478 (z 0.086), a grid of 0.20-0.22 gives z 0.213 for 701 of 900
spaxels without these flags, and the single template spDR2-028 on the full 0-1 grid gives z 0.86
or 0.38 for 558 of 1600. See BENCHMARKS.md ("Redshift goodness-of-fit flags") for the rates
measured on real and simulated spectra.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.ndimage import maximum_filter1d

from ..errors import ShapeError
from ..templates import C_KMS

__all__ = [
    "RedshiftSummary",
    "summarize",
    "apply_local",
    "per_spaxel",
    "FLAGS",
    "describe_flags",
]

#: Flag names and their bit values.
FLAGS = {
    "NO_DATA": 1,
    "LITTLE_COVERAGE": 2,
    "SMALL_DELTA_CHI2": 4,
    "Z_AT_EDGE": 8,
    "NEGATIVE_MODEL": 16,
    "MULTIPLE_PEAKS": 32,
    "LOW_SIGNAL": 64,
    "TEMPLATE_COVERAGE": 128,
    "POOR_FIT": 256,
    "BETTER_OUTSIDE": 512,
}


def describe_flags(value: int) -> list[str]:
    """Names of the flags set in ``value``."""
    return [name for name, bit in FLAGS.items() if int(value) & bit]


@dataclass
class RedshiftSummary:
    """Point estimates, intervals, peaks and flags of a set of redshift posteriors.

    ``laplace`` marks spectra whose posterior is narrower than the grid: their median and
    intervals are Gaussian (Laplace) values from the curvature of log p at the peak. Every
    attribute has the shape of the set of spectra (``(ny, nx)`` for a cube); the peak
    arrays have one more axis of length ``max_peaks`` (``NaN``-padded, most probable first).
    """

    z_map: np.ndarray
    z_median: np.ndarray
    z_lo68: np.ndarray
    z_hi68: np.ndarray
    z_lo95: np.ndarray
    z_hi95: np.ndarray
    z_mean: np.ndarray
    z_std: np.ndarray
    flags: np.ndarray
    n_peaks: np.ndarray
    peak_z: np.ndarray
    peak_prob: np.ndarray
    delta_chi2: np.ndarray
    laplace: np.ndarray

    def reshaped(self, shape) -> RedshiftSummary:
        """The same summary with the leading axis reshaped to ``shape``."""
        out = {}
        for f in fields(self):
            arr = getattr(self, f.name)
            out[f.name] = arr.reshape(tuple(shape) + arr.shape[1:])
        return RedshiftSummary(**out)

    def velocity(self, z_sys: float) -> np.ndarray:
        """MAP line-of-sight velocity relative to ``z_sys`` [km/s]: c (z - z_sys) / (1 + z_sys)."""
        return C_KMS * (self.z_map - z_sys) / (1 + z_sys)


def per_spaxel(values, binid, fill=None) -> np.ndarray:
    """Per-bin values on the spaxels of a bin-id map.

    Parameters
    ----------
    values : numpy.ndarray, shape (nbins, ...)
        One entry per bin (e.g. a :class:`RedshiftSummary` map of binned spectra).
    binid : numpy.ndarray of int, shape (ny, nx), or None
        Bin of each spaxel, numbered ``0..nbins-1`` (-1: in no bin); ``None``: ``values`` are
        already per spaxel and are returned unchanged.
    fill : scalar, optional
        Value of the spaxels in no bin: default NaN, or 0 for integer values. For
        :attr:`RedshiftSummary.flags` pass ``FLAGS["NO_DATA"]``, so that a spaxel without a
        redshift is never counted as unflagged.

    Returns
    -------
    numpy.ndarray, shape (ny, nx, ...)
        Each spaxel holds its bin's value; spaxels in no bin hold ``fill``.
    """
    if binid is None:
        return values
    if fill is None:
        fill = 0 if np.issubdtype(values.dtype, np.integer) else np.nan
    out = np.full(binid.shape + values.shape[1:], fill, dtype=values.dtype)
    good = binid >= 0
    out[good] = values[binid[good]]
    return out


def _quantiles(u_lo, du, pdf, cdf, q):
    """Quantile ``q`` with the mass spread uniformly over each cell; ``u_lo`` is the lower
    edge of each cell in log10(1+z), ``[nz]`` or ``[n, nz]``."""
    k = np.minimum((cdf < q).sum(axis=1), pdf.shape[1] - 1)
    rows = np.arange(pdf.shape[0])
    prev = np.where(k > 0, cdf[rows, np.maximum(k - 1, 0)], 0.0)
    mass = pdf[rows, k]
    frac = np.clip(np.where(mass > 0, (q - prev) / np.where(mass > 0, mass, 1), 0.5), 0, 1)
    lo = u_lo[k] if u_lo.ndim == 1 else u_lo[rows, k]
    return 10 ** (lo + frac * du) - 1


#: The local refinement is used where the coarse posterior puts at least this much of its
#: probability in the coarse cells that the local grid spans (a single narrow peak).
LOCAL_MIN_MASS = 0.99


def local_mass(z_grid, pdf, local_u) -> np.ndarray:
    """Coarse posterior probability ``[n]`` in the cells that each local grid spans."""
    u = np.log10(1 + np.asarray(z_grid))
    span = (local_u[:, -1] - local_u[:, 0]) / 2 + (u[1] - u[0]) / 2
    center = (local_u[:, 0] + local_u[:, -1]) / 2
    near = np.abs(u[None, :] - center[:, None]) <= span[:, None] + 1e-12
    return np.nansum(np.where(near, pdf, 0.0), axis=1)


def apply_local(summary, z_grid, pdf, local_u, local_logp, min_mass=LOCAL_MIN_MASS):
    """Replace the point estimates and intervals by those of the local fine grids.

    Used for the spectra whose coarse posterior puts at least ``min_mass`` of its probability
    in the coarse cells that the local grid spans (a single narrow peak); the others keep the
    coarse values. Returns a new :class:`RedshiftSummary`.
    """
    du_loc = local_u[:, 1] - local_u[:, 0]
    mass = local_mass(z_grid, pdf, local_u)
    use = (mass >= min_mass) & np.isfinite(local_logp).any(axis=1)
    if not use.any():
        return summary
    logp = np.where(np.isnan(local_logp[use]), -np.inf, local_logp[use])
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    cdf = np.cumsum(p, axis=1)
    du = du_loc[use][:, None]
    lo_edges = local_u[use] - du / 2
    out = {f: getattr(summary, f).copy() for f in summary.__dataclass_fields__}
    for name, q in _QUANTILES:
        out[name][use] = _quantiles(lo_edges, du[:, 0], p, cdf, q)
    u_map, _, sigma = _map_rows(local_u[use], du[:, 0], logp)
    out["z_map"][use] = 10**u_map - 1
    z_loc = 10 ** local_u[use] - 1
    mean = (p * z_loc).sum(axis=1)
    out["z_mean"][use] = mean
    out["z_std"][use] = np.sqrt((p * (z_loc - mean[:, None]) ** 2).sum(axis=1))
    # Still narrower than a local cell: Gaussian from the local curvature (as in summarize).
    narrow = np.isfinite(sigma) & (sigma < du[:, 0])
    for name, k in _GAUSS:
        out[name][use] = np.where(narrow, 10 ** (u_map + k * sigma) - 1, out[name][use])
    out["z_std"][use] = np.where(narrow, np.log(10) * 10**u_map * sigma, out["z_std"][use])
    out["laplace"][use] = narrow
    return RedshiftSummary(**out)


#: Summary fields of the quantiles and their probabilities.
_QUANTILES = (
    ("z_median", 0.5),
    ("z_lo68", 0.16),
    ("z_hi68", 0.84),
    ("z_lo95", 0.025),
    ("z_hi95", 0.975),
)

#: Summary fields of the point estimates and intervals (NaN for spectra without data).
_ESTIMATES = ("z_map", *(name for name, _ in _QUANTILES), "z_mean", "z_std")

#: Summary fields and the standard-normal quantiles they take in the Gaussian (Laplace) case.
_GAUSS = (
    ("z_median", 0.0),
    ("z_lo68", -0.9944578832097535),
    ("z_hi68", 0.9944578832097535),
    ("z_lo95", -1.959963984540054),
    ("z_hi95", 1.959963984540054),
)


def _map_rows(u, du, logp):
    """:func:`_map` for per-row grids ``u [n, nloc]`` with per-row steps ``du [n]``."""
    rows = np.arange(logp.shape[0])
    u_k, k, sigma = _map(np.arange(logp.shape[1], dtype=float), 1.0, logp)
    return u[rows, 0] + u_k * du, k, sigma * du


def _map(u, du, logp):
    """MAP by a parabola through log p at the best cell and its neighbours; also returns the
    index of the best cell and the Gaussian (Laplace) width in log10(1+z) from the curvature."""
    nz = logp.shape[1]
    k = np.argmax(logp, axis=1)
    rows = np.arange(logp.shape[0])
    km, kp = np.maximum(k - 1, 0), np.minimum(k + 1, nz - 1)
    left, mid, right = (logp[rows, i] for i in (km, k, kp))
    finite = np.isfinite(left) & np.isfinite(right)
    with np.errstate(invalid="ignore"):
        curv = np.where(finite, left - 2 * mid + right, 0.0)
    ok = (k > 0) & (k < nz - 1) & finite & (curv < 0)
    shift = np.where(ok, 0.5 * (left - right) / np.where(ok, curv, -1.0), 0.0)
    sigma_u = np.where(ok, du / np.sqrt(-np.where(ok, curv, -1.0)), np.nan)
    return u[k] + np.clip(shift, -0.5, 0.5) * du, k, sigma_u


def _peak_cells(pdf, min_sep):
    """Boolean ``[n, nz]``: cells that are the highest within ``min_sep`` cells on either side."""
    size = 2 * int(np.ceil(min_sep)) + 1
    local = maximum_filter1d(pdf, size=size, axis=1, mode="constant", cval=-1.0)
    tiny = 1e-300 + 1e-15 * pdf.max(axis=1, keepdims=True)
    return (pdf == local) & (pdf > tiny)


def _peaks_one(p, chi2, cells, p_min, max_peaks):
    """Probabilities and chi-square minima of the peaks of one pdf, split at the minima."""
    peaks = np.flatnonzero(cells)
    if peaks.size == 0:
        peaks = np.array([int(np.argmax(p))])
    keep = np.r_[True, np.diff(peaks) > 1]  # a flat top counts once
    peaks = peaks[keep]
    bounds = [0] + [
        int(a + np.argmin(p[a : b + 1])) for a, b in zip(peaks[:-1], peaks[1:], strict=True)
    ]
    bounds = np.array(bounds)
    probs = np.add.reduceat(p, bounds)
    chi_min = np.fmin.reduceat(np.where(np.isfinite(chi2), chi2, np.inf), bounds)
    order = np.argsort(-probs)
    best = order[0]
    others = np.delete(chi_min, best)
    dchi2 = float(np.min(others) - chi_min[best]) if others.size else np.inf
    sig = [k for k in order if probs[k] >= p_min][:max_peaks]
    return peaks[sig], probs[sig], dchi2


def _as_rows(z_grid, logpdf, chi2):
    """``z_grid``, and ``logpdf`` and ``chi2`` as float arrays ``[n, nz]`` of matching shape."""
    z_grid = np.asarray(z_grid, float)
    logp = np.atleast_2d(np.asarray(logpdf, float))
    chi2 = np.atleast_2d(np.asarray(chi2, float))
    if logp.shape != chi2.shape or logp.shape[1] != z_grid.size:
        raise ShapeError(
            f"summarize: logpdf {logp.shape}, chi2 {chi2.shape}, z_grid {z_grid.shape}"
        )
    return z_grid, logp, chi2


def _normalised(logp):
    """Rows without data, log p shifted to a maximum of 0 (0 there) and the cell probabilities."""
    no_data = np.isnan(logp).any(axis=1) | np.isneginf(logp).all(axis=1)
    logp = np.where(no_data[:, None], 0.0, logp)
    logp = logp - logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    p /= p.sum(axis=1, keepdims=True)
    return no_data, logp, p


def _grid_estimates(z_grid, u, du, logp, p):
    """Quantiles, MAP, mean and std on the grid, with the MAP in log10(1+z), its cell and width."""
    cdf = np.cumsum(p, axis=1)
    est = {name: _quantiles(u - du / 2, du, p, cdf, q) for name, q in _QUANTILES}
    u_map, kmap, sigma_u = _map(u, du, logp)
    est["z_map"] = 10**u_map - 1
    est["z_mean"] = (p * z_grid).sum(axis=1)
    spread = (p * (z_grid - est["z_mean"][:, None]) ** 2).sum(axis=1)
    est["z_std"] = np.sqrt(np.maximum(spread, 0))
    return est, u_map, kmap, sigma_u


def _under_resolved(p, kmap, sigma_u, max_sigma_u):
    """Rows whose peak is narrower than ``max_sigma_u`` and whose 5 central cells hold 99 %."""
    near = np.abs(np.arange(p.shape[1])[None, :] - kmap[:, None]) <= 2
    single = np.where(near, p, 0.0).sum(axis=1) >= 0.99
    return np.isfinite(sigma_u) & (sigma_u < max_sigma_u) & single


def _use_laplace(est, laplace, u_map, sigma_u):
    """Where ``laplace``, replace the estimates in ``est`` by those of the Gaussian in log10(1+z).

    The Gaussian has the curvature of log p at the peak: exact for a Gaussian posterior whatever
    the cell size.
    """
    for name, k in _GAUSS:
        est[name] = np.where(laplace, 10 ** (u_map + k * sigma_u) - 1, est[name])
    est["z_std"] = np.where(laplace, np.log(10) * (1 + est["z_map"]) * sigma_u, est["z_std"])
    est["z_mean"] = np.where(laplace, est["z_map"], est["z_mean"])


def _peak_table(z_grid, p, chi2, no_data, min_sep, p_min, max_peaks):
    """Number, redshifts and probabilities of the significant peaks, and the chi-square gap."""
    n = p.shape[0]
    peak_z = np.full((n, max_peaks), np.nan)
    peak_prob = np.full((n, max_peaks), np.nan)
    n_peaks = np.zeros(n, int)
    dchi2 = np.full(n, np.nan)
    cells = _peak_cells(p, min_sep)
    for s in np.flatnonzero(~no_data):
        idx, probs, dchi2[s] = _peaks_one(p[s], chi2[s], cells[s], p_min, max_peaks)
        n_peaks[s] = len(idx)
        peak_z[s, : len(idx)] = z_grid[idx]
        peak_prob[s, : len(idx)] = probs
    return n_peaks, peak_z, peak_prob, dchi2


def _at_edge(kmap, valid_z, nz, edge_cells):
    """Whether the MAP cell is within ``edge_cells`` of either end of the valid grid."""
    valid = np.ones(nz, bool) if valid_z is None else np.asarray(valid_z, bool)
    first, last = np.flatnonzero(valid)[[0, -1]]
    return (kmap - first < edge_cells) | (last - kmap < edge_cells)


def _best_chi2(chi2):
    """Smallest finite chi-square of each row over the grid (NaN for a row without any)."""
    with np.errstate(invalid="ignore"):
        return np.nanmin(np.where(np.isfinite(chi2), chi2, np.nan), 1)


def _signal_gain(chi2_null, chi2_min):
    """Chi-square gained by the templates over the polynomials alone; None without ``chi2_null``."""
    if chi2_null is None:
        return None
    return np.asarray(chi2_null) - chi2_min


#: POOR_FIT is judged only where the polynomials alone leave a chi-square excess over the noise
#: of more than this many standard deviations of chi-square(dof), sqrt(2 dof): the structure
#: the templates should explain. Below it (noise-only spectra, mostly LOW_SIGNAL) the unexplained
#: fraction is a ratio of noise terms and says nothing about the templates.
POOR_FIT_MIN_EXCESS = 5.0


def _poor_fit(chi2_min, chi2_null, dof, max_unexplained):
    """``chi2_min - dof > max_unexplained (chi2_null - dof)`` where the polynomials alone leave a
    significant excess over the noise; False without ``chi2_null`` or ``dof``."""
    if chi2_null is None or dof is None:
        return False
    dof = np.asarray(dof, dtype=float)
    with np.errstate(invalid="ignore"):
        excess_null = np.asarray(chi2_null) - dof
        judged = excess_null > POOR_FIT_MIN_EXCESS * np.sqrt(2 * np.maximum(dof, 1))
        return judged & (chi2_min - dof > max_unexplained * excess_null)


def _fits_better_outside(chi2_min, chi2_outside, delta_chi2_min):
    """The smallest chi-square outside the grid is below the one inside by ``delta_chi2_min``."""
    if chi2_outside is None:
        return False
    with np.errstate(invalid="ignore"):
        return np.asarray(chi2_outside) < chi2_min - delta_chi2_min


def _below(values, limit):
    """``values < limit`` (False where NaN); False everywhere when ``values`` is None."""
    if values is None:
        return False
    with np.errstate(invalid="ignore"):
        return np.asarray(values) < limit


def _bit(condition, name):
    """The value of flag ``name`` where ``condition`` holds, else 0."""
    return np.where(condition, FLAGS[name], 0)


def _masked_summary(est, no_data, flags, laplace, n_peaks, peak_z, peak_prob, dchi2):
    """The :class:`RedshiftSummary`, its estimates NaN for the rows without data."""
    nan = np.where(no_data, np.nan, 1.0)
    return RedshiftSummary(
        **{name: est[name] * nan for name in _ESTIMATES},
        flags=flags.astype(np.int32),
        n_peaks=n_peaks,
        peak_z=peak_z,
        peak_prob=peak_prob,
        delta_chi2=dchi2,
        laplace=laplace & ~no_data,
    )


def summarize(  # noqa: PLR0913 -- public API: one option per flag threshold
    z_grid,
    logpdf,
    chi2,
    *,
    valid_z=None,
    coverage=None,
    model_sum=None,
    chi2_null=None,
    template_coverage=None,
    dof=None,
    chi2_outside=None,
    min_signal_chi2: float = 100.0,
    max_unexplained: float = 0.8,
    min_template_coverage: float = 0.5,
    p_min: float = 0.01,
    max_peaks: int = 5,
    delta_chi2_min: float = 9.0,
    min_separation_kms: float = 1000.0,
    min_coverage: float = 0.5,
    edge_cells: int = 1,
    laplace_cells: float = 1.0,
) -> RedshiftSummary:
    """Summarise posteriors ``exp(logpdf) [n, nz]`` (cell probabilities) on ``z_grid``.

    Parameters
    ----------
    z_grid : numpy.ndarray, shape (nz,)
        Grid uniform in log10(1+z).
    logpdf, chi2 : numpy.ndarray, shape (n, nz)
        log cell probabilities (normalised here; ``-inf`` allowed; rows with a ``NaN`` = no
        data) and minimum chi-square per redshift.
    valid_z : numpy.ndarray of bool, shape (nz,), optional
        The redshifts that were evaluated (the edges of this range define ``Z_AT_EDGE``).
    coverage : numpy.ndarray, shape (n,), optional
        Fraction of the channels with data.
    model_sum : numpy.ndarray, shape (n,), optional
        Sum of the best-fit model over the pixels with data.
    chi2_null : numpy.ndarray, shape (n,), optional
        Chi-square without templates (polynomial terms only).
    template_coverage : numpy.ndarray, shape (n,), optional
        Fraction of the pixels with data that the templates cover at the MAP.
    dof : numpy.ndarray, shape (n,), optional
        Degrees of freedom of the fit: pixels with data minus linear coefficients.
    chi2_outside : numpy.ndarray, shape (n,), optional
        Smallest chi-square at the redshifts outside the grid that were also fitted (see
        ``range_check`` of :func:`bayesifu.redshift.redshift_posterior`).
    min_template_coverage : float
        ``TEMPLATE_COVERAGE`` below this fraction.
    min_signal_chi2 : float
        ``LOW_SIGNAL`` when ``chi2_null`` minus the smallest chi-square over the grid is below
        this (the templates explain almost nothing: a redshift from noise or residuals).
    max_unexplained : float
        ``POOR_FIT`` when the best fit leaves more than this fraction of ``chi2_null - dof``
        (the structure above the noise that the polynomials alone do not model) unexplained.
        The default 0.8 flags 0.7 % of the otherwise unflagged spaxels of the real MUSE cube of
        Abell 478 fitted with the SDSS templates spDR2-023..027 at the right redshift, and
        99.8 % of those that the single template spDR2-028 puts at a wrong one; for spectra
        that the model describes (simulated from the templates), where POOR_FIT is judged
        (``chi2_null - dof > 5 sqrt(2 dof)``) a value above 0.8 needs ``chi2_min - dof`` above
        4 sqrt(2 dof), a fluctuation of more than 4 sigma.
    p_min : float
        Smallest probability of a peak counted as significant.
    max_peaks : int
        Number of peaks reported.
    delta_chi2_min : float
        ``SMALL_DELTA_CHI2`` is set when another peak's chi-square is within this of the best's
        (redrock uses 9); ``BETTER_OUTSIDE`` when a redshift outside the grid beats the best by
        more than this.
    min_separation_kms : float
        Peaks closer than this velocity [km/s] count as one.
    min_coverage : float
        ``LITTLE_COVERAGE`` below this fraction of channels with data.
    edge_cells : int
        ``Z_AT_EDGE`` when the MAP is within this many cells of either end of the valid grid.
    laplace_cells : float
        When the Gaussian width given by the curvature of log p at the peak is below this many
        grid cells and the five cells around the peak hold 99 % of the probability, the grid
        does not resolve the posterior: the median and intervals then come from that Gaussian
        (``laplace`` is set) instead of the cumulative sum over cells. (The local refinement
        of :func:`bayesifu.redshift.redshift_posterior` replaces this where it is on.)
    """
    z_grid, logp, chi2 = _as_rows(z_grid, logpdf, chi2)
    no_data, logp, p = _normalised(logp)
    u = np.log10(1 + z_grid)
    du = u[1] - u[0]
    est, u_map, kmap, sigma_u = _grid_estimates(z_grid, u, du, logp, p)
    laplace = _under_resolved(p, kmap, sigma_u, laplace_cells * du)
    _use_laplace(est, laplace, u_map, sigma_u)
    min_sep = min_separation_kms / (C_KMS * np.log(10) * du)
    n_peaks, peak_z, peak_prob, dchi2 = _peak_table(
        z_grid, p, chi2, no_data, min_sep, p_min, max_peaks
    )
    at_edge = _at_edge(kmap, valid_z, z_grid.size, edge_cells)
    low_template = _below(template_coverage, min_template_coverage)
    chi2_min = _best_chi2(chi2)
    poor = _poor_fit(chi2_min, chi2_null, dof, max_unexplained)
    outside = _fits_better_outside(chi2_min, chi2_outside, delta_chi2_min)
    flags = (
        _bit(no_data, "NO_DATA")
        | _bit(_below(coverage, min_coverage), "LITTLE_COVERAGE")
        | _bit(dchi2 < delta_chi2_min, "SMALL_DELTA_CHI2")
        | _bit(at_edge & ~no_data, "Z_AT_EDGE")
        | _bit(_below(model_sum, 0), "NEGATIVE_MODEL")
        | _bit(n_peaks > 1, "MULTIPLE_PEAKS")
        | _bit(_below(_signal_gain(chi2_null, chi2_min), min_signal_chi2), "LOW_SIGNAL")
        | _bit(low_template & ~no_data, "TEMPLATE_COVERAGE")
        | _bit(poor & ~no_data, "POOR_FIT")
        | _bit(outside & ~no_data, "BETTER_OUTSIDE")
    )
    return _masked_summary(est, no_data, flags, laplace, n_peaks, peak_z, peak_prob, dchi2)
