"""Posterior maps of a binned SED fit, placed back on the spaxel grid with the cube's WCS."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from .. import _arviz
from ..binning.operator import Binning
from ..errors import InputError, ShapeError

__all__ = ["sed_maps", "STATISTICS"]

#: Statistics of the posterior draws written for every quantity: name -> function of draws.
STATISTICS = {
    "MEDIAN": lambda d: np.median(d, axis=0),
    "SD": lambda d: np.std(d, axis=0),
    "P16": lambda d: np.quantile(d, 0.16, axis=0),
    "P84": lambda d: np.quantile(d, 0.84, axis=0),
}

_UNITS = {"av": "mag", "flux": "data flux unit", "flux_obs": "data flux unit", "weights": ""}


def sed_maps(idata, binning, wcs=None, names=("av", "flux", "weights")) -> fits.HDUList:
    """Per-bin posterior quantities as FITS images on the spaxel grid, with the WCS.

    Parameters
    ----------
    idata : arviz.InferenceData or xarray.DataTree
        From :func:`bayesifu.sample` of :func:`bayesifu.models.sed.model`.
    binning : Binning or BinnedSpectra
        The bins (a BinnedSpectra gives its ``binning`` and, unless ``wcs`` is given, its WCS).
    wcs : astropy.wcs.WCS, optional
        WCS of the cube or map; its celestial part is written in every image header.
    names : sequence of str
        Posterior variables with one value per bin (``av``, ``flux``, ``flux_obs``,
        ``mass``) or one per bin and template (``weights``: one image per template).

    Returns
    -------
    astropy.io.fits.HDUList
        An empty primary HDU, then for each quantity ``Q`` (``WEIGHTS`` as ``WEIGHT0``,
        ``WEIGHT1``, ...) the images ``Q_MEDIAN``, ``Q_SD``, ``Q_P16`` and ``Q_P84``
        [ny, nx], NaN outside the bins.
    """
    if hasattr(binning, "binning") and not isinstance(binning, Binning):
        wcs = binning.wcs if wcs is None else wcs
        binning = binning.binning
    if not isinstance(binning, Binning):
        raise InputError(f"sed_maps needs a Binning or BinnedSpectra, got {type(binning)}")
    post = _arviz.group(idata, "posterior")
    header = fits.Header()
    if wcs is not None:
        header.update((wcs.celestial if wcs.naxis > 2 else wcs).to_header())
    hdus = [fits.PrimaryHDU()]
    for name in names:
        if name not in post:
            raise InputError(f"sed_maps: the posterior has no variable {name!r}")
        draws = np.asarray(post[name])
        draws = draws.reshape((-1,) + draws.shape[2:])
        if draws.shape[1:2] != (binning.n_bins,):
            raise ShapeError(
                f"sed_maps: {name} has shape {draws.shape[1:]}, not one value per bin "
                f"({binning.n_bins})"
            )
        planes = [draws] if draws.ndim == 2 else [draws[..., k] for k in range(draws.shape[2])]
        for k, plane in enumerate(planes):
            label = name.upper() if len(planes) == 1 else f"{name.upper().rstrip('S')}{k}"
            for stat, fn in STATISTICS.items():
                hdr = header.copy()
                hdr["BUNIT"] = _UNITS.get(name, "")
                hdr["QUANTITY"] = (name, "posterior variable")
                hdr["STAT"] = (stat.lower(), "statistic over the posterior draws")
                image = binning.reconstruct(fn(plane))
                hdus.append(fits.ImageHDU(image, header=hdr, name=f"{label}_{stat}"))
    return fits.HDUList(hdus)
