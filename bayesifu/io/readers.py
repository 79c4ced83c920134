"""The public readers :func:`read_cube` and :func:`read_map`: detect the format, then dispatch;
:func:`read_flux_weights` for the luminosity weights of a binned map."""

from __future__ import annotations

import numpy as np

from ..containers import Cube, Map
from ..errors import BayesifuError, UnsupportedFormatError
from .detect import detect_format
from .fitsio import open_fits
from .generic import read_generic_cube, read_generic_map
from .manga_dap import DAP_DEFAULT_MASK_BITS, read_dap_map, read_snrg_map
from .manga_drp import read_manga_cube
from .muse import read_muse_cube

__all__ = ["read_cube", "read_map", "read_flux_weights"]

_CUBE_READERS = {
    "manga-drp-cube": read_manga_cube,
    "muse-cube": read_muse_cube,
    "generic-cube": read_generic_cube,
}

_WHAT = {
    "manga-dap-maps": "a MaNGA DAP MAPS file (maps, not a cube); use read_map(path, ext)",
    "manga-dap-snrg": "a MaNGA DAP SNRG table file; use read_map(path, 'SPECTRUM')",
    "manga-drp-cube": "a MaNGA DRP cube; use read_cube",
    "muse-cube": "a MUSE cube; use read_cube",
    "muse-image": "a MUSE image (2-D); use read_map(path, 'DATA')",
    "generic-map": "a 2-D map; use read_map",
    "generic-cube": "a cube; use read_cube",
    "image": "an image HDU without error extension (no IFU format recognised)",
    "unknown": "a FITS file without image data",
}


def read_cube(path) -> Cube:
    """Read a spectral cube, recognising the format from the file.

    Supported: MaNGA DRP LOGCUBE/LINCUBE (:mod:`bayesifu.io.manga_drp`), MUSE ``DATA``/``STAT``/
    ``DQ`` cubes (:mod:`bayesifu.io.muse`) and generic ``FLUX`` + ``IVAR``/``ERR``/``VAR`` cubes
    (:mod:`bayesifu.io.generic`), each optionally gzip-compressed.

    Memory: uncompressed files are memory mapped, so ``flux`` (and ``variance`` where the file
    stores a variance, as MUSE ``STAT`` does) are views of the file in its own dtype and byte
    order (FITS is big-endian): nothing is copied or upcast. Where the file stores an inverse
    variance or an error, ``variance`` is one new array of the same float dtype; the mask is one
    boolean array. The file is read once, channel chunk by channel chunk, to validate the
    variance. A ``.gz`` file must be decompressed by astropy: each extension used is decompressed
    once into memory (lazily, as it is reached), which for a full MUSE field means about 1.3 GB
    per float32 extension and tens of seconds. Convert slices with ``np.asarray(x, dtype=...)``
    before handing them to JAX, which rejects big-endian arrays.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Cube

    Raises
    ------
    FileFormatError
        The file does not exist or is not FITS.
    UnsupportedFormatError
        The file is not a cube of a supported kind.
    MissingExtensionError, ShapeError, VarianceError
        An extension the format requires is missing, shapes disagree, or a pixel in use has a NaN
        or negative variance.
    """
    with open_fits(path) as hdul:
        kind = detect_format(hdul)
        if kind not in _CUBE_READERS:
            raise UnsupportedFormatError(f"{path}: not a supported cube: it is {_WHAT[kind]}")
        return _CUBE_READERS[kind](hdul, path)


def read_map(path, ext=None, channel=None, *, mask_bits=DAP_DEFAULT_MASK_BITS) -> Map:
    """Read a map (one value per spaxel with its variance), recognising the format from the file.

    Parameters
    ----------
    path : str or path-like
        MaNGA DAP MAPS file, MaNGA DAP SNRG file, MUSE image, or generic FITS map (``FLUX`` with
        ``IVAR``/``ERR``/``VAR``), optionally gzip-compressed.
    ext : str, optional
        The extension, e.g. ``"EMLINE_GVEL"`` or ``"STELLAR_VEL"`` (required for MAPS files);
        default ``FLUX``/``DATA``/``SCI`` for a generic map, ``SPECTRUM`` for an SNRG file.
    channel : str or int, optional
        Channel of a multi-channel extension, by name from the header's ``Cn`` keys (e.g.
        ``"Ha-6564"``) or by 0-based index.
    mask_bits : sequence of str
        ``MANGA_DAPPIXMASK`` bits that mask a spaxel of a MAPS file (see
        :mod:`bayesifu.io.manga_dap` for the default and why).

    Returns
    -------
    Map
        With ``binid`` (``-1`` = no bin) for binned DAP quantities.

    Raises
    ------
    FileFormatError, UnsupportedFormatError, MissingExtensionError, UnknownChannelError,
    ShapeError, VarianceError
    """
    with open_fits(path) as hdul:
        kind = detect_format(hdul)
        if kind == "manga-dap-maps":
            return read_dap_map(hdul, path, ext, channel, mask_bits)
        if kind == "manga-dap-snrg":
            return read_snrg_map(hdul, path, ext, channel)
        if kind in ("generic-map", "muse-image"):
            return read_generic_map(hdul, path, ext, channel)
        raise UnsupportedFormatError(f"{path}: not a supported map: it is {_WHAT[kind]}")


def read_flux_weights(path, m: Map, ext: str = "SPX_MFLUX") -> Map | None:
    """The per-spaxel flux of a MAPS file as luminosity weights of the bins of map ``m``.

    A binned DAP quantity (e.g. ``STELLAR_VEL``) is fitted to the stacked spectrum of a bin, so
    a model of it is the flux-weighted mean over the bin's spaxels, and its errors are
    correlated between bins through the noise of those spaxels
    (:class:`~bayesifu.likelihood.BinnedMapLikelihood`: ``flux=w.data``,
    ``spaxel_variance=w.variance``).

    Parameters
    ----------
    path : str or path-like
        The MAPS file ``m`` was read from.
    m : Map
        The binned map; the weights must be usable on every one of its valid spaxels.
    ext : str
        The flux extension (default ``SPX_MFLUX``, the mean g-band flux of each spaxel).

    Returns
    -------
    Map or None
        ``ext`` with its variance, or None if the file has no such map or it is unusable on a
        valid spaxel of ``m`` (masked, zero or negative flux, no finite positive variance): the
        caller then weights uniformly.
    """
    try:
        flux = read_map(path, ext)
    except BayesifuError:
        return None
    if flux.shape != m.shape:
        return None
    good = m.good
    var, data = flux.variance[good], flux.data[good]
    ok = np.isfinite(var) & (var > 0) & (data > 0)
    return flux if ok.all() and not flux.mask[good].any() else None
