"""Reading IFU data products: MaNGA DRP cubes, MaNGA DAP maps, MUSE cubes, generic FITS.

:func:`read_cube` and :func:`read_map` recognise the format from the file (:func:`detect_format`)
and return :class:`~bayesifu.Cube` and :class:`~bayesifu.Map` objects; :func:`read_flux_weights`
reads the per-spaxel flux (``SPX_MFLUX``) that weights the bins of a binned DAP map.
"""

from .detect import detect_format
from .manga_dap import DAP_DEFAULT_MASK_BITS, DAP_PIXMASK_BITS
from .manga_drp import DRP_MASK_BITS
from .readers import read_cube, read_flux_weights, read_map

__all__ = [
    "read_cube",
    "read_map",
    "read_flux_weights",
    "detect_format",
    "DAP_PIXMASK_BITS",
    "DAP_DEFAULT_MASK_BITS",
    "DRP_MASK_BITS",
]
