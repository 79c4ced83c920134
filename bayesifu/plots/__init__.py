"""Figures a person would rather look at than read: maps, bin maps, fit panels, p(z), pairs, chi2,
and the figures the command line writes (redshift maps and p(z) zooms, binning S/N maps).

matplotlib only; each function takes an optional ``ax`` (or ``fig``) and returns the axes or the
figure it drew on, or draws a whole figure and returns it; nothing calls ``plt.show`` or chooses
the matplotlib backend (the ``bayesifu`` command does, for files). Import as ``import
bayesifu.plots as bp``.
"""

from ._common import MASK_COLOUR, save_figure
from .binning import plot_bin_sn
from .fit import plot_model_fit
from .maps import INDEPENDENT_TITLES, bin_boundaries, plot_binmap, plot_fit_panels, plot_map
from .posterior import central_intervals, plot_chi2_calibration, plot_pairs, plot_pz, plot_trace
from .redshift import plot_pz_zoom, plot_redshift_maps

__all__ = [
    "MASK_COLOUR",
    "plot_map",
    "plot_binmap",
    "plot_fit_panels",
    "plot_model_fit",
    "INDEPENDENT_TITLES",
    "bin_boundaries",
    "plot_pz",
    "plot_pairs",
    "plot_trace",
    "plot_chi2_calibration",
    "central_intervals",
    "plot_redshift_maps",
    "plot_pz_zoom",
    "plot_bin_sn",
    "save_figure",
]
