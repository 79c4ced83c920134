"""Redshift posteriors p(z | spectrum) on a grid for every spaxel or bin of a cube.

See :mod:`bayesifu.redshift.grid` for the mathematics (templates plus Legendre polynomials with the
linear coefficients marginalised analytically, evaluated for all redshifts at once by FFT
cross-correlation), :mod:`bayesifu.redshift.summary` for the point estimates, intervals, peaks and
flags, and :mod:`bayesifu.redshift.io` for the ``redshift.fits`` file.
"""

from .batch import log_prior_on_grid, redshift_posterior
from .field import redshift_field
from .grid import log_z_grid
from .posterior import RedshiftPosterior
from .summary import FLAGS, RedshiftSummary, describe_flags, per_spaxel, summarize
from .velocity import velocity_map

__all__ = [
    "redshift_posterior",
    "log_prior_on_grid",
    "log_z_grid",
    "RedshiftPosterior",
    "RedshiftSummary",
    "summarize",
    "per_spaxel",
    "describe_flags",
    "FLAGS",
    "velocity_map",
    "redshift_field",
]
