"""Exceptions raised by bayesifu.

Every error a user can trigger with bad input derives from :class:`BayesifuError`, so that scripts
can catch one base class and the command line can turn any of them into a one-line message and a
non-zero exit. Messages name the input (file, extension, argument) and say what is wrong with it.
"""

__all__ = [
    "BayesifuError",
    "InputError",
    "ShapeError",
    "VarianceError",
    "EmptyDataError",
    "CovarianceError",
    "FileFormatError",
    "MissingExtensionError",
    "UnknownChannelError",
    "UnsupportedFormatError",
    "SamplingError",
]


class BayesifuError(Exception):
    """Base class of every error bayesifu raises on bad input or a failed computation."""


class InputError(BayesifuError, ValueError):
    """An argument has an invalid value."""


class ShapeError(InputError):
    """Arrays whose shapes must agree do not."""


class VarianceError(InputError):
    """A variance (or inverse variance) is NaN, infinite, zero or negative where it is used."""


class EmptyDataError(InputError):
    """Nothing is left to work with after masking (every spaxel or pixel masked)."""


class CovarianceError(InputError):
    """A covariance or correlation matrix is malformed or not positive-(semi)definite."""


class FileFormatError(BayesifuError, OSError):
    """A file cannot be read as the kind of data asked for."""


class MissingExtensionError(FileFormatError, KeyError):
    """A FITS file lacks an extension that its format requires."""

    def __str__(self):  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class UnknownChannelError(FileFormatError, KeyError):
    """A channel name is not among the channels a multi-channel extension declares."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class UnsupportedFormatError(FileFormatError):
    """A file is of a kind that no reader recognises."""


class SamplingError(BayesifuError, RuntimeError):
    """A sampler cannot initialise or produced a non-finite log-density."""
