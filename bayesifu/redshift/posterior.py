"""The result of a grid redshift fit: :class:`RedshiftPosterior`, p(z | data) for many spectra."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from .grid import ChunkResult, Design
from .refine import local_loglike
from .summary import LOCAL_MIN_MASS, RedshiftSummary, apply_local, local_mass, summarize

__all__ = ["RedshiftPosterior"]


@dataclass
class RedshiftPosterior:
    """Posterior probabilities of the redshift on a grid, one row per spectrum.

    Attributes
    ----------
    z_grid : numpy.ndarray, shape (nz,)
        The redshift grid (uniform in log10(1+z)).
    logpdf : numpy.ndarray, shape (..., nz)
        log of the posterior probability of each grid cell (``-inf`` at excluded redshifts,
        ``NaN`` for spectra without data); :attr:`pdf` is its exponential (sums to one over
        ``nz``) and :attr:`density` the density in z.
    chi2 : numpy.ndarray, shape (..., nz)
        Minimum chi-square over the linear coefficients at each redshift (``NaN`` where excluded).
    valid_z : numpy.ndarray of bool, shape (nz,)
        Redshifts that were evaluated (every redshift of the grid: templates that do not cover
        every pixel are zero outside their range, see :func:`redshift_posterior`).
    n_valid : numpy.ndarray of int, shape (...)
        Number of pixels with data (non-zero inverse variance) in each spectrum.
    n_used : int
        Number of wavelength channels in use (the denominator of the coverage fraction).
    n_params : int
        Number of linear coefficients (templates + polynomial terms).
    coeffs : numpy.ndarray, shape (..., n_params)
        Best-fit coefficients at the grid MAP redshift.
    model_sum : numpy.ndarray, shape (...)
        Sum of the best-fit model over the pixels with data at the MAP (negative: a negative model).
    template_coverage : numpy.ndarray, shape (...)
        Fraction of the pixels with data that at least one (continuum) template covers at the
        MAP redshift (``TEMPLATE_COVERAGE`` flag below ``min_template_coverage``).
    dispersions : numpy.ndarray
        The velocity dispersions [km/s] of the template sets marginalised over.
    dispersion_map : numpy.ndarray, shape (...)
        The dispersion whose templates fit best at the MAP redshift [km/s].
    chi2_null : numpy.ndarray, shape (...)
        Chi-square of the polynomial terms alone (no template): ``chi2_null - min chi2`` is the
        evidence that the spectrum holds any template signal at all (``LOW_SIGNAL`` flag).
    local_u, local_logp : numpy.ndarray, shape (..., nloc), optional
        With ``refine``: a local grid in log10(1+z), ``sub`` times finer than the coarse one,
        around each coarse peak, and the unnormalised log posterior on it (see
        :mod:`bayesifu.redshift.refine`); evaluated where the summary uses it (at least
        :data:`~bayesifu.redshift.summary.LOCAL_MIN_MASS` of the coarse posterior within the
        local grid's span), ``-inf`` elsewhere.
    chi2_outside : numpy.ndarray, shape (...), optional
        With a ``range_check`` wider than the grid: the smallest chi-square at the redshifts of
        that range outside the grid (same grid step, every template set); ``NaN`` where the
        grid covers the range. The summary's ``BETTER_OUTSIDE`` flag compares it with the
        smallest chi-square on the grid.
    log_evidence : numpy.ndarray, shape (...)
        log of sum_z p(d|z) p(z) up to a constant common to all spectra with the same pixels.
    template_names : list of str
        The templates used.
    """

    z_grid: np.ndarray
    logpdf: np.ndarray
    chi2: np.ndarray
    valid_z: np.ndarray
    n_valid: np.ndarray
    n_used: int
    n_params: int
    coeffs: np.ndarray
    model_sum: np.ndarray
    log_evidence: np.ndarray
    template_names: list
    log_prior: np.ndarray
    chi2_null: np.ndarray | None = None
    template_coverage: np.ndarray | None = None
    dispersions: np.ndarray | None = None
    dispersion_map: np.ndarray | None = None
    local_u: np.ndarray | None = None
    local_logp: np.ndarray | None = None
    chi2_outside: np.ndarray | None = None

    @classmethod
    def empty(  # noqa: PLR0913 -- the pieces of a posterior, all needed to allocate it
        cls, z_grid, shape, designs, log_prior, offsets=None, dispersions=(0.0,), check=False
    ) -> RedshiftPosterior:
        """Allocate the arrays for ``shape`` spectra (filled chunk by chunk with :meth:`fill`);
        ``designs`` (one :class:`Design` or one per dispersion in ``dispersions``),
        ``offsets`` (coarse cells) switches the local refinement on, ``check`` allocates
        :attr:`chi2_outside`."""
        designs = [designs] if isinstance(designs, Design) else list(designs)
        design = designs[0]
        nz, n = z_grid.size, int(np.prod(shape))
        local = None if offsets is None else np.full((n, offsets.size), np.nan)
        return cls(
            z_grid=z_grid,
            logpdf=np.full((n, nz), np.nan),
            chi2=np.full((n, nz), np.nan, dtype=np.float32),
            valid_z=design.valid_z.copy(),
            n_valid=np.zeros(n, dtype=int),
            n_used=int(design.used.sum()),
            n_params=design.p,
            coeffs=np.full((n, design.p), np.nan),
            model_sum=np.full(n, np.nan),
            log_evidence=np.full(n, np.nan),
            template_names=list(design.templates.names),
            log_prior=np.asarray(log_prior, dtype=float),
            chi2_null=np.full(n, np.nan),
            template_coverage=np.full(n, np.nan),
            dispersions=np.asarray(dispersions, dtype=float),
            dispersion_map=np.full(n, np.nan),
            local_u=local,
            local_logp=None if local is None else local.copy(),
            chi2_outside=np.full(n, np.nan) if check else None,
        )._with_design(designs, shape, offsets)

    def _with_design(self, designs, shape, offsets):
        self._designs = designs
        self._design = designs[0]
        self._shape = tuple(shape)
        self._offsets = offsets
        return self

    @property
    def design(self):
        """The linear model of the grid fit (:class:`~bayesifu.redshift.grid.Design` of the first
        dispersion): templates, Legendre terms, used channels, coefficient priors."""
        return self._design

    @property
    def shape(self) -> tuple:
        """The shape of the set of spectra (``(ny, nx)`` for a cube)."""
        return self._shape

    def fill(self, rows: slice, flux, ivar, results, chi2_outside=None):
        """Store the results of one chunk of (flattened) spectra ``rows``: one
        :class:`ChunkResult` per template set (dispersion), combined with equal weights, and
        the smallest chi-square outside the grid (``[ns]``, with a range check)."""
        results = [results] if isinstance(results, ChunkResult) else list(results)
        each = np.stack([r.loglike for r in results])  # [nsets, ns, nz]
        loglike = logsumexp(each, axis=0) - np.log(len(results))
        valid = self.valid_z
        logp = loglike + self.log_prior[valid][None]
        peak = np.max(logp, axis=1, keepdims=True)
        prob = np.exp(logp - peak)
        norm = prob.sum(axis=1, keepdims=True)
        n_valid = (ivar > 0).sum(axis=1)
        has_data = n_valid > self.n_params
        logpdf = np.full((prob.shape[0], self.z_grid.size), -np.inf)
        logpdf[:, valid] = logp - peak - np.log(norm)
        logpdf[~has_data] = np.nan
        chi2 = np.full(logpdf.shape, np.nan, dtype=np.float32)
        chi2[:, valid] = np.min(np.stack([r.chi2 for r in results]), axis=0)
        self.logpdf[rows] = logpdf
        self.chi2[rows] = chi2
        self.n_valid[rows] = n_valid
        self.chi2_null[rows] = np.where(has_data, results[0].chi2_null, np.nan)
        self.log_evidence[rows] = np.where(has_data, (peak + np.log(norm))[:, 0], np.nan)
        if chi2_outside is not None:
            self.chi2_outside[rows] = np.where(has_data, chi2_outside, np.nan)
        imap = np.argmax(logp, axis=1)
        spectra = np.arange(imap.size)
        best = np.argmax(each[:, spectra, imap], axis=0)  # template set at the MAP
        coeffs = np.empty((imap.size, self.n_params))
        msum, tcov = np.empty(imap.size), np.empty(imap.size)
        for k in np.unique(best):
            sel = best == k
            d, r = self._designs[k], results[k]
            c, m = self._best_fit(d, r, imap, ivar)
            coeffs[sel], msum[sel] = c[sel], m[sel]
            tcov[sel] = d.template_coverage(d.m_a + imap, ivar > 0)[sel]
        self.coeffs[rows] = np.where(has_data[:, None], coeffs, np.nan)
        self.model_sum[rows] = np.where(has_data, msum, np.nan)
        self.template_coverage[rows] = np.where(has_data, tcov, np.nan)
        self.dispersion_map[rows] = np.where(has_data, self.dispersions[best], np.nan)
        if self._offsets is not None:
            self._refine(rows, flux, ivar, self._design.m_a + imap, has_data, np.exp(logpdf))

    def _refine(self, rows, flux, ivar, m_center, has_data, pdf):
        """Local grids around the coarse peaks; evaluated only where the summary will use them
        (a single narrow peak, :data:`~.summary.LOCAL_MIN_MASS`), ``-inf`` elsewhere."""
        u = np.log10(1 + self.z_grid)
        du = u[1] - u[0]
        u_loc = u[m_center][:, None] + self._offsets[None, :] * du
        active = has_data & (local_mass(self.z_grid, pdf, u_loc) >= LOCAL_MIN_MASS)
        each = [
            local_loglike(
                d, flux, ivar, m_center, d.prior_precision(flux, ivar), self._offsets, active
            )
            for d in self._designs
        ]
        with np.errstate(invalid="ignore"):
            loglike = logsumexp(np.stack(each), axis=0) - np.log(len(each))
        prior = np.interp(u_loc, u, self.log_prior)
        self.local_u[rows] = u_loc
        self.local_logp[rows] = np.where(has_data[:, None], loglike + prior, np.nan)

    @staticmethod
    def _best_fit(d: Design, result: ChunkResult, imap, ivar):
        """Coefficients at the MAP (pseudo-inverse) and the model summed over pixels with data."""
        coeffs = d.coefficients(result, imap)
        colsum = d.column_sums(d.m_a + imap, ivar > 0)  # [ns, p]
        return coeffs, np.einsum("sp,sp->s", coeffs, colsum)

    @property
    def partial_templates(self) -> list[str]:
        """Names of the continuum template vectors that miss some channel in use at some z.

        They are zero outside their range and have a proper amplitude prior.
        """
        d = self._design
        short = ~d.complete & ~d.templates.is_line
        return [n for n, f in zip(d.templates.names, short, strict=True) if f]

    @property
    def pdf(self) -> np.ndarray:
        """Posterior probability of each grid cell, shape (n, nz) (sums to one)."""
        return np.exp(self.logpdf)

    @property
    def density(self) -> np.ndarray:
        """Posterior density in z [1/unit z] at the grid points (``pdf`` / cell width)."""
        return self.pdf / self.cell_widths()

    def cell_widths(self) -> np.ndarray:
        """Width in z of each grid cell (edges halfway in log10(1+z))."""
        u = np.log10(1 + self.z_grid)
        du = u[1] - u[0]
        return 10 ** (u + du / 2) - 10 ** (u - du / 2)

    def reshaped(self, name: str) -> np.ndarray:
        """One of the per-spectrum arrays with the leading axis restored to :attr:`shape`."""
        arr = getattr(self, name)
        return arr.reshape(self.shape + arr.shape[1:])

    def summary(self, **kwargs) -> RedshiftSummary:
        """Point estimates, intervals, peaks and flags; see :func:`summarize` for the options."""
        coverage = self.n_valid / max(self.n_used, 1)
        out = summarize(
            self.z_grid,
            self.logpdf,
            self.chi2,
            valid_z=self.valid_z,
            coverage=coverage,
            model_sum=self.model_sum,
            chi2_null=self.chi2_null,
            template_coverage=self.template_coverage,
            dof=self.n_valid - self.n_params,
            chi2_outside=self.chi2_outside,
            **kwargs,
        )
        if self.local_u is not None:
            out = apply_local(out, self.z_grid, self.pdf, self.local_u, self.local_logp)
        return out.reshaped(self.shape)
