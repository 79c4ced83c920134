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
resampling of the data (the data keep their own linear wavelength grid). Polynomial-polynomial
terms do not depend on :math:`z`. The resulting :math:`9\times 9` systems are solved in a batch.

Redshifts at which any template does not cover every observed pixel in use are excluded (their
probability is zero and they are reported in ``valid_z``): templates are never extrapolated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.sparse as sp
from numpy.polynomial import legendre

from ..errors import InputError
from ..templates import Templates
from .linalg import cholesky_logdet_quadratic

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

    ``tt``, ``tl`` are the redshift-dependent sums of the normal equations in *lag* order
    (reversed redshift order); :meth:`Design.normal_equations` assembles ``M`` and ``b`` from
    them at chosen redshifts.
    """

    loglike: np.ndarray  # [ns, nzv]  log p(d|z) up to a per-spectrum constant
    chi2: np.ndarray  # [ns, nzv]
    chi2_null: np.ndarray  # [ns] chi-square of the polynomial terms alone (no template)
    tt: np.ndarray  # [ns, npairs, nzv]  template-template entries of M
    tl: np.ndarray  # [ns, 1 + npoly, nt, nzv]  b (row 0) and polynomial-template entries of M
    pp: np.ndarray  # [ns, npoly, npoly]  polynomial-polynomial entries of M (z-independent)
    vp: np.ndarray  # [ns, npoly]  polynomial entries of b (z-independent)
    prec: np.ndarray  # [ns, p]  diagonal prior precision of the coefficients


def _entries(tt, tl, pp, vp, prec, pairs, nt, npoly):
    """Lower triangle of ``M`` and ``b`` as lists of arrays broadcastable to ``[ns, nz]``."""
    p = nt + npoly
    mat = [[None] * (i + 1) for i in range(p)]
    for q, (i, k) in enumerate(pairs):
        mat[i][k] = tt[:, q] + (prec[:, i, None] if i == k else 0.0)
    for a in range(npoly):
        for i in range(nt):
            mat[nt + a][i] = tl[:, 1 + a, i]
        for b in range(a + 1):
            mat[nt + a][nt + b] = pp[:, a, b, None]
    vec = [tl[:, 0, i] for i in range(nt)] + [vp[:, a, None] for a in range(npoly)]
    return mat, vec


def _marginal(tt, tl, pp, vp, prec, dwd, pairs, nt, npoly):
    """Marginal likelihood and chi-square at every lag (reversed: in redshift order) and the
    chi-square of the polynomial terms alone, for one spectrum (``tt``, ``tl`` with a leading
    axis of length 1; redshift-independent entries stay scalars)."""
    mat, vec = _entries(tt, tl, pp, vp, prec, pairs, nt, npoly)
    logdet, quad, _ = cholesky_logdet_quadratic(mat, vec)
    null = dwd[0]
    if npoly:
        pmat = [row[nt:] for row in mat[nt:]]
        null = null - cholesky_logdet_quadratic(pmat, vec[nt:])[1].item()
    return 0.5 * (quad - logdet)[0, ::-1], (dwd - quad)[0, ::-1], null


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
    """

    def __init__(
        self, wave, used, templates: Templates, z_grid, npoly: int = 3, line_prior_scale=10.0
    ):
        if not line_prior_scale > 0:
            raise InputError(f"line_prior_scale must be positive, got {line_prior_scale}")
        self.line_prior_scale = float(line_prior_scale)
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
        lo, hi = coverage[:, 0].max(), coverage[:, 1].min()
        nz = self.z_grid.size
        m_a = max(0, int(j.max()) + 1 - int(hi))
        m_b = min(nz - 1, int(j.min()) - int(lo))
        if m_b < m_a:
            trange = self.templates.rest_range()
            raise InputError(
                f"redshift: no redshift of the grid [{self.z_grid[0]:.4g}, {self.z_grid[-1]:.4g}] "
                f"lets every template (common rest range {trange[0]:.1f}-{trange[1]:.1f} A) cover "
                f"the observed {self.wave[0]:.1f}-{self.wave[-1]:.1f} A; narrow the wavelength "
                "range or the redshift grid"
            )
        self.m_a, self.m_b = m_a, m_b
        self.valid_z = np.zeros(nz, dtype=bool)
        self.valid_z[m_a : m_b + 1] = True
        self.nzv = m_b - m_a + 1
        self.jlo = int(j.min())

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
        self._t0 = np.concatenate([flux, np.zeros((flux.shape[0], 1))], axis=1)
        start = self.jlo - self.m_b
        length = self.ng + self.nzv - 1
        self.nfft = scipy.fft.next_fast_len(length, real=True)
        idx = start + np.arange(length + 1)
        t = np.zeros((self.nt, length + 1))
        inside = (idx >= 0) & (idx < flux.shape[1])
        t[:, inside] = flux[:, idx[inside]]
        t0, t1 = t[:, :-1], t[:, 1:]
        self.pairs = [(i, k) for i in range(self.nt) for k in range(i + 1)]
        prod = np.array([t0[i] * t0[k] for i, k in self.pairs])
        cross = np.array([t0[i] * t1[k] + t1[i] * t0[k] for i, k in self.pairs])
        rfft = scipy.fft.rfft
        self.f_prod = rfft(prod, self.nfft, axis=-1)
        self.f_cross = rfft(cross, self.nfft, axis=-1)
        self.f_tpl = rfft(t0, self.nfft, axis=-1)

    def evaluate(self, flux, ivar) -> ChunkResult:
        """Evaluate the normal equations and the marginal likelihood for a chunk of spectra.

        Parameters
        ----------
        flux, ivar : numpy.ndarray, shape (ns, nwave_used)
            Fluxes and inverse variances on the used channels (``ivar = 0`` where masked).
        """
        ns = flux.shape[0]
        wd = ivar * flux
        lin = np.concatenate([wd[:, None, :], ivar[:, None, :] * self.poly[None]], axis=1)
        lin_s = (self.scatter_lin.T @ lin.reshape(-1, lin.shape[-1]).T).T
        sq_s = (self.scatter_sq.T @ ivar.T).T
        cr_s = (self.scatter_cross.T @ ivar.T).T
        pp = np.einsum("sk,ak,bk->sab", ivar, self.poly, self.poly)
        vp = wd @ self.poly.T
        prec = self.prior_precision(flux, ivar)
        dwd = np.einsum("sk,sk->s", wd, flux)
        rfft, nfft = scipy.fft.rfft, self.nfft
        f_lin = np.conj(rfft(lin_s.reshape(ns, -1, self.ng), nfft, axis=-1, workers=-1))
        f_sq = np.conj(rfft(sq_s, nfft, axis=-1, workers=-1))
        f_cr = np.conj(rfft(cr_s, nfft, axis=-1, workers=-1))
        npairs, nt, nf = len(self.pairs), self.nt, self.f_tpl.shape[-1]
        # One spectrum at a time: products, inverse FFTs and solves on cache-sized arrays.
        buf = np.empty((npairs + f_lin.shape[1] * nt, nf), complex)
        tmp = np.empty((npairs, nf), complex)
        corr = np.empty((ns, buf.shape[0], self.nzv))
        loglike, chi2, null = np.empty((ns, self.nzv)), np.empty((ns, self.nzv)), np.empty(ns)
        for s in range(ns):
            np.multiply(self.f_prod, f_sq[s], out=buf[:npairs])
            buf[:npairs] += np.multiply(self.f_cross, f_cr[s], out=tmp)
            lin = buf[npairs:].reshape(-1, nt, nf)
            np.multiply(f_lin[s][:, None, :], self.f_tpl[None], out=lin)
            corr[s] = scipy.fft.irfft(buf, nfft, axis=-1, workers=-1)[:, : self.nzv]
            tt, tl = corr[s : s + 1, :npairs], corr[s : s + 1, npairs:].reshape(1, -1, nt, self.nzv)
            one = slice(s, s + 1)
            loglike[s], chi2[s], null[s] = _marginal(
                tt, tl, pp[one], vp[one], prec[one], dwd[one], self.pairs, nt, self.npoly
            )
        tt, tl = corr[:, :npairs], corr[:, npairs:].reshape(ns, -1, nt, self.nzv)
        return ChunkResult(loglike, chi2, null, tt, tl, pp, vp, prec)

    def normal_equations(self, result: ChunkResult, m) -> tuple[np.ndarray, np.ndarray]:
        """``M`` [ns, p, p] (symmetric) and ``b`` [ns, p] of each spectrum of a chunk at the
        valid-grid redshift index ``m`` [ns] (``0 .. nzv - 1``)."""
        s, lag = np.arange(len(m)), self.nzv - 1 - np.asarray(m)
        tt, tl = result.tt[s, :, lag], result.tl[s, :, :, lag]
        ent, vec = _entries(
            tt[..., None],
            tl[..., None],
            result.pp,
            result.vp,
            result.prec,
            self.pairs,
            self.nt,
            self.npoly,
        )
        mat = np.zeros((len(m), self.p, self.p))
        for i, row in enumerate(ent):
            for k, e in enumerate(row):
                mat[:, i, k] = mat[:, k, i] = np.broadcast_to(e, (len(m), 1))[:, 0]
        return mat, np.stack([np.broadcast_to(v, (len(m), 1))[:, 0] for v in vec], axis=1)

    def prior_precision(self, flux, ivar) -> np.ndarray:
        """Diagonal prior precision of the coefficients, ``[ns, p]``: zero (flat) except for
        emission-line templates, whose peak has standard deviation ``line_prior_scale`` times
        the spectrum's inverse-variance-weighted rms flux."""
        prec = np.zeros((flux.shape[0], self.p))
        lines = np.flatnonzero(self.templates.is_line)
        if lines.size == 0:
            return prec
        sw = ivar.sum(axis=1)
        rms = np.sqrt(np.einsum("sk,sk,sk->s", ivar, flux, flux) / np.where(sw > 0, sw, 1.0))
        rms = np.where(rms > 0, rms, 1.0)
        peak = np.nanmax(np.abs(self.templates.flux[lines]), axis=1)
        prec[:, lines] = (peak[None, :] / (self.line_prior_scale * rms[:, None])) ** 2
        return prec

    def design_matrix(self, m: int) -> np.ndarray:
        """The design matrix ``A`` [nwave_used, p] at redshift index ``m`` (of the full grid)."""
        idx = self.j - m
        cols = (1 - self.frac) * self._t0[:, idx] + self.frac * self._t0[:, idx + 1]
        return np.concatenate([cols, self.poly], axis=0).T

    def column_sums(self, m, good) -> np.ndarray:
        """Sum of each column of ``A`` over the pixels ``good`` [ns, nk], at redshift indices
        ``m`` [ns] (of the full grid); returns ``[ns, p]``."""
        idx = self.j[None, :] - np.asarray(m)[:, None]  # [ns, nk]
        g = good.astype(float)
        tpl = np.einsum("isk,sk->si", self._t0[:, idx], g * (1 - self.frac))
        tpl += np.einsum("isk,sk->si", self._t0[:, idx + 1], g * self.frac)
        return np.concatenate([tpl, g @ self.poly.T], axis=1)
