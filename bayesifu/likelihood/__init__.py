"""Likelihoods with the full spatial covariance, one interface for all of them.

* :mod:`~bayesifu.likelihood.base` -- the :class:`Likelihood` protocol (``n``, ``dof``, ``data``,
  ``settings``, ``log_prob``, ``chi2``, ``whiten``, ``pointwise_loo``, ``to_map``, ``simulate``,
  ``distribution``), its numpyro distribution and the leave-one-out formula.
* :mod:`~bayesifu.likelihood.factors` -- the factorisations of a fixed correlation (diagonal,
  banded, eigen) with one interface (whiten, colour, chi2, logdet, precision products and
  diagonal).
* :mod:`~bayesifu.likelihood.normal` -- :class:`CorrelatedNormal`, a vector of values with a
  correlation, and the choice of factor (the mathematics of both paths is in its docstring).
* :mod:`~bayesifu.likelihood.map`, :mod:`~bayesifu.likelihood.cube`,
  :mod:`~bayesifu.likelihood.binned`, :mod:`~bayesifu.likelihood.binned_map` -- maps, cubes
  (channel by channel), binned values and binned spectra/SEDs (:math:`T C T^T`), and binned DAP
  maps (the spaxel model averaged into bins).
"""

from .base import Likelihood, LikelihoodDistribution, loo_terms
from .binned import BinnedLikelihood, BinnedSpectraLikelihood
from .binned_map import BinnedMapLikelihood
from .cube import CubeLikelihood
from .factors import CovarianceRepairWarning
from .map import MapLikelihood
from .normal import EIGEN_MAX_N, CorrelatedNormal, choose_factor

__all__ = [
    "Likelihood",
    "LikelihoodDistribution",
    "CorrelatedNormal",
    "MapLikelihood",
    "CubeLikelihood",
    "BinnedLikelihood",
    "BinnedSpectraLikelihood",
    "BinnedMapLikelihood",
    "CovarianceRepairWarning",
    "choose_factor",
    "loo_terms",
    "EIGEN_MAX_N",
]
