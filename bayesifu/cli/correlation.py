"""The ``--correlation`` option, one for every command (``bayesifu fit``, ``bin``, ``redshift``).

Accepted values, the same everywhere (keywords in any case):

``auto``
    The input file's own ``--correlation-ext`` table if it has a usable one (e.g. a MaNGA SNRG
    file), else for a cube the correlation measured from its noise, else ``gaussian``.
``none``
    Spaxels independent (said in the output: variances are then too small for correlated data).
``gaussian``
    MaNGA's approximation (Westfall et al. 2019): sigma 1.92, truncated at rlim 6.4 spaxels
    (``bayesifu bin`` sets both with ``--sigma`` and ``--rlim``).
``measured``
    Measured from a cube's noise (:meth:`bayesifu.SpatialCorrelation.measured`); needs a cube.
FILE
    A FITS file with a correlation table in extension ``--correlation-ext`` (default ``CORREL``),
    e.g. a MaNGA SNRG file (``CORREL``) or LOGCUBE (``GCORREL``).

:func:`add_correlation_options` adds the option and ``--correlation-ext`` to a sub-parser,
:func:`check_correlation_option` checks them before JAX is imported, and
:func:`resolve_correlation` builds the :class:`~bayesifu.SpatialCorrelation`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import BayesifuError, InputError
from .checks import check_fits_file

__all__ = [
    "CORRELATION_KEYWORDS",
    "CUBE_KINDS",
    "GAUSSIAN_SIGMA",
    "GAUSSIAN_RLIM",
    "add_correlation_options",
    "correlation_keyword",
    "correlation_inputs",
    "check_correlation_option",
    "resolve_correlation",
]

CORRELATION_KEYWORDS = ("auto", "none", "gaussian", "measured")
#: The formats (:func:`bayesifu.io.detect_format`) that are cubes: ``measured`` needs one.
CUBE_KINDS = ("manga-drp-cube", "muse-cube", "generic-cube")
#: MaNGA's Gaussian approximation [spaxel] (Westfall et al. 2019, AJ 158, 231, Sect. 6.2).
GAUSSIAN_SIGMA = 1.92
GAUSSIAN_RLIM = 6.4

HELP = (
    "spatial correlation of the noise{use}: 'auto' (the input file's own --correlation-ext "
    "table if it has one, else measured from a cube's noise, else gaussian), 'none' (spaxels "
    "independent: variances too small for correlated data), 'gaussian' (MaNGA's approximation, "
    "sigma 1.92, rlim 6.4 spaxels by default), 'measured' (from a cube's noise) or a FITS file "
    "with a correlation table (e.g. a MaNGA SNRG file's CORREL, a LOGCUBE's GCORREL) "
    "(default: %(default)s)"
)


def add_correlation_options(parser, default: str, use: str = "") -> None:
    """Add ``--correlation`` (default ``default``; ``use`` says what it is for, e.g. ``" for the
    S/N"``) and ``--correlation-ext`` to ``parser``; the help text is otherwise the same for
    every command."""
    parser.add_argument("--correlation", default=default, help=HELP.format(use=use))
    parser.add_argument(
        "--correlation-ext",
        default="CORREL",
        help="extension of the correlation table (default: %(default)s)",
    )


def correlation_keyword(value) -> str | None:
    """The keyword ``value`` names (lower case), or None for a file."""
    text = str(value).strip().lower()
    return text if text in CORRELATION_KEYWORDS else None


def correlation_inputs(value) -> list[str]:
    """The correlation file of ``value`` as a list of inputs for provenance (empty for a
    keyword)."""
    return [] if correlation_keyword(value) else [str(value)]


def _table_ext(path, ext):
    """The name of extension ``ext`` of ``path`` if it has one, else None."""
    from ..io.fitsio import find_hdu, open_fits

    with open_fits(path) as hdul:
        hdu = find_hdu(hdul, ext)
        return None if hdu is None else hdu.name


def _extensions(path) -> str:
    from ..io.fitsio import extension_names, open_fits

    with open_fits(path) as hdul:
        return ", ".join(n for n in extension_names(hdul) if n) or "none"


def check_correlation_option(value, ext, kind: str, label: str = "FILE") -> None:
    """Raise :class:`~bayesifu.errors.InputError` naming the option if ``--correlation value``
    (with ``--correlation-ext ext``) cannot be used for an input of format ``kind`` (``label``
    names the input in the message). No JAX needed."""
    word = correlation_keyword(value)
    if word == "measured" and kind not in CUBE_KINDS:
        raise InputError(
            f"--correlation measured needs a cube (it measures the noise); {label} is a {kind} file"
        )
    if word is not None:
        return
    if not Path(value).is_file():
        raise InputError(
            f"--correlation {str(value)!r}: no such file, and not 'none', 'gaussian', "
            "'measured' or 'auto'"
        )
    check_fits_file(value, "--correlation")
    if _table_ext(value, ext) is None:
        raise InputError(
            f"--correlation-ext {ext}: {value} has no such extension; extensions: "
            f"{_extensions(value)}"
        )


def _from_file(path, ext, shape, label):
    from ..correlation import SpatialCorrelation

    corr = SpatialCorrelation.from_fits(path, ext=ext)
    if corr.shape != tuple(shape):
        raise InputError(f"{label}: grid {corr.shape} does not match the data {tuple(shape)}")
    return corr


def _gaussian(shape, sigma, rlim):
    from ..correlation import SpatialCorrelation

    corr = SpatialCorrelation.gaussian(shape, sigma=sigma, rlim=rlim)
    return corr, "gaussian", f"Gaussian (sigma {sigma:g}, rlim {rlim:g} spaxel)"


def _measured(cube):
    from ..correlation import SpatialCorrelation

    corr = SpatialCorrelation.measured(cube)
    sigma = corr.params.get("sigma")
    text = f" (sigma {sigma:.3g} spaxel)" if sigma is not None else ""
    return corr, "measured", f"measured from the cube's noise{text}"


def resolve_correlation(
    value,
    ext,
    shape,
    *,
    file=None,
    cube=None,
    sigma=GAUSSIAN_SIGMA,
    rlim=GAUSSIAN_RLIM,
    command="bayesifu",
):
    """The correlation ``--correlation value`` names, for data on a grid of ``shape``.

    Parameters
    ----------
    value, ext
        ``--correlation`` and ``--correlation-ext``.
    shape : tuple of int
        The grid ``(ny, nx)`` of the data.
    file : path, optional
        The input file, whose own table ``auto`` tries first.
    cube : bayesifu.Cube, optional
        The input cube, for ``measured`` (and ``auto``).
    sigma, rlim : float
        The Gaussian's width and truncation [spaxel].
    command : str
        Prefix of the notes ``auto`` prints on standard error when it passes over a choice.

    Returns
    -------
    (SpatialCorrelation or None, str, str)
        The correlation (None: independent), its source keyword (``none``, ``gaussian``,
        ``measured`` or ``file``) and a description for the output.
    """
    word = correlation_keyword(value)
    if word == "none":
        return None, "none", "none (spaxels independent; --correlation none)"
    if word == "gaussian":
        return _gaussian(shape, sigma, rlim)
    if word == "measured":
        if cube is None:
            raise InputError("--correlation measured needs a cube (it measures the noise)")
        return _measured(cube)
    if word is None:
        corr = _from_file(value, ext, shape, f"--correlation {value}")
        return corr, "file", f"{ext} table of {value}"
    own = None if file is None else _table_ext(file, ext)
    if own is not None:
        try:
            corr = _from_file(file, own, shape, f"FILE's {own} table")
            return corr, "file", f"{own} table of {file} (FILE's own)"
        except BayesifuError as err:
            print(f"{command}: note: {own} table of FILE not usable ({err})", file=sys.stderr)
    if cube is not None:
        try:
            return _measured(cube)
        except BayesifuError as err:
            print(f"{command}: note: cannot measure the correlation ({err})", file=sys.stderr)
    corr, source, desc = _gaussian(shape, sigma, rlim)
    why = "FILE has no correlation table" + ("" if cube is None else "; not measured")
    return corr, source, f"{desc} ({why})"
