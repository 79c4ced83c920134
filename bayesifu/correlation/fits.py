"""Reading and writing correlation tables: the MaNGA CORREL layout and astropy's layout.

MaNGA CORREL layout (DRP ``GCORREL``/``RCORREL``/``ICORREL``/``ZCORREL`` of a LOGCUBE, DAP
``SNRG`` ``CORREL``; Westfall et al. 2019, AJ 158, 231; Law et al. 2016, AJ 152, 83): columns
``INDXI_C1, INDXI_C2, INDXJ_C1, INDXJ_C2`` (int) and ``RHOIJ`` (float), header key
``COVSHAPE = '(n, n)'`` with ``n = nx * ny``. ``C1`` is the FITS axis 1 (x, numpy column), ``C2``
the FITS axis 2 (y, numpy row): spaxel ``(C1, C2)`` is ``image[C2, C1]``. Only the upper
triangle is stored, in the x-major order ``C1 * ny + C2`` of the IDL/mangadap cubes.

astropy layout (:meth:`astropy.nddata.Covariance.to_table`): columns ``INDXI, INDXJ`` (one
index, or one row of ``(y, x)`` per pair when ``COVDSHP`` gives the data shape) and ``COVARIJ``,
keys ``COVSHAPE`` and ``COVDSHP``; upper triangle in row-major order.

Both readers take the grid shape from an explicit ``shape``, else from ``COVDSHP = '(ny, nx)'``
(which bayesifu also writes into CORREL tables, MaNGA's own have none), else a square grid from
``COVSHAPE``.

The SNRG ``SPECTRUM`` table lists spaxels in the same x-major order: row ``C1 * ny + C2``, with
``DRP_INDEX = (C1, C2)``; :func:`read_spectrum_table` turns its columns into ``[ny, nx]`` maps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .._files import write_atomic
from ..errors import CovarianceError, FileFormatError, InputError, MissingExtensionError, ShapeError

__all__ = [
    "parse_table",
    "symmetric_from_pairs",
    "to_table",
    "read_fits_table",
    "write_fits",
    "read_spectrum_table",
]

CORREL_COLUMNS = ("INDXI_C1", "INDXI_C2", "INDXJ_C1", "INDXJ_C2", "RHOIJ")
ASTROPY_COLUMNS = ("INDXI", "INDXJ", "COVARIJ")


def _parse_shape(text, key, source):
    """``'(a, b)'`` -> ``(a, b)``; raise :class:`FileFormatError` naming the key otherwise."""
    try:
        values = tuple(int(v) for v in str(text).strip("()[] ").split(",") if v.strip())
    except ValueError as err:
        raise FileFormatError(f"{source}: {key} = {text!r} is not a shape like '(n, n)'") from err
    if not values:
        raise FileFormatError(f"{source}: {key} = {text!r} is not a shape like '(n, n)'")
    return values


def _grid_from_covshape(meta, shape, source):
    """The grid shape: given, or a square grid from ``COVSHAPE = (n, n)``."""
    if "COVSHAPE" not in meta:
        raise FileFormatError(f"{source}: the COVSHAPE header key is missing")
    covshape = _parse_shape(meta["COVSHAPE"], "COVSHAPE", source)
    if len(covshape) != 2 or covshape[0] != covshape[1]:
        raise FileFormatError(f"{source}: COVSHAPE {covshape} is not a square matrix shape")
    n = covshape[0]
    if shape is None:
        side = int(round(np.sqrt(n)))
        if side * side != n:
            raise ShapeError(
                f"{source}: COVSHAPE {covshape} is not a square grid; give shape=(ny, nx)"
            )
        shape = (side, side)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or shape[0] * shape[1] != n:
        raise ShapeError(f"{source}: shape {shape} does not match COVSHAPE {covshape}")
    return shape


def _check_indices(name, values, size, source):
    if values.size and (values.min() < 0 or values.max() >= size):
        raise FileFormatError(
            f"{source}: column {name} has indices outside 0..{size - 1} "
            f"(found {values.min()}..{values.max()})"
        )


def parse_table(table, shape, source):
    """Row-major pair indices and values of a correlation table in either layout.

    Returns
    -------
    shape : tuple of int
    i, j : numpy.ndarray of int
        Row-major grid indices ``y * nx + x`` of each pair.
    rho : numpy.ndarray of float
    layout : str
        ``"correl"`` or ``"astropy"``.
    """
    names = set(table.colnames)
    meta = {k.upper(): v for k, v in table.meta.items()}
    if shape is None and "COVDSHP" in meta:
        shape = _parse_shape(meta["COVDSHP"], "COVDSHP", source)
    if set(CORREL_COLUMNS) <= names:
        shape = _grid_from_covshape(meta, shape, source)
        ny, nx = shape
        cols = {c: np.asarray(table[c]).astype(int) for c in CORREL_COLUMNS[:4]}
        for c in CORREL_COLUMNS[:4]:
            _check_indices(c, cols[c], nx if c.endswith("C1") else ny, source)
        i = cols["INDXI_C2"] * nx + cols["INDXI_C1"]
        j = cols["INDXJ_C2"] * nx + cols["INDXJ_C1"]
        rho = np.asarray(table["RHOIJ"], dtype=float)
        return shape, i, j, rho, "correl"
    if set(ASTROPY_COLUMNS) <= names:
        shape = _grid_from_covshape(meta, shape, source)
        idx = []
        for c in ASTROPY_COLUMNS[:2]:
            v = np.asarray(table[c]).astype(int)
            if v.ndim == 2:
                if v.shape[1] != 2:
                    raise FileFormatError(f"{source}: column {c} is not (y, x) pairs")
                _check_indices(c + " y", v[:, 0], shape[0], source)
                _check_indices(c + " x", v[:, 1], shape[1], source)
                v = v[:, 0] * shape[1] + v[:, 1]
            _check_indices(c, v, shape[0] * shape[1], source)
            idx.append(v)
        return shape, idx[0], idx[1], np.asarray(table["COVARIJ"], dtype=float), "astropy"
    raise FileFormatError(
        f"{source}: not a correlation table; expected columns {CORREL_COLUMNS} (MaNGA) or "
        f"{ASTROPY_COLUMNS} (astropy), found {sorted(names)}"
    )


def symmetric_from_pairs(i, j, rho, shape, source):
    """Symmetric CSR matrix from pairs listed once (either triangle) or twice consistently."""
    if not np.all(np.isfinite(rho)):
        raise CovarianceError(f"{source}: {int((~np.isfinite(rho)).sum())} NaN/infinite values")
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    n = shape[0] * shape[1]
    key = lo.astype(np.int64) * n + hi
    order = np.lexsort((rho, key))
    key, lo, hi, rho = key[order], lo[order], hi[order], rho[order]
    first = np.r_[True, key[1:] != key[:-1]]
    last = np.r_[key[1:] != key[:-1], True]
    spread = rho[last] - rho[first]
    if spread.size and np.abs(spread).max() > 1e-10:
        bad = int((np.abs(spread) > 1e-10).sum())
        raise CovarianceError(
            f"{source}: the table is asymmetric: {bad} pair(s) are listed twice with different "
            f"values (largest difference {np.abs(spread).max():.3g})"
        )
    lo, hi, rho = lo[first], hi[first], rho[first]
    off = lo != hi
    rows = np.concatenate([lo, hi[off]])
    cols = np.concatenate([hi, lo[off]])
    vals = np.concatenate([rho, rho[off]])
    return sp.coo_array((vals, (rows, cols)), shape=(n, n)).tocsr()


def to_table(matrix, shape, layout="correl"):
    """Upper triangle of a symmetric grid matrix as an astropy Table in the given layout."""
    from astropy.nddata import Covariance
    from astropy.table import Table

    ny, nx = shape
    n = ny * nx
    if layout == "astropy":
        cov = Covariance(array=sp.csr_matrix(matrix), data_shape=shape, assume_symmetric=True)
        return cov.to_table()
    if layout != "correl":
        raise InputError(f"layout must be 'correl' or 'astropy', got {layout!r}")
    coo = sp.coo_array(matrix)
    y_i, x_i = np.divmod(coo.coords[0], nx)
    y_j, x_j = np.divmod(coo.coords[1], nx)
    a = x_i * ny + y_i
    b = x_j * ny + y_j
    keep = a <= b
    order = np.lexsort((a[keep], b[keep]))
    columns = [x_i, y_i, x_j, y_j]
    data = [c[keep][order].astype(np.int32) for c in columns]
    data.append(coo.data[keep][order].astype(float))
    meta = {"COVSHAPE": str((n, n)), "COVDSHP": str((ny, nx))}
    return Table(data, names=CORREL_COLUMNS, meta=meta)


def read_fits_table(path, ext):
    """The binary table in extension ``ext`` of a FITS file, with its header in ``meta``."""
    from astropy.io import fits
    from astropy.table import Table

    try:
        with fits.open(path) as hdul:
            if ext not in hdul:
                names = [h.name for h in hdul]
                raise MissingExtensionError(f"{path}: no extension {ext!r} (has {names})")
            hdu = hdul[ext]
            if not isinstance(hdu, fits.BinTableHDU):
                raise FileFormatError(f"{path}[{ext}] is not a binary table")
            table = Table(hdu.data.copy())
            table.meta.update({k: v for k, v in hdu.header.items() if k in ("COVSHAPE", "COVDSHP")})
            return table
    except FileNotFoundError as err:
        raise FileFormatError(f"{path}: no such file") from err
    except OSError as err:
        if isinstance(err, FileFormatError):
            raise
        raise FileFormatError(f"{path}: cannot be read as FITS ({err})") from err


def write_fits(table, path, ext="CORREL", overwrite=False, provenance=None):
    """Write ``table`` as extension ``ext`` of a new FITS file, whole or not at all.

    The file is written to a temporary file in the same folder and moved into place with
    :func:`os.replace`, so a crash never leaves a partial file behind. ``provenance``: keyword
    arguments of :func:`bayesifu.io.provenance.add_provenance` for the primary header.
    """
    from astropy.io import fits

    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass overwrite=True to replace it")
    hdu = fits.table_to_hdu(table)
    hdu.name = ext
    for key, value in table.meta.items():
        hdu.header[key] = value
    primary = fits.PrimaryHDU()
    if provenance is not None:
        from ..io.provenance import add_provenance

        add_provenance(primary.header, **provenance)
    hdul = fits.HDUList([primary, hdu])
    write_atomic(path, lambda tmp: hdul.writeto(tmp, overwrite=True))


def read_spectrum_table(path, ext="SPECTRUM", shape=None):
    """Per-spaxel columns of a MaNGA DAP SNRG ``SPECTRUM`` table as ``[ny, nx]`` maps.

    Rows are in x-major order (``DRP_INDEX = (C1, C2)``, row ``C1 * ny + C2``); each numeric
    scalar column (``SIGNAL``, ``VARIANCE``, ``SNR``, ...) is placed at ``image[C2, C1]``.

    Returns
    -------
    dict of str -> numpy.ndarray, shape (ny, nx)
    """
    table = read_fits_table(path, ext)
    if "DRP_INDEX" not in table.colnames:
        raise FileFormatError(f"{path}[{ext}]: no DRP_INDEX column")
    index = np.asarray(table["DRP_INDEX"]).astype(int)
    c1, c2 = index[:, 0], index[:, 1]
    if shape is None:
        shape = (int(c2.max()) + 1, int(c1.max()) + 1)
    out = {}
    for name in table.colnames:
        col = np.asarray(table[name])
        if name == "DRP_INDEX" or col.ndim != 1:
            continue
        image = np.zeros(shape, dtype=float)
        image[c2, c1] = col.astype(float)
        out[name] = image
    return out
