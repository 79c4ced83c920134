"""Likelihood of a binned DAP map (``STELLAR_VEL`` with ``BINID``) with the covariance of its bins.

A binned DAP quantity carries one value per bin, repeated on every spaxel of the bin, and one
error per bin (``_IVAR``). Here the unit of data is the bin: the likelihood is a multivariate
normal over the unique bins in use (:class:`~bayesifu.likelihood.CorrelatedNormal`).

What the per-bin error means, and the approximation used
---------------------------------------------------------
A stellar velocity is not an average of spaxel velocities: the DAP stacks the spectra of a bin,
:math:`f_b = \\sum_j A_{bj} f_j` (a mean, :math:`A` the stacking operator), and fits the stacked
spectrum. Its ``IVAR`` is the inverse variance of *that fit*, so :math:`\\sigma_b^2 =
1/\\mathrm{IVAR}_b` is taken as the variance of bin :math:`b` as it stands (it is not
recomputed: there are no per-spaxel stellar velocities to propagate, and whether the stacked
noise the fit used carries the within-bin covariance is the DAP's choice; a common
under-estimate is what an ``error_scale`` or ``scatter`` parameter absorbs).

What ``IVAR`` cannot say is how the errors of *different* bins are correlated. They are because
the stacked spectra share noise: neighbouring spaxels of a MaNGA cube are correlated (spatial
correlation :math:`\\rho`, e.g. the DRP ``CORREL`` matrix). To first order a velocity is a linear
functional of the spectrum noise, :math:`\\delta v_b = \\sum_\\lambda a_b(\\lambda)\\, \\delta
f_b(\\lambda)`. If the spectral noise is separable, :math:`\\mathrm{cov}(\\delta f_j(\\lambda),
\\delta f_k(\\lambda')) = \\delta_{\\lambda\\lambda'} s(\\lambda)^2 g_j g_k \\rho_{jk}`, and the
responses :math:`a_b` of the bins have the same shape (similar spectra), then the correlation of the
velocity errors equals that of the stacked noise,

.. math::

    R_{bc} = \\frac{[\\mathbf A \\mathbf G \\boldsymbol\\rho \\mathbf G \\mathbf A^{\\rm T}]_{bc}}
    {\\sqrt{[\\cdot]_{bb} [\\cdot]_{cc}}}, \\qquad \\mathbf G = \\operatorname{diag}(g),

and the covariance used is :math:`\\mathbf C = \\mathbf D \\mathbf R \\mathbf D` with
:math:`\\mathbf D = \\operatorname{diag}(\\sigma_b)`: the DAP's per-bin variances, the
propagated :math:`\\mathbf T\\mathbf C\\mathbf T^{\\rm T}` correlations (computed exactly and
sparsely by :func:`~bayesifu.binning.covariance_of_sum`). ``spaxel_variance`` gives
:math:`g_j^2` (e.g. ``1/SPX_MFLUX_IVAR``, the g-band noise of each spaxel); by default the noise is
taken as uniform within the footprint. The approximation ignores how the response differs between
bins (different S/N, template mix); its error is second order in those differences.

Where the model is evaluated
----------------------------
The velocity fitted to a stacked spectrum is, for velocity differences small against the line
widths, the *luminosity-weighted* mean of the velocities of its spaxels, since brighter spaxels
dominate the stacked spectrum. So the model is evaluated on every member spaxel and averaged,
:math:`\\mu_b = \\sum_j W_{bj} v(x_j, y_j)` with :math:`W_{bj} \\propto F_j` (``flux``, e.g.
``SPX_MFLUX``; default uniform, the geometric mean over the bin), rather than at the bin centre:
the two differ where a bin spans a velocity gradient (large outer bins, and the centre of a
rising rotation curve). A model may be given per member spaxel (shape ``(n_spaxels,)``, in the
order of :attr:`x`, :attr:`y`), as a full ``(ny, nx)`` map, or per bin (``(n,)``). Member
spaxels are ordered bin by bin, so when every bin is one spaxel :math:`W` is the identity and the
two vector forms agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..binning.operator import Binning, _check_correlation, covariance_of_sum
from ..containers import Map
from ..errors import InputError, ShapeError
from .normal import CorrelatedNormal

__all__ = ["BinnedMapLikelihood"]


def _grid_array(values, shape, what):
    values = np.asarray(values, dtype=float)
    if values.shape != tuple(shape):
        raise ShapeError(f"{what} has shape {values.shape}, expected the map shape {tuple(shape)}")
    return values


class BinnedMapLikelihood(CorrelatedNormal):
    """Likelihood of the unique bins of a binned map, with the correlation between bins.

    Parameters
    ----------
    map : bayesifu.Map
        A binned map (``map.binid`` set, e.g. ``read_map(path, "STELLAR_VEL")``): every spaxel of a
        bin carries the bin's value and variance. Masked spaxels are left out; a bin with no
        unmasked spaxel is dropped.
    correlation : bayesifu.SpatialCorrelation, optional
        Spatial correlation of the spaxels over the map's grid (every member spaxel must lie in
        its footprint). ``None``: independent bins.
    flux : array_like, shape (ny, nx), optional
        Luminosity weights of the model average within a bin [any unit, positive in the
        members]; default uniform.
    spaxel_variance : array_like, shape (ny, nx), optional
        Relative noise variance of each spaxel's spectrum, for the correlation between bins;
        default uniform.
    scatter_model : {"auto", "white", "correlated", None}
        How an intrinsic scatter enters the covariance of the bins; as for
        :class:`~bayesifu.likelihood.MapLikelihood` (default ``"auto"``: white when ``method`` is
        ``"auto"`` and there are at most :data:`~bayesifu.likelihood.EIGEN_MAX_N` bins).
    method, rank_tol, nugget, solver
        As for :class:`~bayesifu.likelihood.CorrelatedNormal`.

    Attributes
    ----------
    x, y, index : ndarray, shape (n_spaxels,)
        Column, row and flat grid index of the member spaxels, ordered bin by bin.
    bin_ids : ndarray, shape (n,)
        The DAP bin id of each value.
    operator : scipy.sparse.csr_array, shape (n, n_spaxels)
        The luminosity-weighted average :math:`W` from member spaxels to bins.
    """

    def __init__(
        self,
        map,
        correlation=None,
        *,
        flux=None,
        spaxel_variance=None,
        method="auto",
        rank_tol=1e-8,
        nugget=None,
        solver=None,
        scatter_model="auto",
    ):
        if not isinstance(map, Map):
            raise InputError(f"BinnedMapLikelihood needs a bayesifu.Map, got {type(map).__name__}")
        if map.binid is None:
            raise InputError(
                f"{map.name}: the map carries no bin ids (BINID); use MapLikelihood for a "
                "per-spaxel map"
            )
        self.shape = tuple(map.shape)
        bins = Binning(np.where(map.good, map.binid, -1))
        if correlation is not None:
            _check_correlation(correlation, map.good, map.name)
        row = bins.row
        member = np.flatnonzero(row >= 0)
        member = member[np.argsort(row[member], kind="stable")]  # bin by bin
        self.index = member
        self.y, self.x = np.divmod(member, self.shape[1])
        self.bin_ids = bins.bin_ids
        self.n_spaxels = int(member.size)
        starts = np.r_[0, np.flatnonzero(np.diff(row[member])) + 1]
        first = member[starts]
        for what, grid in (("value", map.data), ("variance", map.variance)):
            vals = grid.ravel()[member]
            if np.any(np.maximum.reduceat(vals, starts) != np.minimum.reduceat(vals, starts)):
                raise InputError(
                    f"{map.name}: spaxels of one bin carry different {what}s; a binned map has "
                    "one value per bin (is BINID the right binning for this extension?)"
                )
        weights = "mean" if flux is None else _grid_array(flux, self.shape, "flux")
        self.operator = sp.csr_array(bins.operator(weights)[:, member])
        g = np.ones(bins.n_grid)
        if spaxel_variance is not None:
            v = _grid_array(spaxel_variance, self.shape, "spaxel_variance").ravel()[member]
            if not np.all(np.isfinite(v) & (v > 0)):
                raise InputError("spaxel_variance must be finite and positive in every bin member")
            g[member] = np.sqrt(v)
        matrix = None
        if correlation is not None:
            cov = covariance_of_sum(bins.operator("mean"), np.where(row >= 0, g, 0.0), correlation)
            inv = sp.diags_array(1.0 / np.sqrt(cov.diagonal()))
            matrix = sp.csr_array(inv @ cov @ inv)
            matrix.setdiag(1.0)
            matrix = 0.5 * (matrix + matrix.T)
        super().__init__(
            map.data.ravel()[first],
            np.sqrt(map.variance.ravel()[first]),
            matrix,
            method=method,
            rank_tol=rank_tol,
            nugget=nugget,
            name=map.name,
            solver=solver,
            scatter_model=scatter_model,
        )
        self._settings.update(binned=True, n_spaxels=self.n_spaxels)
        if correlation is not None:
            self._settings.update(
                correlation_source=correlation.source, correlation_params=dict(correlation.params)
            )
        coo = self.operator.tocoo()
        self._w = jnp.asarray(coo.data[np.argsort(coo.col)])
        self._seg = jnp.asarray(coo.row[np.argsort(coo.col)])
        self._index_j = jnp.asarray(member)

    def bin_model(self, model):
        """The model per bin, shape ``(n,)``, from a per-spaxel, full-map or per-bin model."""
        model = jnp.asarray(model)
        if model.shape == self.shape:
            model = model.reshape(-1)[self._index_j]
        if model.shape == (self.n_spaxels,):
            return jax.ops.segment_sum(
                self._w * model, self._seg, num_segments=self.n, indices_are_sorted=True
            )
        return super()._vector(model)

    _vector = bin_model

    def to_map(self, values, fill=np.nan) -> np.ndarray:
        """A ``(ny, nx)`` map of per-bin (``(n,)``) or per-member-spaxel values."""
        values = np.asarray(values, dtype=float)
        out = np.full(self.shape, fill)
        if values.shape == (self.n,):
            values = values[np.asarray(self._seg)]
        elif values.shape != (self.n_spaxels,):
            raise ShapeError(f"values must have shape ({self.n},) or ({self.n_spaxels},)")
        out.ravel()[self.index] = values
        return out
