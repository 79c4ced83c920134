"""Redshift posteriors for whole cubes and sets of (binned) spectra, chunked, with a progress bar.

:func:`redshift_posterior` accepts a :class:`~bayesifu.Cube` (every spaxel), or arrays of spectra
``[..., nwave]`` with their wavelengths and inverse variances (binned spectra, say). Spectra are
processed in chunks of ``chunk_size`` so that the memory held at once stays bounded (about
``chunk_size * (T(T+1)/2 + T(1+P)) * nz * 16`` bytes of FFT work space for ``T`` templates and
``P`` polynomial terms); the posterior ``pdf`` and ``chi2`` of every spectrum (``[..., nz]``) are
kept.

Air wavelengths (MUSE) are converted to vacuum (the templates' medium) with
:func:`bayesifu.templates.air_to_vacuum`; the data stay on their own wavelength grid (no
resampling, hence no correlated noise is introduced).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from .._progress import progress as progress_bar
from ..containers import Cube
from ..errors import InputError, ShapeError, VarianceError
from ..templates import Templates, air_to_vacuum
from .grid import Design, grid_step, log_z_grid, n_workers
from .posterior import RedshiftPosterior
from .refine import local_offsets

__all__ = ["redshift_posterior", "log_prior_on_grid", "DISPERSIONS", "RANGE_CHECK"]

#: Default velocity dispersions [km/s] of the template sets the posterior marginalises over.
#: Calibrated by simulation (benchmarks/redshift_flags.py): with the unbroadened templates
#: alone, 5.5 % of the unflagged S/N 10-30 spectra on a 700 A window had wrong peaks; with
#: these three, none of 651.
DISPERSIONS = (0.0, 150.0, 300.0)

#: Default redshift range over which the data are also fitted outside a narrower grid
#: (``BETTER_OUTSIDE`` flag): the ``bayesifu redshift`` command's default grid.
RANGE_CHECK = (0.0, 1.0)


def log_prior_on_grid(z_grid, prior="uniform_z") -> np.ndarray:
    """Log prior probability of each grid *cell* (up to a constant).

    Parameters
    ----------
    z_grid : numpy.ndarray
        Grid uniform in log10(1+z); a cell's width in z is proportional to ``1+z``.
    prior : {"uniform_z", "uniform_log1pz"}, callable or array_like
        ``"uniform_z"``: flat density in z; ``"uniform_log1pz"``: flat in velocity; a callable
        returns the log prior *density* in z at the grid points; an array gives the log prior
        probability of each cell directly.
    """
    z_grid = np.asarray(z_grid, dtype=float)
    if isinstance(prior, str):
        if prior == "uniform_z":
            return np.log1p(z_grid)
        if prior == "uniform_log1pz":
            return np.zeros_like(z_grid)
        raise InputError(f"prior: unknown name {prior!r} (uniform_z, uniform_log1pz)")
    if callable(prior):
        out = np.asarray(prior(z_grid), dtype=float) + np.log1p(z_grid)
    else:
        out = np.asarray(prior, dtype=float)
    if out.shape != z_grid.shape:
        raise ShapeError(f"prior: expected {z_grid.shape} values, got {out.shape}")
    if np.any(np.isnan(out)) or np.all(np.isneginf(out)):
        raise InputError("prior: values must not be NaN and not all -inf")
    return out


def grid_from(z_grid, dloglam: float) -> np.ndarray:
    """The redshift grid for ``z_grid``: itself if uniform in log10(1+z); for a range
    ``(zmin, zmax)`` or any other increasing grid, the grid uniform in log10(1+z) over its range
    with step ``dloglam``."""
    z = np.asarray(z_grid, dtype=float)
    if z.ndim != 1 or z.size < 2 or not np.all(np.isfinite(z)):
        raise InputError(f"z_grid: need a range (zmin, zmax) or a 1-D grid, got shape {z.shape}")
    if np.any(np.diff(z) <= 0):
        raise InputError("z_grid: redshifts must increase")
    if z.size >= 3:
        try:
            grid_step(z)
            return z
        except InputError:
            pass
    return log_z_grid(float(z[0]), float(z[-1]), dloglam)


def _dispersions(values) -> np.ndarray:
    sig = np.atleast_1d(np.asarray(values, dtype=float))
    if sig.ndim != 1 or sig.size == 0 or np.any(~np.isfinite(sig)) or np.any(sig < 0):
        raise InputError(f"dispersions: need one or more values >= 0 km/s, got {values!r}")
    if np.unique(sig).size != sig.size:
        raise InputError(f"dispersions: values repeat: {values!r}")
    return sig


def broaden_continuum(templates: Templates, sigma_kms: float) -> Templates:
    """The templates with the continuum ones broadened by ``sigma_kms`` (lines unchanged)."""
    if sigma_kms == 0:
        return templates
    if not templates.is_line.any():
        return templates.broaden(sigma_kms)
    flux = templates.flux.copy()
    cont = ~templates.is_line
    sub = Templates(templates.loglam0, templates.dloglam, flux[cont], fwhm_kms=templates.fwhm_kms)
    flux[cont] = sub.broaden(sigma_kms).flux
    return Templates(
        templates.loglam0,
        templates.dloglam,
        flux,
        list(templates.names),
        templates.fwhm_kms,
        templates.is_line.copy(),
    )


def _from_cube(cube: Cube):
    wave = cube.wave if cube.wave_medium == "vacuum" else air_to_vacuum(cube.wave)
    nwave, ny, nx = cube.shape

    def load(start, stop):
        y0, y1 = start // nx, (stop - 1) // nx + 1
        sl = slice(y0, y1)
        f = np.asarray(cube.flux[:, sl, :], dtype=float).reshape(nwave, -1).T
        v = np.asarray(cube.variance[:, sl, :], dtype=float).reshape(nwave, -1).T
        m = None
        if cube.mask is not None:
            m = np.asarray(cube.mask[:, sl, :], dtype=bool).reshape(nwave, -1).T
        off = start - y0 * nx
        rows = slice(off, off + stop - start)
        return f[rows], _ivar(v[rows], None if m is None else m[rows], f[rows])

    return wave, (ny, nx), ny * nx, load


def _ivar(variance, mask, flux):
    bad = ~np.isfinite(variance) | (variance <= 0) | ~np.isfinite(flux)
    if mask is not None:
        bad |= mask
    with np.errstate(divide="ignore"):
        return np.where(bad, 0.0, 1.0 / np.where(bad, 1.0, variance))


#: Spectra checked at once for negative or NaN inverse variances (bounds the memory).
CHECK_ROWS = 4096


def _from_arrays(flux, wave, ivar, variance, mask, medium):
    """Wavelengths, shape, number and loader of array spectra; the loader makes the inverse
    variances of one chunk at a time (no full-size copy of the spectra is made)."""
    flux = np.asarray(flux)
    if wave is None:
        raise InputError("redshift_posterior: arrays of spectra need wave=")
    wave = np.asarray(wave, dtype=float)
    if flux.shape[-1] != wave.size:
        raise ShapeError(f"spectra: last axis {flux.shape[-1]} != len(wave) {wave.size}")
    if (ivar is None) == (variance is None):
        raise InputError("redshift_posterior: give exactly one of ivar= or variance=")
    shape, nwave = flux.shape[:-1], wave.size
    f2 = flux.reshape(-1, nwave)
    iv2, var2, mask2 = (_rows(a, flux.shape) for a in (ivar, variance, mask))
    if iv2 is not None:
        for a in range(0, f2.shape[0], CHECK_ROWS):
            block = np.asarray(iv2[a : a + CHECK_ROWS], dtype=float)
            if np.any(block < 0) or np.any(np.isnan(block)):
                raise VarianceError("spectra: inverse variances must be >= 0 and not NaN")

    def load(a, b):
        f = np.asarray(f2[a:b], dtype=float)
        if iv2 is not None:
            iv = np.asarray(iv2[a:b], dtype=float)
            iv = np.where(np.isfinite(f) & np.isfinite(iv), iv, 0.0)
        else:
            iv = _ivar(np.asarray(var2[a:b], dtype=float), None, f)
        if mask2 is not None:
            iv = np.where(mask2[a:b], 0.0, iv)
        return np.nan_to_num(f), iv

    wave = wave if medium == "vacuum" else air_to_vacuum(wave)
    return wave, shape, f2.shape[0], load


def _rows(values, shape):
    """``values`` broadcast to ``shape`` as rows ``[n, nwave]`` (a view where possible)."""
    if values is None:
        return None
    return np.broadcast_to(np.asarray(values), shape).reshape(-1, shape[-1])


def redshift_posterior(  # noqa: PLR0913 -- public API: documented keyword options
    data,
    templates: Templates,
    z_grid,
    *,
    wave=None,
    ivar=None,
    variance=None,
    mask=None,
    medium="air",
    npoly: int = 3,
    prior="uniform_z",
    wave_range=None,
    chunk_size: int = 32,
    progress: bool = False,
    independent: bool = True,
    line_prior_scale: float = 10.0,
    template_prior_scale: float = 10.0,
    refine: bool = True,
    workers: int = -1,
    dispersions=DISPERSIONS,
    range_check=RANGE_CHECK,
) -> RedshiftPosterior:
    """Posterior p(z | spectrum) on a grid for every spectrum of a cube or array.

    Parameters
    ----------
    data : Cube or array_like, shape (..., nwave)
        A cube (every spaxel is a spectrum) or an array of spectra.
    templates : Templates
        Rest-frame templates (:func:`bayesifu.read_templates`).
    z_grid : array_like
        Redshifts: a grid uniform in log10(1+z) (:func:`bayesifu.redshift.log_z_grid`), used
        as it is; a range ``(zmin, zmax)``; or any other increasing grid, such as a linear one.
        For the last two the grid is built from the range, uniform in log10(1+z) with the
        templates' pixel step (``dloglam``; the local refinement resolves narrower peaks), and
        the result's ``z_grid`` is that grid.
    wave : array_like, shape (nwave,), optional
        Wavelengths of array spectra [Angstrom], in ``medium``.
    ivar, variance : array_like, optional
        Inverse variance or variance of array spectra (exactly one).
    mask : array_like of bool, optional
        ``True`` = do not use, for array spectra.
    medium : {"air", "vacuum"}
        Medium of ``wave`` for array spectra (a cube carries its own).
    npoly : int
        Number of Legendre polynomial terms added to the templates.
    prior : str, callable or array_like
        Prior on z; see :func:`log_prior_on_grid`.
    wave_range : tuple of float, optional
        Observed wavelength range to use [Angstrom] (in the data's medium).
    chunk_size : int
        Spectra processed at once.
    progress : bool
        Show progress (:func:`bayesifu._progress.progress`: a bar on a terminal, occasional
        plain lines otherwise).
    independent : bool
        Replace the templates by an orthogonal basis of their span
        (:meth:`~bayesifu.templates.Templates.independent`) so that degenerate template sets
        (common: SDSS spDR2-023..027 span two dimensions) keep a well-defined Occam factor.
        The coefficients reported are then those of the basis. Emission-line templates are
        kept as they are.
    line_prior_scale : float
        Prior standard deviation of an emission-line template's peak in units of the spectrum's
        weighted rms flux (line templates only).
    template_prior_scale : float
        Prior standard deviation of the amplitude of a continuum template that does not cover
        every pixel in use at every redshift of the grid (see below), in the same units.

    refine : bool
        Also evaluate the posterior on a local grid 8 times finer around each coarse peak
        (:mod:`bayesifu.redshift.refine`), where the coarse posterior is a single narrow peak
        (narrower than the coarse grid resolves); the summary uses it there.
    workers : int
        Threads to use (-1: one per CPU core this process may use; 1: no threads, for running
        many cubes in parallel processes). BLAS is limited to one thread during the call
        (``threadpoolctl``, process-wide).

    dispersions : sequence of float
        Velocity dispersions [km/s] by which the continuum templates are broadened; the
        posterior marginalises over them with equal prior weight (a discrete nuisance
        parameter). Default :data:`DISPERSIONS`, ``(0, 150, 300)``. A single value fits
        templates broadened by that much (``(0,)``: as they are, the fastest). A
        dispersion mismatch between galaxy and templates is the main source of confident
        wrong peaks on short wavelength ranges (see BENCHMARKS.md, redshift flags); with
        several values every continuum template has a proper amplitude prior, so that the
        marginal likelihoods of the different sets are comparable.
    range_check : tuple of float or None
        ``(zmin, zmax)``: where the grid does not cover this range, the spectra are also
        fitted at the redshifts of the range outside it (the grid extended by whole steps,
        every template set) and the smallest chi-square there is kept
        (:attr:`RedshiftPosterior.chi2_outside`); the summary flags ``BETTER_OUTSIDE`` where
        it beats the grid's best, i.e. where the grid probably misses the true redshift.
        Default :data:`RANGE_CHECK`, 0-1. A narrow grid then costs about as much as the full
        range (the FFTs, not the number of redshifts, dominate the time). ``None``: no check.

    Returns
    -------
    RedshiftPosterior

    Notes
    -----
    Where the observed range exceeds the templates' at some redshifts (MaNGA's 3622-10357 A
    with templates that stop at 9200 A, or templates of different ranges), the templates are
    zero outside their range and the polynomials alone model the pixels no template reaches.
    The likelihood at every redshift is then the marginal density of the *same* pixels (all
    those in use), so it stays comparable across the grid: the coefficients of templates that
    cover every pixel at every redshift have a flat prior (its normalisation is the same at
    every z), and those of templates that do not have a proper Gaussian prior
    (``template_prior_scale``), whose normalisation is included, so that a template that
    leaves the data earns no Occam bonus. Templates are never extrapolated. The fraction of the
    pixels that the templates cover at the MAP redshift is in the summary's flags
    (``TEMPLATE_COVERAGE``).
    """
    wave_vac, wave_in, shape, nspec, load = _spectra(data, wave, ivar, variance, mask, medium)
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    n_workers(workers)  # validates
    used = _in_range(wave_in, wave_range)
    z_grid = grid_from(z_grid, templates.dloglam)
    log_prior = log_prior_on_grid(z_grid, prior)
    sigmas = _dispersions(dispersions)
    design = dict(
        wave=wave_vac,
        used=used,
        npoly=npoly,
        line_prior_scale=line_prior_scale,
        template_prior_scale=template_prior_scale,
    )
    designs = _designs(templates, sigmas, independent, z_grid=z_grid, **design)
    check = _range_check(templates, sigmas, independent, z_grid, range_check, **design)
    offsets = local_offsets() if refine else None
    post = RedshiftPosterior.empty(
        z_grid, shape, designs, log_prior, offsets, sigmas, check=check is not None
    )
    chunks = [slice(a, min(a + chunk_size, nspec)) for a in range(0, nspec, chunk_size)]
    evaluated = (_evaluate(rows, load, designs, workers, check) for rows in chunks)
    bar = dict(total=len(chunks), desc="redshift", unit="chunks", enabled=progress)
    # Our threads share the work of the chunks; BLAS threads of the many small products
    # would compete with them (OpenBLAS's idle threads spin while they wait for work).
    with threadpool_limits(limits=1, user_api="blas"):
        _fill(post, progress_bar(evaluated, **bar), n_workers(workers))
    return post


def _spectra(data, wave, ivar, variance, mask, medium):
    """Vacuum and input wavelengths, shape and number of the spectra, and their loader."""
    if isinstance(data, Cube):
        wave_vac, shape, nspec, load = _from_cube(data)
        return wave_vac, data.wave, shape, nspec, load
    if medium not in ("air", "vacuum"):
        raise InputError(f"medium must be 'air' or 'vacuum', got {medium!r}")
    wave_vac, shape, nspec, load = _from_arrays(data, wave, ivar, variance, mask, medium)
    return wave_vac, np.asarray(wave, dtype=float), shape, nspec, load


def _in_range(wave, wave_range):
    """Channels inside ``wave_range`` (all without one)."""
    if wave_range is None:
        return np.ones(wave.size, bool)
    return (wave >= wave_range[0]) & (wave <= wave_range[1])


def _designs(templates, sigmas, independent, **design):
    """One :class:`Design` per dispersion in ``sigmas``, with the ``design`` settings.

    Raise :class:`~bayesifu.errors.InputError` when the broadened template sets span different
    numbers of dimensions.
    """
    designs = []
    for sigma in sigmas:
        tpl = broaden_continuum(templates, sigma)
        tpl = tpl.independent() if independent else tpl
        designs.append(Design(templates=tpl, proper_templates=len(sigmas) > 1, **design))
    if len({d.p for d in designs}) > 1:
        raise InputError(
            "dispersions: the broadened template sets span different numbers of dimensions "
            f"({[d.p for d in designs]}); pass independent=False or fewer dispersions"
        )
    return designs


def check_grid(z_grid, range_check):
    """``z_grid`` extended by whole steps in log10(1+z) to cover ``range_check = (zmin, zmax)``,
    and which of its redshifts lie outside ``z_grid``; ``None`` where ``z_grid`` covers it."""
    if range_check is None:
        return None
    lo, hi = (float(v) for v in range_check)
    if not -1 < lo < hi:
        raise InputError(f"range_check: need -1 < zmin < zmax, got {range_check}")
    u0, du = grid_step(z_grid)
    n = z_grid.size
    k_lo = min(0, int(np.ceil((np.log10(1 + lo) - u0) / du - 1e-9)))
    k_hi = max(n - 1, int(np.floor((np.log10(1 + hi) - u0) / du + 1e-9)))
    if k_lo == 0 and k_hi == n - 1:
        return None
    k = np.arange(k_lo, k_hi + 1)
    return 10.0 ** (u0 + k * du) - 1.0, (k < 0) | (k > n - 1)


def _range_check(templates, sigmas, independent, z_grid, range_check, **design):
    """``(designs on the extended grid, its cells outside z_grid)`` or ``None`` (no check)."""
    extended = check_grid(z_grid, range_check)
    if extended is None:
        return None
    grid, outside = extended
    designs = _designs(templates, sigmas, independent, z_grid=grid, **design)
    return designs, outside[designs[0].valid_z]


def _evaluate(rows, load, designs, workers, check=None):
    """Load the spectra ``rows`` and evaluate every design on the channels in use; with
    ``check``, also the smallest chi-square outside the grid (:func:`_range_check`)."""
    in_use = designs[0].used
    flux, iv = load(rows.start, rows.stop)
    flux, iv = flux[:, in_use], iv[:, in_use]
    flux = np.where(iv > 0, flux, 0.0)
    results = [d.evaluate(flux, iv, workers=workers) for d in designs]
    if check is None:
        return rows, flux, iv, results, None
    check_designs, outside = check
    chi2 = [d.evaluate(flux, iv, workers=workers).chi2[:, outside] for d in check_designs]
    with np.errstate(invalid="ignore"):
        chi2_outside = np.nanmin(np.where(np.isfinite(chi2), chi2, np.nan), axis=(0, 2))
    return rows, flux, iv, results, chi2_outside


def _fill(post, evaluated, threads):
    """Fill ``post`` with each evaluated chunk; with threads, while the next one is evaluated."""
    if threads == 1:
        for args in evaluated:
            post.fill(*args)
        return
    # The summaries and refinement of one chunk (post.fill: mostly matrix products, which
    # release the GIL) run in a thread while the next chunk is evaluated.
    with ThreadPoolExecutor(1) as filler:
        pending = None
        for args in evaluated:
            if pending is not None:
                pending.result()
            pending = filler.submit(post.fill, *args)
        pending.result()
