"""Spectral templates for redshift fitting: reading, air/vacuum conversion, resolution matching.

A :class:`Templates` object holds one or more rest-frame templates sampled on a common grid that is
uniform in :math:`\\log_{10}\\lambda` (vacuum wavelengths), the grid on which a redshift is a shift
by a whole number of pixels: :math:`\\log_{10}\\lambda_{obs} = \\log_{10}\\lambda_{rest} +
\\log_{10}(1+z)`. A template is ``NaN`` outside the wavelengths its file covers, so that nothing is
ever extrapolated: the redshift code excludes redshifts at which a template does not cover the data.

Air/vacuum conversion uses the IAU standard (Morton 2000, ApJS 130, 403,
doi:10.1086/317349, eq. 8) built on the refractive index of Ciddor (1996, Appl. Opt. 35, 1566,
doi:10.1364/AO.35.001566), the formula used by astropy/specutils and pydl; the inverse (air to
vacuum) solves that relation by fixed-point iteration to machine precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.ndimage import gaussian_filter1d

from .errors import FileFormatError, InputError, ShapeError

__all__ = [
    "Templates",
    "read_templates",
    "emission_line_templates",
    "vacuum_to_air",
    "air_to_vacuum",
    "C_KMS",
    "EMISSION_LINES",
]

#: Speed of light [km/s].
C_KMS = 299792.458


def _refractive_index_minus_one(wave_vac):
    """Refractive index of standard air minus one at vacuum wavelength ``wave_vac`` [Angstrom]."""
    s2 = (1e4 / wave_vac) ** 2
    return 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)


def _check_wave(wave, name):
    wave = np.asarray(wave, dtype=float)
    if np.any(~np.isfinite(wave)) or np.any(wave < 2000.0):
        raise InputError(
            f"{name}: air/vacuum conversion needs finite wavelengths >= 2000 Angstrom "
            f"(got min {np.nanmin(wave):.6g})"
        )
    return wave


def vacuum_to_air(wave_vac):
    """Convert vacuum wavelengths to air (Morton 2000, eq. 8; Ciddor 1996).

    Parameters
    ----------
    wave_vac : array_like
        Vacuum wavelengths [Angstrom], >= 2000.

    Returns
    -------
    numpy.ndarray
        Air wavelengths [Angstrom].
    """
    wave_vac = _check_wave(wave_vac, "vacuum_to_air")
    return wave_vac / (1.0 + _refractive_index_minus_one(wave_vac))


def air_to_vacuum(wave_air, n_iter=6):
    """Convert air wavelengths to vacuum: the exact inverse of :func:`vacuum_to_air`.

    Iterates :math:`\\lambda_{vac} \\leftarrow \\lambda_{air} [1 + (n-1)(\\lambda_{vac})]`; the
    contraction factor is about 1e-5, so a few iterations reach machine precision.

    Parameters
    ----------
    wave_air : array_like
        Air wavelengths [Angstrom], >= 2000.
    n_iter : int
        Number of fixed-point iterations.

    Returns
    -------
    numpy.ndarray
        Vacuum wavelengths [Angstrom].
    """
    wave_air = _check_wave(wave_air, "air_to_vacuum")
    wave_vac = wave_air.copy()
    for _ in range(n_iter):
        wave_vac = wave_air * (1.0 + _refractive_index_minus_one(wave_vac))
    return wave_vac


@dataclass
class Templates:
    """Rest-frame templates on a common grid uniform in log10 of the vacuum wavelength.

    Parameters
    ----------
    loglam0 : float
        log10 of the first pixel's wavelength [log10 Angstrom].
    dloglam : float
        Pixel step in log10 wavelength [dex].
    flux : array_like, shape (ntemplates, npix)
        Template fluxes (arbitrary units); ``NaN`` where a template is not defined.
    names : list of str
        One name per template (e.g. the file it came from).
    fwhm_kms : float, optional
        The resolution of the templates, if known [km/s], for :meth:`match_resolution`.
    is_line : array_like of bool, shape (ntemplates,), optional
        Which templates are localised emission lines. Their coefficients get a proper Gaussian
        prior in the redshift fit (a line can leave the observed window at some redshifts,
        which changes the number of constrained coefficients; a flat prior would then favour
        those redshifts). Default: none.
    """

    loglam0: float
    dloglam: float
    flux: np.ndarray
    names: list = field(default_factory=list)
    fwhm_kms: float | None = None
    is_line: np.ndarray | None = None

    def __post_init__(self):
        self.flux = np.atleast_2d(np.asarray(self.flux, dtype=float))
        if self.flux.ndim != 2:
            raise ShapeError(f"templates: flux must be [ntemplates, npix], got {self.flux.shape}")
        if not (np.isfinite(self.dloglam) and self.dloglam > 0):
            raise InputError(f"templates: dloglam must be positive, got {self.dloglam}")
        if self.flux.shape[1] < 2:
            raise ShapeError("templates: need at least two pixels")
        if not self.names:
            self.names = [f"template{i}" for i in range(self.flux.shape[0])]
        if len(self.names) != self.flux.shape[0]:
            raise ShapeError(
                f"templates: {len(self.names)} names for {self.flux.shape[0]} templates"
            )
        if np.all(np.isnan(self.flux), axis=1).any():
            raise InputError("templates: a template has no finite pixel")
        n = self.flux.shape[0]
        self.is_line = np.zeros(n, bool) if self.is_line is None else np.asarray(self.is_line, bool)
        if self.is_line.shape != (n,):
            raise ShapeError(f"templates: is_line must have {n} entries")

    @property
    def ntemplates(self) -> int:
        """Number of templates."""
        return self.flux.shape[0]

    @property
    def loglam(self) -> np.ndarray:
        """log10 rest vacuum wavelength of each pixel [log10 Angstrom]."""
        return self.loglam0 + self.dloglam * np.arange(self.flux.shape[1])

    @property
    def wave(self) -> np.ndarray:
        """Rest vacuum wavelength of each pixel [Angstrom]."""
        return 10.0**self.loglam

    def coverage(self) -> np.ndarray:
        """``[ntemplates, 2]`` first and last pixel index where each template is finite."""
        good = np.isfinite(self.flux)
        first = np.argmax(good, axis=1)
        last = good.shape[1] - 1 - np.argmax(good[:, ::-1], axis=1)
        return np.stack([first, last], axis=1)

    def rest_range(self, common: bool = True) -> tuple[float, float]:
        """Rest wavelength range [Angstrom] covered by *every* template (``common=False``: by
        at least one)."""
        cov = self.coverage()
        loglam = self.loglam
        if not common:
            return 10.0 ** loglam[cov[:, 0].min()], 10.0 ** loglam[cov[:, 1].max()]
        return 10.0 ** loglam[cov[:, 0].max()], 10.0 ** loglam[cov[:, 1].min()]

    def independent(self, rtol: float = 1e-6) -> Templates:
        """An orthogonal basis spanning the same space, for each group of templates that cover
        the same wavelength range.

        Template sets are often exactly degenerate (the five SDSS DR2 galaxy templates
        spDR2-023..027 span only two dimensions), which makes the Occam factor
        :math:`|A^T W A|^{-1/2}` of the redshift posterior undefined. Templates are grouped by
        their range (first and last finite pixel); the singular value decomposition of each
        group over its range keeps the right singular vectors with singular values above
        ``rtol`` times the largest (scaled by them, so that amplitudes stay comparable). Each
        basis vector keeps its group's full range, so a template with a shorter range (SDSS
        spDR2-028, 3000-6800 A) does not cut the others; where the groups are not degenerate
        with each other the model space, and so the posterior under a flat coefficient prior,
        is unchanged. Emission-line templates are kept as they are.
        """
        cont = np.flatnonzero(~self.is_line)
        if cont.size == 0:
            return self
        cov = self.coverage()
        groups: dict[tuple[int, int], list[int]] = {}
        for i in cont:
            groups.setdefault((int(cov[i, 0]), int(cov[i, 1])), []).append(int(i))
        rows, names = [], []
        for (lo, hi), members in groups.items():
            seg = self.flux[members, lo : hi + 1]
            if np.isnan(seg).any():
                raise InputError(
                    f"templates: {', '.join(self.names[i] for i in members)} have gaps "
                    "(NaN inside their wavelength range)"
                )
            _, sing, vt = np.linalg.svd(seg, full_matrices=False)
            keep = sing > rtol * sing[0]
            for v, sv in zip(vt[keep], sing[keep], strict=True):
                row = np.full(self.flux.shape[1], np.nan)
                row[lo : hi + 1] = v * sv / np.sqrt(hi + 1 - lo)
                rows.append(row)
                names.append(f"basis{len(names)}")
        basis = Templates(self.loglam0, self.dloglam, np.array(rows), names, self.fwhm_kms)
        if self.is_line.any():
            lines = Templates(
                self.loglam0,
                self.dloglam,
                self.flux[self.is_line],
                [n for n, f in zip(self.names, self.is_line, strict=True) if f],
                self.fwhm_kms,
                np.ones(int(self.is_line.sum()), bool),
            )
            basis = basis.concatenate(lines)
        return basis

    def concatenate(self, other: Templates) -> Templates:
        """Both sets of templates together (``other`` must share the grid)."""
        same = (
            abs(self.loglam0 - other.loglam0) < 1e-9 and abs(self.dloglam - other.dloglam) < 1e-12
        )
        if not same or self.flux.shape[1] != other.flux.shape[1]:
            raise InputError("templates: cannot concatenate templates on different grids")
        return Templates(
            self.loglam0,
            self.dloglam,
            np.concatenate([self.flux, other.flux]),
            list(self.names) + list(other.names),
            self.fwhm_kms,
            np.concatenate([self.is_line, other.is_line]),
        )

    def resample(self, dloglam: float, loglam0: float | None = None) -> Templates:
        """Linearly interpolate onto a grid of step ``dloglam`` starting at ``loglam0`` [dex].

        Pixels outside a template's own range stay ``NaN`` (no extrapolation).
        """
        start = self.loglam0 if loglam0 is None else float(loglam0)
        stop = self.loglam[-1]
        n = int(np.floor((stop - start) / dloglam + 1e-9)) + 1
        if n < 2:
            raise InputError(f"templates: cannot resample onto step {dloglam} from {start}")
        new = start + dloglam * np.arange(n)
        flux = np.array([_interp_nan(new, self.loglam, f) for f in self.flux])
        return Templates(
            start, float(dloglam), flux, list(self.names), self.fwhm_kms, self.is_line.copy()
        )

    def broaden(self, sigma_kms: float) -> Templates:
        """Convolve every template with a Gaussian of dispersion ``sigma_kms`` [km/s].

        On a log-lambda grid a constant velocity dispersion is a constant width in pixels:
        :math:`\\sigma_{pix} = \\sigma_v / (c \\ln 10\\, \\Delta\\log_{10}\\lambda)`. The edges of
        each template's range are trimmed by four sigma so that no padding leaks in.
        """
        if not sigma_kms >= 0:
            raise InputError(f"templates: broadening sigma must be >= 0 km/s, got {sigma_kms}")
        sig_pix = sigma_kms / (C_KMS * np.log(10.0) * self.dloglam)
        if sig_pix == 0:
            return Templates(
                self.loglam0,
                self.dloglam,
                self.flux.copy(),
                list(self.names),
                self.fwhm_kms,
                self.is_line.copy(),
            )
        out = np.full_like(self.flux, np.nan)
        trim = int(np.ceil(4 * sig_pix))
        for i, (lo, hi) in enumerate(self.coverage()):
            seg = gaussian_filter1d(self.flux[i, lo : hi + 1], sig_pix, mode="nearest")
            if seg.size > 2 * trim + 2:
                out[i, lo + trim : hi + 1 - trim] = seg[trim : seg.size - trim]
        fwhm = None
        if self.fwhm_kms is not None:
            fwhm = float(np.hypot(self.fwhm_kms, 2.3548200450309493 * sigma_kms))
        return Templates(self.loglam0, self.dloglam, out, list(self.names), fwhm, self.is_line)

    def match_resolution(self, target_fwhm_kms: float) -> Templates:
        """Broaden the templates from :attr:`fwhm_kms` to ``target_fwhm_kms`` [km/s] (Gaussian)."""
        if self.fwhm_kms is None:
            raise InputError("templates: fwhm_kms is unknown; use broaden(sigma_kms) instead")
        if target_fwhm_kms < self.fwhm_kms:
            raise InputError(
                f"templates: target FWHM {target_fwhm_kms} km/s is sharper than the templates' "
                f"{self.fwhm_kms} km/s; cannot deconvolve"
            )
        sigma = np.sqrt(target_fwhm_kms**2 - self.fwhm_kms**2) / 2.3548200450309493
        return self.broaden(float(sigma))


#: Default emission lines: name -> [(vacuum rest wavelength [Angstrom], relative flux), ...].
#: Doublets with a fixed ratio from atomic physics share one template ([OIII] 5007/4959 = 2.98,
#: [NII] 6583/6548 = 3.05; Storey & Zeippen 2000, MNRAS 312, 813,
#: doi:10.1046/j.1365-8711.2000.03184.x);
#: the density-sensitive [SII] doublet is given the ratio 1:1 (low-density limit 1.45:1).
EMISSION_LINES = {
    "Hbeta": [(4862.68, 1.0)],
    "[OIII]": [(4960.30, 1.0 / 2.98), (5008.24, 1.0)],
    "[OI]": [(6302.05, 1.0), (6365.54, 1.0 / 3.0)],
    "[NII]": [(6549.86, 1.0 / 3.05), (6585.27, 1.0)],
    "Halpha": [(6564.61, 1.0)],
    "[SII]": [(6718.29, 1.0), (6732.67, 1.0)],
}


def emission_line_templates(base: Templates, sigma_kms: float = 200.0, lines=None) -> Templates:
    """Gaussian emission-line templates on the grid of ``base`` (one per line or doublet).

    Adding them (``base + lines``, see :meth:`Templates.concatenate`) lets the fit choose line
    ratios that a fixed galaxy template cannot reproduce (strong [NII] in a LINER, say), which
    otherwise pulls the redshift towards matching the wrong line.

    Parameters
    ----------
    base : Templates
        Templates whose grid (and common range, outside which the lines are ``NaN``) is used.
    sigma_kms : float
        Line-of-sight velocity dispersion of the lines [km/s].
    lines : dict, optional
        ``name -> [(vacuum wavelength [Angstrom], relative flux), ...]``; default
        :data:`EMISSION_LINES`.
    """
    if not sigma_kms > 0:
        raise InputError(f"emission lines: sigma_kms must be positive, got {sigma_kms}")
    lines = EMISSION_LINES if lines is None else lines
    cov = base.coverage()
    lo, hi = cov[:, 0].max(), cov[:, 1].min()
    loglam = base.loglam
    sig_dex = sigma_kms / (C_KMS * np.log(10.0))
    flux = np.full((len(lines), loglam.size), np.nan)
    for i, comps in enumerate(lines.values()):
        prof = sum(a * np.exp(-0.5 * ((loglam - np.log10(w)) / sig_dex) ** 2) for w, a in comps)
        flux[i, lo : hi + 1] = prof[lo : hi + 1]
    is_line = np.ones(len(lines), bool)
    return Templates(base.loglam0, base.dloglam, flux, list(lines), base.fwhm_kms, is_line)


def _interp_nan(x_new, x, f):
    """np.interp that returns NaN outside the finite range of ``f`` (never extrapolates)."""
    good = np.isfinite(f)
    xg, fg = x[good], f[good]
    out = np.interp(x_new, xg, fg)
    out[(x_new < xg[0] - 1e-12) | (x_new > xg[-1] + 1e-12)] = np.nan
    return out


def _read_sdss(hdul, path):
    hdr = hdul[0].header
    data = np.asarray(hdul[0].data, dtype=float)
    data = data[0] if data.ndim == 2 else data
    if data.ndim != 1:
        raise FileFormatError(f"{path}: primary image must be 1-D or 2-D, got {data.shape}")
    loglam = hdr["COEFF0"] + hdr["COEFF1"] * np.arange(data.size)
    return loglam, data


def _read_table(path):
    path = Path(path)
    if path.suffix.lower() in (".fits", ".fit", ".fts") or path.name.endswith(".fits.gz"):
        with fits.open(path) as hdul:
            table = next((h for h in hdul if isinstance(h, fits.BinTableHDU)), None)
            if table is None:
                raise FileFormatError(f"{path}: neither COEFF0/COEFF1 image nor binary table")
            cols = {c.lower(): c for c in table.columns.names}
            wcol = next((cols[k] for k in ("wave", "wavelength", "lambda") if k in cols), None)
            fcol = next((cols[k] for k in ("flux", "flux_density", "f") if k in cols), None)
            if wcol is None or fcol is None:
                raise FileFormatError(
                    f"{path}: table needs a wavelength column (wave/wavelength/lambda) and a "
                    f"flux column (flux), found {table.columns.names}"
                )
            return np.asarray(table.data[wcol], float), np.asarray(table.data[fcol], float)
    try:
        arr = np.loadtxt(path, ndmin=2)
    except (ValueError, OSError) as err:
        raise FileFormatError(f"{path}: cannot read as a (wavelength, flux) table: {err}") from err
    if arr.shape[1] < 2:
        raise FileFormatError(f"{path}: a text template needs two columns (wavelength, flux)")
    return arr[:, 0], arr[:, 1]


def _read_one(path, medium):
    """Return (loglam_vacuum, flux) of one template file."""
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such template file")
    is_fits = path.suffix.lower() in (".fits", ".fit", ".fts") or path.name.endswith(".gz")
    if is_fits:
        try:
            with fits.open(path) as hdul:
                hdr = hdul[0].header
                if "COEFF0" in hdr and "COEFF1" in hdr and hdul[0].data is not None:
                    return _read_sdss(hdul, path)
        except OSError as err:
            raise FileFormatError(f"{path}: not a readable FITS file: {err}") from err
    wave, flux = _read_table(path)
    order = np.argsort(wave)
    wave, flux = wave[order], flux[order]
    if np.any(np.diff(wave) <= 0) or np.any(wave <= 0):
        raise FileFormatError(f"{path}: wavelengths must be positive and distinct")
    if medium == "air":
        wave = air_to_vacuum(wave)
    return np.log10(wave), flux


def read_templates(paths, medium="vacuum", dloglam=None, fwhm_kms=None) -> Templates:
    """Read template files onto one log10-linear vacuum grid.

    SDSS-style FITS files (log10-linear wavelengths from ``COEFF0``/``COEFF1`` in the primary
    header, row 0 of the image is the template: the spDR2 cross-correlation templates) are read
    directly; anything else is read as a (wavelength [Angstrom], flux) table: a FITS binary table
    with ``wave``/``wavelength`` and ``flux`` columns or a two-column text file.

    Parameters
    ----------
    paths : str, Path or sequence of them
        The template files.
    medium : {"vacuum", "air"}
        The medium of the wavelengths of *table* templates (SDSS templates are vacuum).
    dloglam : float, optional
        Step of the common grid [dex]; default the smallest step among the files.
    fwhm_kms : float, optional
        Resolution of the templates [km/s], used by :meth:`Templates.match_resolution`.

    Returns
    -------
    Templates
        All templates on the common grid, ``NaN`` outside each file's own range. Templates whose
        pixels fall between the common grid's pixels are linearly interpolated.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise InputError("read_templates: no template files given")
    if medium not in ("air", "vacuum"):
        raise InputError(f"read_templates: medium must be 'air' or 'vacuum', got {medium!r}")
    spectra = [_read_one(p, medium) for p in paths]
    steps = [np.median(np.diff(lg)) for lg, _ in spectra]
    step = float(min(steps) if dloglam is None else dloglam)
    start = min(lg[0] for lg, _ in spectra)
    stop = max(lg[-1] for lg, _ in spectra)
    n = int(np.floor((stop - start) / step + 1e-6)) + 1
    grid = start + step * np.arange(n)
    flux = np.empty((len(spectra), n))
    for i, (lg, f) in enumerate(spectra):
        on_grid = abs(step - steps[i]) < 1e-9 * step and abs((lg[0] - start) / step % 1) < 1e-6
        if on_grid and len(lg) > 1 and np.allclose(np.diff(lg), step, rtol=1e-6):
            k0 = int(round((lg[0] - start) / step))
            flux[i] = np.nan
            flux[i, k0 : k0 + lg.size] = f[: n - k0]
        else:
            flux[i] = _interp_nan(grid, lg, f)
    names = [Path(p).name for p in paths]
    return Templates(start, step, flux, names, fwhm_kms)
