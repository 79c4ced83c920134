r"""The redshift posterior on a grid, for many spectra at once, by FFT cross-correlation.

Model
-----
For a redshift :math:`z` the model of a spectrum :math:`d` (observed pixels :math:`k`, inverse
variances :math:`w_k`, zero where masked) is linear in the coefficients :math:`c`:

.. math::

    m_k(z) = \sum_i c_i\, t_i\!\left(\log_{10}\lambda_k - \log_{10}(1+z)\right)
           + \sum_p c_{T+p}\, P_p(x_k) = [A(z)\, c]_k ,

with the rest-frame templates :math:`t_i` (vacuum wavelengths; linear interpolation in
:math:`\log_{10}\lambda`) and Legendre polynomials :math:`P_p` of the observed wavelength mapped
to :math:`x \in [-1, 1]`. With :math:`M(z) = A^T W A` and :math:`b(z) = A^T W d`,
:math:`\chi^2_{min}(z) = d^T W d - b^T M^{-1} b`.

Marginalising :math:`c` under a flat prior (the limit of a Gaussian prior :math:`N(0, s^2 I)` with
:math:`s \to \infty`, whose normalisation :math:`(2\pi s^2)^{-n_c/2}` is the same at every
:math:`z` because the model has the same :math:`n_c` coefficients at every :math:`z`) gives

.. math::

    p(d \mid z) \propto \exp\!\left(-\tfrac12 \chi^2_{min}(z)\right) \, |M(z)|^{-1/2},

the Laplace form, exact here because the model is linear in :math:`c` (the Occam factor
:math:`|M|^{-1/2}` penalises redshifts at which the templates can absorb more of the data). The
posterior is :math:`p(z \mid d) \propto p(d \mid z)\, p(z)`.

Why the flat prior is calibrated, and where it is not used: the dropped normalisation is the same
at every :math:`z` only if every coefficient is constrained by the data at every :math:`z`. That
holds for the continuum templates (they must cover all the data, see below) and the polynomials,
but not for emission-line templates, which leave the observed window at some redshifts; a flat
prior would then reward those redshifts with an unbounded Occam "bonus". Line coefficients
therefore get a proper Gaussian prior :math:`N(0, s_i^2)` (``line_prior_scale`` times the
spectrum's rms flux for the line peak), which enters as :math:`M \to M + \mathrm{diag}(s^{-2})`
and the z-independent :math:`|\Sigma_c|^{-1/2}`: exactly
:math:`N(d; 0, W^{-1} + A \Sigma_c A^T)` in the limit of flat priors on the other
coefficients. The calibration (68/95 % intervals covering the true redshift at the nominal
rate) is checked by simulation in the test suite.

Fast evaluation
---------------
The redshift grid is uniform in :math:`u = \log_{10}(1+z)` with the templates' pixel step
:math:`\delta`, so shifting to the next redshift moves every template by one pixel. A data pixel at
template position :math:`p_k - m` (:math:`m` = redshift index) has the same fractional offset
:math:`f_k` at every :math:`m`, so with :math:`j_k = \lfloor p_k \rfloor`,

.. math::

    b_i(m) = \sum_g e[g]\, T_i[g - m], \qquad
    M_{il}(m) = \sum_g a[g]\, T_i T_l[g - m] + \beta[g]\, (T_i[\cdot] T_l[\cdot+1] +
    T_i[\cdot+1] T_l[\cdot])[g - m],

where :math:`e` is the data scattered onto the template grid by the *adjoint* of the linear
interpolation (:math:`e[j_k] \mathrel{+}= (1-f_k) w_k d_k`, :math:`e[j_k+1] \mathrel{+}= f_k w_k
d_k`), and :math:`a, \beta` scatter :math:`w_k (1-f_k)^2, w_k f_k^2` and :math:`w_k f_k (1-f_k)`
the same way. Every term is an exact cross-correlation with a fixed template array: one real FFT
per scattered array and one inverse FFT per matrix entry give all redshifts at once, with no
resampling of the data (the data keep their own linear wavelength grid).

The polynomial terms do not move with :math:`z`, so they are eliminated first, once per
spectrum: the polynomials are orthonormalised under the spectrum's weights and the data replaced
by the residual of their fit, which makes the correlations above the blocks of a factorisation
that starts with the polynomials. At each redshift only the template block's Schur complement
(:math:`6\times 6` for six templates) is factored; ``log det M`` and :math:`b^T M^{-1} b` are
those of the full system. The systems of all redshifts are solved at once, one spectrum at a
time, while worker threads compute the correlations of the next spectra.

Redshifts at which any template does not cover every observed pixel in use are excluded (their
probability is zero and they are reported in ``valid_z``): templates are never extrapolated.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.sparse as sp
from numpy.polynomial import legendre

from ..errors import InputError
from ..templates import Templates
from .linalg import PIVOT_TOL, cholesky_logdet_quadratic

__all__ = ["log_z_grid", "grid_step", "Design", "ChunkResult"]


def log_z_grid(zmin: float, zmax: float, dlog: float = 1e-4) -> np.ndarray:
    """Redshifts uniform in ``log10(1+z)`` from ``zmin`` to at most ``zmax`` with step ``dlog``.

    A step of ``dlog`` [dex] is a velocity step of ``c ln(10) dlog`` (69 km/s for 1e-4).
    """
    if not (zmin > -1 and zmax > zmin and dlog > 0):
        raise InputError(f"z grid: need -1 < zmin < zmax and dlog > 0, got {zmin}, {zmax}, {dlog}")
    u0 = np.log10(1 + zmin)
    n = int(np.floor((np.log10(1 + zmax) - u0) / dlog + 1e-9)) + 1
    if n < 3:
        raise InputError(f"z grid: fewer than 3 points between {zmin} and {zmax} at step {dlog}")
    return 10.0 ** (u0 + dlog * np.arange(n)) - 1.0


def grid_step(z_grid) -> tuple[float, float]:
    """Return ``(log10(1+z_grid[0]), step)``; raise if the grid is not uniform in log10(1+z)."""
    z_grid = np.asarray(z_grid, dtype=float)
    if z_grid.ndim != 1 or z_grid.size < 3 or np.any(z_grid <= -1):
        raise InputError("z_grid: need a 1-D array of at least 3 redshifts > -1")
    u = np.log10(1 + z_grid)
    du = np.diff(u)
    step = float(np.mean(du))
    if step <= 0 or np.max(np.abs(du - step)) > 1e-6 * step + 1e-12:
        raise InputError(
            "z_grid: must increase uniformly in log10(1+z) (use log_z_grid(zmin, zmax, dlog))"
        )
    return float(u[0]), step


@dataclass
class ChunkResult:
    """Per-spectrum results of one chunk on the valid part of the redshift grid.

    The polynomial terms are eliminated first (they do not depend on z): ``basis`` maps each
    spectrum's Legendre polynomials to a basis orthonormal under its inverse variances, ``yp``
    holds the data in that basis, and ``tt``, ``tl`` are the redshift-dependent sums in *lag*
    order (reversed redshift order): template-template entries of ``M``, then the templates'
    correlation with the weighted residual of the polynomial fit (row 0 of ``tl``) and with the
    orthonormal polynomials (rows 1..). :meth:`Design.coefficients` solves for the coefficients
    at chosen redshifts.
    """

    loglike: np.ndarray  # [ns, nzv]  log p(d|z) up to a per-spectrum constant
    chi2: np.ndarray  # [ns, nzv]
    chi2_null: np.ndarray  # [ns] chi-square of the polynomial terms alone (no template)
    tt: np.ndarray  # [ns, npairs, nzv]  template-template entries of M
    tl: np.ndarray  # [ns, 1 + npoly, nt, nzv]  residual (row 0) and polynomial correlations
    basis: np.ndarray  # [ns, npoly, npoly]  columns: orthonormal polynomials (zero if dropped)
    yp: np.ndarray  # [ns, npoly]  data in the orthonormal polynomial basis
    prec: np.ndarray  # [ns, p]  diagonal prior precision of the coefficients


#: Spectra whose small systems are solved together (4 measured fastest: larger arrays leave
#: the cache).
SOLVE_BATCH = 4


def n_workers(workers: int) -> int:
    """Number of threads for ``workers`` (-1: the CPU cores this process may use)."""
    if workers == -1:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if workers < 1:
        raise InputError(f"workers must be -1 or >= 1, got {workers}")
    return int(workers)


def _poly_basis(pp):
    """Orthonormal basis of each spectrum's weighted polynomial space from ``pp`` [ns, q, q]:
    ``V`` [ns, q, q] with ``V^T pp V = I`` on the kept directions (degenerate ones, eigenvalue
    below :data:`~.linalg.PIVOT_TOL` of the largest, are zero columns) and ``log det`` of the
    kept part."""
    w, u = np.linalg.eigh(pp)
    keep = w > PIVOT_TOL * np.max(w, axis=1, initial=0.0, keepdims=True)
    keep &= w > 0
    basis = np.where(keep[:, None, :], u / np.sqrt(np.where(keep, w, 1.0))[:, None, :], 0.0)
    return basis, np.sum(np.log(np.where(keep, w, 1.0)), axis=1)


def _schur(tt, tl, prec, pairs, nt, npoly):
    """Template block of ``M`` after eliminating the orthonormal polynomials, its reference
    diagonal (before the elimination) and the right-hand side, as lists of ``[..., nz]``."""
    mat = [[None] * (i + 1) for i in range(nt)]
    for q, (i, k) in enumerate(pairs):
        e = tt[q] + prec[i] if i == k else tt[q]
        for a in range(npoly):
            e = e - tl[1 + a, i] * tl[1 + a, k]
        mat[i][k] = e
    ref = [tt[pairs.index((i, i))] + prec[i] for i in range(nt)]
    return mat, [tl[0, i] for i in range(nt)], ref


class Design:
    """Everything about the fit that does not depend on the data values.

    Parameters
    ----------
    wave : array_like, shape (nwave,)
        Observed *vacuum* wavelengths of the channels [Angstrom].
    used : array_like of bool, shape (nwave,)
        Channels that may carry data (the rest are ignored everywhere).
    templates : Templates
        Rest-frame templates; resampled to the grid step if needed.
    z_grid : array_like, shape (nz,)
        Redshift grid, uniform in log10(1+z).
    npoly : int
        Number of Legendre polynomial terms (0 for none).
    line_prior_scale : float
        Prior standard deviation of the *peak* of an emission-line template (``is_line``), in
        units of the spectrum's inverse-variance-weighted rms flux.
    template_prior_scale : float
        Prior standard deviation of the amplitude of a continuum template that does not cover
        every pixel at every redshift of the grid, in the same units (see
        :meth:`prior_precision`).
    proper_templates : bool
        Give every continuum template that proper prior (to compare template sets).
    """

    def __init__(
        self,
        wave,
        used,
        templates: Templates,
        z_grid,
        npoly: int = 3,
        line_prior_scale=10.0,
        template_prior_scale=10.0,
        proper_templates: bool = False,
    ):
        for name, value in (
            ("line_prior_scale", line_prior_scale),
            ("template_prior_scale", template_prior_scale),
        ):
            if not value > 0:
                raise InputError(f"{name} must be positive, got {value}")
        self.line_prior_scale = float(line_prior_scale)
        self.template_prior_scale = float(template_prior_scale)
        self.proper_templates = bool(proper_templates)
        self.cache = {}  # data-independent arrays built on first use (local refinement maps)
        if npoly < 0:
            raise InputError(f"npoly must be >= 0, got {npoly}")
        self.z_grid = np.asarray(z_grid, dtype=float)
        u0, step = grid_step(self.z_grid)
        wave = np.asarray(wave, dtype=float)
        self.used = np.asarray(used, dtype=bool) & np.isfinite(wave)
        if not self.used.any():
            raise InputError("redshift: no usable wavelength channel")
        self.wave = wave[self.used]
        if abs(templates.dloglam - step) > 1e-9 * step:
            templates = templates.resample(step)
        self.templates = templates
        self.npoly, self.nt = int(npoly), templates.ntemplates
        self.p = self.nt + self.npoly
        pos = (np.log10(self.wave) - u0 - templates.loglam0) / step
        j = np.floor(pos + 1e-9).astype(int)
        frac = np.clip(pos - j, 0.0, 1.0)
        self._set_valid_z(j, templates.coverage())
        self._build_scatter(j, frac)
        self._build_template_ffts(templates.flux)
        x = 2 * (self.wave - self.wave[0]) / max(self.wave[-1] - self.wave[0], 1e-30) - 1
        self.poly = np.array([legendre.legval(x, np.eye(npoly)[q]) for q in range(npoly)])
        self.poly = self.poly.reshape(npoly, self.wave.size)

    def _set_valid_z(self, j, coverage):
        """Which templates cover every pixel in use at every redshift of the grid (flat prior)
        and which only part of them somewhere (proper prior, zero outside their range)."""
        lo, hi = coverage[:, 0], coverage[:, 1]
        nz, jmin, jmax = self.z_grid.size, int(j.min()), int(j.max())
        # At redshift index m pixel k reads template pixels j_k - m and j_k - m + 1.
        self.complete = (jmax + 1 - hi <= 0) & (jmin - lo >= nz - 1)
        overlaps = (jmin - hi + 1 <= nz - 1) & (jmax - lo >= 0)
        if not overlaps.any():
            trange = self.templates.rest_range(common=False)
            raise InputError(
                f"redshift: the templates (rest {trange[0]:.1f}-{trange[1]:.1f} A) do not reach "
                f"the observed {self.wave[0]:.1f}-{self.wave[-1]:.1f} A at any redshift of the "
                f"grid [{self.z_grid[0]:.4g}, {self.z_grid[-1]:.4g}]"
            )
        self.partial = ~self.templates.is_line
        if not self.proper_templates:
            self.partial &= ~self.complete
        self.t_lo, self.t_hi = lo, hi
        self.m_a, self.m_b = 0, nz - 1
        self.valid_z = np.ones(nz, dtype=bool)
        self.nzv = nz
        self.jlo = jmin

    def template_coverage(self, m, good) -> np.ndarray:
        """Fraction of the pixels ``good`` [ns, nk] that at least one template covers, at the
        redshift indices ``m`` [ns] of the grid."""
        q = self.j[None, :] - np.asarray(m)[:, None]  # template pixel read by each pixel
        cont = ~self.templates.is_line
        lo, hi = self.t_lo[cont], self.t_hi[cont]
        inside = np.zeros(q.shape, bool)
        for a, b in zip(lo, hi, strict=True):
            inside |= (q >= a) & (q + 1 <= b)
        n = good.sum(axis=1)
        return np.where(n > 0, (inside & good).sum(axis=1) / np.maximum(n, 1), np.nan)

    def _build_scatter(self, j, frac):
        g = j - self.jlo
        self.ng = int(g.max()) + 2
        nk = g.size
        rows = np.concatenate([np.arange(nk), np.arange(nk)])
        cols = np.concatenate([g, g + 1])

        def mat(v0, v1):
            return sp.csr_array((np.concatenate([v0, v1]), (rows, cols)), shape=(nk, self.ng))

        self.scatter_lin = mat(1 - frac, frac)
        self.scatter_sq = mat((1 - frac) ** 2, frac**2)
        self.scatter_cross = mat(frac * (1 - frac), np.zeros(nk))
        self.j, self.frac = j, frac

    def _build_template_ffts(self, flux):
        flux = np.nan_to_num(flux, nan=0.0)
        # Zero-padded (templates are zero outside their range) so that every redshift of the
        # grid reads inside: template pixel q is column q + t_off.
        self.t_off = max(0, self.z_grid.size - self.jlo) + 1
        right = max(0, int(self.j.max()) + 2 - flux.shape[1]) + 1
        self._t0 = np.pad(flux, ((0, 0), (self.t_off, right)))
        start = self.jlo - self.m_b
        length = self.ng + self.nzv - 1
        self.nfft = scipy.fft.next_fast_len(length, real=True)
        idx = start + np.arange(length + 1)
        t = np.zeros((self.nt, length + 1))
        inside = (idx >= 0) & (idx < flux.shape[1])
        t[:, inside] = flux[:, idx[inside]]
        self.pairs = [(i, k) for i in range(self.nt) for k in range(i + 1)]
        prod, cross = self.pair_products(t)
        rfft = scipy.fft.rfft
        self.f_prod = rfft(prod, self.nfft, axis=-1)
        self.f_cross = rfft(cross, self.nfft, axis=-1)
        self.f_tpl = rfft(t[:, :-1], self.nfft, axis=-1)

    def pair_products(self, t):
        """Template products of each pair ``(i, k)`` of :attr:`pairs` on template pixels
        ``t[:, :-1]`` [nt, n + 1]: ``t_i t_k`` (the terms of squared interpolation weights) and
        ``t_i[h] t_k[h+1] + t_i[h+1] t_k[h]`` (cross weights), each ``[npairs, n]``."""
        t0, t1 = t[:, :-1], t[:, 1:]
        prod = np.array([t0[i] * t0[k] for i, k in self.pairs])
        cross = np.array([t0[i] * t1[k] + t1[i] * t0[k] for i, k in self.pairs])
        return prod, cross

    def evaluate(self, flux, ivar, workers: int = -1) -> ChunkResult:
        """Evaluate the marginal likelihood for a chunk of spectra at every valid redshift.

        The polynomial coefficients are eliminated first, per spectrum (they do not depend on
        z): the FFT inputs are the weighted residual of the polynomial fit and the polynomials
        orthonormalised under the spectrum's weights, so that only the template block (its
        Schur complement) is factored at each redshift. ``log det M`` and ``b^T M^{-1} b`` are
        those of the full system (block determinant and block solve).

        Parameters
        ----------
        flux, ivar : numpy.ndarray, shape (ns, nwave_used)
            Fluxes and inverse variances on the used channels (``ivar = 0`` where masked).
        workers : int
            Threads (as in :mod:`scipy.fft`: -1 for one per usable CPU core).
        """
        ns, nt, npoly = flux.shape[0], self.nt, self.npoly
        npairs, nf, nzv, nfft = len(self.pairs), self.f_tpl.shape[-1], self.nzv, self.nfft
        wd = ivar * flux
        dwd = np.einsum("sk,sk->s", wd, flux)
        prec = self.prior_precision(flux, ivar)
        basis, logdet_p = _poly_basis(np.einsum("sk,ak,bk->sab", ivar, self.poly, self.poly))
        yp = np.empty((ns, npoly))
        corr = np.empty((ns, npairs + (1 + npoly) * nt, nzv))
        logdet_t, quad_t = np.empty((ns, nzv)), np.empty((ns, nzv))
        local = threading.local()

        def transforms(rows):
            # FFT inputs of a block of spectra: the inverse variances scattered onto the
            # template grid with squared and cross weights, and the weighted residual of the
            # polynomial fit and the orthonormal polynomials with linear weights.
            iv = ivar[rows]
            ortho = np.einsum("sab,ak->sbk", basis[rows], self.poly)  # [k, npoly, nk]
            yp[rows] = np.einsum("sbk,sk->sb", ortho, wd[rows])
            resid = flux[rows] - np.einsum("sb,sbk->sk", yp[rows], ortho)
            lin = np.concatenate([(iv * resid)[:, None], iv[:, None] * ortho], axis=1)

            def scattered(smap, x):
                out = (smap.T @ x.reshape(-1, x.shape[-1]).T).T
                return np.conj(scipy.fft.rfft(out, nfft, axis=-1, workers=1))

            f_lin = scattered(self.scatter_lin, lin).reshape(iv.shape[0], -1, nf)
            return f_lin, scattered(self.scatter_sq, iv), scattered(self.scatter_cross, iv)

        def correlate(rows):
            # Products with the template transforms and inverse FFTs, one spectrum at a time on
            # cache-sized buffers (one set per thread); long calls that release the GIL.
            if not hasattr(local, "buf"):
                local.buf = np.empty((corr.shape[1], nf), complex)
                local.tmp = np.empty((npairs, nf), complex)
            buf, tmp = local.buf, local.tmp
            lin = buf[npairs:].reshape(-1, nt, nf)
            for j, (f_lin, f_sq, f_cr) in enumerate(zip(*transforms(rows), strict=True)):
                np.multiply(self.f_prod, f_sq, out=buf[:npairs])
                buf[:npairs] += np.multiply(self.f_cross, f_cr, out=tmp)
                np.multiply(f_lin[:, None, :], self.f_tpl[None], out=lin)
                corr[rows.start + j] = scipy.fft.irfft(buf, nfft, axis=-1, workers=1)[:, :nzv]

        def solve(rows):
            # A few spectra at once: fewer, larger NumPy calls (less Python and GIL overhead).
            c = corr[rows]
            tt = np.moveaxis(c[:, :npairs], 1, 0)  # [npairs, k, nzv]
            tl = np.moveaxis(c[:, npairs:].reshape(c.shape[0], -1, nt, self.nzv), 0, 2)
            mat, vec, ref = _schur(tt, tl, prec[rows].T[:, :, None], self.pairs, nt, npoly)
            logdet_t[rows], quad_t[rows], _ = cholesky_logdet_quadratic(mat, vec, ref)

        blocks = [slice(a, min(a + SOLVE_BATCH, ns)) for a in range(0, ns, SOLVE_BATCH)]
        nthreads = min(n_workers(workers), len(blocks))
        if nthreads <= 1:
            for rows in blocks:
                correlate(rows)
                solve(rows)
        else:
            # A pipeline: worker threads (one per core) correlate the next spectra (long
            # GIL-free calls) while this thread solves the small systems (many short NumPy
            # calls, which lose more to contention for the GIL than they gain from threads).
            with ThreadPoolExecutor(nthreads) as pool:
                for rows, _ in zip(blocks, pool.map(correlate, blocks), strict=True):
                    solve(rows)
        quad_p = np.sum(yp**2, axis=1)
        quad = quad_p[:, None] + quad_t[:, ::-1]
        loglike = 0.5 * (quad - logdet_p[:, None] - logdet_t[:, ::-1])
        loglike += 0.5 * np.sum(np.log(np.where(prec > 0, prec, 1.0)), axis=1)[:, None]
        tt, tl = corr[:, :npairs], corr[:, npairs:].reshape(ns, -1, nt, self.nzv)
        return ChunkResult(loglike, dwd[:, None] - quad, dwd - quad_p, tt, tl, basis, yp, prec)

    def coefficients(self, result: ChunkResult, m) -> np.ndarray:
        """Best-fit coefficients ``[ns, p]`` (templates, then Legendre polynomials) of each
        spectrum of a chunk at the valid-grid redshift index ``m`` [ns] (``0 .. nzv - 1``);
        a pseudo-inverse for degenerate template blocks."""
        s, lag = np.arange(len(m)), self.nzv - 1 - np.asarray(m)
        tt, tl = result.tt[s, :, lag], result.tl[s, :, :, lag]  # [ns, npairs], [ns, 1+q, nt]
        mat, vec, _ = _schur(
            tt.T, np.moveaxis(tl, 0, -1), result.prec.T, self.pairs, self.nt, self.npoly
        )
        schur = np.empty((len(m), self.nt, self.nt))
        for i, row in enumerate(mat):
            for k, e in enumerate(row):
                schur[:, i, k] = schur[:, k, i] = e
        ct = np.einsum(
            "sij,sj->si", np.linalg.pinv(schur, rcond=1e-12, hermitian=True), np.stack(vec, axis=1)
        )
        # Second block row: L21^T c_t + c_q = 0, plus the polynomial fit of the data (yp).
        cq = result.yp - np.einsum("sai,si->sa", tl[:, 1:], ct)
        return np.concatenate([ct, np.einsum("sab,sb->sa", result.basis, cq)], axis=1)

    def prior_precision(self, flux, ivar) -> np.ndarray:
        """Diagonal prior precision of the coefficients, ``[ns, p]``.

        Zero (flat) for the templates that cover every pixel at every redshift of the grid and
        for the polynomials. An emission-line template's peak has standard deviation
        ``line_prior_scale`` times the spectrum's inverse-variance-weighted rms flux; a
        continuum template that covers only part of the pixels somewhere on the grid (it is
        zero outside its range) has an amplitude whose rms over the template's range has
        standard deviation ``template_prior_scale`` times that rms flux.
        """
        prec = np.zeros((flux.shape[0], self.p))
        lines = np.flatnonzero(self.templates.is_line)
        partial = np.flatnonzero(self.partial)
        if lines.size == 0 and partial.size == 0:
            return prec
        sw = ivar.sum(axis=1)
        rms = np.sqrt(np.einsum("sk,sk,sk->s", ivar, flux, flux) / np.where(sw > 0, sw, 1.0))
        rms = np.where(rms > 0, rms, 1.0)
        tflux = self.templates.flux
        if lines.size:
            peak = np.nanmax(np.abs(tflux[lines]), axis=1)
            prec[:, lines] = (peak[None, :] / (self.line_prior_scale * rms[:, None])) ** 2
        if partial.size:
            trms = np.sqrt(np.nanmean(tflux[partial] ** 2, axis=1))
            prec[:, partial] = (trms[None, :] / (self.template_prior_scale * rms[:, None])) ** 2
        return prec

    def design_matrix(self, m: int) -> np.ndarray:
        """The design matrix ``A`` [nwave_used, p] at redshift index ``m`` (of the full grid)."""
        idx = self.j - m + self.t_off
        cols = (1 - self.frac) * self._t0[:, idx] + self.frac * self._t0[:, idx + 1]
        return np.concatenate([cols, self.poly], axis=0).T

    def column_sums(self, m, good) -> np.ndarray:
        """Sum of each column of ``A`` over the pixels ``good`` [ns, nk], at redshift indices
        ``m`` [ns] (of the full grid, inside the valid range); returns ``[ns, p]``.

        The pixels are scattered onto the template grid by the adjoint of the interpolation,
        as in :meth:`evaluate`, and each template's window at ``m`` is summed against them."""
        g = good.astype(float)
        scattered = (self.scatter_lin.T @ g.T).T  # [ns, ng], template index jlo - m + column
        tpl = np.empty((len(m), self.nt))
        for s, start in enumerate(self.jlo - np.asarray(m) + self.t_off):
            tpl[s] = self._t0[:, start : start + self.ng] @ scattered[s]
        return np.concatenate([tpl, g @ self.poly.T], axis=1)
