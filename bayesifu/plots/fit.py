"""The figure of a fitted map model (``bayesifu fit`` and ``bayesifu demo`` write it as a PNG):
data, model, residual and whitened residual (:func:`~bayesifu.plots.plot_fit_panels`) of a
NumPyro model program at given parameter values.

Returns the :class:`~matplotlib.figure.Figure` it drew; write it with
:func:`~bayesifu.plots.save_figure`.
"""

from __future__ import annotations

import numpy as np

from .maps import INDEPENDENT_TITLES, plot_fit_panels

__all__ = ["plot_model_fit"]


def plot_model_fit(model, params: dict, lik, m, title: str = "", **kwargs):
    """Data, model, residual and whitened-residual maps of ``model`` at ``params``.

    Parameters
    ----------
    model : callable
        A model program ``model(x, y, lik, ..., obs=None)`` (``models/*.py``).
    params : dict
        Parameter values (e.g. posterior medians); ``error_scale`` and ``scatter``, where
        present, enter the whitening.
    lik : MapLikelihood or BinnedMapLikelihood
        The likelihood the model was fitted with; a binned one shows each bin's model on its
        spaxels.
    m : bayesifu.Map
        The data.
    title : str
        Figure title (none if empty).
    **kwargs
        Further arguments of ``model`` (e.g. the priors).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..sampling import predict

    mu = next(iter(predict(model, dict(params), lik.x, lik.y, lik, **kwargs).values()))
    binned = hasattr(lik, "bin_model")
    if binned:  # the model of each bin, shown on its spaxels
        mu = np.asarray(lik.bin_model(mu))
    elif mu.size != m.data.size:
        mu = np.broadcast_to(mu, (lik.n,))
    else:
        mu = mu.ravel()[lik.index]
    white = lik.whiten_spaxels(
        lik.data - mu, scale=params.get("error_scale", 1.0), scatter=params.get("scatter", 0.0)
    )

    def as_map(values):
        if binned:
            return lik.to_map(values)
        out = np.full(m.shape, np.nan)
        out.ravel()[lik.index] = np.asarray(values)
        return out

    panels = {}
    if getattr(lik, "method", None) == "diagonal":  # independent: (data - model) / sigma
        panels = {"titles": INDEPENDENT_TITLES, "whitened_label": "normalised residual"}
    fig = plot_fit_panels(m, as_map(mu), whitened=as_map(white), unit=m.unit or None, **panels)
    if title:
        fig.suptitle(title)
    return fig
