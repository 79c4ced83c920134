"""``bayesifu sedfit``: joint Bayesian SED fit of a cube's bins with the covariance between bins.

The cube (spectral channels or photometric bands) is binned (``--bins``: a FITS image of bin ids,
e.g. the ``BINID`` of ``bayesifu bin``; else square blocks of ``--block`` spaxels) with the exact
covariance (:func:`bayesifu.bin_spectra`), and :mod:`bayesifu.models.sed` (non-negative template
mixture with Calzetti 2000 dust, redshift fixed by ``--z`` or free within ``--z-range``) is
sampled with NUTS for all bins jointly: with a diagonal mass matrix adapted in the warmup, or
(``--mass laplace``) the dense one of the Laplace approximation, which follows the correlations
that the correlated noise creates between the parameters of neighbouring bins. Writes the
posterior maps with the cube's celestial WCS (:func:`bayesifu.sedmodel.sed_maps`: A_V, flux,
template weights; median, sd, 16th and 84th percentiles) to ``--out``, with the
provenance in the primary header.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .checks import check_fits_file, check_out_file, check_positive, cli_options
from .correlation import (
    GAUSSIAN_RLIM,
    GAUSSIAN_SIGMA,
    add_correlation_options,
    check_correlation_option,
    resolve_correlation,
)

__all__ = ["register", "run"]


def register(subparsers):
    p = subparsers.add_parser(
        "sedfit",
        help="joint Bayesian SED fit of binned spectra with the covariance between bins",
        description=(
            "Bin a cube with the exact covariance and fit every bin jointly with a non-negative "
            "template mixture and Calzetti (2000) dust by NUTS; write posterior maps with WCS."
        ),
    )
    p.add_argument("file", metavar="CUBE", help="input FITS cube (MaNGA, MUSE or generic)")
    p.add_argument("--out", required=True, help="output FITS file of posterior maps (required)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--bins", help="FITS image of bin ids (-1 = unused), e.g. BINID of bin")
    p.add_argument("--bins-ext", default="BINID", help="extension of --bins (default: %(default)s)")
    p.add_argument(
        "--block",
        type=int,
        default=3,
        help="square bins of this many spaxels a side "
        "when --bins is not given (default: %(default)s)",
    )
    p.add_argument(
        "--templates",
        nargs="+",
        help="template files (default: the shipped SDSS spDR2-023 and spDR2-027)",
    )
    z = p.add_mutually_exclusive_group(required=True)
    z.add_argument("--z", type=float, help="fixed redshift")
    z.add_argument(
        "--z-range",
        nargs=2,
        type=float,
        metavar=("ZMIN", "ZMAX"),
        help="free redshift, uniform prior on [ZMIN, ZMAX]",
    )
    p.add_argument(
        "--wave-range",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="observed wavelengths to fit [Angstrom] (default: all)",
    )
    p.add_argument("--step", type=int, default=1, help="use every STEP-th channel (default: 1)")
    add_correlation_options(p, "gaussian", use=" between the spaxels of the bins")
    p.add_argument(
        "--sigma", type=float, default=GAUSSIAN_SIGMA, help="Gaussian correlation sigma [spaxel]"
    )
    p.add_argument(
        "--rlim", type=float, default=GAUSSIAN_RLIM, help="Gaussian truncation radius [spaxel]"
    )
    p.add_argument(
        "--independent-bins",
        action="store_true",
        help="drop the covariance between bins (for comparison only)",
    )
    p.add_argument(
        "--mass",
        choices=("diagonal", "laplace"),
        default="diagonal",
        help="NUTS mass matrix: 'diagonal' (default) adapted in the warmup; 'laplace' the dense "
        "inverse Hessian at the posterior mode, fixed, with the chains started at draws from "
        "that Laplace approximation: it follows the correlations between bins and mixes a "
        "484-bin one-template fit in 16 leapfrog steps, but not the non-Gaussian age-dust "
        "degeneracy of two templates (BENCHMARKS.md)",
    )
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
    return p


def _check(args):
    kind = check_fits_file(args.file, "CUBE")
    check_out_file(args.out, args.overwrite)
    for value, option in (
        (args.block, "--block"),
        (args.step, "--step"),
        (args.draws, "--draws"),
        (args.chains, "--chains"),
        (args.sigma, "--sigma"),
        (args.rlim, "--rlim"),
    ):
        check_positive(value, option)
    if args.bins is not None:
        check_fits_file(args.bins, "--bins")
    check_correlation_option(args.correlation, args.correlation_ext, kind, "CUBE")
    if args.z_range is not None and not args.z_range[0] < args.z_range[1]:
        raise InputError(f"--z-range: ZMIN must be below ZMAX, got {args.z_range}")


def _subcube(cube, args):
    from ..containers import Cube
    from ..templates import air_to_vacuum

    wave = np.asarray(cube.wave, float)
    sel = np.ones(wave.size, bool)
    if args.wave_range is not None:
        sel &= (wave >= args.wave_range[0]) & (wave <= args.wave_range[1])
    idx = np.flatnonzero(sel)[:: args.step]
    if idx.size == 0:
        raise InputError(f"--wave-range {args.wave_range}: no channel of the cube is inside")
    if cube.wave_medium == "air" and wave.min() >= 2000.0:
        wave = air_to_vacuum(wave)  # templates are in vacuum
    mask = None if cube.mask is None else np.asarray(cube.mask)[idx]
    return Cube(
        np.asarray(cube.flux)[idx],
        np.asarray(cube.variance)[idx],
        wave[idx],
        mask=mask,
        wcs=cube.wcs,
        wave_medium="vacuum",
        unit=cube.unit,
        name=cube.name,
    )


def _binning(cube, args):
    from ..binning import Binning

    ny, nx = cube.spatial_shape
    if args.bins is not None:
        from astropy.io import fits

        with fits.open(args.bins) as hdul:
            if args.bins_ext not in hdul:
                raise InputError(f"--bins-ext {args.bins_ext}: {args.bins} has no such extension")
            binid = np.asarray(hdul[args.bins_ext].data, dtype=int)
        if binid.shape != (ny, nx):
            raise InputError(f"--bins: shape {binid.shape} is not the cube's {(ny, nx)}")
        return Binning(binid)
    good = np.any(np.isfinite(cube.flux) & (np.asarray(cube.variance) > 0), axis=0)
    if cube.mask is not None:
        good &= ~np.all(np.asarray(cube.mask, bool), axis=0)
    yy, xx = np.indices((ny, nx))
    nbx = -(-nx // args.block)
    binid = np.where(good, (yy // args.block) * nbx + xx // args.block, -1)
    return Binning(binid)


def _correlation(cube, args):
    """The spatial correlation of ``--correlation`` (the option every command shares), printed."""
    corr, _, desc = resolve_correlation(
        args.correlation, args.correlation_ext, cube.spatial_shape, file=args.file, cube=cube,
        sigma=args.sigma, rlim=args.rlim, command="bayesifu sedfit",
    )  # fmt: skip
    print(f"bayesifu sedfit: correlation between spaxels: {desc}")
    return corr


def _record_redshift(idata, header) -> None:
    """The posterior of the free redshift in the primary header, and said."""
    from .. import _arviz

    z = np.asarray(_arviz.group(idata, "posterior")["z"], dtype=float).ravel()
    p16, med, p84 = np.percentile(z, [16, 50, 84])
    header["ZMEDIAN"] = (float(med), "free redshift: posterior median")
    header["ZSD"] = (float(np.std(z)), "free redshift: posterior sd")
    header["ZP16"] = (float(p16), "free redshift: 16th percentile")
    header["ZP84"] = (float(p84), "free redshift: 84th percentile")
    print(f"bayesifu sedfit: free redshift z = {med:.5f} (68 % interval {p16:.5f}-{p84:.5f})")


def _redshift_start(basis, binned) -> dict:
    """NUTS options that start every chain at the profile-chi-square redshift (said): the
    posterior of a free redshift has many local maxima, and chains started at random stay in
    different ones."""
    from numpyro.infer import init_to_value

    from ..sedmodel import redshift_start

    z0 = redshift_start(basis, binned.flux, binned.variance)
    print(f"bayesifu sedfit: free redshift: the chains start at z = {z0:.5f} (profile chi-square)")
    return {"init_strategy": init_to_value(values={"z": z0})}


def run(args) -> int:
    """Run ``bayesifu sedfit``; returns the exit status."""
    _check(args)
    import numpyro.distributions as dist

    from .. import datasets
    from ..binning import bin_spectra
    from ..io import read_cube
    from ..io.provenance import add_provenance
    from ..likelihood import BinnedSpectraLikelihood
    from ..models import sed
    from ..sampling import sample
    from ..sedmodel import SEDBasis, independent_bins, sed_maps
    from ..templates import read_templates

    cube = _subcube(read_cube(args.file), args)
    binning = _binning(cube, args)
    binned = bin_spectra(cube, binning, _correlation(cube, args))
    if args.independent_bins:
        binned = independent_bins(binned)
    paths = args.templates or [
        p for p in datasets.sdss_templates() if p.name in ("spDR2-023.fit", "spDR2-027.fit")
    ]
    z = args.z if args.z is not None else tuple(args.z_range)
    basis = SEDBasis.from_templates(read_templates(paths), cube.wave, z=z)
    redshift = args.z if args.z is not None else dist.Uniform(*args.z_range)
    lik = BinnedSpectraLikelihood(binned)
    options = {} if args.z is not None else _redshift_start(basis, binned)
    if args.mass == "laplace":  # a 484-bin fit does not mix with a diagonal mass (BENCHMARKS)
        options.update(dense_mass=True, init_mass="laplace", adapt_mass=False)
    idata = sample(
        sed.model,
        basis,
        lik,
        redshift=redshift,
        chains=args.chains,
        draws=args.draws,
        warmup=args.warmup,
        seed=args.seed,
        sampler_options=options,
    )
    hdul = sed_maps(idata, binned, cube.wcs)
    add_provenance(
        hdul[0].header,
        "sedfit",
        options=cli_options(args),
        inputs=[args.file, *(args.templates or [])],
    )
    hdul[0].header["NBINS"] = (binned.n_bins, "number of bins fitted jointly")
    hdul[0].header["BETWEEN"] = (
        "dropped" if args.independent_bins else "exact",
        "covariance between bins",
    )
    if args.z is None:
        _record_redshift(idata, hdul[0].header)
    hdul.writeto(args.out, overwrite=args.overwrite)
    print(f"bayesifu sedfit: {binned.n_bins} bins, {lik.n} values; maps written to {args.out}")
    return 0
