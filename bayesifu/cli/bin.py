"""``bayesifu bin``: bin a map (or a cube) to a target S/N with the spatial covariance.

Writes a FITS file with the bin map (``BINID``), the S/N of each spaxel's bin with and without the
covariance (``SN_COVAR``, ``SN_INDEP``) and a ``BINS`` table, plus a PNG of the S/N maps beside it.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError, UnsupportedFormatError

__all__ = ["register", "run"]


def register(subparsers):
    p = subparsers.add_parser(
        "bin",
        help="bin a map or cube to a target S/N with the spatial covariance",
        description=(
            "Bin a map (MaNGA DAP MAPS/SNRG, MUSE image, generic FITS map) or a cube (collapsed "
            "over --wave-range) to a target S/N, with the S/N including the spatial covariance. "
            "Writes BINID, SN_COVAR, SN_INDEP and a BINS table to --out, and a PNG beside it."
        ),
    )
    p.add_argument("file", help="input FITS file")
    p.add_argument("--target-sn", type=float, required=True, help="target S/N of every bin")
    p.add_argument("--method", choices=["voronoi", "sed"], default="voronoi")
    p.add_argument(
        "--correlation",
        default="none",
        help="'none' (independent), 'gaussian' (sigma --sigma, rlim --rlim spaxels), 'measured' "
        "(from a cube's noise) or a FITS file with a CORREL table (e.g. a MaNGA SNRG file)",
    )
    p.add_argument("--correlation-ext", default="CORREL", help="extension of the table")
    p.add_argument("--sigma", type=float, default=1.92, help="Gaussian sigma [spaxel]")
    p.add_argument("--rlim", type=float, default=6.4, help="Gaussian truncation [spaxel]")
    p.add_argument("--sn-method", choices=["exact", "calibrated"], default="exact")
    p.add_argument("--ext", default=None, help="extension of a MAPS file, e.g. SPECINDEX")
    p.add_argument("--channel", default=None, help="channel of a MAPS extension, e.g. HDeltaA")
    p.add_argument(
        "--wave-range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=None,
        help="for a cube: wavelength range [Angstrom] of the S/N (default all channels)",
    )
    p.add_argument("--out", required=True, help="output FITS file (the PNG gets .png)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the command; binning warnings are printed as one-line notes on standard error."""
    from ..binning import BinningWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BinningWarning)
        rc = _run(args)
    for w in caught:
        if issubclass(w.category, BinningWarning):
            print(f"bayesifu bin: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return rc


def _run(args) -> int:
    import bayesifu as bi

    from ..binning import voronoi_bins
    from ..binning.cli_output import write_outputs

    if args.method == "sed":
        from ..binning.sed import sed_bins

        cube = bi.read_cube(args.file)
        corr = _correlation(args, cube.spatial_shape, cube)
        bins = sed_bins(cube, target_sn=args.target_sn, correlation=corr)
        data = None
    else:
        data, cube = _read(args)
        corr = _correlation(args, data.shape, cube)
        if corr is not None:
            outside = data.good & ~corr.defined
            if outside.any():
                print(
                    f"bayesifu bin: masking {int(outside.sum())} spaxel(s) outside the "
                    "correlation footprint",
                    file=sys.stderr,
                )
                data = bi.Map(data.data, data.variance, mask=data.mask | ~corr.defined,
                              wcs=data.wcs, name=data.name)  # fmt: skip
        bins = voronoi_bins(data, args.target_sn, correlation=corr, sn_method=args.sn_method)
    fits_path, png_path = write_outputs(bins, args.out, data=data, overwrite=args.overwrite)
    print(
        f"{bins.n_bins} bins; median S/N {np.median(bins.sn):.3g} with covariance, "
        f"{np.median(bins.sn_independent):.3g} ignoring it; wrote {fits_path} and {png_path}"
    )
    return 0


def _read(args):
    """A Map from a map file, or a cube collapsed over the wavelength range; and the cube."""
    import bayesifu as bi

    try:
        return bi.read_map(args.file, args.ext, args.channel), None
    except UnsupportedFormatError:
        cube = bi.read_cube(args.file)
    return _collapse(cube, args.wave_range), cube


def _collapse(cube, wave_range):
    """Mean flux over a wavelength range with its variance (channels independent)."""
    import bayesifu as bi

    sel = np.ones(cube.wave.size, bool)
    if wave_range is not None:
        sel = (cube.wave >= wave_range[0]) & (cube.wave <= wave_range[1])
        if not sel.any():
            raise InputError(f"{cube.name}: no channel in --wave-range {wave_range}")
    flux = np.asarray(cube.flux[sel], dtype=float)
    var = np.asarray(cube.variance[sel], dtype=float)
    bad = ~np.isfinite(flux) | ~np.isfinite(var) | (var <= 0)
    if cube.mask is not None:
        bad |= np.asarray(cube.mask[sel], dtype=bool)
    n = (~bad).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(bad, 0.0, flux).sum(axis=0) / n
        v = np.where(bad, 0.0, var).sum(axis=0) / n**2
    mask = n == 0
    return bi.Map(np.where(mask, 0.0, mean), np.where(mask, 1.0, v), mask=mask, wcs=cube.wcs,
                  name=f"{cube.name} (collapsed)")  # fmt: skip


def _correlation(args, shape, cube):
    import bayesifu as bi

    what = args.correlation
    if what == "none":
        return None
    if what == "gaussian":
        return bi.SpatialCorrelation.gaussian(shape, sigma=args.sigma, rlim=args.rlim)
    if what == "measured":
        if cube is None:
            raise InputError("--correlation measured needs a cube (it measures the noise)")
        return bi.SpatialCorrelation.measured(cube)
    if not Path(what).exists():
        raise InputError(
            f"--correlation {what!r}: not 'none', 'gaussian', 'measured' or an existing file"
        )
    corr = bi.SpatialCorrelation.from_fits(what, ext=args.correlation_ext)
    if corr.shape != tuple(shape):
        raise InputError(
            f"--correlation {what}: grid {corr.shape} does not match the data {tuple(shape)}"
        )
    return corr
