"""Maps: a quantity on the sky, bin maps, and data / model / residual / whitened-residual panels.

Every function takes an optional ``ax`` (or ``fig``) to draw into and returns what it drew on
(the :class:`~matplotlib.axes.Axes` for one panel, the :class:`~matplotlib.figure.Figure` for
several). Nothing here calls ``plt.show``. With a WCS the axes are astropy WCSAxes (RA/Dec);
without one they are spaxel indices. Masked spaxels are drawn in a neutral grey
(:data:`~bayesifu.plots._common.MASK_COLOUR`), never in a colour of the colour map.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from ..errors import InputError, ShapeError
from ._common import (
    as_masked_image,
    cmap_with_grey,
    format_wcs_axes,
    new_axes,
    quantity_label,
    robust_limits,
)

__all__ = [
    "plot_map",
    "plot_binmap",
    "plot_fit_panels",
    "bin_boundaries",
    "INDEPENDENT_TITLES",
]

WHITENED_LIMIT = 3.0


def plot_map(  # noqa: PLR0913 -- public plot: matplotlib-style keyword options
    map_or_array,
    wcs=None,
    mask=None,
    ax=None,
    *,
    fig=None,
    cmap=None,
    label=None,
    unit=None,
    symmetric=False,
    center=0.0,
    vmin=None,
    vmax=None,
    percentiles=(2.0, 98.0),
    title=None,
    colorbar=True,
):
    """Draw a map with a colour bar, masked spaxels in grey and sky axes when a WCS exists.

    Parameters
    ----------
    map_or_array : bayesifu.Map or array_like, shape (ny, nx)
        The values; a :class:`~bayesifu.Map` brings its mask, WCS and unit. NaN values are masked.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS (overrides the map's). Axes are RA/Dec when one is available.
    mask : array_like of bool, shape (ny, nx), optional
        Extra spaxels to hide (``True`` = masked), added to the map's own mask.
    ax : matplotlib Axes, optional
        Draw here (a WCSAxes for sky axes); default: a new figure.
    fig : matplotlib Figure, optional
        Add a new subplot to this figure when ``ax`` is not given.
    cmap : str or Colormap, optional
        Default ``"RdBu_r"`` when ``symmetric`` else ``"viridis"``.
    label, unit : str, optional
        The quantity and its unit, shown on the colour bar as ``label [unit]``; ``unit`` defaults
        to the map's unit.
    symmetric : bool
        Diverging colour scale centred on ``center`` (velocities, residuals).
    center : float
        The centre of a symmetric scale [unit of the data].
    vmin, vmax : float, optional
        Explicit colour limits (override the robust ones).
    percentiles : (float, float)
        Percentiles of the unmasked values giving the colour limits (robust to outliers).
    title : str, optional
    colorbar : bool
        Whether to add a colour bar.

    Returns
    -------
    matplotlib.axes.Axes
        The axes; the image is ``ax.images[0]`` (its array is the masked array drawn).
    """
    image, wcs, map_unit = as_masked_image(map_or_array, wcs, mask)
    unit = map_unit if unit is None else unit
    ax = new_axes(ax, fig, wcs)
    lo, hi = robust_limits(image, percentiles, symmetric, center)
    lo = lo if vmin is None else vmin
    hi = hi if vmax is None else vmax
    if symmetric and (vmin is None) != (vmax is None):
        half = max(abs(lo - center), abs(hi - center))
        lo, hi = center - half, center + half
    cmap = cmap_with_grey(cmap or ("RdBu_r" if symmetric else "viridis"))
    im = ax.imshow(image, origin="lower", cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    format_wcs_axes(ax)
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label=quantity_label(label, unit), shrink=0.9)
    return ax


def bin_boundaries(binid):
    """Line segments ``[[(x0, y0), (x1, y1)], ...]`` between spaxels of different bins [pixel].

    Edges between two unused spaxels (``binid < 0``) are left out.
    """
    binid = np.asarray(binid)
    segments = []
    diff_x = binid[:, 1:] != binid[:, :-1]
    used_x = (binid[:, 1:] >= 0) | (binid[:, :-1] >= 0)
    for y, x in zip(*np.nonzero(diff_x & used_x), strict=True):
        segments.append([(x + 0.5, y - 0.5), (x + 0.5, y + 0.5)])
    diff_y = binid[1:, :] != binid[:-1, :]
    used_y = (binid[1:, :] >= 0) | (binid[:-1, :] >= 0)
    for y, x in zip(*np.nonzero(diff_y & used_y), strict=True):
        segments.append([(x - 0.5, y + 0.5), (x + 0.5, y + 0.5)])
    return segments


def _binid_array(binid):
    binid = np.asarray(getattr(binid, "binid", binid))
    if binid.ndim != 2 or not np.issubdtype(binid.dtype, np.integer):
        raise InputError(f"binid must be a 2-D integer map, got {binid.dtype} shape {binid.shape}")
    return binid


def _bin_values_map(binid, values):
    """A ``(ny, nx)`` map from per-spaxel values or from one value per bin (sorted bin ids)."""
    values = np.asarray(values, dtype=float)
    if values.shape == binid.shape:
        return values
    ids = np.unique(binid[binid >= 0])
    if values.shape != (ids.size,):
        raise ShapeError(
            f"values must be a map of shape {binid.shape} or one value per bin ({ids.size}), "
            f"got shape {values.shape}"
        )
    out = np.full(binid.shape, np.nan)
    used = binid >= 0
    out[used] = values[np.searchsorted(ids, binid[used])]
    return out


def plot_binmap(  # noqa: PLR0913 -- public plot: matplotlib-style keyword options
    binid,
    values=None,
    wcs=None,
    ax=None,
    *,
    fig=None,
    label=None,
    unit="",
    symmetric=False,
    center=0.0,
    cmap=None,
    vmin=None,
    vmax=None,
    title=None,
    boundary_colour="k",
    seed=0,
):
    """Draw a bin map: random bin colours (``values=None``) or a value per bin, with boundaries.

    Parameters
    ----------
    binid : array_like of int, shape (ny, nx), or bayesifu.Binning
        The bin of each spaxel (``-1``: in no bin, drawn grey).
    values : array_like, optional
        A ``(ny, nx)`` map, or one value per bin in the order of the sorted bin ids (as
        :attr:`bayesifu.Binning.bin_ids` and :class:`bayesifu.BinnedValues`).
    wcs, ax, fig, label, unit, symmetric, center, cmap, vmin, vmax, title
        As for :func:`plot_map` (``vmin``/``vmax`` for a value map).
    boundary_colour : str
        Colour of the lines between bins.
    seed : int
        Seed of the random colours (neighbouring bins get unrelated colours).

    Returns
    -------
    matplotlib.axes.Axes
    """
    binid = _binid_array(binid)
    used = binid >= 0
    if values is None:
        ids = np.unique(binid[used])
        order = np.random.default_rng(seed).permutation(ids.size)
        shuffled = np.full(binid.shape, np.nan)
        shuffled[used] = order[np.searchsorted(ids, binid[used])]
        n_bins = ids.size
        ax = plot_map(
            shuffled,
            wcs,
            ~used,
            ax,
            fig=fig,
            cmap=cmap or "tab20",
            vmin=-0.5,
            vmax=max(n_bins, 20) - 0.5,
            colorbar=False,
            title=title or f"{n_bins} bins (random colours; grey: no bin)",
        )
    else:
        image = _bin_values_map(binid, values)
        ax = plot_map(
            image,
            wcs,
            ~used,
            ax,
            fig=fig,
            cmap=cmap,
            label=label,
            unit=unit,
            symmetric=symmetric,
            center=center,
            vmin=vmin,
            vmax=vmax,
            title=title,
        )
    lines = LineCollection(bin_boundaries(binid), colors=boundary_colour, linewidths=0.6)
    if hasattr(ax, "get_transform") and hasattr(ax, "wcs"):
        lines.set_transform(ax.get_transform("pixel"))
    ax.add_collection(lines)
    ax.set_xlim(-0.5, binid.shape[1] - 0.5)
    ax.set_ylim(-0.5, binid.shape[0] - 0.5)
    return ax


#: Panel titles of :func:`plot_fit_panels` for a fit with independent spaxels.
INDEPENDENT_TITLES = (
    "data",
    "model",
    "residual (data - model)",
    "normalised residual (data - model) / sigma\nN(0, 1) where the model fits",
)


def plot_fit_panels(  # noqa: PLR0913 -- public plot: matplotlib-style keyword options
    data,
    model,
    residual=None,
    whitened=None,
    *,
    wcs=None,
    mask=None,
    fig=None,
    label="value",
    unit=None,
    symmetric=True,
    center=0.0,
    titles=(
        "data",
        "model",
        "residual (data - model)",
        "whitened residual $C^{-1/2}$(data - model)\nN(0, 1) where the model fits",
    ),
    whitened_label="whitened residual",
):
    """Four panels: data, model, residual and whitened residual, on the same sky axes.

    Data and model share one colour scale; the residual has a diverging scale centred on zero; the
    whitened residual (``C^{-1/2}(data - model)``, standard normal where the model fits and the
    covariance is right) is on a fixed -3..3 scale.

    Parameters
    ----------
    data : bayesifu.Map or array_like, shape (ny, nx)
        The data (a Map brings its mask, WCS and unit).
    model : array_like, shape (ny, nx)
        The model evaluated on the grid.
    residual : array_like, shape (ny, nx), optional
        Default ``data - model``.
    whitened : array_like, shape (ny, nx), optional
        The whitened residual mapped back onto spaxels (e.g. the symmetric whitening
        :math:`C^{-1/2} r`); the fourth panel is left out when not given.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS (default: the map's).
    mask : array_like of bool, optional
        Extra masked spaxels.
    fig : matplotlib Figure, optional
        Draw into this figure (it should be empty).
    label, unit : str
        The quantity and unit of data and model.
    symmetric, center
        Diverging data/model scale centred on ``center`` (velocities).
    titles : sequence of 4 str
        Panel titles. For independent spaxels the fourth panel is ``(data - model) / sigma``, not
        a :math:`C^{-1/2}` whitening: pass :data:`INDEPENDENT_TITLES` (and ``whitened_label``).
    whitened_label : str
        Colour-bar label of the fourth panel (unit ``sigma``).

    Returns
    -------
    matplotlib.figure.Figure
        Its axes are ``fig.axes[:n_panels]`` (then the colour bars).
    """
    image, wcs, map_unit = as_masked_image(data, wcs, mask)
    unit = map_unit if unit is None else unit
    model, residual, whitened = _panel_arrays(image, model, residual, whitened)
    fig, axes = _panel_axes(fig, wcs, 3 if whitened is None else 4)
    lo, hi = robust_limits(image, symmetric=symmetric, center=center)
    scale = {"label": label, "unit": unit, "cmap": "RdBu_r" if symmetric else None}
    common = {"mask": image.mask, "wcs": wcs}
    plot_map(image, ax=axes[0], vmin=lo, vmax=hi, title=titles[0], **scale)
    plot_map(model, ax=axes[1], vmin=lo, vmax=hi, title=titles[1], **scale, **common)
    plot_map(
        residual, ax=axes[2], label="residual", unit=unit, symmetric=True, title=titles[2], **common
    )
    if whitened is not None:
        plot_map(
            whitened,
            ax=axes[3],
            symmetric=True,
            vmin=-WHITENED_LIMIT,
            vmax=WHITENED_LIMIT,
            label=whitened_label,
            unit="sigma",
            title=titles[3],
            **common,
        )
    _hide_dec_labels(axes[1:])
    return fig


def _panel_arrays(image, model, residual, whitened):
    """Model, residual (default ``data - model``) and whitened residual as float arrays of the
    data's shape (``whitened`` may be None)."""
    model = np.asarray(model, dtype=float)
    if model.shape != image.shape:
        raise ShapeError(f"model shape {model.shape} does not match the data shape {image.shape}")
    residual = image.data - model if residual is None else np.asarray(residual, dtype=float)
    if residual.shape != image.shape:
        raise ShapeError(f"residual shape {residual.shape} does not match {image.shape}")
    if whitened is not None:
        whitened = np.asarray(whitened, dtype=float)
        if whitened.shape != image.shape:
            raise ShapeError(f"whitened shape {whitened.shape} does not match {image.shape}")
    return model, residual, whitened


def _panel_axes(fig, wcs, n_panels):
    """The figure (a new one if ``fig`` is None) and its ``n_panels`` axes in a row."""
    if fig is None:
        fig = plt.figure(figsize=(4.4 * n_panels, 4.2), layout="constrained")
    axes = [
        fig.add_subplot(1, n_panels, k + 1, projection=wcs)
        if wcs is not None
        else fig.add_subplot(1, n_panels, k + 1)
        for k in range(n_panels)
    ]
    return fig, axes


def _hide_dec_labels(axes):
    """Hide the Dec axis label and tick labels of sky axes (they repeat those of the first)."""
    for ax in axes:
        if hasattr(ax, "coords"):
            ax.coords[1].set_axislabel(" ")
            ax.coords[1].set_ticklabel_visible(False)
