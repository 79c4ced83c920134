"""``bayesifu match``: match broadband images to an IFU cube's grid and a common PSF.

Each image (FITS with a celestial WCS, a unit in ``BUNIT`` and a variance, inverse-variance or
error map) is converted to one flux-density unit (the cube's, where it is one), convolved to the
common PSF and reprojected with the exact flux-conserving overlap operator onto the cube's spaxels.
The covariance of every matched band, :math:`\\mathbf T\\mathbf C\\mathbf T^{\\rm T}`, is stored
exactly (as its sparse factor by default); see :mod:`bayesifu.imaging.fitsio` for the layout.
"""

from __future__ import annotations

import sys
import warnings

from ..errors import InputError
from .checks import check_fits_file, check_out_file, check_positive, cli_options

__all__ = ["register", "run"]


def register(subparsers):
    p = subparsers.add_parser(
        "match",
        help="match broadband images to an IFU cube's grid and PSF, with the covariance",
        description=(
            "Match FITS images (WCS, BUNIT, a VARIANCE/IVAR/WHT/ERR extension) to the spaxel grid "
            "of CUBE and a common Gaussian PSF, with the exact covariance of each matched band. "
            "Writes FLUX, VARIANCE, MASK [band, y, x], a BANDS table and the covariance to --out."
        ),
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="input images (FITS, one per band)")
    p.add_argument("--cube", required=True, help="the IFU cube whose grid to match onto")
    p.add_argument("--out", required=True, help="output FITS file")
    p.add_argument(
        "--band",
        nargs="+",
        default=None,
        help="filter of each image, a speclite name or alias such as sdss2010-r or sdss-r "
        "(default: each image's FILTER keyword)",
    )
    p.add_argument(
        "--psf-fwhm",
        nargs="+",
        type=float,
        default=None,
        help="PSF FWHM of each image [arcsec] (default: each image's PSF_FWHM/SEEING keyword)",
    )
    p.add_argument(
        "--psf-image",
        nargs="+",
        default=None,
        metavar="FILE",
        help="FITS PSF image of each image (pixel scale from its WCS or PSFSCALE/PIXSCALE), "
        "matched with a windowed Fourier-ratio kernel (default: Gaussians of the FWHM)",
    )
    p.add_argument(
        "--zeropoint",
        nargs="+",
        type=float,
        default=None,
        help="AB zero point of each image in counts (default: its MAGZP/ZEROPT/... keyword)",
    )
    p.add_argument("--unit", default=None, help="unit of every image (default: each image's BUNIT)")
    p.add_argument(
        "--target-fwhm",
        type=float,
        default=None,
        help="common Gaussian PSF FWHM [arcsec] (default: the broadest image PSF)",
    )
    p.add_argument(
        "--cube-fwhm",
        type=float,
        default=None,
        help="PSF FWHM of CUBE [arcsec]: the target must be at least as broad (default: unknown, "
        "not checked)",
    )
    p.add_argument(
        "--degraded-cube",
        default=None,
        metavar="PATH",
        help="also write CUBE convolved to the target PSF (needs --cube-fwhm) as a generic cube "
        "with its kernel (default: none)",
    )
    p.add_argument(
        "--covariance",
        choices=["factor", "full", "none"],
        default="factor",
        help="store each band's covariance as its sparse factor F (C = F F^T), in full (upper "
        "triangle), or not at all (default: %(default)s)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument(
        "--no-progress", dest="progress", action="store_false", help="print no progress lines"
    )
    p.set_defaults(func=run)


def _per_image(values, option, n):
    """``values`` spread over ``n`` images (one value for all, or one each)."""
    if values is None:
        return [None] * n
    if len(values) == 1:
        return list(values) * n
    if len(values) != n:
        raise InputError(f"{option}: give one value, or one per image ({n}); got {len(values)}")
    return list(values)


def _cube_unit(cube):
    from astropy import units as u

    from ..imaging import DEFAULT_UNIT

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)
        try:
            unit = u.Unit(cube.unit)
        except ValueError:
            return DEFAULT_UNIT
    return unit if unit.is_equivalent(DEFAULT_UNIT) else DEFAULT_UNIT


def _check_args(args) -> tuple[list, list, list, list]:
    """Check the options before any file is read: the per-image lists
    ``(bands, fwhms, zeropoints, psf images)``."""
    n = len(args.images)
    bands = _per_image(args.band, "--band", n)
    fwhms = _per_image(args.psf_fwhm, "--psf-fwhm", n)
    zps = _per_image(args.zeropoint, "--zeropoint", n)
    psfs = _per_image(args.psf_image, "--psf-image", n)
    for f in fwhms:
        if f is not None:
            check_positive(f, "--psf-fwhm", "[arcsec]")
    if args.target_fwhm is not None:
        check_positive(args.target_fwhm, "--target-fwhm", "[arcsec]")
    if args.cube_fwhm is not None:
        check_positive(args.cube_fwhm, "--cube-fwhm", "[arcsec]")
    if args.degraded_cube is not None:
        if args.cube_fwhm is None:
            raise InputError("--degraded-cube needs --cube-fwhm (the PSF of CUBE)")
        check_out_file(args.degraded_cube, args.overwrite, "--degraded-cube")
    check_out_file(args.out, args.overwrite)
    for path in args.images:
        check_fits_file(path, "IMAGE")
    check_fits_file(args.cube, "--cube")
    return bands, fwhms, zps, psfs


def _read_images(args, per_image, unit) -> list:
    """The images in the cube's flux unit, each with a PSF FWHM."""
    from ..imaging import read_image

    images = []
    for path, band, fwhm, zp, psf in zip(args.images, *per_image, strict=True):
        im = read_image(
            path, band, unit=args.unit, zeropoint=zp, psf_fwhm=fwhm, psf=psf, out_unit=unit
        )
        if im.band.psf_fwhm is None:
            raise InputError(f"IMAGE {path}: no PSF FWHM in its header; give --psf-fwhm")
        images.append(im)
    return images


def _target_fwhm(args, images) -> float | None:
    """The target PSF FWHM [arcsec]: ``--target-fwhm``, else the broadest of the cube's and
    the images' PSFs when ``--cube-fwhm`` is given (None: the broadest image PSF)."""
    target = args.target_fwhm
    if target is None and args.cube_fwhm is not None:
        target = max([args.cube_fwhm, *(im.band.psf_fwhm for im in images)])
    if args.cube_fwhm is not None and target < args.cube_fwhm:
        raise InputError(
            f"--cube {args.cube}: its PSF (--cube-fwhm {args.cube_fwhm:g} arcsec) is broader "
            f"than the target PSF ({target:g} arcsec)"
        )
    return target


def run(args) -> int:
    """Run the command."""
    from ..imaging import match_images
    from ..imaging.fitsio import write_photometric_cube
    from ..io import read_cube

    per_image = _check_args(args)
    cube = read_cube(args.cube)
    images = _read_images(args, per_image, _cube_unit(cube))
    target = _target_fwhm(args, images)

    def report(name):
        if args.progress:
            print(f"bayesifu match: matched {name}", file=sys.stderr)

    matched = match_images(
        images, cube, target, covariance=args.covariance != "none", progress=report
    )
    write_photometric_cube(
        matched,
        args.out,
        covariance=args.covariance,
        overwrite=args.overwrite,
        provenance={
            "command": "match",
            "options": cli_options(args),
            "inputs": [*args.images, args.cube],
            "argv": args.cmdline,
        },
    )
    if args.degraded_cube is not None:
        from ..imaging import degrade_cube
        from ..imaging.fitsio import write_degraded_cube

        degraded = degrade_cube(cube, args.cube_fwhm, matched.target_psf)
        write_degraded_cube(
            degraded,
            args.degraded_cube,
            target_fwhm=matched.target_psf.fwhm,
            overwrite=args.overwrite,
            provenance={
                "command": "match",
                "options": cli_options(args),
                "inputs": [*args.images, args.cube],
                "argv": args.cmdline,
            },
        )
        print(f"wrote {args.degraded_cube}: CUBE degraded to the target PSF")
    n_good = int((~matched.mask).all(axis=0).sum())
    ny, nx = cube.spatial_shape
    print(
        f"wrote {args.out}: {len(images)} band(s) on {ny}x{nx} "
        f"spaxels at FWHM {matched.target_psf.fwhm:.3g} arcsec ({n_good} spaxels complete in "
        "every band)"
    )
    return 0
