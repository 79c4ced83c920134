"""The one module that touches ArviZ: arviz 0.x (InferenceData) and 1.x (DataTree) both work.

Python 3.11 resolves arviz 0.x, whose results are :class:`arviz.InferenceData`; Python 3.12+
resolves arviz 1.x, whose results are :class:`xarray.DataTree`. Everything else in bayesifu builds
results through :func:`to_inference_data` and reads them through :func:`group` and
:func:`group_names`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():
    # arviz 0.x warns once a day, at import, of its coming 1.x refactor: bayesifu already works
    # with both, and under pytest's warnings-as-errors the first import of a day would fail.
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor")
    import arviz as az

__all__ = [
    "ARVIZ_1",
    "to_inference_data",
    "group",
    "group_names",
    "summary",
    "loo",
    "to_netcdf",
    "from_netcdf",
    "clean_attrs",
    "update_attrs",
    "plot_pair",
]

ARVIZ_1 = int(az.__version__.split(".")[0]) >= 1


def clean_attrs(attrs: dict | None) -> dict:
    """Attributes that netCDF can store: numbers and strings stay, anything else becomes JSON."""
    out = {}
    for key, value in (attrs or {}).items():
        if isinstance(value, bool | np.bool_):
            out[str(key)] = int(value)
        elif isinstance(value, int | float | str | np.integer | np.floating):
            out[str(key)] = value
        else:
            out[str(key)] = json.dumps(value, default=_json_default, sort_keys=True)
    return out


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def to_inference_data(
    posterior: dict,
    *,
    sample_stats: dict | None = None,
    observed_data: dict | None = None,
    log_likelihood: dict | None = None,
    attrs: dict | None = None,
    dims: dict | None = None,
    coords: dict | None = None,
):
    """Build ArviZ results from dicts of arrays shaped ``(chain, draw, ...)``.

    ``observed_data`` arrays have no chain/draw axes. ``attrs`` go on every group (cleaned by
    :func:`clean_attrs`). Returns an :class:`arviz.InferenceData` (0.x) or a DataTree (1.x).
    """
    groups = {"posterior": posterior}
    for name, value in (
        ("sample_stats", sample_stats),
        ("observed_data", observed_data),
        ("log_likelihood", log_likelihood),
    ):
        if value:
            groups[name] = value
    attrs = clean_attrs(attrs)
    if ARVIZ_1:
        idata = az.from_dict(groups, dims=dims, coords=coords)
        for name in groups:
            idata[name].attrs.update(attrs)
        return idata
    idata = az.from_dict(**groups, dims=dims, coords=coords)
    for name in groups:
        getattr(idata, name).attrs.update(attrs)
    return idata


def update_attrs(idata, attrs: dict) -> None:
    """Add ``attrs`` (cleaned by :func:`clean_attrs`) to every group, in place.

    (:func:`group` returns a copy under arviz 1.x, so attributes set on it would be lost.)
    """
    attrs = clean_attrs(attrs)
    for name in group_names(idata):
        if ARVIZ_1:
            idata[name].attrs.update(attrs)
        else:
            getattr(idata, name).attrs.update(attrs)


def group_names(idata) -> list[str]:
    """The names of the groups present."""
    if ARVIZ_1:
        return list(idata.children)
    return list(idata.groups())


def group(idata, name: str):
    """A group as an :class:`xarray.Dataset` (KeyError if absent)."""
    if name not in group_names(idata):
        raise KeyError(f"the results have no {name!r} group; present: {group_names(idata)}")
    if ARVIZ_1:
        return idata[name].to_dataset()
    return getattr(idata, name)


#: Columns of :func:`summary`, in the order of arviz 0.x.
SUMMARY_COLUMNS = [
    "mean", "sd", "hdi_3%", "hdi_97%", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"
]  # fmt: skip


def summary(idata, var_names=None, round_to=None):
    """:func:`arviz.summary` as a plain pandas DataFrame with the same columns under both ArviZ
    versions (:data:`SUMMARY_COLUMNS`: mean, sd, the 94 % HDI as ``hdi_3%``/``hdi_97%``, MCSE,
    bulk and tail ESS, rank-normalised r-hat), unrounded unless ``round_to`` (decimals) is
    given."""
    import pandas as pd

    if ARVIZ_1:
        table = az.summary(idata, var_names=var_names, ci_kind="hdi", ci_prob=0.94, round_to="none")
        table = pd.DataFrame(table).rename(columns={"hdi94_lb": "hdi_3%", "hdi94_ub": "hdi_97%"})
    else:
        table = az.summary(idata, var_names=var_names, round_to="none")
    table = pd.DataFrame(table)[SUMMARY_COLUMNS].astype(float)
    return table if round_to is None else table.round(round_to)


#: Fewest posterior draws (all chains) for PSIS-LOO: Pareto smoothing fits the largest
#: ``min(n / 5, 3 sqrt(n))`` importance ratios, which needs a tail of a few draws (ArviZ 1.x
#: fails with an IndexError below about 10 draws; 0.x returns a meaningless number).
LOO_MIN_DRAWS = 20


@dataclass(frozen=True)
class LooResult:
    """PSIS-LOO under either ArviZ version: the expected log pointwise predictive density,
    its standard error, the effective number of parameters, the Pareto k of every point and
    ArviZ's own result object."""

    elpd_loo: float
    se: float
    p_loo: float
    pareto_k: np.ndarray
    result: object


def loo(idata, **kwargs) -> LooResult:
    """:func:`arviz.loo` (PSIS-LOO) from the ``log_likelihood`` group, as a :class:`LooResult`.

    Raises :class:`~bayesifu.errors.InputError` for fewer than :data:`LOO_MIN_DRAWS` draws.
    """
    from .errors import InputError

    ll = group(idata, "log_likelihood")
    n = min(int(v.sizes["chain"] * v.sizes["draw"]) for v in ll.data_vars.values())
    if n < LOO_MIN_DRAWS:
        raise InputError(
            f"PSIS-LOO needs at least {LOO_MIN_DRAWS} posterior draws (all chains), got {n}; "
            "draw more samples"
        )
    res = az.loo(idata, **kwargs)
    if ARVIZ_1:
        return LooResult(
            float(res.elpd), float(res.se), float(res.p), np.asarray(res.pareto_k), res
        )
    return LooResult(
        float(res["elpd_loo"]),
        float(res["se"]),
        float(res["p_loo"]),
        np.asarray(res["pareto_k"]),
        res,
    )


def to_netcdf(idata, path) -> str:
    """Write the results to a netCDF file, whole or not at all; returns the path."""
    from ._files import write_atomic

    return str(write_atomic(path, lambda tmp: idata.to_netcdf(tmp)))


def from_netcdf(path):
    """Read results written by :func:`to_netcdf`."""
    if ARVIZ_1:
        import xarray as xr

        return xr.open_datatree(str(path))
    return az.from_netcdf(str(path))


def plot_pair(idata, var_names=None, **kwargs):
    """:func:`arviz.plot_pair` (arviz 0.x; returns its array of matplotlib axes)."""
    if ARVIZ_1:
        raise NotImplementedError("plot_pair wraps arviz 0.x; bayesifu.plots draws its own")
    return az.plot_pair(idata, var_names=var_names, **kwargs)
