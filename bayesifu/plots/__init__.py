"""Figures a person would rather look at than read: maps, bin maps, fit panels, p(z), pairs, chi2.

matplotlib only; each function takes an optional ``ax`` (or ``fig``) and returns the axes or the
figure it drew on; nothing calls ``plt.show``. Import as ``import bayesifu.plots as bp``.
"""

from ._common import MASK_COLOUR, save_figure
from .maps import INDEPENDENT_TITLES, bin_boundaries, plot_binmap, plot_fit_panels, plot_map
from .posterior import central_intervals, plot_chi2_calibration, plot_pairs, plot_pz, plot_trace

__all__ = [
    "MASK_COLOUR",
    "plot_map",
    "plot_binmap",
    "plot_fit_panels",
    "INDEPENDENT_TITLES",
    "bin_boundaries",
    "plot_pz",
    "plot_pairs",
    "plot_trace",
    "plot_chi2_calibration",
    "central_intervals",
    "save_figure",
]
