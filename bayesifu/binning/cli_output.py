"""The FITS output of ``bayesifu bin``: the bins and S/N maps (the PNG beside it is drawn by
:func:`bayesifu.plots.plot_bin_sn`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .fitsio import write_atomic

__all__ = ["write_bins_fits", "bins_hdulist", "png_path"]


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


def png_path(out) -> Path:
    """The PNG beside the FITS file ``out``: ``.fits``/``.fit`` replaced by ``.png``, else
    ``.png`` appended."""
    out = Path(out)
    if out.suffix.lower() in (".fits", ".fit"):
        return out.with_suffix(".png")
    return Path(f"{out}.png")


def write_bins_fits(bins, out, data=None, overwrite=False, correlation=None, provenance=None):
    """Write the FITS file ``out`` whole or not at all; returns its path.
    ``correlation`` and ``provenance`` go to the primary header (:func:`bins_hdulist`)."""
    out = Path(out)
    wcs = getattr(data, "wcs", None) if data is not None else getattr(bins, "wcs", None)
    hdul = bins_hdulist(bins, wcs, correlation=correlation, provenance=provenance)
    return write_atomic(hdul, out, overwrite=overwrite)
