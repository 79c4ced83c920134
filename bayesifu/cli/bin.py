"""``bayesifu bin``: bin a map (or a cube) to a target S/N with the spatial covariance.

Writes a FITS file with the bin map (``BINID``), the S/N of each spaxel's bin with and without the
covariance (``SN_COVAR``, ``SN_INDEP``) and a ``BINS`` table, plus a PNG of the S/N maps beside it.
The primary header says which correlation was used (``CORRSRC``) and records the provenance
(:func:`bayesifu.io.provenance.add_provenance`).

The correlation by default (``--correlation auto``): the input file's own ``CORREL`` table (e.g. a
MaNGA SNRG file), else for a cube the one measured from its noise, else the Gaussian
approximation (sigma ``--sigma``, truncated at ``--rlim``).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from ..errors import InputError, UnsupportedFormatError
from .checks import check_fits_file, check_out_file, check_positive, cli_options
from .correlation import (
    CUBE_KINDS,
    GAUSSIAN_RLIM,
    GAUSSIAN_SIGMA,
    add_correlation_options,
    check_correlation_option,
    correlation_inputs,
    resolve_correlation,
)

__all__ = ["register", "run", "check_bin_inputs"]


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
    p.add_argument("file", metavar="FILE", help="input FITS file (map or cube)")
    p.add_argument(
        "--target-sn", type=float, required=True, help="target S/N of every bin (> 0; required)"
    )
    p.add_argument(
        "--method",
        choices=["voronoi", "sed"],
        default="voronoi",
        help="'voronoi' (a map, or a cube collapsed over --wave-range) or 'sed' (a cube: S/N of "
        "the whole spectral energy distribution) (default: %(default)s)",
    )
    add_correlation_options(p, "auto", use=" for the S/N")
    p.add_argument(
        "--sigma",
        type=float,
        default=GAUSSIAN_SIGMA,
        help="sigma of --correlation gaussian [spaxel] (default: %(default)s)",
    )
    p.add_argument(
        "--rlim",
        type=float,
        default=GAUSSIAN_RLIM,
        help="truncation radius of --correlation gaussian [spaxel] (default: %(default)s)",
    )
    p.add_argument(
        "--sn-method",
        choices=["exact", "calibrated"],
        default="exact",
        help="S/N of a bin: 'exact' (T C T^T) or 'calibrated' (1 + alpha log10 N rule) "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--ext",
        default=None,
        help="extension of a MAPS file, e.g. SPECINDEX "
        "(default: the reader's choice for the format)",
    )
    p.add_argument(
        "--channel", default=None, help="channel of a MAPS extension, e.g. HDeltaA (default: none)"
    )
    p.add_argument(
        "--wave-range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=None,
        help="for a cube: wavelength range [Angstrom] of the S/N (default: all channels)",
    )
    p.add_argument("--out", required=True, help="output FITS file; the PNG gets .png (required)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--no-progress", dest="progress", action="store_false", help="print no progress lines"
    )
    p.set_defaults(func=run)


def check_bin_inputs(args) -> str:
    """Raise a :class:`~bayesifu.errors.BayesifuError` naming the option if ``args`` is unusable
    (no JAX needed); returns the format of FILE (:func:`bayesifu.io.detect_format`)."""
    check_positive(args.target_sn, "--target-sn", "a positive S/N")
    check_positive(args.sigma, "--sigma", "[spaxel]")
    check_positive(args.rlim, "--rlim", "[spaxel]")
    if args.wave_range is not None and not args.wave_range[0] < args.wave_range[1]:
        lo, hi = args.wave_range
        raise InputError(f"--wave-range MIN MAX needs MIN < MAX, got {lo:g} {hi:g}")
    check_out_file(args.out, args.overwrite)
    kind = check_fits_file(args.file, "FILE")
    if args.method == "sed" and kind not in CUBE_KINDS:
        raise InputError(f"--method sed needs a cube; FILE {args.file} is a {kind} file")
    check_correlation_option(args.correlation, args.correlation_ext, kind)
    return kind


def run(args) -> int:
    """Run the command; binning warnings are printed as one-line notes on standard error."""
    kind = check_bin_inputs(args)  # before JAX is imported: a bad call answers in seconds
    from ..binning import BinningWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BinningWarning)
        rc = _run(args, kind)
    for w in caught:
        if issubclass(w.category, BinningWarning):
            print(f"bayesifu bin: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return rc


def _run(args, kind) -> int:
    import bayesifu as bi

    from .._progress import progress
    from ..binning import voronoi_bins
    from ..binning.cli_output import png_path, write_bins_fits
    from ..plots import plot_bin_sn, save_figure

    state = {}

    def read():
        if args.method == "sed":
            state["cube"] = bi.read_cube(args.file)
            state["data"] = None
        else:
            state["data"], state["cube"] = _read(args)

    def correlate():
        cube, data = state["cube"], state["data"]
        shape = cube.spatial_shape if data is None else data.shape
        state["corr"], state["source"], state["desc"] = resolve_correlation(
            args.correlation, args.correlation_ext, shape, file=args.file, cube=cube,
            sigma=args.sigma, rlim=args.rlim, command="bayesifu bin",
        )  # fmt: skip

    def binning():
        data, corr = state["data"], state["corr"]
        if data is None:
            from ..binning.sed import sed_bins

            state["bins"] = sed_bins(state["cube"], target_sn=args.target_sn, correlation=corr)
            return
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
                state["data"] = data
        state["bins"] = voronoi_bins(
            data, args.target_sn, correlation=corr, sn_method=args.sn_method
        )

    def write():
        inputs = [args.file, *correlation_inputs(args.correlation)]
        options = cli_options(args)
        options["correlation used"] = state["desc"]
        fits_path = write_bins_fits(
            state["bins"],
            args.out,
            data=state["data"],
            overwrite=args.overwrite,
            correlation=(state["source"], state["desc"]),
            provenance={
                "command": "bin",
                "options": options,
                "inputs": inputs,
                "argv": getattr(args, "cmdline", None),
            },  # fmt: skip
        )
        name = "" if state["data"] is None else str(state["data"].name)
        png = save_figure(plot_bin_sn(state["bins"], title=name), png_path(args.out), dpi=110)
        state["paths"] = (fits_path, png)

    steps = [read, correlate, binning, write]
    for step in progress(steps, desc="bayesifu bin", unit="steps", enabled=args.progress):
        step()
    bins, (fits_path, png) = state["bins"], state["paths"]
    print(f"correlation: {state['desc']}")
    if state["corr"] is None:
        sn = f"median S/N {np.median(bins.sn_independent):.3g} (spaxels independent)"
    else:
        sn = (
            f"median S/N {np.median(bins.sn):.3g} with the covariance, "
            f"{np.median(bins.sn_independent):.3g} ignoring it"
        )
    print(f"{bins.n_bins} bins; {sn}; wrote {fits_path} and {png}")
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
    from ..containers import CHANNEL_BLOCK, usable_channels

    total, var_total, n = 0.0, 0.0, 0
    chan = np.flatnonzero(sel)
    for lo in range(0, chan.size, CHANNEL_BLOCK):  # a whole MUSE field is never loaded
        idx = chan[lo : lo + CHANNEL_BLOCK]
        flux, var, bad = usable_channels(cube.flux, cube.variance, cube.mask, idx)
        n = n + (~bad).sum(axis=0)
        total = total + np.where(bad, 0.0, flux).sum(axis=0)
        var_total = var_total + np.where(bad, 0.0, var).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        v = var_total / n**2
    mask = n == 0
    return bi.Map(np.where(mask, 0.0, mean), np.where(mask, 1.0, v), mask=mask, wcs=cube.wcs,
                  name=f"{cube.name} (collapsed)")  # fmt: skip
