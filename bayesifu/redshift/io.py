"""Write redshift results to a FITS file, whole or not at all.

Layout of ``redshift.fits`` (every image has the spatial shape ``(ny, nx)`` of the cube and its
celestial WCS; for binned spectra the values of a bin are repeated on its spaxels):

=============  ==================================================================
extension      content
=============  ==================================================================
PRIMARY        header only: templates, grid, polynomial order, prior, flag bits
Z_MAP          MAP redshift (parabolic refinement on the grid)
Z_MEDIAN       posterior median
Z_LO68/HI68    central 68 % interval (16th and 84th percentiles)
Z_LO95/HI95    central 95 % interval (2.5th and 97.5th percentiles)
Z_STD          posterior standard deviation
FLAGS          ZWARN-like bit mask (see :mod:`bayesifu.redshift.summary`)
NPEAKS         number of significant peaks
PEAK_Z         [max_peaks, ny, nx] redshift of each significant peak (most probable first)
PEAK_PROB      [max_peaks, ny, nx] probability of each peak
DELTA_CHI2     chi-square difference between the best and the next peak
PDF, ZGRID     optional: p(z) cube [nz, ny, nx] (cell probabilities) and the grid (table)
=============  ==================================================================

The file is written to a temporary name in the target folder and renamed at the end, so that a
failure leaves no partial file behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from .._files import write_atomic
from ..errors import InputError
from .summary import FLAGS, RedshiftSummary, per_spaxel

__all__ = ["write_redshift_fits", "IMAGE_EXTENSIONS"]

#: Summary attribute -> extension name for the 2-D maps.
IMAGE_EXTENSIONS = {
    "z_map": "Z_MAP",
    "z_median": "Z_MEDIAN",
    "z_lo68": "Z_LO68",
    "z_hi68": "Z_HI68",
    "z_lo95": "Z_LO95",
    "z_hi95": "Z_HI95",
    "z_std": "Z_STD",
    "flags": "FLAGS",
    "n_peaks": "NPEAKS",
    "delta_chi2": "DELTA_CHI2",
}


def write_redshift_fits(
    path,
    summary: RedshiftSummary,
    *,
    wcs=None,
    binid=None,
    pdf=None,
    z_grid=None,
    header_cards=None,
    overwrite: bool = False,
    provenance: dict | None = None,
) -> Path:
    """Write a redshift summary (and optionally the p(z) cube) to ``path``.

    Parameters
    ----------
    path : str or Path
        Output FITS file.
    summary : RedshiftSummary
        Shaped ``(ny, nx)`` for a cube, or ``(nbins,)`` with ``binid``.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS written into every image header.
    binid : numpy.ndarray of int, shape (ny, nx), optional
        Bin of each spaxel (``-1`` none) when the summary is per bin.
    pdf : numpy.ndarray, shape (..., nz), optional
        Posterior cell probabilities, written as PDF [nz, ny, nx] with the ZGRID table.
    z_grid : numpy.ndarray, optional
        The redshift grid (required with ``pdf``).
    header_cards : dict, optional
        Extra primary-header keywords (templates, grid, ...).
    overwrite : bool
        Replace an existing file.
    provenance : dict, optional
        Keyword arguments of :func:`bayesifu.io.provenance.add_provenance` (command, options,
        inputs): recorded whole in the primary header.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: exists; pass overwrite=True (--overwrite) to replace it")
    if pdf is not None and z_grid is None:
        raise InputError("write_redshift_fits: pdf needs z_grid")
    binid = None if binid is None else np.asarray(binid, dtype=int)
    wcs_header = wcs.to_header() if wcs is not None else fits.Header()
    primary = fits.PrimaryHDU()
    for name, bit in FLAGS.items():
        primary.header[f"FLAG{bit}"] = (name, "FLAGS bit value -> meaning")
    for key, value in (header_cards or {}).items():
        primary.header[key] = value
    if provenance is not None:
        from ..io.provenance import add_provenance

        add_provenance(primary.header, **provenance)
    hdus = [primary]
    for attr, ext in IMAGE_EXTENSIONS.items():
        fill = FLAGS["NO_DATA"] if attr == "flags" else None  # no bin: no redshift
        data = per_spaxel(np.asarray(getattr(summary, attr)), binid, fill=fill)
        hdus.append(fits.ImageHDU(data, header=wcs_header.copy(), name=ext))
    for attr, ext in (("peak_z", "PEAK_Z"), ("peak_prob", "PEAK_PROB")):
        data = np.moveaxis(per_spaxel(np.asarray(getattr(summary, attr)), binid), -1, 0)
        hdus.append(fits.ImageHDU(data, header=wcs_header.copy(), name=ext))
    if pdf is not None:
        cube = np.moveaxis(per_spaxel(np.asarray(pdf, dtype=np.float32), binid), -1, 0)
        hdus.append(fits.ImageHDU(cube, header=wcs_header.copy(), name="PDF"))
        col = fits.Column(name="Z", format="D", array=np.asarray(z_grid, dtype=float))
        hdus.append(fits.BinTableHDU.from_columns([col], name="ZGRID"))
    write_atomic(path, lambda tmp: fits.HDUList(hdus).writeto(tmp, overwrite=True))
    return path
