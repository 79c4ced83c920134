"""Spatial correlation between the spaxels of a map or cube channel, stored sparsely.

A :class:`SpatialCorrelation` holds the correlation matrix :math:`\\rho_{jk}` of the spaxels of a
``(ny, nx)`` grid as a symmetric ``scipy.sparse`` matrix over the *whole* grid, flattened in
row-major (numpy) order: spaxel ``(y, x)`` has index ``y * nx + x``. Spaxels for which the
correlation is not defined (outside the footprint of a MaNGA CORREL table, say) have empty rows and
are flagged in :attr:`SpatialCorrelation.defined`. The covariance of a map with variances
:math:`\\sigma^2_j` is :math:`C_{jk} = \\rho_{jk} \\sigma_j \\sigma_k`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .errors import CovarianceError, ShapeError

__all__ = ["SpatialCorrelation"]


class SpatialCorrelation:
    """Sparse spatial correlation matrix over a ``(ny, nx)`` spaxel grid.

    Parameters
    ----------
    shape : tuple of int
        The grid shape ``(ny, nx)``.
    matrix : scipy.sparse matrix or array, shape (ny*nx, ny*nx)
        Symmetric correlation matrix in row-major spaxel order, unit diagonal where defined.
    defined : array_like of bool, shape (ny, nx), optional
        Spaxels where the correlation is defined. Default: those with a non-zero diagonal.
    source : str
        Where the correlation came from (``"gaussian"``, ``"CORREL table"``, ``"measured"``, ...).
    params : dict
        The parameters of the source (``sigma``, ``rlim``, taper, ...), recorded with results.
    """

    def __init__(self, shape, matrix, defined=None, source="user", params=None):
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 2:
            raise ShapeError(f"correlation grid shape must be (ny, nx), got {shape}")
        n = self.shape[0] * self.shape[1]
        matrix = sp.csr_array(matrix)
        if matrix.shape != (n, n):
            raise ShapeError(
                f"correlation matrix has shape {matrix.shape}, expected {(n, n)} for a "
                f"{self.shape[0]}x{self.shape[1]} grid"
            )
        matrix.sum_duplicates()
        matrix.sort_indices()
        self.matrix = matrix
        diag = matrix.diagonal()
        if defined is None:
            defined = (diag != 0).reshape(self.shape)
        self.defined = np.asarray(defined, dtype=bool).reshape(self.shape)
        if not np.all(np.isfinite(matrix.data)):
            raise CovarianceError(f"{source} correlation matrix has NaN or infinite entries")
        self.source = source
        self.params = dict(params or {})

    @property
    def n_grid(self) -> int:
        """The number of spaxels of the grid, ``ny * nx``."""
        return self.shape[0] * self.shape[1]

    def submatrix(self, good) -> sp.csr_array:
        """The correlation matrix restricted to the spaxels where ``good`` is true.

        Rows and columns are in row-major order of the selected spaxels.
        Raises :class:`~bayesifu.errors.ShapeError` if ``good`` does not match the grid, and
        :class:`~bayesifu.errors.CovarianceError` if a selected spaxel has no defined correlation.
        """
        good = np.asarray(good, dtype=bool)
        if good.shape != self.shape:
            raise ShapeError(
                f"mask/map shape {good.shape} does not match the correlation grid {self.shape}"
            )
        undefined = good & ~self.defined
        if undefined.any():
            raise CovarianceError(
                f"{int(undefined.sum())} spaxel(s) in use have no defined correlation in the "
                f"{self.source} correlation (outside its footprint); mask them"
            )
        idx = np.flatnonzero(good.ravel())
        return self.matrix[idx][:, idx].tocsr()

    def __repr__(self):
        return (
            f"SpatialCorrelation(shape={self.shape}, source={self.source!r}, "
            f"nnz={self.matrix.nnz}, params={self.params})"
        )
