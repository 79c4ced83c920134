"""The figure of a binning (``bayesifu bin`` writes it as a PNG): the bins, and the S/N of each
spaxel's bin with and without the spatial covariance on one colour scale.

Returns the :class:`~matplotlib.figure.Figure` it drew; write it with
:func:`~bayesifu.plots.save_figure`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

__all__ = ["plot_bin_sn"]


def plot_bin_sn(bins, title=""):
    """The bins (random colours) and the S/N maps with and without the covariance (same colour
    scale), bin edges drawn in white.

    Parameters
    ----------
    bins : bayesifu.binning.VoronoiBinning or SEDBinning
        Anything with ``binid``, ``n_bins``, ``sn_map(independent=...)`` and ``reconstruct``
        (``target_sn`` is shown in the title when present).
    title : str
        Start of the figure title (e.g. the data's name).

    Returns
    -------
    matplotlib.figure.Figure
    """
    sn_cov = bins.sn_map()
    sn_ind = bins.sn_map(independent=True)
    finite = np.isfinite(sn_cov)
    vmax = float(np.nanpercentile(np.concatenate([sn_cov[finite], sn_ind[finite]]), 98))
    shuffled = np.random.default_rng(0).permutation(bins.n_bins).astype(float)
    bin_img = np.where(bins.binid >= 0, bins.reconstruct(shuffled), np.nan)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), constrained_layout=True)
    panels = [
        (bin_img, "Bins (random colours)", "tab20", None, None, "bin"),
        (sn_cov, "S/N with covariance", "viridis", 0, vmax, "S/N"),
        (sn_ind, "S/N ignoring covariance", "viridis", 0, vmax, "S/N"),
    ]
    for ax, (img, name, cmap, lo, hi, label) in zip(axes, panels, strict=True):
        cm = plt.get_cmap(cmap).with_extremes(bad="0.85")
        im = ax.imshow(img, origin="lower", cmap=cm, vmin=lo, vmax=hi, interpolation="nearest")
        _outline(ax, bins.binid)
        ax.set_title(name)
        ax.set_xlabel("x [spaxel]")
        ax.set_ylabel("y [spaxel]")
        fig.colorbar(im, ax=ax, label=label, shrink=0.85)
    target = getattr(bins, "target_sn", None)
    sup = f"{title}  {bins.n_bins} bins"
    if target is not None:
        sup += f", target S/N {target:g}; grey = masked/unused"
    fig.suptitle(sup.strip())
    return fig


def _outline(ax, binid):
    """Draw bin edges as thin white lines."""
    edge_x = binid[:, 1:] != binid[:, :-1]
    edge_y = binid[1:, :] != binid[:-1, :]
    ys, xs = np.nonzero(edge_x)
    segs = [((x + 0.5, y - 0.5), (x + 0.5, y + 0.5)) for y, x in zip(ys, xs, strict=True)]
    ys, xs = np.nonzero(edge_y)
    segs += [((x - 0.5, y + 0.5), (x + 0.5, y + 0.5)) for y, x in zip(ys, xs, strict=True)]
    ax.add_collection(LineCollection(segs, colors="white", linewidths=0.4, alpha=0.8))
