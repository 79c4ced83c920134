"""Outputs of ``bayesifu bin``: a FITS file with the bins and S/N maps, and a PNG of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .fitsio import write_atomic

__all__ = ["write_outputs", "bins_hdulist", "plot_bins"]


def bins_hdulist(bins, wcs=None, correlation=None, provenance=None) -> fits.HDUList:
    """``BINID`` (int32, -1 = unused), ``SN_COVAR``, ``SN_INDEP`` (float, NaN outside bins) and a
    ``BINS`` table (``BINID``, ``NSPAX``, ``SN``, ``SN_INDEP``, centroid ``X``, ``Y`` [spaxel]).

    ``correlation``: ``(source, description)`` of the correlation used; the primary header gets
    ``CORRSRC`` (``file``, ``measured``, ``gaussian`` or ``none``) and the description in full
    (``HISTORY``). ``provenance``: keyword arguments of
    :func:`bayesifu.io.provenance.add_provenance` for the primary header.
    """
    from ..io.provenance import add_provenance

    header = wcs.to_header() if wcs is not None else None
    primary = fits.PrimaryHDU()
    if correlation is not None:
        source, description = correlation
        primary.header["CORRSRC"] = (source, "spatial correlation used by the S/N")
        if provenance is None:  # else the provenance records it
            primary.header.add_history(f"correlation used: {description}")
    if provenance is not None:
        add_provenance(primary.header, **provenance)
    primary.header["NBINS"] = (bins.n_bins, "number of bins")
    primary.header["TARGSN"] = (getattr(bins, "target_sn", np.nan), "target S/N")
    primary.header["SNMETH"] = (getattr(bins, "sn_method", ""), "S/N used by the binning")
    primary.header["ALPHA"] = (float(getattr(bins, "alpha", 0.0)), "1 + alpha log10 N calibration")
    cx, cy = bins.centroids()
    table = Table(
        {
            "BINID": bins.bin_ids.astype(np.int32),
            "NSPAX": bins.n_spaxels.astype(np.int32),
            "SN": np.asarray(bins.sn, dtype=float),
            "SN_INDEP": np.asarray(bins.sn_independent, dtype=float),
            "X": cx,
            "Y": cy,
        }
    )
    return fits.HDUList(
        [
            primary,
            fits.ImageHDU(bins.binid.astype(np.int32), header=header, name="BINID"),
            fits.ImageHDU(bins.sn_map(), header=header, name="SN_COVAR"),
            fits.ImageHDU(bins.sn_map(independent=True), header=header, name="SN_INDEP"),
            fits.BinTableHDU(table, name="BINS"),
        ]
    )


def plot_bins(bins, path, title=""):
    """PNG with the bins and the S/N maps with and without the covariance (same colour scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import save_figure

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
    save_figure(fig, path, dpi=110)
    return Path(path)


def _outline(ax, binid):
    """Draw bin edges as thin white lines."""
    edge_x = binid[:, 1:] != binid[:, :-1]
    edge_y = binid[1:, :] != binid[:-1, :]
    ys, xs = np.nonzero(edge_x)
    segs = [((x + 0.5, y - 0.5), (x + 0.5, y + 0.5)) for y, x in zip(ys, xs, strict=True)]
    ys, xs = np.nonzero(edge_y)
    segs += [((x - 0.5, y + 0.5), (x + 0.5, y + 0.5)) for y, x in zip(ys, xs, strict=True)]
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(segs, colors="white", linewidths=0.4, alpha=0.8))


def write_outputs(bins, out, data=None, overwrite=False, correlation=None, provenance=None):
    """Write the FITS file ``out`` and a PNG beside it (``.png``); returns both paths.
    ``correlation`` and ``provenance`` go to the primary header (:func:`bins_hdulist`)."""
    out = Path(out)
    wcs = getattr(data, "wcs", None) if data is not None else getattr(bins, "wcs", None)
    hdul = bins_hdulist(bins, wcs, correlation=correlation, provenance=provenance)
    fits_path = write_atomic(hdul, out, overwrite=overwrite)
    png = out.with_suffix(".png") if out.suffix.lower() in (".fits", ".fit") else Path(f"{out}.png")
    name = getattr(data, "name", "") if data is not None else ""
    plot_bins(bins, png, title=str(name))
    return fits_path, png
