"""Spatial correlation between spaxels: the model, its kernels, its measurement, its FITS tables.

* :mod:`~bayesifu.correlation.model` -- :class:`SpatialCorrelation` (a sparse correlation matrix
  on a spaxel grid: Gaussian model, DRP/DAP CORREL table, measured), its covariance and
  propagation through linear operators (:func:`propagate_covariance`).
* :mod:`~bayesifu.correlation.kernels` -- the Gaussian correlation stencils and their tapers.
* :mod:`~bayesifu.correlation.measure` -- measuring the correlation length from the data
  (box sums of residual maps, :func:`measure_correlation`).
* :mod:`~bayesifu.correlation.fits` -- reading and writing correlation tables (the DRP CORREL
  layout), written atomically.
"""

from .model import SpatialCorrelation, propagate_covariance

__all__ = ["SpatialCorrelation", "propagate_covariance"]
