"""Binning of spaxels with the spatial covariance: aggregation operators, S/N, Voronoi bins.

See :class:`Binning` (any bin-id map as a sparse operator :math:`\\mathbf T`, with
:math:`\\mathbf T\\mathbf C\\mathbf T^{\\rm T}`), :func:`voronoi_bins` (bins to a target S/N) and
:func:`calibrate_noise_ratio` (:math:`1 + \\alpha\\log_{10}N`).
"""

from .operator import BinnedValues, Binning, BinningWarning, covariance_of_sum, elliptical_radius
from .sed import SEDBinning, reduced_chi2, sed_bins
from .snr import WESTFALL_ALPHA, NoiseCalibration, calibrate_noise_ratio, calibrated_sn, noise_ratio
from .spectra import BinnedSpectra, bin_spectra, summed_spectra
from .voronoi import VoronoiBinning, voronoi_bins

__all__ = [
    "Binning",
    "BinnedValues",
    "BinningWarning",
    "covariance_of_sum",
    "elliptical_radius",
    "WESTFALL_ALPHA",
    "NoiseCalibration",
    "calibrate_noise_ratio",
    "calibrated_sn",
    "noise_ratio",
    "BinnedSpectra",
    "bin_spectra",
    "summed_spectra",
    "SEDBinning",
    "reduced_chi2",
    "sed_bins",
    "VoronoiBinning",
    "voronoi_bins",
]
