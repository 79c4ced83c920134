"""The "independent bins" variant of binned spectra: the covariance between bins dropped.

:func:`independent_bins` keeps each bin's exact variance (the diagonal of
:math:`\\mathbf T_k\\mathbf C_k\\mathbf T_k^{\\rm T}`, with the covariance between the spaxels
*inside* a bin) and sets the covariance *between* bins to zero. Fitting the same data with it and
with the full matrix isolates what the between-bin covariance does to the posterior widths:
quantities shared by bins or summed over them (a common redshift, the total flux, a mean
attenuation) get intervals that are too narrow when neighbouring bins are positively
correlated, as they are in resampled cubes (MaNGA, MUSE).
"""

from __future__ import annotations

import dataclasses

import scipy.sparse as sp

from ..binning.spectra import BinnedSpectra
from ..errors import InputError

__all__ = ["IndependentBinnedSpectra", "independent_bins"]


@dataclasses.dataclass
class IndependentBinnedSpectra(BinnedSpectra):
    """:class:`~bayesifu.binning.BinnedSpectra` whose :meth:`covariance` is diagonal."""

    def covariance(self, k: int) -> sp.csr_array:
        """The diagonal of the exact covariance between bins in channel ``k`` [unit**2]."""
        return sp.csr_array(sp.diags_array(super().covariance(k).diagonal()))


def independent_bins(binned: BinnedSpectra) -> IndependentBinnedSpectra:
    """The same binned spectra with the covariance between bins dropped (module docstring).

    Parameters
    ----------
    binned : BinnedSpectra
        From :func:`bayesifu.bin_spectra`.

    Returns
    -------
    IndependentBinnedSpectra
        Same flux, variances, mask and WCS; give it to
        :class:`~bayesifu.BinnedSpectraLikelihood` for the independent-bins likelihood.
    """
    if not isinstance(binned, BinnedSpectra):
        raise InputError(f"independent_bins needs BinnedSpectra, got {type(binned).__name__}")
    fields = {f.name: getattr(binned, f.name) for f in dataclasses.fields(BinnedSpectra)}
    return IndependentBinnedSpectra(**fields)
