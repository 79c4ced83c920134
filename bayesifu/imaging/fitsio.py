"""Writing and reading matched images (:class:`~bayesifu.imaging.PhotometricCube`) as FITS.

Layout: ``FLUX``, ``VARIANCE`` ``[band, y, x]`` and ``MASK`` (uint8, 1 = incomplete) with the IFU
grid's celestial WCS; a ``BANDS`` table (``FILTER``, ``PIVOT`` [Angstrom], ``PSF_FWHM`` [arcsec],
``SOURCE``); and per band ``k`` the covariance, either as its sparse factor ``COVFAC<k>``
(columns ``ROW``, ``COL``, ``VALUE`` of :math:`\\mathbf F = \\mathbf T\\mathbf S`, with
``NROW``/``NCOL``: the covariance is :math:`\\mathbf F\\mathbf F^{\\rm T}`, far smaller to store
than the covariance itself) or as the covariance ``COVAR<k>`` (upper triangle: ``INDXI``,
``INDXJ``, ``COVARIJ`` over the row-major grid, the layout of
:meth:`astropy.nddata.Covariance.to_table`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from .._files import write_atomic
from ..errors import InputError
from ..io.fitsio import celestial_wcs, find_hdu, get_hdu, open_fits
from .filters import load_band
from .psf import GaussianPSF

__all__ = [
    "write_photometric_cube",
    "read_photometric_cube",
    "write_degraded_cube",
    "COVARIANCE_CHOICES",
]

COVARIANCE_CHOICES = ("factor", "full", "none")


def _sparse_hdu(matrix, name, upper=False):
    coo = sp.coo_array(matrix)
    i, j, v = coo.row, coo.col, coo.data
    if upper:
        keep = j >= i
        i, j, v = i[keep], j[keep], v[keep]
        cols = {"INDXI": i.astype(np.int64), "INDXJ": j.astype(np.int64), "COVARIJ": v}
    else:
        cols = {"ROW": i.astype(np.int64), "COL": j.astype(np.int64), "VALUE": v}
    hdu = fits.BinTableHDU(Table(cols), name=name)
    hdu.header["NROW"] = (matrix.shape[0], "rows of the matrix")
    hdu.header["NCOL"] = (matrix.shape[1], "columns of the matrix")
    return hdu


def write_photometric_cube(cube, path, *, covariance="factor", provenance=None, overwrite=False):
    """Write a :class:`~bayesifu.imaging.PhotometricCube` to ``path`` (whole or not at all).

    Parameters
    ----------
    cube : PhotometricCube
    path : str or path-like
    covariance : {"factor", "full", "none"}
        How to store each band's covariance (see the module docstring).
    provenance : dict, optional
        Keyword arguments of :func:`bayesifu.io.provenance.add_provenance`.
    overwrite : bool
        Replace an existing file.
    """
    from ..io.provenance import add_provenance

    if covariance not in COVARIANCE_CHOICES:
        raise InputError(f"covariance must be one of {COVARIANCE_CHOICES}, got {covariance!r}")
    header = cube.wcs.to_header()
    primary = fits.PrimaryHDU()
    primary.header["NBAND"] = (cube.shape[0], "number of bands")
    primary.header["BUNIT"] = (str(cube.unit), "flux density per IFU pixel")
    primary.header["TARGFWHM"] = (float(cube.target_psf.fwhm), "[arcsec] common PSF FWHM")
    primary.header["COVSTORE"] = (covariance, "covariance: factor F (C = F F^T), full, none")
    if provenance is not None:
        add_provenance(primary.header, **provenance)
    flux_header = header.copy()
    flux_header["BUNIT"] = str(cube.unit)
    bands = Table(
        {
            "FILTER": [b.name for b in cube.bands],
            "PIVOT": cube.pivots,
            "PSF_FWHM": [np.nan if b.psf_fwhm is None else b.psf_fwhm for b in cube.bands],
            "SOURCE": [str(n) for n in cube.names],
        }
    )
    hdus = [
        primary,
        fits.ImageHDU(cube.data, header=flux_header, name="FLUX"),
        fits.ImageHDU(cube.variance, header=header, name="VARIANCE"),
        fits.ImageHDU(cube.mask.astype(np.uint8), header=header, name="MASK"),
        fits.BinTableHDU(bands, name="BANDS"),
    ]
    for k in range(cube.shape[0] if covariance != "none" else 0):
        if covariance == "factor":
            hdus.append(_sparse_hdu(cube._factor(k), f"COVFAC{k}"))
        else:
            hdus.append(_sparse_hdu(cube.covariance(k), f"COVAR{k}", upper=True))
    write_atomic(path, lambda tmp: fits.HDUList(hdus).writeto(tmp), overwrite=overwrite)
    return path


def read_photometric_cube(path):
    """Read a file written by :func:`write_photometric_cube` back into a ``PhotometricCube``
    (with the covariance factors where the file stores them)."""
    from .match import PhotometricCube

    with open_fits(path) as hdul:
        flux_hdu = get_hdu(hdul, "FLUX", path)
        data = np.array(flux_hdu.data, dtype=float)
        variance = np.array(get_hdu(hdul, "VARIANCE", path).data, dtype=float)
        mask = np.array(get_hdu(hdul, "MASK", path).data).astype(bool)
        table = Table.read(get_hdu(hdul, "BANDS", path))
        primary = hdul[0].header
        factors = []
        for k in range(data.shape[0]):
            hdu = find_hdu(hdul, f"COVFAC{k}")
            if hdu is None:
                break
            t = hdu.data
            shape = (hdu.header["NROW"], hdu.header["NCOL"])
            factors.append(
                sp.csr_array(
                    (
                        np.asarray(t["VALUE"], dtype=float),
                        (np.asarray(t["ROW"], dtype=np.int64), np.asarray(t["COL"], np.int64)),
                    ),
                    shape=shape,
                )
            )
        wcs = celestial_wcs(flux_hdu.header)
    bands = [
        load_band(str(name).strip(), None if not np.isfinite(f) else float(f))
        for name, f in zip(table["FILTER"], table["PSF_FWHM"], strict=True)
    ]
    return PhotometricCube(
        data,
        variance,
        mask,
        bands,
        wcs,
        u.Unit(primary["BUNIT"]),
        GaussianPSF(float(primary["TARGFWHM"])),
        factors,
        [],
        [str(s).strip() for s in table["SOURCE"]],
    )


def write_degraded_cube(degraded, path, *, target_fwhm=None, provenance=None, overwrite=False):
    """Write a :class:`~bayesifu.imaging.DegradedCube` as a generic cube that
    :func:`bayesifu.read_cube` reads back: ``FLUX``, ``VAR`` (the diagonal of each channel's
    covariance; 0 where masked), ``MASK`` (1 = incomplete), ``WAVE`` [Angstrom] and the matching
    ``KERNEL`` (with the input cube's correlation it gives every channel's covariance,
    :math:`\\mathbf K\\mathbf S\\boldsymbol\\rho\\mathbf S\\mathbf K^{\\rm T}`)."""
    from ..io.provenance import add_provenance

    cube = degraded.cube
    header = cube.wcs.to_header() if cube.wcs is not None else fits.Header()
    primary = fits.PrimaryHDU()
    if target_fwhm is not None:
        primary.header["TARGFWHM"] = (float(target_fwhm), "[arcsec] PSF FWHM after degrading")
    if provenance is not None:
        add_provenance(primary.header, **provenance)
    flux_header = header.copy()
    flux_header["BUNIT"] = str(cube.unit)
    mask = np.asarray(cube.mask, dtype=bool)
    wave_hdu = fits.ImageHDU(np.asarray(cube.wave, dtype=float), name="WAVE")
    wave_hdu.header["MEDIUM"] = cube.wave_medium
    wave_hdu.header["BUNIT"] = "Angstrom"
    hdus = [
        primary,
        fits.ImageHDU(np.asarray(cube.flux, dtype=np.float32), header=flux_header, name="FLUX"),
        fits.ImageHDU(
            np.where(mask, 0.0, cube.variance).astype(np.float32), header=header, name="VAR"
        ),
        fits.ImageHDU(mask.astype(np.uint8), header=header, name="MASK"),
        wave_hdu,
    ]
    if degraded.kernel is not None:
        hdus.append(fits.ImageHDU(degraded.kernel, name="KERNEL"))
    write_atomic(path, lambda tmp: fits.HDUList(hdus).writeto(tmp), overwrite=overwrite)
    return path
