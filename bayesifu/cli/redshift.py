"""``bayesifu redshift``: the redshift posterior of every spaxel (or bin) of a cube.

Writes ``--out`` (see :mod:`bayesifu.redshift.io` for the layout) and two PNGs beside it:
``<out>_map.png`` (redshift/velocity, 68 % half-width and flags) and ``<out>_pz.png`` (p(z) of the
chosen spaxels).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InputError
from .checks import check_fits_file, check_out_file, check_positive, cli_options
from .correlation import add_correlation_options, check_correlation_option, resolve_correlation

__all__ = ["register", "run", "check_binid", "bin_correlation"]


def register(subparsers) -> None:
    """Add the ``redshift`` sub-command."""
    p = subparsers.add_parser(
        "redshift",
        help="redshift posterior p(z) of every spaxel or bin, with intervals and flags",
        description="Grid posterior p(z | spectrum) for every spaxel (or bin) of CUBE: templates "
        "plus Legendre polynomials, linear coefficients marginalised analytically.",
    )
    p.add_argument("cube", help="the cube (MUSE DATA/STAT/DQ, MaNGA, generic FITS)")
    p.add_argument("--templates", nargs="+", required=True, help="template files")
    p.add_argument("--zmin", type=float, default=0.0, help="smallest redshift (default 0)")
    p.add_argument("--zmax", type=float, default=1.0, help="largest redshift (default 1)")
    p.add_argument(
        "--dz",
        type=float,
        default=None,
        help="grid step in z at zmin (the grid is uniform in log(1+z)); default: the step "
        "1e-4 in log10(1+z), 69 km/s",
    )
    p.add_argument(
        "--z-grid",
        default=None,
        metavar="FILE",
        help="text file of increasing redshifts (one per line) instead of --zmin/--zmax/--dz; "
        "a grid not uniform in log(1+z) (a linear one, say) is replaced by the grid uniform in "
        "log10(1+z) over its range at the templates' pixel step",
    )
    p.add_argument(
        "--range-check",
        nargs=2,
        type=float,
        default=[0.0, 1.0],
        metavar=("ZMIN", "ZMAX"),
        help="also fit the redshifts of this range outside the grid and flag BETTER_OUTSIDE "
        "where one of them fits better (the grid probably misses the redshift); default 0 1, "
        "free when the grid covers it, else about the cost of the full range",
    )
    p.add_argument(
        "--no-range-check", action="store_true", help="do not fit redshifts outside the grid"
    )
    p.add_argument("--npoly", type=int, default=3, help="Legendre polynomial terms (default 3)")
    p.add_argument(
        "--emission-lines",
        action="store_true",
        help="add Gaussian emission-line templates (Hbeta, [OIII], [OI], [NII], Halpha, [SII])",
    )
    p.add_argument(
        "--dispersions",
        nargs="+",
        type=float,
        default=[0.0, 150.0, 300.0],
        metavar="KMS",
        help="velocity dispersions [km/s] of the broadened template sets marginalised over "
        "(default: 0 150 300; '0' alone is fastest but gives more wrong peaks when the galaxy's "
        "dispersion differs from the templates')",
    )
    p.add_argument("--line-sigma", type=float, default=200.0, help="line dispersion [km/s]")
    p.add_argument(
        "--wave-range",
        nargs=2,
        type=float,
        default=None,
        metavar=("LO", "HI"),
        help="observed wavelength range to use [Angstrom]",
    )
    p.add_argument("--bins", default=None, help="FITS file with a BINID image (-1 = unused)")
    add_correlation_options(p, "measured", use=", used to sum the spectra of --bins")
    p.add_argument("--out", required=True, help="output redshift.fits")
    p.add_argument("--pdf", action="store_true", help="also write the p(z) cube")
    p.add_argument(
        "--spaxel",
        action="append",
        default=None,
        metavar="X,Y",
        help="spaxel (0-based column,row) whose p(z) is plotted; repeatable; default: the "
        "brightest and a faint one",
    )
    p.add_argument("--zsys", type=float, default=None, help="systemic z of the velocity map")
    p.add_argument("--chunk-size", type=int, default=32, help="spectra per chunk (memory)")
    p.add_argument(
        "-j",
        "--workers",
        type=int,
        default=-1,
        help="threads (default -1: one per CPU core; 1 when running many cubes in parallel)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def check_inputs(args) -> None:
    """Check the options that need no data (files exist, numbers in range), naming them."""
    kind = check_fits_file(args.cube, "CUBE")
    for t in args.templates:
        if not Path(t).is_file():
            raise InputError(f"--templates {t!r}: no such file")
    check_out_file(args.out, args.overwrite)
    _check_z_options(args)
    _check_fit_options(args)
    if args.bins is not None:
        check_fits_file(args.bins, "--bins")
        check_correlation_option(args.correlation, args.correlation_ext, kind, "CUBE")


def _check_z_options(args) -> None:
    """Check the redshift grid: ``--z-grid`` exists, or ``--zmin``/``--zmax``/``--dz`` in range."""
    if args.z_grid is not None:
        if not Path(args.z_grid).is_file():
            raise InputError(f"--z-grid {args.z_grid!r}: no such file")
        return
    if not args.zmin > -1:
        raise InputError(f"--zmin must be > -1, got {args.zmin}")
    if not args.zmax > args.zmin:
        raise InputError(f"--zmax ({args.zmax}) must be larger than --zmin ({args.zmin})")
    if args.dz is not None:
        check_positive(args.dz, "--dz")
    lo, hi = args.range_check
    if not -1 < lo < hi:
        raise InputError(f"--range-check ZMIN ZMAX: need -1 < ZMIN < ZMAX, got {lo} {hi}")


def _check_fit_options(args) -> None:
    """Check the fit's numbers: polynomial terms, chunks, threads, dispersions, wavelengths."""
    if args.npoly < 0:
        raise InputError(f"--npoly must be >= 0, got {args.npoly}")
    if args.chunk_size < 1:
        raise InputError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    if args.workers == 0 or args.workers < -1:
        raise InputError(f"--workers must be -1 or >= 1, got {args.workers}")
    check_positive(args.line_sigma, "--line-sigma", "km/s")
    if any(not d >= 0 for d in args.dispersions):
        raise InputError(f"--dispersions must be >= 0 km/s, got {args.dispersions}")
    if args.wave_range is not None and not args.wave_range[0] < args.wave_range[1]:
        raise InputError(f"--wave-range LO HI: need LO < HI, got {args.wave_range}")


def _read_z_grid(path) -> np.ndarray:
    """The redshifts of the ``--z-grid`` file, checked: at least two, increasing."""
    try:
        z = np.loadtxt(path, dtype=float, ndmin=1)
    except (OSError, ValueError) as err:
        raise InputError(f"--z-grid {path}: cannot read redshifts: {err}") from err
    if z.ndim != 1 or z.size < 2 or np.any(np.diff(z) <= 0):
        raise InputError(f"--z-grid {path}: need at least 2 increasing redshifts, one per line")
    return z


def read_binid(path) -> np.ndarray:
    """The BINID image of a FITS file (extension BINID, else the primary image)."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            names = [h.name for h in hdul]
            hdu = hdul["BINID"] if "BINID" in names else hdul[0]
            if hdu.data is None or hdu.data.ndim != 2:
                raise FileFormatError(f"{path}: needs a 2-D BINID extension or primary image")
            return np.asarray(hdu.data, dtype=int)
    except OSError as err:
        raise FileFormatError(f"{path}: cannot read bins: {err}") from err


def check_binid(binid, spatial_shape) -> np.ndarray:
    """The BINID image, checked: the cube's spatial shape, bins numbered 0..nbins-1."""
    if binid.shape != tuple(spatial_shape):
        raise InputError(f"--bins: shape {binid.shape} != cube spatial shape {spatial_shape}")
    bins = np.unique(binid[binid >= 0])
    if bins.size == 0 or not np.array_equal(bins, np.arange(bins.size)):
        raise InputError("--bins: BINID must number the bins 0..nbins-1 (-1 for unused spaxels)")
    return binid


def bin_correlation(args, cube):
    """The spatial correlation for summing the spectra of ``--bins`` (see ``--correlation``):
    ``(correlation or None, how it was summed, source keyword)``."""
    corr, source, desc = resolve_correlation(
        args.correlation, args.correlation_ext, cube.spatial_shape, file=args.cube, cube=cube,
        command="bayesifu redshift",
    )  # fmt: skip
    if source == "none":
        how = (
            "independent spaxels (--correlation none): their variances leave out the spatial "
            "covariance and are too small for a correlated cube"
        )
    elif source == "measured":
        sig = corr.params.get("sigma", float("nan"))
        how = f"the correlation measured on the cube's noise (Gaussian sigma {sig:.3f})"
    elif source == "gaussian":  # desc: "Gaussian (sigma ..., rlim ... spaxel)[ (why)]"
        how = "the Gaussian approximation" + desc.removeprefix("Gaussian")
    else:
        how = f"the correlation in the {desc}"
    return corr, how, source


def _templates(args):
    """The ``--templates`` (and with ``--emission-lines`` the line templates)."""
    from ..templates import emission_line_templates, read_templates

    tpl = read_templates(args.templates).independent()
    if args.emission_lines:
        tpl = tpl.concatenate(emission_line_templates(tpl, sigma_kms=args.line_sigma))
    return tpl


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    check_inputs(args)  # before the heavy imports: a bad call answers at once
    from ..io import read_cube

    cube = read_cube(args.cube)
    tpl = _templates(args)
    z_grid = _z_grid(args, tpl)
    post, binid, bin_source = _posterior(args, cube, tpl, z_grid)
    summary = post.summary()
    partial = post.partial_templates
    if partial:
        _print_partial_note(partial, post.design.templates.ntemplates, z_grid)
    cards = _header_cards(args, z_grid, len(partial), bin_source)
    _write_outputs(args, cube, post, summary, binid, cards)
    zmap, half, flags = _spaxel_maps(summary, binid)
    zsys = args.zsys if args.zsys is not None else _reference_z(zmap, flags)
    _plot_maps(args, zmap, half, flags, zsys)
    _plot_chosen_pz(args, cube, post, binid, zmap.shape)
    _warn_systematic_flags(flags, z_grid, args)
    n_ok = int(np.sum(flags == 0))
    if n_ok == 0:
        print(
            "bayesifu redshift: warning: no spaxel is unflagged: every redshift in "
            f"{Path(args.out)} carries a flag (see its FLAGS extension); the velocity map is "
            "relative to the median of the flagged redshifts",
            file=sys.stderr,
        )
        print(f"wrote {Path(args.out)} (0 of {flags.size} unflagged)")
        return 0
    print(f"wrote {Path(args.out)} ({n_ok} of {flags.size} unflagged; median z {zsys:.5f})")
    return 0


#: Fraction of the spaxels with data above which POOR_FIT or BETTER_OUTSIDE is reported on
#: stderr: a problem of the whole run (templates or range), not of single spectra.
SYSTEMATIC_FRACTION = 0.1


def _warn_systematic_flags(flags, z_grid, args) -> None:
    """Say on stderr when many spaxels fit better outside the grid or fit the templates poorly."""
    from ..redshift import FLAGS

    n_data = int(np.sum((flags & FLAGS["NO_DATA"]) == 0))
    advice = {
        "BETTER_OUTSIDE": (
            f"fit better at a redshift outside the grid {z_grid[0]:.4g}-{z_grid[-1]:.4g}: their "
            "redshifts there are probably wrong; widen --zmin/--zmax"
        ),
        "POOR_FIT": (
            "are fitted poorly by the templates: check that the templates suit these spectra "
            "(--emission-lines for line emitters) and the redshift range"
        ),
    }
    for name, text in advice.items():
        n = int(np.sum((flags & FLAGS[name]) != 0))
        if n_data and n > SYSTEMATIC_FRACTION * n_data:
            print(
                f"bayesifu redshift: warning: {n} of {n_data} spaxels with data {text} "
                f"(flag {name} in {Path(args.out)})",
                file=sys.stderr,
            )


def _reference_z(zmap, flags):
    """Median redshift of the unflagged spaxels; of all finite ones where none is unflagged."""
    for use in (flags == 0, np.isfinite(zmap)):
        z = zmap[use & np.isfinite(zmap)]
        if z.size:
            return float(np.median(z))
    return float("nan")


def _z_grid(args, tpl) -> np.ndarray:
    """The redshift grid of ``--z-grid`` or of ``--zmin``/``--zmax``/``--dz``."""
    from ..redshift import log_z_grid
    from ..redshift.batch import grid_from

    if args.z_grid is not None:
        return grid_from(_read_z_grid(args.z_grid), tpl.dloglam)
    dlog = 1e-4 if args.dz is None else float(np.log10(1 + args.dz / (1 + args.zmin)))
    return log_z_grid(args.zmin, args.zmax, dlog)


def _posterior(args, cube, tpl, z_grid):
    """The posterior of every spaxel or ``--bins`` sum: ``(posterior, binid or None, BINCORR)``."""
    from ..redshift import redshift_posterior

    kw = dict(npoly=args.npoly, wave_range=args.wave_range, chunk_size=args.chunk_size)
    kw["workers"] = args.workers
    kw["dispersions"] = tuple(args.dispersions)
    kw["progress"] = not args.no_progress
    kw["range_check"] = None if args.no_range_check else tuple(args.range_check)
    if not args.bins:
        return redshift_posterior(cube, tpl, z_grid, **kw), None, "n/a"
    binid = check_binid(read_binid(args.bins), cube.spatial_shape)
    flux, variance, bin_source = _binned_spectra(args, cube, binid)
    post = redshift_posterior(
        flux, tpl, z_grid, wave=cube.wave, variance=variance, medium=cube.wave_medium, **kw
    )
    return post, binid, bin_source


def _binned_spectra(args, cube, binid):
    """The ``--bins`` spectra summed with ``--correlation`` (said):
    ``(flux, variance, BINCORR)``, only these two arrays held (a whole field's bins)."""
    from ..binning import Binning, summed_spectra

    binning = Binning(binid)
    if not np.array_equal(binning.bin_ids, np.arange(binning.n_bins)):
        raise InputError("--bins: bins must be numbered 0..nbins-1")
    corr, how, source = bin_correlation(args, cube)
    flux, variance = summed_spectra(cube, binning, correlation=corr)
    print(f"{binning.n_bins} bins: spectra summed with {how}")
    return flux, variance, args.correlation if source == "file" else source


def _print_partial_note(partial, ntemplates, z_grid) -> None:
    """Say that some template vectors do not cover the data at every z of the grid."""
    print(
        f"note: {len(partial)} of {ntemplates} template basis vectors do not "
        f"cover every channel at every z of {z_grid[0]:.4g}-{z_grid[-1]:.4g}: they are zero "
        "outside their range with a proper amplitude prior (flag TEMPLATE_COVERAGE where "
        "they cover under half the channels at the MAP)"
    )


def _header_cards(args, z_grid, n_partial, bin_source) -> dict:
    """The primary header's record of the options and the grid."""
    dlog = float(np.log10((1 + z_grid[1]) / (1 + z_grid[0])))
    # Whole values: astropy writes long strings as CONTINUE cards (never cut).
    return {
        "CUBE": str(args.cube),
        "TEMPLAT": ",".join(str(t) for t in args.templates),
        "NTPLPART": (n_partial, "template vectors with a proper prior"),
        "NPOLY": args.npoly,
        "DISPERS": (" ".join(f"{v:g}" for v in args.dispersions), "km/s, marginalised over"),
        "EMLINES": bool(args.emission_lines),
        "ZMIN": float(z_grid[0]),
        "ZMAX": float(z_grid[-1]),
        "DLOG1PZ": (dlog, "grid step in log10(1+z)"),
        "ZPRIOR": "uniform_z",
        "ZCHECK": (
            "none" if args.no_range_check else "{:g} {:g}".format(*args.range_check),
            "z range also fitted outside the grid",
        ),
        "BINCORR": (bin_source, "correlation used to sum --bins"),
    }


def _write_outputs(args, cube, post, summary, binid, cards) -> None:
    """Write ``--out``: the summary maps (and with ``--pdf`` the p(z) cube), with provenance."""
    from ..redshift.io import write_redshift_fits

    pdf = post.pdf.reshape(post.shape + (-1,)) if args.pdf else None
    write_redshift_fits(
        Path(args.out),
        summary,
        wcs=cube.wcs,
        binid=binid,
        pdf=pdf,
        z_grid=post.z_grid,
        header_cards=cards,
        overwrite=args.overwrite,
        provenance=dict(
            command="redshift",
            options=cli_options(args),
            inputs=[args.cube, *args.templates] + ([args.bins] if args.bins else []),
        ),
    )


def _spaxel_maps(summary, binid):
    """The redshift, 68 % half-width and flag maps per spaxel (a bin's values on its spaxels)."""
    from ..redshift import FLAGS, per_spaxel

    half = (summary.z_hi68 - summary.z_lo68) / 2
    flags = per_spaxel(summary.flags, binid, fill=FLAGS["NO_DATA"])  # no bin: no redshift
    return per_spaxel(summary.z_map, binid), per_spaxel(half, binid), flags


def _plot_maps(args, zmap, half, flags, zsys) -> None:
    """Write ``<out>_map.png``: redshift/velocity, 68 % half-width and flags per spaxel."""
    from ..plots import plot_redshift_maps, save_figure

    fig = plot_redshift_maps(zmap, half, flags, zsys)
    save_figure(fig, f"{Path(args.out).with_suffix('')}_map.png", dpi=110)


def _plot_chosen_pz(args, cube, post, binid, shape) -> None:
    """Write ``<out>_pz.png``: p(z) of the chosen spaxels (those in no bin left out)."""
    from ..plots import plot_pz_zoom, save_figure

    spaxels = _choose_spaxels(args.spaxel, cube, shape)
    rows = [_row(x, y, binid, shape) for x, y in spaxels]
    keep = [(s, r) for s, r in zip(spaxels, rows, strict=True) if r is not None]
    if not keep:  # none of the chosen spaxels is in a bin: plot the first binned spaxel
        y, x = (int(v[0]) for v in np.nonzero(binid >= 0))
        keep = [((x, y), int(binid[y, x]))]
    sel = [r for _, r in keep]
    fig = plot_pz_zoom(
        post.z_grid,
        post.pdf[sel],
        [f"spaxel x={x}, y={y}" for (x, y), _ in keep],
        local_u=None if post.local_u is None else post.local_u[sel],
        local_logp=None if post.local_logp is None else post.local_logp[sel],
    )
    save_figure(fig, f"{Path(args.out).with_suffix('')}_pz.png", dpi=100)


def _row(x, y, binid, shape):
    """The posterior row of spaxel ``(x, y)``: its own, its bin's, or None if in no bin."""
    if not (0 <= y < shape[0] and 0 <= x < shape[1]):
        raise InputError(f"--spaxel {x},{y}: outside the {shape[1]}x{shape[0]} grid")
    if binid is None:
        return y * shape[1] + x
    return int(binid[y, x]) if binid[y, x] >= 0 else None


def _choose_spaxels(given, cube, shape):
    """The ``--spaxel`` list as ``(x, y)``; default: the brightest and faintest at mid-cube."""
    if given:
        try:
            return [tuple(int(v) for v in s.split(",")) for s in given]
        except ValueError as err:
            raise InputError(f"--spaxel: expected X,Y integers, got {given}") from err
    k = cube.shape[0] // 2
    img = np.nan_to_num(np.asarray(cube.flux[k - 50 : k + 50], dtype=float)).sum(axis=0)
    y0, x0 = np.unravel_index(np.argmax(img), shape)
    y1, x1 = np.unravel_index(np.argmin(img), shape)
    return [(int(x0), int(y0)), (int(x1), int(y1))]
