"""Simulated IFU data with known truth and an exactly known spatial covariance.

A thin rotating disk (:class:`DiskParams`, :func:`disk_velocity`) with an exponential surface
brightness is observed through a simulated instrument (:func:`manga_like`, :func:`muse_like`):
independent noise on the native samples (fibre-exposures or detector pixels) is pushed through a
sparse resampling operator ``T``, so the spaxel covariance is exactly ``T N T^T``.

Examples
--------
>>> from bayesifu import simulate
>>> sim = simulate.manga_like(n_fibres=37, n_exposures=9, seed=1)
>>> disk = simulate.DiskParams(x0=20.5, y0=20.5, pa=45.0, inc=60.0, vsys=0.0, vmax=200.0, rt=4.0)
>>> vmap, truth = sim.velocity_map(disk, noise_sigma=10.0, seed=2)
>>> corr = sim.correlation()          # a bayesifu.SpatialCorrelation
>>> cov = sim.covariance(10.0)        # sparse (ny*nx, ny*nx), rank n_fibres * n_exposures
"""

from .galaxy import (
    ROTATION_CURVES,
    DiskParams,
    disk_radius,
    disk_velocity,
    exponential_surface_brightness,
    rotation_curve,
)
from .instrument import LineCubeSpec, SimulatedIFU
from .resampling import (
    covariance_to_correlation,
    drizzle_operator,
    gaussian_correlation_sigma,
    shepard_operator,
    spaxel_covariance,
)
from .setups import manga_like, muse_like
from .spectra import SimulatedSpectra, galaxy_spectra, wrong_peak_rates

__all__ = [
    "DiskParams",
    "ROTATION_CURVES",
    "disk_radius",
    "disk_velocity",
    "exponential_surface_brightness",
    "rotation_curve",
    "LineCubeSpec",
    "SimulatedIFU",
    "covariance_to_correlation",
    "drizzle_operator",
    "gaussian_correlation_sigma",
    "shepard_operator",
    "spaxel_covariance",
    "manga_like",
    "muse_like",
    "SimulatedSpectra",
    "galaxy_spectra",
    "wrong_peak_rates",
]
