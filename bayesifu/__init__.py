"""bayesifu: Bayesian inference on integral-field spectroscopy with the full spatial covariance.

The public API is re-exported here; see each module for details. The modules are imported on
first use (PEP 562), so that ``import bayesifu`` and commands that need no sampler (``bayesifu
redshift``, ``bayesifu info``) do not pay for importing JAX, NumPyro and ArviZ.
"""

import importlib

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

#: Public name -> module that defines it (a module itself where the name is a subpackage).
_LAZY = {
    "Cube": ".containers",
    "Map": ".containers",
    "SpatialCorrelation": ".correlation",
    "simulate": ".simulate",
    "read_cube": ".io",
    "read_map": ".io",
    "read_templates": ".templates",
    "redshift_posterior": ".redshift",
    **dict.fromkeys(
        [
            "BinnedSpectra",
            "BinnedValues",
            "Binning",
            "VoronoiBinning",
            "bin_spectra",
            "calibrate_noise_ratio",
            "sed_bins",
            "voronoi_bins",
        ],
        ".binning",
    ),
    **dict.fromkeys(
        [
            "BinnedLikelihood",
            "BinnedMapLikelihood",
            "BinnedSpectraLikelihood",
            "CorrelatedNormal",
            "CubeLikelihood",
            "Likelihood",
            "MapLikelihood",
        ],
        ".likelihood",
    ),
    **dict.fromkeys(["DiskParams", "disk_velocity", "smeared_disk_velocity"], ".kinematics"),
    **dict.fromkeys(["LMResult", "lm_fit", "disk_lm_fit"], ".lmfit"),
    **dict.fromkeys(["ConvergenceWarning", "observe", "predict", "sample"], ".sampling"),
    **dict.fromkeys(
        ["SEDBasis", "calzetti_k", "independent_bins", "sed_flux", "sed_maps"], ".sedmodel"
    ),
    **dict.fromkeys(
        ["PlaneParams", "PolynomialBasis", "SersicParams", "plane", "sersic"], ".surfaces"
    ),
    "datasets": ".datasets",
    **dict.fromkeys(
        ["Band", "Image", "PhotometricCube", "load_band", "match_images", "read_image"],
        ".imaging",
    ),
    "imaging": ".imaging",
}
_SUBPACKAGES = {"simulate", "datasets", "imaging"}

__all__ = [
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
    *_LAZY,
]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None or name in _SUBPACKAGES:
        # a module of the package (bayesifu.redshift, bayesifu.plots, ...), imported on use
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'bayesifu' has no attribute {name!r}") from None
    else:
        value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
