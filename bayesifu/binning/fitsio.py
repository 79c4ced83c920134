"""FITS files of binned spectra and of bin maps, written whole or not at all.

Every file is written to a temporary file in the destination folder and moved into place with
:func:`os.replace`, so an interrupted write never leaves a truncated file under the final name.

Binned spectra (:func:`write_binned`) have the extensions

``FLUX`` (n_bins, nwave), ``VAR`` (with the covariance), ``VAR_INDEP`` (spaxels independent),
``MASK`` (uint8, 1 = no valid spaxel), ``WAVE`` [Angstrom], ``BINID`` (ny, nx, celestial WCS,
``-1`` = unused) and ``CORREL``: the correlation between bins in the reference channel as a table
in the astropy layout (``INDXI``, ``INDXJ``, ``RHOIJ``, upper triangle, ``COVSHAPE``, ``REFCHAN``).
The exact covariance of another channel :math:`k` is that correlation scaled by
:math:`\\sqrt{V_{ik} V_{jk}}` only approximately; :meth:`BinnedSpectra.covariance` gives it exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from astropy.io import fits
from astropy.table import Table

from .. import _files
from ..errors import InputError

__all__ = ["write_atomic", "write_binned", "correlation_table"]


def write_atomic(hdul: fits.HDUList, path, overwrite=False) -> Path:
    """Write an HDU list to ``path`` whole or not at all (:func:`bayesifu._files.write_atomic`)."""
    return _files.write_atomic(path, lambda tmp: hdul.writeto(tmp, overwrite=True), overwrite)


def correlation_table(corr: sp.csr_array) -> Table:
    """Upper triangle of a correlation matrix as a table (``INDXI``, ``INDXJ``, ``RHOIJ``)."""
    upper = sp.triu(sp.csr_array(corr)).tocoo()
    keep = upper.data != 0
    t = Table(
        {
            "INDXI": upper.row[keep].astype(np.int64),
            "INDXJ": upper.col[keep].astype(np.int64),
            "RHOIJ": upper.data[keep].astype(float),
        }
    )
    t.meta["COVSHAPE"] = str(tuple(int(s) for s in corr.shape))
    return t


def _binid_hdu(binning, wcs, name="BINID"):
    header = wcs.to_header() if wcs is not None else None
    return fits.ImageHDU(binning.binid.astype(np.int32), header=header, name=name)


def write_binned(binned, path, overwrite=False, reference_channel=None) -> Path:
    """Write :class:`~bayesifu.binning.spectra.BinnedSpectra` to FITS (see the module docstring).

    Parameters
    ----------
    binned : BinnedSpectra
        The binned spectra.
    path : str or path-like
        The output file.
    overwrite : bool
        Replace an existing file.
    reference_channel : int, optional
        Channel of the ``CORREL`` table; default the channel with the highest median S/N.
    """
    nwave = binned.wave.size
    if reference_channel is None:
        reference_channel = int(np.argmax(np.median(binned.sn(), axis=0)))
    if not 0 <= reference_channel < nwave:
        raise InputError(f"reference_channel must be in [0, {nwave}), got {reference_channel}")
    primary = fits.PrimaryHDU()
    hdr = primary.header
    hdr["NBINS"] = (binned.n_bins, "number of bins")
    hdr["BINWGT"] = (binned.weights, "sum or mean of the spaxels of a bin")
    hdr["CORRSRC"] = (
        "none" if binned.correlation is None else str(binned.correlation.source)[:60],
        "spatial correlation used",
    )
    hdr["BUNIT"] = binned.unit
    hdr["SOURCE"] = str(binned.name)[:60]
    table = correlation_table(binned.correlation_between_bins(reference_channel))
    correl = fits.BinTableHDU(table, name="CORREL")
    correl.header["COVSHAPE"] = table.meta["COVSHAPE"]
    correl.header["REFCHAN"] = (reference_channel, "channel of this correlation")
    correl.header["REFWAVE"] = (float(binned.wave[reference_channel]), "[Angstrom]")
    hdul = fits.HDUList(
        [
            primary,
            fits.ImageHDU(binned.flux, name="FLUX"),
            fits.ImageHDU(binned.variance, name="VAR"),
            fits.ImageHDU(binned.variance_independent, name="VAR_INDEP"),
            fits.ImageHDU(binned.mask.astype(np.uint8), name="MASK"),
            fits.ImageHDU(binned.wave, name="WAVE"),
            _binid_hdu(binned.binning, binned.wcs),
            correl,
        ]
    )
    return write_atomic(hdul, path, overwrite=overwrite)
