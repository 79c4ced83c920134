"""``bayesifu info FILE``: say what a FITS file is and what a reader would make of it.

Prints the detected format, the extensions with their shapes, and, by kind: for a cube the
wavelength range and medium, masked fraction, spaxel scale and correlation tables; for a MaNGA DAP
MAPS file each extension with its channels and masked fraction; for a DAP SNRG file the spaxels
with data and the ``CORREL`` table (``COVSHAPE``, entries, diagonal); for any other image (e.g. an
SDSS spectral template) a generic description of its image HDUs.
"""

from __future__ import annotations

import numpy as np

from ..io import detect_format, read_cube, read_map
from ..io.fitsio import celestial_wcs, channel_names, open_fits, spaxel_scale
from ..io.manga_dap import DAP_DEFAULT_MASK_BITS, DAP_PIXMASK_BITS, binid_channel
from ..io.manga_drp import read_correlation_table

__all__ = ["register", "run", "describe"]


def register(subparsers) -> None:
    """Add the ``info`` sub-command."""
    import argparse

    parser = subparsers.add_parser(
        "info",
        help="describe an IFU FITS file (format, extensions, wavelengths, masks, correlation)",
        description="Say what a FITS file is and what a reader would make of it: the format, the "
        "extensions and, by kind, wavelengths, masks, spaxel scale and correlation tables.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "file", metavar="FILE", help="FITS file (MaNGA cube/MAPS/SNRG, MUSE cube, generic)"
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    """Print the description of ``args.file``; returns 0."""
    from .checks import check_fits_file

    check_fits_file(args.file, "FILE")  # a one-line error naming FILE, not a traceback
    print("\n".join(describe(args.file)))
    return 0


def _hdu_line(i, hdu) -> str:
    name = hdu.name or "(no name)"
    if hdu.is_image:
        naxis = range(hdu.header["NAXIS"], 0, -1)
        shape = "x".join(str(hdu.header.get(f"NAXIS{k}")) for k in naxis)
        kind = f"image [{shape}] {hdu.header['BITPIX']} bit" if shape else "header only"
    else:
        kind = f"table {hdu.header.get('NAXIS2', 0)} rows x {hdu.header.get('TFIELDS', 0)} cols"
    return f"  {i:2d} {name:<22s} {kind}"


def _fmt_scale(scale) -> str:
    return "unknown (no celestial WCS)" if scale is None else f"{scale:.4g} arcsec"


def _describe_cube(path) -> list[str]:
    cube = read_cube(path)
    lines = [
        f"cube: {cube.shape[0]} channels x {cube.shape[1]} x {cube.shape[2]} spaxels "
        f"(nwave, ny, nx), flux {cube.flux.dtype.name}, unit {cube.unit or '?'}",
        f"wavelength: {cube.wave[0]:.2f} - {cube.wave[-1]:.2f} Angstrom ({cube.wave_medium})",
        f"masked fraction: {cube.masked_fraction():.3g} (mask, non-finite flux or variance)",
        f"spaxel scale: {_fmt_scale(cube.spaxel_scale)}",
    ]
    if cube.spectral_resolution is not None:
        r = cube.spectral_resolution
        lines.append(f"spectral resolution R: {np.nanmin(r):.0f} - {np.nanmax(r):.0f}")
    if cube.correlation_tables:
        for name, table in cube.correlation_tables.items():
            lines.append(
                f"correlation table {name}: {len(table)} entries, COVSHAPE "
                f"{table.meta.get('COVSHAPE', '?')}, BBINDEX {table.meta.get('BBINDEX', '?')}"
            )
    else:
        lines.append("correlation tables: none")
    return lines


def _masked_fraction(hdul, hdu) -> str:
    qual = str(hdu.header.get("QUALDATA", "")).strip()
    if not qual or qual not in hdul:
        return ""
    value = sum(1 << DAP_PIXMASK_BITS[b] for b in DAP_DEFAULT_MASK_BITS)
    bits = np.asarray(hdul[qual].data).astype(np.int64)
    return f", masked {np.mean((bits & value) != 0):.3f}"


def _bins(hdul, ext) -> str:
    channel = binid_channel(ext)
    if channel is None or "BINID" not in hdul:
        return ""
    names = channel_names(hdul["BINID"].header)
    if channel not in names:
        return ""
    binid = np.asarray(hdul["BINID"].data[names[channel]])
    return f", {np.unique(binid[binid >= 0]).size} bins (BINID '{channel}')"


def _describe_maps(path, hdul) -> list[str]:
    first = hdul[1]
    wcs = celestial_wcs(first.header)
    ny, nx = first.data.shape[-2:]
    lines = [
        f"maps: {ny} x {nx} spaxels, spaxel scale {_fmt_scale(spaxel_scale(wcs))}, "
        f"DAP {hdul[0].header.get('VERSDAP', '?')} {hdul[0].header.get('DAPTYPE', '')}",
        "quantities (value extensions; errors in <EXT>_IVAR, quality in <EXT>_MASK;"
        " masked = default MANGA_DAPPIXMASK bits):",
    ]
    for hdu in hdul[1:]:
        if str(hdu.header.get("HDUCLAS2", "DATA")).strip() != "DATA":
            continue
        chans = channel_names(hdu.header)
        unit = str(hdu.header.get("BUNIT", "")).strip()
        text = f"  {hdu.name}" + (f" [{unit}]" if unit else "")
        text += _masked_fraction(hdul, hdu) + _bins(hdul, hdu.name)
        if chans:
            text += f": {len(chans)} channels: " + ", ".join(sorted(chans, key=chans.get))
        lines.append(text)
    return lines


def _describe_snrg(path, hdul) -> list[str]:
    m = read_map(path, "SPECTRUM")
    lines = [
        f"per-spaxel g-band signal map: {m.shape[0]} x {m.shape[1]} spaxels, "
        f"{m.n_good} with data (SIGNAL, VARIANCE)",
        f"broad-band channel: BBINDEX {hdul[0].header.get('BBINDEX', '?')}, "
        f"BBWAVE {hdul[0].header.get('BBWAVE', float('nan')):.2f} Angstrom",
    ]
    table = read_correlation_table(hdul["CORREL"])
    diag = (table["INDXI_C1"] == table["INDXJ_C1"]) & (table["INDXI_C2"] == table["INDXJ_C2"])
    lines.append(
        f"correlation table CORREL: {len(table)} entries (upper triangle), "
        f"{int(diag.sum())} diagonal, COVSHAPE {table.meta.get('COVSHAPE', '?')}, "
        f"columns {', '.join(table.colnames)} (C1 = x = numpy column, C2 = y = numpy row)"
    )
    return lines


def _describe_image(path, hdul) -> list[str]:
    lines = ["no IFU reader applies (no error extension); image HDUs:"]
    for i, hdu in enumerate(hdul):
        if not hdu.is_image or not hdu.header.get("NAXIS"):
            continue
        shape = hdu.data.shape
        lines.append(f"  HDU {i}: image of shape {shape} ({hdu.data.dtype})")
        h = hdu.header
        if "COEFF0" in h and "COEFF1" in h and len(shape) in (1, 2):
            n = shape[-1]
            lo, hi = 10 ** h["COEFF0"], 10 ** (h["COEFF0"] + h["COEFF1"] * (n - 1))
            rows = "1 spectrum" if len(shape) == 1 else f"{shape[0]} rows (row 0 the spectrum)"
            lines.append(
                f"    1-D log-linear spectrum image: {rows} of {n} pixels, log10(lambda) = "
                f"COEFF0 + COEFF1 * i = {h['COEFF0']:.4f} + {h['COEFF1']:.2e} i, "
                f"{lo:.1f} - {hi:.1f} Angstrom (e.g. an SDSS spectral template)"
            )
    return lines


def describe(path) -> list[str]:
    """Lines describing the FITS file ``path`` (see the module docstring)."""
    with open_fits(path) as hdul:
        kind = detect_format(hdul)
        lines = [f"file: {path}", f"format: {kind}", "extensions:"]
        lines += [_hdu_line(i, hdu) for i, hdu in enumerate(hdul)]
        if kind == "manga-dap-maps":
            lines += _describe_maps(path, hdul)
        elif kind == "manga-dap-snrg":
            lines += _describe_snrg(path, hdul)
        elif kind in ("image", "unknown"):
            lines += _describe_image(path, hdul)
    if kind in ("manga-drp-cube", "muse-cube", "generic-cube"):
        lines += _describe_cube(path)
    elif kind in ("generic-map", "muse-image"):
        m = read_map(path)
        lines.append(
            f"map: {m.shape[0]} x {m.shape[1]} spaxels, unit {m.unit or '?'}, masked fraction "
            f"{1 - m.n_good / m.data.size:.4f}, spaxel scale "
            f"{_fmt_scale(spaxel_scale(m.wcs))}"
        )
    return lines
