"""bayesifu: Bayesian inference on integral-field spectroscopy with the full spatial covariance.

The public API is re-exported here; see each module for details.
"""

from .containers import Cube, Map
from .errors import (
    BayesifuError,
    CovarianceError,
    EmptyDataError,
    FileFormatError,
    InputError,
    MissingExtensionError,
    SamplingError,
    ShapeError,
    UnknownChannelError,
    UnsupportedFormatError,
    VarianceError,
)

__version__ = "0.1.0"

__all__ = [
    "Cube",
    "Map",
    "BayesifuError",
    "CovarianceError",
    "EmptyDataError",
    "FileFormatError",
    "InputError",
    "MissingExtensionError",
    "SamplingError",
    "ShapeError",
    "UnknownChannelError",
    "UnsupportedFormatError",
    "VarianceError",
]

# Re-exports added by each module below (keep one line per module, alphabetical).
from .correlation import SpatialCorrelation  # noqa: E402

__all__ += ["SpatialCorrelation"]

from . import simulate  # noqa: E402

__all__ += ["simulate"]

from .io import read_cube, read_map  # noqa: E402

__all__ += ["read_cube", "read_map"]
from .redshift import redshift_posterior  # noqa: E402
from .templates import read_templates  # noqa: E402

__all__ += ["read_templates", "redshift_posterior"]

from .binning import (  # noqa: E402
    BinnedLikelihood,
    BinnedMapLikelihood,
    BinnedSpectra,
    BinnedSpectraLikelihood,
    BinnedValues,
    Binning,
    VoronoiBinning,
    bin_spectra,
    calibrate_noise_ratio,
    sed_bins,
    voronoi_bins,
)

__all__ += [
    "BinnedLikelihood",
    "BinnedMapLikelihood",
    "BinnedSpectra",
    "BinnedSpectraLikelihood",
    "BinnedValues",
    "Binning",
    "VoronoiBinning",
    "bin_spectra",
    "calibrate_noise_ratio",
    "sed_bins",
    "voronoi_bins",
]
from .likelihood import CorrelatedNormal, CubeLikelihood, MapLikelihood  # noqa: E402

__all__ += ["CorrelatedNormal", "CubeLikelihood", "MapLikelihood"]
from .kinematics import DiskParams, disk_velocity, smeared_disk_velocity  # noqa: E402
from .lmfit import LMResult, disk_lm_fit, lm_fit  # noqa: E402
from .sampling import ConvergenceWarning, observe, predict, sample  # noqa: E402
from .surfaces import PlaneParams, PolynomialBasis, SersicParams, plane, sersic  # noqa: E402

__all__ += [
    "DiskParams",
    "disk_velocity",
    "smeared_disk_velocity",
    "LMResult",
    "lm_fit",
    "disk_lm_fit",
]
__all__ += ["ConvergenceWarning", "observe", "predict", "sample"]
__all__ += ["PlaneParams", "PolynomialBasis", "SersicParams", "plane", "sersic"]

from . import datasets  # noqa: E402

__all__ += ["datasets"]
