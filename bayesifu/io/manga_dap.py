"""Readers of MaNGA DAP output: ``MAPS`` files and the reduction-assessment (``SNRG``) file.

A MAPS extension is ``[ny, nx]`` or ``[nchannel, ny, nx]``; channel ``n`` (1-based) is named by
the header keyword ``Cn``/``C0n`` (e.g. ``EMLINE_GVEL`` channel ``"Ha-6564"``). Its errors are in
``<EXT>_IVAR`` and its quality bits (``MANGA_DAPPIXMASK``) in ``<EXT>_MASK`` (the header keys
``ERRDATA`` and ``QUALDATA`` name them). Westfall et al. (2019), AJ 158, 231,
doi:10.3847/1538-3881/ab44a2; bits: https://sdss-mangadap.readthedocs.io (Metadata Model,
MANGA_DAPPIXMASK).

Masking (``True`` = do not use). By default a spaxel is masked if its ``_MASK`` value has any of
these ``MANGA_DAPPIXMASK`` bits set:

* ``DONOTUSE`` (30): the DAP's own "do not use for science" flag;
* ``NOCOV`` (0), ``LOWCOV`` (1), ``DEADFIBER`` (2), ``FORESTAR`` (3), ``NOVALUE`` (4),
  ``MATHERROR`` (6), ``FITFAILED`` (7), ``NEARBOUND`` (8): the flags the DAP consolidates into
  ``DONOTUSE``; tested one by one as well, so a file whose consolidation is incomplete is safe;
* ``UNRELIABLE`` (5): *not* part of ``DONOTUSE``. The DAP documentation leaves its use to the
  user and says it is set (in DAP 2.x/3.x) only for ``EMLINE_SFLUX``, ``EMLINE_SEW`` and
  ``SPECINDEX`` when a passband has masked pixels; a likelihood should not trust such a value, so
  it is masked by default.

Not masked: ``NOCORRECTION`` (9; a correction, e.g. of the dispersion, is unavailable but the
value itself is sound) and ``MULTICOMP`` (10; informational, a placeholder). Spaxels with
``IVAR <= 0`` are masked too, and so are spaxels that belong to no bin (``BINID = -1``). Pass
``mask_bits`` to choose other bits.
"""

from __future__ import annotations

import numpy as np

from ..containers import Map
from ..errors import InputError, MissingExtensionError, ShapeError, UnknownChannelError
from .arrays import variance_from_error
from .fitsio import celestial_wcs, channel_index, channel_names, find_hdu, get_hdu, header_unit

__all__ = [
    "DAP_PIXMASK_BITS",
    "DAP_DEFAULT_MASK_BITS",
    "binid_channel",
    "read_dap_map",
    "read_snrg_map",
]

#: ``MANGA_DAPPIXMASK`` bit numbers.
DAP_PIXMASK_BITS = {
    "NOCOV": 0,
    "LOWCOV": 1,
    "DEADFIBER": 2,
    "FORESTAR": 3,
    "NOVALUE": 4,
    "UNRELIABLE": 5,
    "MATHERROR": 6,
    "FITFAILED": 7,
    "NEARBOUND": 8,
    "NOCORRECTION": 9,
    "MULTICOMP": 10,
    "DONOTUSE": 30,
}
#: Bits masked by default (see the module docstring for why).
DAP_DEFAULT_MASK_BITS = (
    "NOCOV",
    "LOWCOV",
    "DEADFIBER",
    "FORESTAR",
    "NOVALUE",
    "UNRELIABLE",
    "MATHERROR",
    "FITFAILED",
    "NEARBOUND",
    "DONOTUSE",
)

#: Which ``BINID`` channel gives the bins of an extension, by extension-name prefix.
_BINID_CHANNELS = (
    ("STELLAR_", "Stellar continua"),
    ("EMLINE_S", "Em. line moments"),
    ("EMLINE_", "Em. line models"),
    ("SPECINDEX", "Spectral indices"),
    ("BIN_", "Binned spectra"),
)


def binid_channel(ext: str) -> str | None:
    """The ``BINID`` channel that holds the bin of each spaxel for extension ``ext``.

    ``STELLAR_*`` → ``"Stellar continua"``; ``EMLINE_SFLUX``/``EMLINE_SEW`` → ``"Em. line
    moments"``; other ``EMLINE_*`` (``GVEL``, ``GSIGMA``, ``GFLUX``, ...) → ``"Em. line models"``;
    ``SPECINDEX*`` → ``"Spectral indices"``; ``BIN_*`` → ``"Binned spectra"``; per-spaxel
    quantities (``SPX_*``) → ``None``.
    """
    ext = ext.upper()
    for prefix, channel in _BINID_CHANNELS:
        if ext.startswith(prefix):
            return channel
    return None


def _mask_value(bits, path) -> int:
    unknown = [b for b in bits if b not in DAP_PIXMASK_BITS]
    if unknown:
        raise InputError(
            f"{path}: unknown MANGA_DAPPIXMASK bit(s) {unknown}; known: "
            f"{', '.join(DAP_PIXMASK_BITS)}"
        )
    return sum(1 << DAP_PIXMASK_BITS[b] for b in bits)


def _select(array, header, channel, path, ext):
    """The 2-D plane of ``array`` for ``channel`` (and its 0-based index, or ``None``)."""
    if array.ndim == 2:
        if channel is not None:
            raise UnknownChannelError(
                f"{path}[{ext}]: extension is a single map and has no channels; "
                f"got channel={channel!r}"
            )
        return array, None
    if array.ndim != 3:
        raise ShapeError(f"{path}[{ext}]: expected a 2-D or 3-D image, got shape {array.shape}")
    k = channel_index(header, channel, array.shape[0], path, ext)
    return array[k], k


def _binid(hdul, ext, shape):
    channel = binid_channel(ext)
    hdu = find_hdu(hdul, "BINID")
    if channel is None or hdu is None:
        return None
    names = {k.lower(): v for k, v in channel_names(hdu.header).items()}
    if channel.lower() not in names:
        return None
    binid = np.asarray(hdu.data[names[channel.lower()]], dtype=int)
    return binid if binid.shape == shape else None


def read_dap_map(hdul, path, ext, channel=None, mask_bits=DAP_DEFAULT_MASK_BITS) -> Map:
    """Read one extension (and channel) of an open DAP MAPS file into a :class:`~bayesifu.Map`.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
    path : str or path-like
        The file (for messages).
    ext : str
        Extension name, e.g. ``"EMLINE_GVEL"`` or ``"STELLAR_VEL"``.
    channel : str or int, optional
        Channel name from the ``Cn`` header keys (e.g. ``"Ha-6564"``) or 0-based index; required
        for multi-channel extensions.
    mask_bits : sequence of str
        ``MANGA_DAPPIXMASK`` bit names that mask a spaxel.

    Returns
    -------
    Map
        ``data`` [unit from ``Unn`` or ``BUNIT``], ``variance = 1/IVAR`` (``inf`` where masked
        for want of an inverse variance), the mask described in the module docstring, the
        celestial WCS and, for binned quantities, ``binid`` (``-1`` = no bin).

    Raises
    ------
    MissingExtensionError
        ``ext`` is not in the file, or it has no ``_IVAR`` extension (e.g. ``SPX_SNR``,
        ``BINID``, ``EMLINE_INSTSIGMA``): a quantity without errors cannot be a Map.
    UnknownChannelError
        ``channel`` is not one of the extension's channels (the message lists them), is missing
        for a multi-channel extension, or is given for a single map.
    ShapeError, VarianceError
        ``_IVAR``/``_MASK`` do not match the value's shape, or an unmasked ``IVAR`` is NaN.
    """
    if ext is None:
        raise UnknownChannelError(
            f"{path}: a DAP MAPS file holds many quantities; name one with ext=... (e.g. "
            f"'EMLINE_GVEL'); extensions: {', '.join(h.name for h in hdul[1:])}"
        )
    ext = ext.upper()
    hdu = get_hdu(hdul, ext, path)
    header = hdu.header
    ivar_name = str(header.get("ERRDATA", f"{ext}_IVAR")).strip().upper()
    ivar_hdu = get_hdu(hdul, ivar_name, path, f"inverse variance of {ext}; no errors, no map")
    qual_name = str(header.get("QUALDATA", f"{ext}_MASK")).strip().upper()
    qual_hdu = find_hdu(hdul, qual_name)
    if qual_hdu is None and "QUALDATA" in header:
        raise MissingExtensionError(f"{path}: extension {qual_name} (quality of {ext}) not found")
    for name, other in ((ivar_name, ivar_hdu), (qual_name, qual_hdu)):
        if other is not None and other.data.shape != hdu.data.shape:
            raise ShapeError(
                f"{path}: extension {name} has shape {other.data.shape}, which does not match "
                f"{ext} {hdu.data.shape}"
            )
    data, k = _select(hdu.data, header, channel, path, ext)
    ivar = np.asarray(ivar_hdu.data[k] if k is not None else ivar_hdu.data, dtype=float)
    mask = ivar <= 0
    if qual_hdu is not None:
        bits = np.asarray(qual_hdu.data[k] if k is not None else qual_hdu.data)
        mask |= (bits.astype(np.int64) & _mask_value(mask_bits, path)) != 0
    unit = header_unit(header, f"U{k + 1:02d}") if k is not None else ""
    cname = None if k is None else next(n for n, i in channel_names(header).items() if i == k)
    return Map(
        data=np.asarray(data, dtype=float),
        variance=variance_from_error(ivar, "ivar"),
        mask=mask,
        wcs=celestial_wcs(header),
        unit=unit or header_unit(header),
        binid=_binid(hdul, ext, data.shape),
        name=f"{path}[{ext}" + (f", channel {cname}]" if cname else "]"),
        meta={
            "format": "manga-dap-maps",
            "ext": ext,
            "channel": cname,
            "header": header,
            "mask_bits": tuple(mask_bits),
        },
    )


def read_snrg_map(hdul, path, ext="SPECTRUM", channel=None) -> Map:
    """Read the per-spaxel g-band ``SIGNAL`` and ``VARIANCE`` of a DAP ``SNRG`` file as a Map.

    The ``SPECTRUM`` table has one row per spaxel; ``DRP_INDEX`` gives its position as
    ``(x, y)`` = (numpy column, numpy row), the same convention as the ``CORREL`` table's
    ``C1``/``C2`` indices. Spaxels with no good pixels (``FGOODPIX = 0``) or zero variance are
    masked. No WCS is stored in this file; the map has none.
    """
    ext = (ext or "SPECTRUM").upper()
    if ext != "SPECTRUM":
        raise UnknownChannelError(
            f"{path}[{ext}]: an SNRG file gives a map only from its SPECTRUM table"
        )
    table = get_hdu(hdul, "SPECTRUM", path).data
    channel = "SIGNAL" if channel is None else str(channel).upper()
    if channel != "SIGNAL":
        raise UnknownChannelError(
            f"{path}[SPECTRUM]: unknown channel {channel!r}; available channels: SIGNAL "
            "(with VARIANCE)"
        )
    for column in ("DRP_INDEX", "SIGNAL", "VARIANCE", "FGOODPIX"):
        if column not in table.names:
            raise MissingExtensionError(f"{path}[SPECTRUM]: column {column} not found")
    index = np.asarray(table["DRP_INDEX"], dtype=int)
    x, y = index[:, 0], index[:, 1]
    shape = (int(y.max()) + 1, int(x.max()) + 1)
    data = np.zeros(shape)
    variance = np.zeros(shape)
    good = np.zeros(shape)
    data[y, x] = table["SIGNAL"]
    variance[y, x] = table["VARIANCE"]
    good[y, x] = table["FGOODPIX"]
    mask = (good <= 0) | (variance == 0)
    return Map(
        data=data,
        variance=np.where(mask, np.inf, variance),
        mask=mask,
        name=f"{path}[SPECTRUM, channel SIGNAL]",
        meta={
            "format": "manga-dap-snrg",
            "ext": "SPECTRUM",
            "channel": "SIGNAL",
            "header": hdul[0].header,
        },
    )
