"""Batched small positive-definite solves, vectorised over a batch of matrices.

One small system per spectrum and redshift means millions of tiny matrices, and NumPy's batched
``cholesky`` pays a per-matrix overhead that dominates. Here the loops run over the *matrix*
indices and every operation acts on a whole batch at once. The entries are passed as a list of
arrays that only need to broadcast against each other (an entry that does not depend on the
redshift can be a scalar); the grid code calls this one spectrum at a time, on arrays small
enough to stay in cache.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cholesky_logdet_quadratic", "PIVOT_TOL"]

#: A Jacobi-scaled pivot below this is treated as a degenerate direction (left out).
PIVOT_TOL = 1e-10


def cholesky_logdet_quadratic(entries, vector, reference=None):
    """``log|M|``, ``b^T M^{-1} b`` and the number of dropped directions.

    A direction whose pivot is below :data:`PIVOT_TOL` times its reference diagonal (by default
    the diagonal of ``M``, which makes the test that of a Cholesky factorisation of the
    Jacobi-scaled matrix, unit diagonal, without scaling anything) is dropped: a collinear or
    empty column contributes neither to the determinant nor to the quadratic form.

    Parameters
    ----------
    entries : list of lists of numpy.ndarray
        ``entries[i][j]`` for ``i >= j``: the lower triangle of ``M``, each entry an array of
        the batch shape or broadcastable to it.
    vector : list of numpy.ndarray
        Right-hand sides ``b[i]``, broadcastable likewise.
    reference : list of numpy.ndarray, optional
        Diagonal against which the pivots are tested (for a Schur complement, the diagonal of
        the matrix it came from).

    Returns
    -------
    logdet, quad, n_dropped : numpy.ndarray
        ``log det M``, ``b^T M^{-1} b`` and the number of dropped directions, with the
        broadcast shape of the inputs.
    """
    p = len(vector)
    if reference is None:
        reference = [entries[i][i] for i in range(p)]
    chol = [[None] * p for _ in range(p)]
    y = [None] * p
    logdet = quad = n_dropped = 0
    for j in range(p):
        s = np.asarray(entries[j][j], dtype=float)
        for k in range(j):
            s = s - chol[j][k] * chol[j][k]
        ok = s > PIVOT_TOL * reference[j]
        if np.all(ok):  # the common case, without the masked arithmetic
            logdet = logdet + np.log(s)
            inv = 1.0 / np.sqrt(s)
        else:
            n_dropped = n_dropped + ~ok
            logdet = logdet + np.log(np.where(ok, s, 1.0))
            inv = np.where(ok, 1.0 / np.sqrt(np.where(ok, s, 1.0)), 0.0)
        for i in range(j + 1, p):
            s = entries[i][j]
            for k in range(j):
                s = s - chol[i][k] * chol[j][k]
            chol[i][j] = s * inv
        r = vector[j]
        for k in range(j):
            r = r - chol[j][k] * y[k]
        y[j] = r * inv
        quad = quad + y[j] * y[j]
    return logdet, quad, np.broadcast_to(np.asarray(n_dropped, dtype=int), np.shape(quad))
