"""The likelihood of a map: :class:`MapLikelihood`, the unmasked spaxels of a
:class:`~bayesifu.containers.Map` with their spatial correlation."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..errors import EmptyDataError, ShapeError
from .normal import CorrelatedNormal

__all__ = ["MapLikelihood"]


class MapLikelihood(CorrelatedNormal):
    """Likelihood of a :class:`~bayesifu.containers.Map` with a spatial correlation.

    Masked spaxels are removed; the positions of those used are kept in :attr:`x`, :attr:`y`
    (0-based column, row) and :attr:`index` (flat row-major grid index). A model may be given on the
    used spaxels (shape ``(n,)``) or as a full ``(ny, nx)`` map.

    Parameters
    ----------
    map : bayesifu.Map
        The data, variances and mask.
    correlation : bayesifu.SpatialCorrelation, optional
        Over the same grid; every used spaxel must lie in its footprint. ``None``: independent.
    scatter_model : {"auto", "white", "correlated", None}
        How an intrinsic scatter :math:`\\tau` enters the covariance (:mod:`.normal`):
        ``"white"`` :math:`s^2 C_0 + \\tau^2 I` (on the range space of a rank-deficient
        correlation; eigen path), ``"correlated"`` :math:`D_s R D_s` with :math:`d_i^2 =
        s^2\\sigma_i^2 + \\tau^2` (banded path). Default ``"auto"``: white when ``method`` is
        ``"auto"`` and the map has at most :data:`~bayesifu.likelihood.EIGEN_MAX_N` unmasked
        spaxels; with more, or with an explicit ``method``, the model of the path ``method``
        gives. ``bayesifu fit`` uses this default, so ``MapLikelihood(m, corr)`` is its
        likelihood.
    method, rank_tol, nugget, solver
        As for :class:`CorrelatedNormal`.
    """

    def __init__(
        self,
        map,
        correlation=None,
        *,
        method="auto",
        rank_tol=1e-8,
        nugget=None,
        solver=None,
        scatter_model="auto",
    ):
        good = np.asarray(map.good)
        if not good.any():
            raise EmptyDataError(f"{map.name}: every spaxel is masked; nothing to use")
        self.shape = tuple(map.shape)
        self.index = np.flatnonzero(good.ravel())
        self.y, self.x = np.divmod(self.index, self.shape[1])
        matrix = None
        if correlation is not None:
            if tuple(correlation.shape) != self.shape:
                raise ShapeError(
                    f"{map.name}: correlation grid {tuple(correlation.shape)} does not match the "
                    f"map shape {self.shape}"
                )
            matrix = correlation.submatrix(good)
        super().__init__(
            map.data.ravel()[self.index],
            np.sqrt(map.variance.ravel()[self.index]),
            matrix,
            method=method,
            rank_tol=rank_tol,
            nugget=nugget,
            grid_index=self.index,
            shape=self.shape,
            name=map.name,
            solver=solver,
            scatter_model=scatter_model,
        )
        if correlation is not None:
            self._settings.update(
                correlation_source=correlation.source, correlation_params=dict(correlation.params)
            )
        self._index_j = jnp.asarray(self.index)

    def _vector(self, model):
        model = jnp.asarray(model)
        if model.shape == self.shape:
            return model.reshape(-1)[self._index_j]
        return super()._vector(model)

    def to_map(self, values, fill=np.nan) -> np.ndarray:
        """Values of the used spaxels, shape (n,), as a ``(ny, nx)`` map (``fill`` elsewhere)."""
        out = np.full(self.shape, fill, dtype=float)
        out.ravel()[self.index] = super().to_map(values)
        return out
