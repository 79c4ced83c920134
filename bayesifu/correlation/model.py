"""Spatial correlation between the spaxels of a map or cube channel, stored sparsely.

A :class:`SpatialCorrelation` holds the correlation matrix :math:`\\rho_{jk}` of the spaxels of a
``(ny, nx)`` grid as a symmetric ``scipy.sparse`` matrix over the *whole* grid, flattened in
row-major (numpy) order: spaxel ``(y, x)`` has index ``y * nx + x``. Spaxels for which the
correlation is not defined (outside the footprint of a MaNGA CORREL table, say) have empty rows and
are flagged in :attr:`SpatialCorrelation.defined`. The covariance of a map with variances
:math:`\\sigma^2_j` is :math:`C_{jk} = \\rho_{jk} \\sigma_j \\sigma_k`.

Sources: :meth:`SpatialCorrelation.gaussian` (the Gaussian model of Westfall et al. 2019, AJ 158,
231, positive-definite by construction), :meth:`SpatialCorrelation.from_fits` /
:meth:`SpatialCorrelation.from_table` (MaNGA CORREL tables and astropy ``Covariance`` tables),
:meth:`SpatialCorrelation.measured` (from the noise of a cube that ships none),
:meth:`SpatialCorrelation.propagate` (through a linear operator) and
:meth:`SpatialCorrelation.from_covariance`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import CovarianceError, InputError, ShapeError
from . import fits as _io
from .kernels import RLIM_PER_SIGMA, TAPERS, gaussian_stencil

__all__ = ["SpatialCorrelation", "propagate_covariance"]

_TOL_SYMMETRY = 1e-10
_TOL_DIAGONAL = 1e-8
_TOL_RANGE = 1e-10


def _check_matrix(matrix, defined, source):
    """Raise :class:`CovarianceError` if ``matrix`` is not a valid correlation matrix."""
    if not np.all(np.isfinite(matrix.data)):
        raise CovarianceError(f"{source} correlation matrix has NaN or infinite entries")
    diag = matrix.diagonal()
    on = defined.ravel()
    bad_diag = np.abs(diag[on] - 1) > _TOL_DIAGONAL
    if bad_diag.any():
        raise CovarianceError(
            f"{source} correlation matrix: {int(bad_diag.sum())} defined spaxel(s) have a "
            f"diagonal entry different from 1 (e.g. {diag[on][bad_diag][0]:.6g}); a covariance "
            "matrix must be turned into a correlation first (SpatialCorrelation.from_covariance)"
        )
    if matrix.nnz and np.abs(matrix.data).max() > 1 + _TOL_RANGE:
        raise CovarianceError(
            f"{source} correlation matrix has entries outside [-1, 1] "
            f"(largest |rho| = {np.abs(matrix.data).max():.6g})"
        )
    outside = sp.coo_array(matrix)
    stray = ~(on[outside.coords[0]] & on[outside.coords[1]])
    if stray.any():
        raise CovarianceError(
            f"{source} correlation matrix has {int(stray.sum())} non-zero entries in rows or "
            "columns of spaxels marked as undefined"
        )
    asym = matrix - matrix.T
    if asym.nnz and np.abs(asym.data).max() > _TOL_SYMMETRY:
        raise CovarianceError(
            f"{source} correlation matrix is not symmetric "
            f"(largest |rho_jk - rho_kj| = {np.abs(asym.data).max():.3g})"
        )


class SpatialCorrelation:
    """Sparse spatial correlation matrix over a ``(ny, nx)`` spaxel grid.

    Parameters
    ----------
    shape : tuple of int
        The grid shape ``(ny, nx)``.
    matrix : scipy.sparse matrix or array, shape (ny*nx, ny*nx)
        Symmetric correlation matrix in row-major spaxel order, unit diagonal where defined,
        entries in [-1, 1], empty rows where undefined.
    defined : array_like of bool, shape (ny, nx), optional
        Spaxels where the correlation is defined. Default: those with a non-zero diagonal.
    source : str
        Where the correlation came from (``"gaussian"``, ``"CORREL table"``, ``"measured"``, ...).
    params : dict
        The parameters of the source (``sigma``, ``rlim``, taper, ...), recorded with results.
    check : bool
        Validate the matrix (finite, symmetric, unit diagonal, entries in [-1, 1]); a violation
        raises :class:`~bayesifu.errors.CovarianceError` naming ``source``.
    """

    def __init__(self, shape, matrix, defined=None, source="user", params=None, *, check=True):
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise ShapeError(f"correlation grid shape must be (ny, nx) >= 1, got {shape}")
        n = self.shape[0] * self.shape[1]
        matrix = sp.csr_array(matrix, dtype=float)
        if matrix.shape != (n, n):
            raise ShapeError(
                f"correlation matrix has shape {matrix.shape}, expected {(n, n)} for a "
                f"{self.shape[0]}x{self.shape[1]} grid"
            )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        matrix.sort_indices()
        self.matrix = matrix
        if defined is None:
            defined = (matrix.diagonal() != 0).reshape(self.shape)
        defined = np.asarray(defined, dtype=bool)
        if defined.shape != self.shape:
            raise ShapeError(f"defined has shape {defined.shape}, expected the grid {self.shape}")
        self.defined = defined
        if check:
            _check_matrix(matrix, defined, source)
        self.source = source
        self.params = dict(params or {})

    @property
    def n_grid(self) -> int:
        """The number of spaxels of the grid, ``ny * nx``."""
        return self.shape[0] * self.shape[1]

    def check_footprint(self, good, name: str = "") -> np.ndarray:
        """Check that the spaxels where ``good`` is true lie on this grid's defined footprint.

        Returns ``good`` as a boolean array. Raises :class:`~bayesifu.errors.ShapeError` if
        ``good`` does not match the grid, and :class:`~bayesifu.errors.CovarianceError` if a
        selected spaxel has no defined correlation. ``name`` (the data's name) prefixes messages.
        """
        good = np.asarray(good, dtype=bool)
        where = f"{name}: " if name else ""
        if good.shape != self.shape:
            raise ShapeError(
                f"{where}mask/map shape {good.shape} does not match the correlation grid "
                f"{self.shape}"
            )
        undefined = good & ~self.defined
        if undefined.any():
            raise CovarianceError(
                f"{where}{int(undefined.sum())} spaxel(s) in use have no defined correlation in "
                f"the {self.source} correlation (outside its footprint); mask them"
            )
        return good

    def submatrix(self, good) -> sp.csr_array:
        """The correlation matrix restricted to the spaxels where ``good`` is true.

        Rows and columns are in row-major order of the selected spaxels; the checks of
        :meth:`check_footprint` apply.
        """
        good = self.check_footprint(good)
        idx = np.flatnonzero(good.ravel())
        return self.matrix[idx][:, idx].tocsr()

    # ----------------------------------------------------------------------------- sources
    @classmethod
    def gaussian(cls, shape, sigma=1.92, rlim=None, rho_tol=None, taper="kernel", footprint=None):
        """Gaussian correlation in spaxel separation, positive-definite by construction.

        Westfall et al. (2019, AJ 158, 231, Sect. 6.2) found the MaNGA correlation well described
        by :math:`\\rho(D) = \\exp(-D^2 / 2\\sigma^2)` with :math:`\\sigma = 1.92` spaxels, where
        :math:`D` is the separation [spaxels]; mangadap truncates it at :math:`D \\le R_{\\rm lim}
        = 6.4` spaxels (twice the 1.6 arcsec radius of the resampling kernel, 0.5 arcsec spaxels).
        That hard cut makes the matrix indefinite (smallest eigenvalue -0.025 on the 863 spaxels of
        7815-3702). ``taper`` chooses how the truncation is done:

        ``"kernel"`` (default)
            The correlation of white noise smoothed by a Gaussian kernel of width
            :math:`s = \\sigma/\\sqrt{2}` truncated at radius :math:`R_{\\rm lim}/2` -- which is
            how a cube resampled with a truncated Gaussian kernel (Shepard's method) gets its
            correlation:

            .. math::

                \\rho(\\mathbf{d}) = \\frac{\\int K(\\mathbf{u}) K(\\mathbf{u}+\\mathbf{d})\\,
                d^2u}{\\int K^2\\, d^2u},\\qquad K(\\mathbf{u}) = e^{-|\\mathbf{u}|^2/2s^2}\\,
                [|\\mathbf{u}| \\le R_{\\rm lim}/2].

            Without truncation this is exactly the Gaussian of width :math:`\\sigma`; with it,
            :math:`\\rho` vanishes beyond :math:`R_{\\rm lim}`. It is an autocorrelation, so its
            Fourier transform :math:`|\\hat K|^2 \\ge 0` and every matrix
            :math:`\\rho(\\mathbf{x}_j - \\mathbf{x}_k)` is positive semi-definite (Bochner);
            the integral is a Riemann sum on a sub-spaxel grid that contains the spaxel grid, so
            the discrete matrix is itself a Gram matrix and PSD up to round-off. On the 863
            spaxels of 7815-3702 (sigma 1.92, rlim 6.4) its smallest eigenvalue is +9e-4 and
            the rms difference of its entries within 6.4 spaxels from the real CORREL matrix is
            0.078, against 0.074 for the hard cut and 0.168 for the Wendland taper.
        ``"wendland"``
            The Schur product with the Wendland function :math:`\\phi_{3,1}(r) = (1-r)_+^4
            (4r+1)`, :math:`r = D/R_{\\rm lim}`, positive-definite in up to 3 dimensions, so the
            product with the (positive-definite) Gaussian is positive-definite (Schur product
            theorem; Gneiting 2002, doi:10.1006/jmva.2001.2056; Furrer, Genton & Nychka 2006,
            doi:10.1198/106186006X132178). It is far from the Gaussian when
            :math:`R_{\\rm lim}` is a few :math:`\\sigma` (at :math:`R_{\\rm lim} = 6.4`,
            :math:`\\rho(2)` drops from 0.58 to 0.29).
        ``None``
            The hard cut of mangadap (indefinite; for comparison only).

        Built in :math:`O(Nk)` time and memory from the :math:`k` offsets with
        :math:`D \\le R_{\\rm lim}`; no :math:`N \\times N` intermediate.

        Parameters
        ----------
        shape : tuple of int
            The grid ``(ny, nx)``.
        sigma : float
            Gaussian width [spaxels], > 0.
        rlim : float, optional
            Support radius [spaxels], at least ``sigma``. Default ``10/3 * sigma`` (6.4 for
            ``sigma = 1.92``, the MaNGA value).
        rho_tol : float, optional
            Drop correlations below this (mangadap's ``rho_tol``). This voids the
            positive-definite guarantee (-0.075 with 0.01 and the hard cut); default None.
        taper : {"kernel", "wendland", None}
            How the truncation is made positive-definite, see above.
        footprint : array_like of bool, shape (ny, nx), optional
            Spaxels where the correlation is defined; default all.
        """
        shape = tuple(int(s) for s in shape)
        sigma = float(sigma)
        if not np.isfinite(sigma) or sigma <= 0:
            raise InputError(f"sigma must be a positive finite width in spaxels, got {sigma}")
        rlim = RLIM_PER_SIGMA * sigma if rlim is None else float(rlim)
        if not np.isfinite(rlim) or rlim < sigma:
            raise InputError(
                f"rlim = {rlim} spaxels is too small for sigma = {sigma}: it must be at least "
                "sigma (default 10/3 sigma)"
            )
        if taper not in TAPERS:
            raise InputError(f"taper must be one of {TAPERS}, got {taper!r}")
        if rho_tol is not None and not 0 <= float(rho_tol) < 1:
            raise InputError(f"rho_tol must be in [0, 1), got {rho_tol}")
        if len(shape) != 2 or min(shape) < 1:
            raise ShapeError(f"grid shape must be (ny, nx) >= 1, got {shape}")
        footprint = np.ones(shape, bool) if footprint is None else np.asarray(footprint, bool)
        if footprint.shape != shape:
            raise ShapeError(f"footprint has shape {footprint.shape}, expected the grid {shape}")
        dy, dx, rho = gaussian_stencil(sigma, rlim, taper)
        if rho_tol is not None:
            keep = (rho >= rho_tol) | ((dy == 0) & (dx == 0))
            dy, dx, rho = dy[keep], dx[keep], rho[keep]
        matrix = _stencil_matrix(shape, footprint, dy, dx, rho)
        params = {"sigma": sigma, "rlim": rlim, "rho_tol": rho_tol, "taper": taper}
        return cls(shape, matrix, footprint, source="gaussian", params=params, check=False)

    @classmethod
    def from_table(cls, table, shape=None, source=None):
        """Read a correlation table: MaNGA CORREL layout or astropy ``Covariance`` layout.

        The MaNGA layout (DRP ``GCORREL``..., DAP ``CORREL``) has columns ``INDXI_C1, INDXI_C2,
        INDXJ_C1, INDXJ_C2, RHOIJ`` and the ``COVSHAPE`` key; ``C1`` is the x axis (numpy
        column) and ``C2`` the y axis, so spaxel ``(C1, C2)`` is ``image[C2, C1]``. The astropy
        layout (:meth:`astropy.nddata.Covariance.to_table`) has ``INDXI, INDXJ, COVARIJ`` with
        ``COVSHAPE`` and, for a grid, ``COVDSHP``. Only one triangle need be given; a pair listed
        twice with different values raises :class:`~bayesifu.errors.CovarianceError`.

        Parameters
        ----------
        table : astropy.table.Table
            The table, with its header keywords in ``table.meta``.
        shape : tuple of int, optional
            The grid ``(ny, nx)``; default from ``COVDSHP`` or a square grid from ``COVSHAPE``.
        source : str, optional
            Name used in messages and :attr:`source`.
        """
        shape, i, j, rho, layout = _io.parse_table(table, shape, source or "correlation table")
        source = source or f"{layout} table"
        matrix = _io.symmetric_from_pairs(i, j, rho, shape, source)
        return cls(shape, matrix, source=source, params={"layout": layout})

    @classmethod
    def from_fits(cls, path, ext="CORREL", shape=None):
        """Read a correlation table from extension ``ext`` of a FITS file (see
        :meth:`from_table`)."""
        table = _io.read_fits_table(path, ext)
        return cls.from_table(table, shape=shape, source=f"{path}[{ext}]")

    def to_table(self, layout="correl"):
        """The correlation as a table in the ``"correl"`` (MaNGA) or ``"astropy"`` layout."""
        return _io.to_table(self.matrix, self.shape, layout)

    def write(self, path, ext="CORREL", layout="correl", overwrite=False):
        """Write the correlation table to a FITS file, whole or not at all (see
        :func:`bayesifu.correlation.fits.write_fits`)."""
        _io.write_fits(self.to_table(layout), path, ext, overwrite=overwrite)

    @classmethod
    def measured(cls, data, variance=None, **kwargs):
        """Estimate a Gaussian correlation from the noise of a cube; see
        :func:`bayesifu.correlation.measure.measure_correlation` for the method and arguments.

        The fit (``sigma``, ``sigma_err``, ``scale``, ``scale_err``, box sizes and ratios) is in
        :attr:`params`.
        """
        from .measure import measure_correlation

        fit = measure_correlation(data, variance, **kwargs)
        shape = np.shape(data.flux if hasattr(data, "flux") else data)[-2:]
        corr = cls.gaussian(shape, sigma=fit.sigma, rlim=fit.rlim, taper=fit.taper)
        corr.source = "measured"
        corr.params.update(fit.as_dict())
        return corr

    @classmethod
    def from_covariance(cls, covariance, shape, source="covariance"):
        """Split a covariance matrix into a correlation and a variance map.

        Parameters
        ----------
        covariance : scipy.sparse matrix or astropy.nddata.Covariance, shape (ny*nx, ny*nx)
            Row-major over the grid; spaxels with zero variance are undefined.
        shape : tuple of int
            The grid ``(ny, nx)`` of the covariance.

        Returns
        -------
        correlation : SpatialCorrelation
        variance : numpy.ndarray, shape (ny, nx)
            The diagonal; NaN where the variance is zero (undefined spaxels).
        """
        cov = covariance.to_sparse() if hasattr(covariance, "to_sparse") else covariance
        cov = sp.csr_array(cov, dtype=float)
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or cov.shape != (shape[0] * shape[1],) * 2:
            raise ShapeError(
                f"{source}: covariance of shape {cov.shape} does not fit a grid of shape {shape}"
            )
        var = cov.diagonal()
        if not np.all(np.isfinite(var)) or np.any(var < 0):
            raise CovarianceError(f"{source}: the diagonal has negative or non-finite variances")
        n = cov.shape[0]
        with np.errstate(divide="ignore"):
            inv_sd = np.where(var > 0, 1 / np.sqrt(var), 0.0)
        scale = sp.dia_array((inv_sd[None], [0]), shape=(n, n))
        rho = (scale @ cov @ scale).tocsr()
        rho.setdiag(np.where(var > 0, 1.0, 0.0))
        corr = cls(shape, rho, (var > 0).reshape(shape), source=source)
        variance = np.where(var > 0, var, np.nan).reshape(corr.shape)
        return corr, variance

    # ------------------------------------------------------------------ covariance, propagation
    def covariance(self, variance, mask=None, compress=True):
        """The covariance :math:`C_{jk} = \\rho_{jk}\\sigma_j\\sigma_k` as an astropy
        ``Covariance``.

        Parameters
        ----------
        variance : array_like, shape (ny, nx)
            Per-spaxel variance [unit**2]; finite and positive in the spaxels in use.
        mask : array_like of bool, shape (ny, nx), optional
            ``True`` = do not use. Undefined spaxels are always left out.
        compress : bool
            True: only the spaxels in use, in row-major order (``data_shape`` None);
            False: the whole grid (``data_shape = (ny, nx)``) with empty rows where not in use.
        """
        from astropy.nddata import Covariance

        good = self._good(variance, mask)
        sd = np.sqrt(np.where(good, variance, 0.0)).ravel()
        scale = sp.dia_array((sd[None], [0]), shape=(self.n_grid, self.n_grid))
        cov = (scale @ self.matrix @ scale).tocsr()
        if compress:
            idx = np.flatnonzero(good.ravel())
            return Covariance(array=sp.csr_matrix(cov[idx][:, idx]), assume_symmetric=True)
        return Covariance(array=sp.csr_matrix(cov), data_shape=self.shape, assume_symmetric=True)

    def propagate(self, operator, variance=None, out_shape=None):
        """Propagate through a linear operator: :math:`C' = T C T^{\\top}`, exactly and sparse.

        Parameters
        ----------
        operator : scipy.sparse matrix or array, shape (m, ny*nx)
            The operator :math:`T` (binning, smoothing, PSF matching) acting on the row-major grid.
        variance : array_like, shape (ny, nx), optional
            Variances of the input; default 1. Undefined spaxels must have no weight in ``T``.
        out_shape : tuple of int, optional
            The output grid; default the input grid when ``m = ny*nx``, else ``(1, m)``.

        Returns
        -------
        correlation : SpatialCorrelation
            The correlation of :math:`T x` (source ``"propagated"``).
        variance : numpy.ndarray, shape out_shape
            The output variances (NaN where zero).
        """
        t = sp.csr_array(operator, dtype=float)
        if t.ndim != 2 or t.shape[1] != self.n_grid:
            raise ShapeError(
                f"operator has shape {t.shape}; it must have {self.n_grid} columns, one per "
                f"spaxel of the {self.shape} grid"
            )
        if out_shape is None:
            out_shape = self.shape if t.shape[0] == self.n_grid else (1, t.shape[0])
        if int(np.prod(out_shape)) != t.shape[0]:
            raise ShapeError(f"out_shape {out_shape} does not hold the {t.shape[0]} outputs of T")
        if variance is None:
            variance = np.where(self.defined, 1.0, 0.0)
        variance = np.asarray(variance, dtype=float)
        used = np.zeros(self.n_grid, bool)
        used[sp.coo_array(t).coords[1]] = True
        if np.any(used & ~self.defined.ravel()):
            raise CovarianceError(
                "operator gives weight to spaxels where the correlation is undefined"
            )
        cov = self.covariance(np.where(self.defined, variance, 1.0), ~self.defined, False)
        out = propagate_covariance(cov, t)
        corr, var = SpatialCorrelation.from_covariance(out, out_shape, source="propagated")
        corr.params = {"parent": self.source, **self.params}
        return corr, var

    def _good(self, variance, mask):
        """Spaxels in use: defined, not masked, with a variance (checked finite and positive)."""
        from ..containers import _check_variance

        variance = np.asarray(variance, dtype=float)
        if variance.shape != self.shape:
            raise ShapeError(
                f"variance has shape {variance.shape}, expected the correlation grid {self.shape}"
            )
        mask = np.zeros(self.shape, bool) if mask is None else np.asarray(mask, bool)
        if mask.shape != self.shape:
            raise ShapeError(f"mask has shape {mask.shape}, expected the grid {self.shape}")
        good = self.defined & ~mask
        _check_variance(variance, ~good, "variance")
        return good

    def __repr__(self):
        return (
            f"SpatialCorrelation(shape={self.shape}, source={self.source!r}, "
            f"nnz={self.matrix.nnz}, params={self.params})"
        )


def _stencil_matrix(shape, footprint, dy, dx, rho, chunk=2_000_000):
    """Sparse matrix with ``rho`` between spaxels offset by ``(dy, dx)``, inside ``footprint``.

    Vectorised over spaxels and offsets and written straight into CSR form (rows in row-major
    order, offsets sorted so that columns increase): :math:`O(N k)` time and memory for
    :math:`N` spaxels and :math:`k` offsets, in blocks of at most ``chunk`` pairs.
    """
    ny, nx = shape
    order = np.lexsort((dx, dy))
    dy, dx, rho = dy[order], dx[order], rho[order]
    pad = int(max(np.abs(dy).max(), np.abs(dx).max()))
    index = np.full((ny + 2 * pad, nx + 2 * pad), -1, dtype=np.int64)
    flat = np.arange(ny * nx, dtype=np.int64).reshape(shape)
    index[pad : pad + ny, pad : pad + nx] = np.where(footprint, flat, -1)

    width = nx + 2 * pad
    index = index.ravel()
    shift = dy * width + dx
    rows = np.flatnonzero(footprint.ravel())
    ys, xs = np.divmod(rows, nx)
    base = (ys + pad) * width + (xs + pad)
    counts = np.zeros(ny * nx, dtype=np.int64)
    indices, data = [], []
    step = max(1, chunk // len(rho))
    for start in range(0, len(rows), step):
        cols = index[base[start : start + step, None] + shift[None]]
        valid = cols >= 0
        counts[rows[start : start + step]] = valid.sum(axis=1)
        indices.append(cols[valid])
        data.append(np.broadcast_to(rho, cols.shape)[valid])
    indptr = np.concatenate([[0], np.cumsum(counts)])
    n = ny * nx
    return sp.csr_array((np.concatenate(data), np.concatenate(indices), indptr), shape=(n, n))


def propagate_covariance(covariance, operator):
    """Exact sparse :math:`T C T^{\\top}` for a covariance :math:`C` and an operator :math:`T`.

    Parameters
    ----------
    covariance : scipy.sparse matrix or astropy.nddata.Covariance, shape (n, n)
    operator : scipy.sparse matrix or array_like, shape (m, n)

    Returns
    -------
    scipy.sparse.csr_array, shape (m, m)
        Symmetrised exactly (average with its transpose) to remove round-off asymmetry.
    """
    cov = covariance.to_sparse() if hasattr(covariance, "to_sparse") else covariance
    cov = sp.csr_array(cov, dtype=float)
    t = sp.csr_array(operator, dtype=float)
    if t.ndim != 2 or cov.shape != (t.shape[1], t.shape[1]):
        raise ShapeError(
            f"operator of shape {t.shape} cannot act on a covariance of shape {cov.shape}"
        )
    out = (t @ cov @ t.T).tocsr()
    return ((out + out.T) * 0.5).tocsr()
