"""Factorisations of a fixed correlation matrix, evaluated in JAX.

The likelihoods of :mod:`bayesifu.likelihood` need, at every step of a sampler, the quadratic form
and the log-determinant of a covariance whose *correlation* part does not depend on the parameters.
This module factors that part once (in numpy/scipy) and exposes pure-JAX evaluation functions that
close over the factor as a constant, so that they are jit-able and differentiable.

Three factorisations, with one interface: ``whiten(r, scale, scatter)`` (the whitened residual),
``colour`` (its inverse, which turns standard normal draws into noise), ``chi2``, ``logdet``,
``precision`` (``C^{-1} r``), ``precision_diagonal`` and ``back`` (whitened values in the data
order), for the covariance with error-scale factor ``s`` and intrinsic scatter
``tau``; ``scatter_model`` says how that scatter enters (correlated like the noise for the diagonal
and banded factors, white on the range space for the eigen factor). ``n``, ``rank``,
``logdet_correlation``, ``factor_bytes`` and ``method`` describe the factor.

* :class:`DiagonalFactor` -- independent values (identity correlation).
* :class:`BandedFactor` -- a positive-definite sparse correlation ``R`` of local support. Spaxels
  are reordered to a small bandwidth ``b`` (row- or column-major on the grid, or reverse
  Cuthill-McKee, whichever is smallest) and ``R = L L^T`` is computed once with LAPACK ``pbtrf``
  (:func:`scipy.linalg.cholesky_banded`; never a dense ``N x N``). Two solvers:

  - ``"lapack"`` (default on CPU): ``L^{-1} z`` and ``L^{-T} w`` call BLAS ``dtbsv`` (LAPACK
    ``dtbtrs`` for several right-hand sides) on the band (``8 N (b+1)`` bytes, read in place)
    from a host callback primitive with custom VJPs (the adjoint of ``L^{-1}`` is ``L^{-T}``);
    the quadratic form ``z^T R^{-1} z`` costs one pass over the band for a value and one host
    call of two passes for value and gradient ``2 R^{-1} z``. The primitive lowers straight to
    XLA's host callback, which hands the callback numpy views (about 0.04 ms per call, against
    about 0.3 ms for :func:`jax.pure_callback`, which first copies its arguments with
    ``device_put``).
  - ``"scan"`` (pure JAX, any device and autodiff mode): ``L`` is cut into a block
    lower-bidiagonal matrix with square blocks of size ``m >= b``,

    .. math::

       L = \\begin{pmatrix} L_{11} & & \\\\ B_2 & L_{22} & \\\\ & B_3 & L_{33} \\\\ & & \\ddots
       \\end{pmatrix}, \\qquad w_k = A_k (z_k - B_k w_{k-1}), \\quad A_k = L_{kk}^{-1},

    and ``w = L^{-1} z`` is a :func:`jax.lax.scan` over block rows (two dense ``m x m``
    matrix-vector products per step, ``A_k`` and ``B_k`` precomputed, ``16 N m`` bytes);
    reverse-mode differentiation of the scan gives the transposed solve.

* :class:`EigenFactor` -- dense, for rank-deficient (or indefinite-at-round-off) matrices of up to
  a few thousand spaxels: ``C_0 = D R D = Q diag(mu) Q^T`` restricted to the ``r`` eigenvalues of
  ``R`` above ``rank_tol * max``; see :mod:`bayesifu.likelihood.normal` for the density.

All arrays are float64; constructing a factor raises :class:`~bayesifu.errors.BayesifuError` if JAX
64-bit mode is off.

References
----------
Golub, G. H. & Van Loan, C. F. (2013), *Matrix Computations*, 4th ed., sections 4.3 (band Cholesky)
and 8.1 (symmetric eigenproblem). Takahashi, K., Fagan, J. & Chin, M.-S. (1973), *Formation of a
sparse bus impedance matrix and its application to short circuit study* (selected inverse). Higham,
N. J. (1988), *Computing a nearest symmetric positive semidefinite matrix*, Linear Algebra Appl.
103, 103, doi:10.1016/0024-3795(88)90223-6.
"""

from __future__ import annotations

import warnings

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from jax.interpreters import batching, mlir
from scipy.sparse.csgraph import reverse_cuthill_mckee

from ..errors import BayesifuError, CovarianceError

__all__ = [
    "CovarianceRepairWarning",
    "DiagonalFactor",
    "BandedFactor",
    "EigenFactor",
    "require_x64",
    "bandwidth_order",
]


class CovarianceRepairWarning(UserWarning):
    """A correlation matrix was repaired (negative eigenvalues clipped) before use."""


def require_x64() -> None:
    """Raise :class:`~bayesifu.errors.BayesifuError` unless JAX 64-bit mode is enabled."""
    if not jax.config.read("jax_enable_x64"):
        raise BayesifuError(
            "bayesifu likelihoods need float64: enable JAX 64-bit mode first, e.g. "
            "numpyro.enable_x64() or jax.config.update('jax_enable_x64', True)"
        )


def _bandwidth(matrix: sp.csr_array, perm: np.ndarray) -> int:
    """Lower bandwidth of ``matrix[perm][:, perm]``."""
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size)
    coo = matrix.tocoo()
    if coo.nnz == 0:
        return 0
    return int(np.abs(inv[coo.row] - inv[coo.col]).max())


def bandwidth_order(matrix, grid_index=None, shape=None) -> tuple[np.ndarray, int]:
    """An ordering of the rows of a sparse symmetric matrix with a small bandwidth.

    Candidates: the given order (row-major on the grid), column-major on the grid (when ``shape``
    and ``grid_index`` are given), and reverse Cuthill-McKee; the one with the smallest bandwidth
    wins.

    Returns
    -------
    perm : ndarray of int, shape (n,)
        New position ``i`` holds old row ``perm[i]``.
    bandwidth : int
    """
    matrix = sp.csr_array(matrix)
    n = matrix.shape[0]
    cands = [np.arange(n)]
    if grid_index is not None and shape is not None:
        y, x = np.divmod(np.asarray(grid_index), shape[1])
        cands.append(np.lexsort((y, x)))
    cands.append(np.asarray(reverse_cuthill_mckee(matrix, symmetric_mode=True), dtype=np.intp))
    widths = [_bandwidth(matrix, p) for p in cands]
    best = int(np.argmin(widths))
    return cands[best], widths[best]


def _per_value(d, x):
    """``d`` (n,) shaped to divide ``x`` of shape (n,) or (n, k)."""
    return d if jnp.ndim(x) == 1 else d[:, None]


class _ScaledFactor:
    """Methods shared by the factors of ``R`` whose covariance is :math:`D_s R D_s` with
    :math:`d_i = \\sqrt{s^2\\sigma_i^2 + \\tau^2}`: the intrinsic scatter is correlated like the
    noise. Subclasses provide ``solve_l``, ``solve_lt``, ``quad``, ``inverse_diagonal``,
    ``logdet_correlation`` and ``_sigma``."""

    scatter_model = "correlated like the noise"

    def _d(self, scale, scatter):
        return jnp.sqrt(scale**2 * self._sigma**2 + scatter**2)

    def whiten(self, residual, scale=1.0, scatter=0.0):
        """Whitened residual ``L^{-1} D_s^{-1} r`` (in the factor's order), (rank,) or (rank, k)."""
        return self.solve_l(residual / _per_value(self._d(scale, scatter), residual))

    def chi2(self, residual, scale=1.0, scatter=0.0):
        """``r^T C^{-1} r`` (per column)."""
        return self.quad(residual / _per_value(self._d(scale, scatter), residual))

    def logdet(self, scale=1.0, scatter=0.0):
        """``log det C`` for ``C = D_s R D_s``."""
        return self.logdet_correlation + 2.0 * jnp.sum(jnp.log(self._d(scale, scatter)))

    def precision(self, residual, scale=1.0, scatter=0.0):
        """``C^{-1} r`` in the data order."""
        d = _per_value(self._d(scale, scatter), residual)
        return self.solve_lt(self.solve_l(residual / d)) / d

    def precision_diagonal(self, scale=1.0, scatter=0.0):
        """Diagonal of ``C^{-1}``, shape (n,)."""
        return jnp.asarray(self.inverse_diagonal()) / self._d(scale, scatter) ** 2

    def colour(self, w, scale=1.0, scatter=0.0):
        """``D_s P^T L w`` in the data order, the inverse of :meth:`whiten`: standard normal
        ``w`` (n,) or (n, k) become draws with covariance ``D_s R D_s``."""
        return _per_value(self._d(scale, scatter), w) * self.back(self.mul_l(w))


class DiagonalFactor(_ScaledFactor):
    """The identity correlation (independent values) with standard deviations ``sigma``."""

    method = "diagonal"

    def __init__(self, n: int, sigma=None):
        self.n = int(n)
        self.rank = self.n
        self.logdet_correlation = 0.0
        self.factor_bytes = 0
        self._sigma = jnp.ones(self.n) if sigma is None else jnp.asarray(sigma, dtype=float)

    def solve_l(self, z):
        """``L^{-1} z`` for ``L = I`` (z of shape (n,) or (n, k))."""
        return z

    def solve_lt(self, w):
        """``L^{-T} w`` for ``L = I``."""
        return w

    def quad(self, z):
        """``z^T z`` (per column)."""
        return jnp.sum(z**2, axis=0)

    def mul_l(self, w):
        """``L w`` for ``L = I``."""
        return w

    def inverse_diagonal(self) -> np.ndarray:
        """``diag(R^{-1})``."""
        return np.ones(self.n)

    def back(self, w):
        """Whitened values in the data order (the identity here)."""
        return w


class BandedFactor(_ScaledFactor):
    """Banded Cholesky factor of a sparse positive-definite correlation, in block-bidiagonal form.

    Parameters
    ----------
    matrix : scipy.sparse matrix, shape (n, n)
        Symmetric positive-definite correlation (nugget already added).
    grid_index, shape : optional
        Flat grid indices of the rows and the grid shape, to try a column-major ordering.
    block : int, optional
        Minimum block size (the block size is ``max(bandwidth, block)``).
    kappa_max : float
        Largest acceptable condition number; a larger estimate raises
        :class:`~bayesifu.errors.CovarianceError` (the matrix is numerically singular).
    sigma : array_like, shape (n,), optional
        Standard deviations of the values (default ones): the covariance is ``D_s R D_s``.
    solver : {"lapack", "scan"}
        ``"lapack"`` (default): the triangular solves call BLAS ``dtbsv`` on the band from a
        host callback with a custom VJP (the adjoint of ``L^{-1}`` is ``L^{-T}``);
        ``8 N (b+1)`` bytes of factor, reverse-mode differentiable (not forward-mode), CPU only.
        ``"scan"``: pure JAX block-bidiagonal scan (any device, any autodiff mode; ``16 N m``
        bytes of factor; slower on CPU, see benchmarks/results/likelihood.md).

    Raises
    ------
    CovarianceError
        If the matrix is not positive-definite or its condition number exceeds ``kappa_max``.
    """

    method = "banded"

    def __init__(
        self,
        matrix,
        grid_index=None,
        shape=None,
        block=32,
        kappa_max=1e10,
        solver="lapack",
        sigma=None,
    ):
        require_x64()
        matrix = sp.csr_array(matrix)
        self.n = n = matrix.shape[0]
        self._sigma = jnp.ones(n) if sigma is None else jnp.asarray(sigma, dtype=float)
        self.perm, self.bandwidth = bandwidth_order(matrix, grid_index, shape)
        permuted = matrix[self.perm][:, self.perm].tocoo()
        b = self.bandwidth
        lower = permuted.row >= permuted.col
        ab = np.zeros((b + 1, n))
        ab[(permuted.row - permuted.col)[lower], permuted.col[lower]] = permuted.data[lower]
        try:
            cb = sla.cholesky_banded(ab, lower=True, check_finite=False)
        except np.linalg.LinAlgError as exc:
            raise CovarianceError(
                f"correlation matrix ({n} spaxels) is not positive-definite: banded Cholesky "
                f"failed ({exc}); use method='eigen' (reduced rank) or a nugget"
            ) from None
        self.rank = n
        self.logdet_correlation = float(2.0 * np.log(cb[0]).sum())
        lam_max = float(np.abs(matrix).sum(axis=1).max())
        lam_min = _smallest_eigenvalue(cb)
        self.condition = lam_max / lam_min
        if not self.condition < kappa_max:
            raise CovarianceError(
                f"correlation matrix ({n} spaxels) is numerically singular: condition number "
                f"about {self.condition:.3g} > {kappa_max:.3g}; use method='eigen' (reduced rank) "
                "or a nugget (nugget='auto')"
            )
        if solver not in ("lapack", "scan"):
            raise ValueError(f"solver must be 'lapack' or 'scan', got {solver!r}")
        self.solver = solver
        self.block = m = max(b, int(block), 1)
        self.n_blocks = nb = -(-n // m)
        self._cb = np.asfortranarray(cb)
        self._inv_diag = None
        self._blocks = None
        self._perm = jnp.asarray(self.perm)
        iperm = np.empty_like(self.perm)
        iperm[self.perm] = np.arange(n)
        self._iperm = jnp.asarray(iperm)
        if solver == "lapack":
            self.factor_bytes = int(cb.size * 8)
            self.solve_l, self.solve_lt, self.quad = _lapack_solvers(self._cb, self.perm)
        else:
            self._a, self._b = (jnp.asarray(x) for x in self._block_arrays())
            self.factor_bytes = int(2 * nb * m * m * 8)
            self.solve_l, self.solve_lt = self._scan_solve_l, self._scan_solve_lt
            self.quad = self._scan_quad

    def _block_arrays(self):
        """The inverse diagonal blocks ``A_k`` and sub-diagonal blocks ``B_k`` (numpy, cached)."""
        if self._blocks is None:
            diag, sub = _to_blocks(self._cb, self.block, self.n_blocks)
            eye = np.eye(self.block)
            for k in range(self.n_blocks):
                diag[k] = sla.solve_triangular(diag[k], eye, lower=True, check_finite=False)
            self._blocks = diag, sub
        return self._blocks

    def _pad_blocks(self, z):
        """Permute and pad ``z`` (n, ...) into block rows (nb, m, ...)."""
        zp = z[self._perm]
        pad = self.n_blocks * self.block - self.n
        zp = jnp.concatenate([zp, jnp.zeros((pad,) + zp.shape[1:], zp.dtype)])
        return zp.reshape((self.n_blocks, self.block) + zp.shape[1:])

    def _scan_solve_l(self, z):
        """``w = L^{-1} P z`` in the permuted order (shape of ``z``); ``|w|^2 = z^T R^{-1} z``."""
        zb = self._pad_blocks(z)

        def step(w_prev, xs):
            a, bm, zk = xs
            w = a @ (zk - bm @ w_prev)
            return w, w

        _, w = jax.lax.scan(step, jnp.zeros_like(zb[0]), (self._a, self._b, zb))
        return w.reshape((-1,) + z.shape[1:])[: self.n]

    def _scan_quad(self, z):
        """``z^T R^{-1} z`` (per column of ``z``)."""
        return jnp.sum(self._scan_solve_l(z) ** 2, axis=0)

    def _scan_solve_lt(self, w):
        """``u = P^T L^{-T} w`` back in the original order."""
        pad = self.n_blocks * self.block - self.n
        wb = jnp.concatenate([w, jnp.zeros((pad,) + w.shape[1:], w.dtype)])
        wb = wb.reshape((self.n_blocks, self.block) + w.shape[1:])
        b_next = jnp.concatenate([self._b[1:], jnp.zeros_like(self._b[:1])])

        def step(u_next, xs):
            a, bn, wk = xs
            u = a.T @ (wk - bn.T @ u_next)
            return u, u

        _, u = jax.lax.scan(step, jnp.zeros_like(wb[0]), (self._a, b_next, wb), reverse=True)
        return u.reshape((-1,) + w.shape[1:])[: self.n][self._iperm]

    def back(self, w):
        """Whitened values (factor order) put back in the data order."""
        return jnp.zeros_like(w).at[self._perm].set(w)

    def mul_l(self, w):
        """``L w`` in the factor's order, ``w`` (n,) or (n, k), pure JAX: a loop over the
        ``b + 1`` diagonals of the band, diagonal ``k`` adding ``L[j+k, j] w[j]`` to row
        ``j + k`` (``O(n)`` memory beyond the band)."""
        b, n = self.bandwidth, self.n
        cb = jnp.asarray(self._cb)
        pad = jnp.zeros((b,) + jnp.shape(w)[1:])

        def add_diagonal(k, out):
            term = _per_value(cb[k], w) * w  # term[j] = L[j+k, j] w[j], belongs to row j + k
            return out + jax.lax.dynamic_slice_in_dim(jnp.concatenate([pad, term]), b - k, n)

        return jax.lax.fori_loop(0, b + 1, add_diagonal, jnp.zeros_like(w))

    def inverse_diagonal(self) -> np.ndarray:
        """``diag(R^{-1})`` in the original order, by the block Takahashi recursion.

        Cost ``O(N m^2)`` once (cached): :math:`Z_{NN} = A_N^T A_N`,
        :math:`Z_{k+1,k} = -Z_{k+1,k+1} B_{k+1} A_k`,
        :math:`Z_{kk} = A_k^T A_k - A_k^T B_{k+1}^T Z_{k+1,k}`.
        """
        if self._inv_diag is None:
            a, b = self._block_arrays()
            nb = self.n_blocks
            out = np.empty((nb, self.block))
            z = a[-1].T @ a[-1]
            out[-1] = np.diag(z)
            for k in range(nb - 2, -1, -1):
                zsub = -z @ b[k + 1] @ a[k]
                z = a[k].T @ a[k] - a[k].T @ b[k + 1].T @ zsub
                out[k] = np.diag(z)
            diag = out.ravel()[: self.n]
            self._inv_diag = np.empty(self.n)
            self._inv_diag[self.perm] = diag
        return self._inv_diag


class _HostBandSolver:
    """Band triangular solves on the host (numpy/LAPACK), called from XLA by :data:`_band_solve_p`.

    ``op``: ``"N"`` gives ``L^{-1} P z``, ``"T"`` gives ``P^T L^{-T} w`` and ``"R"`` gives
    ``P^T R^{-1} P z`` (both passes in one call). Arrays have a core of ``core_ndim`` axes, ``(n,)``
    or ``(n, k)``, after any leading batch axes. Hashed by identity (a primitive parameter).
    """

    def __init__(self, cb: np.ndarray, perm: np.ndarray):
        self.cb = np.asfortranarray(cb, dtype=np.float64)
        self.k = cb.shape[0] - 1
        self.n = cb.shape[1]
        self.perm = np.asarray(perm, dtype=np.intp)
        self.iperm = np.empty_like(self.perm)
        self.iperm[self.perm] = np.arange(self.n)

    def _vector(self, x, op):
        """The three operations on one right-hand side (two BLAS ``dtbsv`` calls at most)."""
        if op != "T":
            x = _dtbsv(self.k, self.cb, x[self.perm], lower=1, overwrite_x=1)
            if op == "N":
                return x
        x = _dtbsv(self.k, self.cb, x, lower=1, trans=1, overwrite_x=1)
        return x[self.iperm]

    def __call__(self, x, op, core_ndim):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            return self._vector(x, op)
        core = x.shape[x.ndim - core_ndim :]
        stacked = x.reshape((-1,) + core)
        cols = np.moveaxis(stacked, 1, 0).reshape(self.n, -1)
        if op == "N":
            out, _ = sla.lapack.dtbtrs(self.cb, cols[self.perm], uplo="L", trans="N")
        elif op == "T":
            out, _ = sla.lapack.dtbtrs(self.cb, cols, uplo="L", trans="T")
        else:
            out, _ = sla.lapack.dpbtrs(self.cb, cols[self.perm], lower=1)
        if op != "N":
            out = out[self.iperm]
        out = np.moveaxis(out.reshape((self.n, stacked.shape[0]) + core[1:]), 1, 0)
        return out.reshape(x.shape)


_dtbsv = sla.blas.get_blas_funcs("tbsv", dtype=np.float64)
_band_solve_p = jax.extend.core.Primitive("bayesifu_band_solve")
_band_solve_p.def_impl(lambda x, *, solver, op, core_ndim: jnp.asarray(solver(x, op, core_ndim)))
_band_solve_p.def_abstract_eval(lambda x, **_: jax.core.ShapedArray(x.shape, x.dtype))


def _band_solve_lowering(ctx, x, *, solver, op, core_ndim):
    """Lower to XLA's host callback: the solver gets numpy arrays (no ``device_put`` per call,
    unlike :func:`jax.pure_callback`, which costs about 0.25 ms more per call on CPU)."""
    result, _, _ = mlir.emit_python_callback(
        ctx,
        lambda v: (solver(v, op, core_ndim),),
        None,
        [x],
        ctx.avals_in,
        ctx.avals_out,
        has_side_effect=False,
        returns_token=False,
    )
    return result


def _band_solve_batch(args, dims, **params):
    """vmap: the host solver handles leading batch axes."""
    (x,), (d,) = args, dims
    return _band_solve_p.bind(jnp.moveaxis(x, d, 0), **params), 0


mlir.register_lowering(_band_solve_p, _band_solve_lowering, cacheable=False)
batching.primitive_batchers[_band_solve_p] = _band_solve_batch


def _lapack_solvers(cb: np.ndarray, perm: np.ndarray):
    """JAX functions ``z -> L^{-1} P z`` and ``w -> P^T L^{-T} w`` calling BLAS/LAPACK band solves.

    They accept ``(n,)`` or ``(n, k)`` arrays (and leading batch axes under :func:`jax.vmap`).
    The third, ``quad(z) = z^T R^{-1} z`` (per column), evaluates one pass over the band for a
    value and, under reverse-mode differentiation, ``u = R^{-1} z`` in one host call (two
    passes) whose gradient is ``2 u``.
    """
    solver = _HostBandSolver(cb, perm)

    def _call(x, op):
        x = jnp.asarray(x, dtype=jnp.float64)
        return _band_solve_p.bind(x, solver=solver, op=op, core_ndim=x.ndim)

    @jax.custom_vjp
    def solve_l(z):
        return _call(z, "N")

    @jax.custom_vjp
    def solve_lt(w):
        return _call(w, "T")

    @jax.custom_vjp
    def solve_r(z):
        return _call(z, "R")

    @jax.custom_vjp
    def quad(z):
        return jnp.sum(solve_l(z) ** 2, axis=0)

    def quad_fwd(z):
        u = solve_r(z)
        return jnp.sum(z * u, axis=0), u

    solve_l.defvjp(lambda z: (solve_l(z), None), lambda _, g: (solve_lt(g),))
    solve_lt.defvjp(lambda w: (solve_lt(w), None), lambda _, g: (solve_l(g),))
    solve_r.defvjp(lambda z: (solve_r(z), None), lambda _, g: (solve_r(g),))
    quad.defvjp(quad_fwd, lambda u, g: (2.0 * u * g,))
    return solve_l, solve_lt, quad


def _to_blocks(cb: np.ndarray, m: int, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut a lower banded factor (LAPACK storage) into diagonal and sub-diagonal m x m blocks.

    Padding rows beyond ``n`` get an identity diagonal.
    """
    nbw, n = cb.shape
    diag = np.zeros((nb, m, m))
    sub = np.zeros((nb, m, m))
    for k in range(nb):
        r0 = k * m
        rows = np.arange(r0, r0 + m)
        for d in range(nbw):
            cols = rows - d
            ok = (cols >= 0) & (rows < n)
            r, c = rows[ok], cols[ok]
            vals = cb[d, c]
            same = c >= r0
            diag[k, r[same] - r0, c[same] - r0] = vals[same]
            sub[k, r[~same] - r0, c[~same] - (r0 - m)] = vals[~same]
        for i in np.flatnonzero(rows >= n):
            diag[k, i, i] = 1.0
    return diag, sub


def _smallest_eigenvalue(cb: np.ndarray, iters: int = 12, seed: int = 0) -> float:
    """Estimate the smallest eigenvalue of ``L L^T`` by inverse iteration with the banded factor."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(cb.shape[1])
    v /= np.linalg.norm(v)
    growth = 1.0
    for _ in range(iters):
        u = sla.cho_solve_banded((cb, True), v, check_finite=False)
        growth = np.linalg.norm(u)
        if not np.isfinite(growth) or growth == 0:
            return 0.0
        v = u / growth
    return 1.0 / growth


class EigenFactor:
    """Dense reduced-rank factor ``C_0 = D R D = Q diag(mu) Q^T`` on the range space of ``R``.

    Parameters
    ----------
    matrix : array_like or scipy.sparse, shape (n, n)
        Symmetric correlation ``R`` (positive semi-definite up to round-off).
    sigma : ndarray, shape (n,)
        Standard deviations ``D = diag(sigma)``.
    rank_tol : float
        Eigenvalues of ``R`` at or below ``rank_tol * max(eigenvalue)`` span the null space.
    neg_tol : float
        Negative eigenvalues below ``-neg_tol * max`` are not round-off: the matrix is repaired to
        the nearest positive semi-definite matrix in the Frobenius norm (Higham 1988; i.e. those
        eigenvalues are set to zero) with a :class:`CovarianceRepairWarning` that reports how many
        and the relative Frobenius change.
    """

    method = "eigen"
    scatter_model = "white, projected on the range space"

    def __init__(self, matrix, sigma, rank_tol=1e-8, neg_tol=1e-10):
        require_x64()
        dense = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix, dtype=float)
        dense = 0.5 * (dense + dense.T)
        sigma = np.asarray(sigma, dtype=float)
        self.n = n = dense.shape[0]
        lam, vec = np.linalg.eigh(dense)
        lam_max = float(lam[-1])
        if not lam_max > 0:
            raise CovarianceError(f"correlation matrix ({n} spaxels) has no positive eigenvalue")
        negative = lam < -neg_tol * lam_max
        self.repair = {"n_negative_clipped": int(negative.sum()), "relative_change": 0.0}
        if negative.any():
            change = float(np.sqrt(np.sum(lam[negative] ** 2) / np.sum(lam**2)))
            self.repair = {"n_negative_clipped": int(negative.sum()), "relative_change": change}
            warnings.warn(
                f"correlation matrix ({n} spaxels) is indefinite: {int(negative.sum())} "
                f"eigenvalue(s) below zero (smallest {lam[0]:.3g}, largest {lam_max:.3g}); "
                "repaired to the nearest positive semi-definite matrix (negative eigenvalues set "
                f"to zero), relative Frobenius change {change:.3g}",
                CovarianceRepairWarning,
                stacklevel=3,
            )
        keep = lam > rank_tol * lam_max
        self.rank = r = int(keep.sum())
        self.rank_tol = float(rank_tol)
        self.min_kept_eigenvalue = float(lam[keep].min())
        u_r, lam_r = vec[:, keep], lam[keep]
        if np.ptp(sigma) <= 1e-12 * sigma.max():
            q, mu = u_r, lam_r * sigma[0] ** 2
        else:
            basis = sigma[:, None] * u_r * np.sqrt(lam_r)
            q, s, _ = np.linalg.svd(basis, full_matrices=False)
            q, mu = q[:, :r], s[:r] ** 2
        self.logdet_correlation = float(np.log(lam_r).sum())
        self.factor_bytes = int(q.size * 8)
        self._qt = jnp.asarray(np.ascontiguousarray(q.T))
        self._mu = jnp.asarray(mu)
        self._q = q

    def project(self, residual):
        """``Q^T residual`` (r,) or (r, k): coordinates in the eigenbasis of ``C_0``."""
        return self._qt @ residual

    def variances(self, scale, scatter):
        """Eigenvalues of ``s^2 C_0 + tau^2 P`` on the range space, shape (r,)."""
        return scale**2 * self._mu + scatter**2

    def back(self, coeff):
        """``Q coeff``: map range-space coordinates back to the spaxels."""
        return self._qt.T @ coeff

    def precision_diagonal(self, scale=1.0, scatter=0.0):
        """Diagonal of the pseudo-inverse ``(s^2 C_0 + tau^2 P)^+``, shape (n,)."""
        return (self._qt**2).T @ (1.0 / self.variances(scale, scatter))

    def whiten(self, residual, scale=1.0, scatter=0.0):
        """``V^{-1/2} Q^T r``: the whitened residual on the range space, (rank,) or (rank, k)."""
        var = self.variances(scale, scatter)
        return self.project(residual) / _per_value(jnp.sqrt(var), residual)

    def chi2(self, residual, scale=1.0, scatter=0.0):
        """``r^T C^+ r`` (per column)."""
        return jnp.sum(self.whiten(residual, scale, scatter) ** 2, axis=0)

    def logdet(self, scale=1.0, scatter=0.0):
        """Pseudo-log-determinant of ``s^2 C_0 + tau^2 P`` (on the range space)."""
        return jnp.sum(jnp.log(self.variances(scale, scatter)))

    def precision(self, residual, scale=1.0, scatter=0.0):
        """``(s^2 C_0 + tau^2 P)^+ r``, shape (n,)."""
        var = self.variances(scale, scatter)
        return self.back(self.project(residual) / _per_value(var, residual))

    def colour(self, w, scale=1.0, scatter=0.0):
        """``Q V^{1/2} w``, the inverse of :meth:`whiten` on the range space: standard normal
        ``w`` (rank,) or (rank, k) become draws with covariance ``s^2 C_0 + tau^2 P``."""
        return self.back(_per_value(jnp.sqrt(self.variances(scale, scatter)), w) * w)

    def eigenbasis(self) -> tuple[np.ndarray, np.ndarray]:
        """``(Q^T, mu)``: the orthonormal range-space basis (rank, n) and the eigenvalues (rank,)
        of ``C_0``, as numpy arrays (to stack the factors of many channels)."""
        return np.asarray(self._qt), np.asarray(self._mu)

    def whitening_matrix(self) -> np.ndarray:
        """The dense ``V^{-1/2} Q^T`` (rank, n) for ``s = 1, tau = 0``."""
        return np.asarray(self._qt) / np.sqrt(np.asarray(self._mu))[:, None]
