"""Posteriors and calibration: p(z) curves, posterior pairs and the chi-square histogram.

Every function takes an optional ``ax`` and returns what it drew on; nothing calls ``plt.show``.
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from ..errors import InputError, ShapeError
from ..templates import C_KMS
from ._common import new_axes

__all__ = ["plot_pz", "plot_pairs", "plot_trace", "plot_chi2_calibration", "central_intervals"]

#: Probability of the intervals shaded by :func:`plot_pz`.
LEVELS = (0.68, 0.95)


def central_intervals(z_grid, pdf, levels=LEVELS):
    """Central intervals of a posterior given as probabilities per grid cell.

    Parameters
    ----------
    z_grid : array_like, shape (nz,)
        Increasing redshifts.
    pdf : array_like, shape (nz,)
        Probability (or density) at each grid point; normalised here.
    levels : sequence of float
        Probabilities of the intervals.

    Returns
    -------
    numpy.ndarray, shape (len(levels), 2)
        ``[[lo, hi], ...]`` from linear interpolation of the cumulative distribution.
    """
    p = np.clip(np.nan_to_num(np.asarray(pdf, dtype=float)), 0.0, None)
    total = p.sum()
    if total <= 0:
        return np.full((len(levels), 2), np.nan)
    cdf = np.cumsum(p) / total
    cdf_mid = cdf - 0.5 * p / total
    out = []
    for level in levels:
        tails = [(1 - level) / 2, (1 + level) / 2]
        out.append(np.interp(tails, cdf_mid, z_grid))
    return np.array(out)


def _as_curves(z_grid, pdf):
    """The grid and the curves as float arrays ``(nz,)`` and ``(n_curves, nz)``, checked."""
    z_grid = np.asarray(z_grid, dtype=float)
    pdf = np.atleast_2d(np.asarray(pdf, dtype=float))
    if z_grid.ndim != 1 or pdf.shape[-1] != z_grid.size or pdf.ndim != 2:
        raise ShapeError(
            f"pdf must have shape (nz,) or (n_curves, nz) with nz = {z_grid.size}, got {pdf.shape}"
        )
    if np.any(np.diff(z_grid) <= 0):
        raise InputError("z_grid must increase strictly")
    return z_grid, pdf


def _per_curve(value, n, name):
    """``value`` as a list of ``n`` entries (None, one common float, or one float per curve)."""
    if value is None:
        return [None] * n
    value = np.asarray(value, dtype=float)
    if value.ndim == 0:
        return [float(value)] * n
    if value.shape[0] != n:
        raise ShapeError(f"{name} must have one entry per curve ({n}), got shape {value.shape}")
    return list(value)


def plot_pz(  # noqa: PLR0913 -- public plot: matplotlib-style keyword options
    z_grid,
    pdf,
    labels=None,
    *,
    intervals=None,
    truth=None,
    z_ref=None,
    ax=None,
    fig=None,
    xlim="auto",
    ylabel="p(z) per grid cell",
    title=None,
):
    """Redshift posteriors with their 68 % and 95 % central intervals shaded.

    Parameters
    ----------
    z_grid : array_like, shape (nz,)
        The redshift grid.
    pdf : array_like, shape (nz,) or (n_curves, nz)
        Posterior probability per grid cell (e.g. :attr:`bayesifu.redshift.RedshiftPosterior.pdf`).
    labels : sequence of str, optional
        One legend entry per curve.
    intervals : array_like, shape (n_curves, 2, 2), optional
        ``[[lo68, hi68], [lo95, hi95]]`` per curve (e.g. from
        :class:`~bayesifu.redshift.RedshiftSummary`); default: :func:`central_intervals`.
    truth : float or array_like, optional
        A known redshift (per curve or common), drawn as a dashed line.
    z_ref : float, optional
        Plot against the velocity relative to ``z_ref``, :math:`c (z - z_{ref})/(1 + z_{ref})`
        [km/s], instead of z.
    ax, fig : optional
        Where to draw.
    xlim : "auto", (float, float) or None
        ``"auto"``: zoom on the union of the 99.9 % ranges (a sharp peak on a wide grid is
        otherwise invisible); ``None``: the whole grid.
    ylabel, title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    z_grid, pdf, labels, intervals, truths = _pz_curves(z_grid, pdf, labels, intervals, truth)
    ax = new_axes(ax, fig, figsize=(6.4, 3.8))
    x = _velocity_or_z(z_grid, z_ref)
    for k in range(pdf.shape[0]):
        color = _draw_pz_curve(ax, x, z_grid, pdf[k], labels[k], intervals[k])
        if truths[k] is not None:
            ax.axvline(_velocity_or_z(truths[k], z_ref), color=color, ls="--", lw=1)
    _add_pz_legend_keys(ax, truth is not None)
    _set_pz_xlim(ax, z_grid, pdf, xlim, z_ref)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("z" if z_ref is None else f"velocity relative to z = {z_ref:.5f} [km/s]")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    return ax


def _pz_curves(z_grid, pdf, labels, intervals, truth):
    """The checked curves, one label, one ``(n_levels, 2)`` interval array and one truth each."""
    z_grid, pdf = _as_curves(z_grid, pdf)
    n = pdf.shape[0]
    labels = [f"spectrum {k}" for k in range(n)] if labels is None else list(labels)
    if len(labels) != n:
        raise ShapeError(f"labels has {len(labels)} entries for {n} curves")
    if intervals is None:
        intervals = [central_intervals(z_grid, p) for p in pdf]
    intervals = np.asarray(intervals, dtype=float).reshape(n, -1, 2)
    return z_grid, pdf, labels, intervals, _per_curve(truth, n, "truth")


def _velocity_or_z(z, z_ref):
    """The x coordinate of ``z``: z itself, or the velocity relative to ``z_ref`` [km/s]."""
    z = np.asarray(z, dtype=float)
    return z if z_ref is None else C_KMS * (z - z_ref) / (1 + z_ref)


def _draw_pz_curve(ax, x, z_grid, p, label, intervals):
    """Draw one p(z) curve with its intervals shaded (the widest lightest); return its colour."""
    (line,) = ax.plot(x, p, lw=1.2, drawstyle="steps-mid", label=label)
    for (lo, hi), alpha in zip(intervals[::-1], (0.15, 0.35), strict=False):
        if np.isfinite(lo) and np.isfinite(hi):
            inside = (z_grid >= lo) & (z_grid <= hi)
            ax.fill_between(x, 0, p, where=inside, step="mid", color=line.get_color(),
                            alpha=alpha, lw=0)  # fmt: skip
    return line.get_color()


def _add_pz_legend_keys(ax, with_truth):
    """Legend entries for the shaded intervals (and the true-z line)."""
    ax.fill_between([], [], color="0.5", alpha=0.5, label="68 % interval (dark)")
    ax.fill_between([], [], color="0.5", alpha=0.15, label="95 % interval (light)")
    if with_truth:
        ax.plot([], [], color="0.3", ls="--", label="true z")


def _set_pz_xlim(ax, z_grid, pdf, xlim, z_ref):
    """The x range: ``"auto"`` zooms on the union of the 99.9 % ranges, a pair is used as given."""
    if isinstance(xlim, str) and xlim == "auto":
        wide = np.array([central_intervals(z_grid, p, (0.999,))[0] for p in pdf])
        if np.all(np.isfinite(wide)):
            lo, hi = wide[:, 0].min(), wide[:, 1].max()
            pad = max(0.3 * (hi - lo), 5 * np.median(np.diff(z_grid)))
            ax.set_xlim(_velocity_or_z(lo - pad, z_ref), _velocity_or_z(hi + pad, z_ref))
    elif xlim is not None:
        ax.set_xlim(*xlim)


#: Tick marks per axis of a pair plot: few enough that rotated labels do not overlap.
PAIR_TICKS = 3


def plot_pairs(idata, var_names=None, *, kind="kde", figsize=None, units=None, **kwargs):
    """Posterior pairs (corner plot) of the sampled parameters through ArviZ.

    Parameters
    ----------
    idata : arviz.InferenceData (or DataTree with arviz 1.x)
        Results of :func:`bayesifu.sample`.
    var_names : list of str, optional
        Parameters to show (default: every posterior variable).
    kind : {"kde", "scatter", "hexbin"}
        How the joint distributions are drawn (arviz 0.x).
    figsize : (float, float), optional
    units : dict, optional
        Unit of each parameter, shown in its axis labels as ``name [unit]`` (e.g.
        ``{"pa": "deg", "vmax": "km/s", "x0": "spaxel"}``).
    **kwargs
        Passed to :func:`arviz.plot_pair`.

    Returns
    -------
    matplotlib.figure.Figure
        At most :data:`PAIR_TICKS` ticks per axis, x tick labels rotated, so they do not overlap.
    """
    from .. import _arviz  # here: ArviZ is slow to import and the redshift plots do not need it

    if _arviz.ARVIZ_1:
        return _tidy_pairs(_corner(_arviz.group(idata, "posterior"), var_names, figsize), units)
    n = len(var_names) if var_names is not None else len(_arviz.group(idata, "posterior").data_vars)
    size = figsize or (2.2 * n + 1, 2.2 * n + 1)
    with warnings.catch_warnings():
        # arviz 0.x calls a matplotlib helper deprecated in matplotlib 3.11 (harmless here).
        warnings.filterwarnings("ignore", message="Passing a dict or None as alias_mapping")
        axes = _arviz.plot_pair(
            idata,
            var_names=var_names,
            kind=kind,
            marginals=True,
            point_estimate="median",
            figsize=size,
            **kwargs,
        )
    grid = np.asarray(axes)
    if grid.ndim == 2:  # marginals on the diagonal: their y axis is a density, not a parameter
        for i in range(min(grid.shape)):
            grid[i, i].set_ylabel("")
            grid[i, i].tick_params(labelleft=False)
    return _tidy_pairs(grid.ravel()[0].figure, units)


def _tidy_pairs(fig, units):
    """Units in the axis labels, and ticks that do not overlap (few, x labels rotated)."""
    from matplotlib.ticker import MaxNLocator

    units = units or {}
    for ax in fig.axes:
        for axis, get, set_ in ((ax.xaxis, ax.get_xlabel, ax.set_xlabel),
                                (ax.yaxis, ax.get_ylabel, ax.set_ylabel)):  # fmt: skip
            axis.set_major_locator(MaxNLocator(PAIR_TICKS))
            name = get()
            if name in units and units[name]:
                set_(f"{name} [{units[name]}]")
        for label in ax.get_xticklabels():
            label.set_rotation(45)
            label.set_horizontalalignment("right")
    return fig


def _corner(posterior, var_names, figsize):
    """A plain corner plot from a posterior Dataset (used with arviz 1.x)."""
    names = list(var_names or posterior.data_vars)
    samples = [np.asarray(posterior[v]).ravel() for v in names]
    n = len(names)
    fig, axes = plt.subplots(
        n, n, figsize=figsize or (2.2 * n + 1, 2.2 * n + 1), squeeze=False, layout="constrained"
    )
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
            elif i == j:
                ax.hist(samples[i], bins=30, color="C0", alpha=0.7)
            else:
                ax.plot(samples[j], samples[i], ".", ms=1, alpha=0.3, color="C0")
            if i == n - 1:
                ax.set_xlabel(names[j])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i])
    return fig


def plot_trace(idata, var_names=None, *, figsize=None, units=None):
    """Traces of the sampled parameters: per-chain marginals (left) and draws (right).

    A plain matplotlib figure that looks the same under arviz 0.x and 1.x (whose
    ``plot_trace`` signatures differ).

    Parameters
    ----------
    idata : arviz.InferenceData (or DataTree with arviz 1.x)
        Results of :func:`bayesifu.sample`.
    var_names : list of str, optional
        Scalar parameters to show (default: every scalar posterior variable).
    figsize : (float, float), optional
    units : dict, optional
        Unit of each parameter, shown as ``name [unit]``.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes, shape (n_vars, 2)
    """
    from .. import _arviz  # here: ArviZ is slow to import

    posterior = _arviz.group(idata, "posterior")
    names = (
        list(var_names)
        if var_names is not None
        else [v for v in posterior.data_vars if posterior[v].ndim == 2]
    )
    if not names:
        raise InputError("plot_trace: the posterior has no scalar parameter to show")
    missing = [v for v in names if v not in posterior.data_vars]
    if missing:
        raise InputError(
            f"var_names: {missing} not in the posterior (it has {list(posterior.data_vars)})"
        )
    units = units or {}
    fig, axes = plt.subplots(
        len(names), 2, figsize=figsize or (10, 1.8 * len(names) + 0.6), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    for row, name in zip(axes, names, strict=True):
        draws = np.asarray(posterior[name], dtype=float)
        if draws.ndim != 2:
            raise ShapeError(
                f"var_names: {name!r} has shape {draws.shape[2:]} per draw; "
                "plot_trace shows scalar parameters only"
            )
        label = f"{name} [{units[name]}]" if units.get(name) else name
        edges = np.histogram_bin_edges(draws[np.isfinite(draws)], bins=30)
        for c, chain in enumerate(draws):
            row[0].hist(chain, bins=edges, histtype="step", density=True, color=f"C{c}",
                        label=f"chain {c}")  # fmt: skip
            row[1].plot(chain, lw=0.6, alpha=0.8, color=f"C{c}")
        row[0].set_xlabel(label)
        row[0].set_ylabel("density")
        row[1].set_ylabel(label)
        row[1].set_xlabel("draw")
    axes[0, 0].legend(fontsize=7, frameon=False)
    return axes


def plot_chi2_calibration(
    chi2_values,
    dof,
    *,
    ax=None,
    fig=None,
    bins=40,
    label="chi-square of the likelihood",
    title=None,
):
    """Histogram of chi-square values against the :math:`\\chi^2_{dof}` density.

    For noise drawn from the covariance the likelihood assumes, the chi-square of each draw must
    follow :math:`\\chi^2` with ``dof`` degrees of freedom (mean ``dof``, standard deviation
    :math:`\\sqrt{2\\,dof}`). The legend gives the sample mean and standard deviation and the
    Kolmogorov-Smirnov p-value (:func:`scipy.stats.kstest`).

    Parameters
    ----------
    chi2_values : array_like, shape (n_draws,)
        Chi-square of each draw.
    dof : int
        Degrees of freedom of the likelihood (``MapLikelihood.dof``).
    ax, fig : optional
        Where to draw.
    bins : int
        Histogram bins.
    label, title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    values = np.asarray(chi2_values, dtype=float).ravel()
    if values.size < 2 or not np.all(np.isfinite(values)):
        raise InputError("chi2_values must hold at least two finite numbers")
    if not dof > 0:
        raise InputError(f"dof must be positive, got {dof}")
    law = stats.chi2(dof)
    ax = new_axes(ax, fig, figsize=(6.0, 3.8))
    lo = min(values.min(), law.ppf(1e-4))
    hi = max(values.max(), law.ppf(1 - 1e-4))
    edges = np.linspace(lo, hi, bins + 1)
    p_ks = stats.kstest(values, law.cdf).pvalue
    ax.hist(
        values,
        bins=edges,
        density=True,
        color="C0",
        alpha=0.6,
        label=f"{label}: {values.size} draws\nmean {values.mean():.1f}, "
        f"sd {values.std(ddof=1):.1f}; KS p = {p_ks:.2f}",
    )
    x = np.linspace(lo, hi, 400)
    ax.plot(
        x,
        law.pdf(x),
        color="k",
        lw=1.5,
        label=f"$\\chi^2$({dof}) density: mean {dof}, sd {np.sqrt(2 * dof):.1f}",
    )
    ax.set_xlabel(r"$\chi^2$")
    ax.set_ylabel("probability density")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    return ax
