"""Shared helpers of :mod:`bayesifu.plots`: figure/axes creation, masking and colour limits."""

from __future__ import annotations

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np

from ..errors import InputError, ShapeError

__all__ = [
    "MASK_COLOUR",
    "as_masked_image",
    "robust_limits",
    "quantity_label",
    "new_axes",
    "is_wcs_axes",
    "cmap_with_grey",
    "format_wcs_axes",
    "save_figure",
]

#: Colour of masked spaxels: a neutral grey, not the low end of any colour map.
MASK_COLOUR = "0.75"


def as_masked_image(map_or_array, wcs=None, mask=None):
    """Return ``(masked_array, wcs, unit)`` from a :class:`~bayesifu.Map` or a 2-D array.

    The mask is the union of ``mask``, the map's own mask and non-finite values.
    """
    unit = ""
    if (
        hasattr(map_or_array, "data")
        and hasattr(map_or_array, "mask")
        and not isinstance(map_or_array, np.ndarray)
    ):
        data = np.asarray(map_or_array.data, dtype=float)
        own = np.asarray(map_or_array.mask, dtype=bool)
        wcs = map_or_array.wcs if wcs is None else wcs
        unit = getattr(map_or_array, "unit", "") or ""
    else:
        data = np.ma.getdata(map_or_array).astype(float)
        own = np.ma.getmaskarray(map_or_array)
    if data.ndim != 2:
        raise ShapeError(f"a map must be 2-D [ny, nx], got shape {data.shape}")
    full = own | ~np.isfinite(data)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape:
            raise ShapeError(f"mask shape {mask.shape} does not match the map shape {data.shape}")
        full |= mask
    return np.ma.masked_array(data, mask=full), wcs, unit


def robust_limits(image, percentiles=(2.0, 98.0), symmetric=False, center=0.0):
    """Colour limits from percentiles of the unmasked values.

    ``symmetric=True`` gives limits ``center -/+ h`` with ``h`` the upper percentile of
    ``|value - center|``, for a diverging colour map centred on ``center``.
    """
    lo_p, hi_p = percentiles
    if not 0 <= lo_p < hi_p <= 100:
        raise InputError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    values = np.ma.compressed(image)
    if values.size == 0:
        return (center - 1.0, center + 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        half = float(np.percentile(np.abs(values - center), hi_p))
        half = half if half > 0 else 1.0
        return center - half, center + half
    lo, hi = (float(v) for v in np.percentile(values, [lo_p, hi_p]))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def quantity_label(label, unit):
    """``"label [unit]"``, or ``label`` alone when there is no unit."""
    label = label or "value"
    return f"{label} [{unit}]" if unit else label


def cmap_with_grey(cmap):
    """A copy of ``cmap`` that draws masked pixels in :data:`MASK_COLOUR`."""
    cmap = cmap if isinstance(cmap, mcolors.Colormap) else plt.get_cmap(cmap)
    return cmap.with_extremes(bad=MASK_COLOUR)


def new_axes(ax=None, fig=None, wcs=None, figsize=(5.6, 4.6)):
    """The axes to draw on: ``ax`` if given, else a new subplot of ``fig`` (or of a new figure),
    with WCS axes (RA/Dec) when ``wcs`` is given."""
    if ax is not None:
        return ax
    if fig is None:
        fig = plt.figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot(projection=wcs) if wcs is not None else fig.add_subplot()
    return ax


def is_wcs_axes(ax) -> bool:
    """Whether ``ax`` is an astropy WCSAxes."""
    return hasattr(ax, "coords") and hasattr(ax, "wcs")


def format_wcs_axes(ax, ra_label="RA", dec_label="Dec"):
    """Label sky axes, with a few sexagesimal ticks that do not overlap on small IFU fields."""
    if is_wcs_axes(ax):
        ra, dec = ax.coords[0], ax.coords[1]
        ra.set_axislabel(ra_label)
        dec.set_axislabel(dec_label)
        ra.set_major_formatter("hh:mm:ss.s")
        dec.set_major_formatter("dd:mm:ss")
        ra.set_ticks(number=3)
        dec.set_ticks(number=4)
        ra.display_minor_ticks(True)
        dec.display_minor_ticks(True)
    else:
        ax.set_xlabel("x [spaxel]")
        ax.set_ylabel("y [spaxel]")


def save_figure(fig, path, **kwargs):
    """Write ``fig`` to ``path`` whole or not at all, close it and return the path.

    ``kwargs`` go to :meth:`matplotlib.figure.Figure.savefig`; the format follows the suffix.
    """
    from .._files import write_atomic

    fmt = kwargs.pop("format", None) or (str(path).rsplit(".", 1)[-1] if "." in str(path) else None)
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, format=fmt, **kwargs))
    finally:
        plt.close(fig)
    return path
