"""Levenberg-Marquardt fit with the covariance that lmfit would report, for comparison only.

The fit minimises :math:`\\chi^2 = r^T r` with :func:`scipy.optimize.least_squares`
(``method="lm"``, MINPACK; More 1978, doi:10.1007/BFb0067700), where the residual vector ``r`` is
whitened by the likelihood (:meth:`MapLikelihood.whiten`) or divided by per-point errors. The
parameter covariance is the one lmfit (Newville et al., doi:10.5281/zenodo.11813) reports by
default: :math:`(J^T J)^{-1}` scaled by the reduced chi-square :math:`\\chi^2 / (n - p)`
(``scale_covar=True``). Where :math:`J^T J` is singular to working precision this module returns
``None`` for the covariance and errors, as lmfit does, and says why in :attr:`LMResult.note`.

These errors assume a locally linear model and a Gaussian likelihood, and the rescaling by the
reduced chi-square hides a wrong noise model: they are the baseline that the posteriors of
:func:`bayesifu.sample` are compared against, not a substitute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import least_squares

from .errors import BayesifuError, EmptyDataError, InputError, SamplingError

__all__ = [
    "LMResult",
    "lm_fit",
    "disk_moment_start",
    "disk_lm_search",
    "disk_lm_fits",
    "disk_lm_fit",
    "disk_residual_scatter",
]


@dataclass
class LMResult:
    """Result of :func:`lm_fit`.

    Attributes
    ----------
    values : dict
        Best-fit value of each parameter.
    errors : dict or None
        One-sigma errors (square roots of the covariance diagonal); ``None`` when singular.
    covariance : numpy.ndarray or None
        Scaled covariance ``(p, p)`` in the order of :attr:`names`; ``None`` when singular.
    names : list of str
        Parameter names.
    chi2, redchi : float
        Chi-square at the optimum and chi-square per degree of freedom.
    n, dof : int
        Number of residuals and ``n - p``.
    success : bool
        Whether MINPACK reported convergence.
    message : str
        MINPACK's message.
    note : str
        Why the covariance is missing, or an empty string.
    nfev : int
        Number of residual evaluations.
    seconds : float
        Wall-clock time of the fit [s].
    start : str
        Which start the fit began from (set by :func:`disk_lm_search`), or empty.
    """

    values: dict
    errors: dict | None
    covariance: np.ndarray | None
    names: list
    chi2: float
    redchi: float
    n: int
    dof: int
    success: bool
    message: str
    note: str = ""
    nfev: int = 0
    seconds: float = 0.0
    start: str = ""
    jacobian: np.ndarray = field(default=None, repr=False)


def _covariance(jac: np.ndarray, redchi: float, scale_covar: bool):
    """Return ``(covariance, note)``: lmfit's scaled :math:`(J^T J)^{-1}`, ``None`` if singular."""
    s = np.linalg.svd(jac, compute_uv=False)
    tol = s.max() * max(jac.shape) * np.finfo(float).eps if s.size else 0.0
    rank = int(np.sum(s > tol))
    if rank < jac.shape[1]:
        return None, (
            f"J^T J is singular: rank {rank} < {jac.shape[1]} parameters (condition number of J "
            f"{s.max() / max(s.min(), 1e-300):.3g}); lmfit reports no covariance in this case. "
            "Reparametrise (e.g. an orthogonal basis) or sample the posterior with bayesifu.sample"
        )
    cov = np.linalg.inv(jac.T @ jac)
    if scale_covar:
        cov = cov * redchi
    if not np.all(np.diag(cov) > 0):
        return None, "the inverse of J^T J has non-positive diagonal entries (round-off)"
    return cov, ""


def lm_fit(
    fun: Callable[[Mapping[str, float]], jnp.ndarray],
    p0: Mapping[str, float],
    *,
    lik=None,
    data=None,
    sigma=None,
    scale_covar: bool = True,
    jac: str = "jax",
    **kwargs,
) -> LMResult:
    """Levenberg-Marquardt fit of ``fun(params) -> model`` to data; lmfit-style covariance.

    Parameters
    ----------
    fun : callable
        Maps a dict of parameter values to the model vector (on ``lik``'s used spaxels, or
        matching ``data``). Must be traceable by JAX when ``jac="jax"``.
    p0 : dict
        Starting values, one per parameter.
    lik : MapLikelihood, optional
        The likelihood whose whitening defines the residuals, :math:`r = L^{-1}(d - m)`.
    data, sigma : array_like, optional
        Without ``lik``: data vector and per-point errors (default 1), :math:`r = (d - m)/\\sigma`.
    scale_covar : bool
        Scale :math:`(J^T J)^{-1}` by the reduced chi-square, like lmfit (default True).
    jac : {"jax", "2-point", "3-point"}
        Jacobian by forward-mode JAX differentiation or by finite differences.
    **kwargs
        Passed to :func:`scipy.optimize.least_squares` (e.g. ``x_scale``, ``max_nfev``).

    Returns
    -------
    LMResult
    """
    names, x0 = _start_vector(p0)
    resid = _residual_function(fun, names, lik, data, sigma)
    resid_jit = jax.jit(resid)
    n = _count_residuals(resid_jit, x0, len(names))
    jac_arg = _jacobian_arg(resid, jac, lik)
    start = time.perf_counter()
    sol = least_squares(_finite_residuals(resid_jit), x0, jac=jac_arg, method="lm", **kwargs)
    seconds = time.perf_counter() - start
    return _result(sol, names, n, seconds, scale_covar)


def _start_vector(p0):
    """The parameter names and their finite starting values as a vector."""
    names = list(p0)
    if not names:
        raise InputError("lm_fit: p0 has no parameters")
    x0 = np.array([float(p0[k]) for k in names])
    if not np.all(np.isfinite(x0)):
        raise InputError(f"lm_fit: starting values must be finite, got {dict(p0)}")
    return names, x0


def _residual_function(fun, names, lik, data, sigma):
    """The residuals ``theta -> r``: whitened by ``lik``, or ``(data - model) / sigma``."""
    if lik is not None:
        d = jnp.asarray(lik.data)

        def resid(theta):
            return lik.whiten(d - fun(dict(zip(names, theta, strict=True))))

        return resid
    if data is None:
        raise InputError("lm_fit: give either lik (a MapLikelihood) or data (and sigma)")
    d = jnp.asarray(data, dtype=float).ravel()
    err = jnp.ones_like(d) if sigma is None else jnp.asarray(sigma, dtype=float).ravel()

    def resid(theta):
        return (d - jnp.ravel(fun(dict(zip(names, theta, strict=True))))) / err

    return resid


def _count_residuals(resid, x0, n_params):
    """Number of residuals at ``x0``; raise when they cannot constrain the parameters."""
    n = int(np.size(resid(jnp.asarray(x0))))
    if n <= n_params:
        raise EmptyDataError(
            f"lm_fit: {n} residuals cannot constrain {n_params} parameters; need more data"
        )
    return n


def _jacobian_arg(resid, jac, lik):
    """``jac`` for :func:`scipy.optimize.least_squares`: JAX's Jacobian for ``"jax"``."""
    if jac != "jax":
        return jac
    # the banded solves define only a reverse-mode derivative (custom_vjp)
    banded = getattr(lik, "method", None) == "banded"
    jac_fn = jax.jit(jax.jacrev(resid) if banded else jax.jacfwd(resid))

    def jac_arg(t):
        return np.asarray(jac_fn(jnp.asarray(t)))

    return jac_arg


def _finite_residuals(resid):
    """``resid`` on numpy vectors; raise :class:`SamplingError` where it is not finite."""

    def res_np(t):
        r = np.asarray(resid(jnp.asarray(t)))
        if not np.all(np.isfinite(r)):
            raise SamplingError(f"lm_fit: non-finite residuals at parameters {t.tolist()}")
        return r

    return res_np


def _result(sol, names, n, seconds, scale_covar):
    """The :class:`LMResult` of the solution ``sol`` of ``n`` residuals."""
    chi2 = float(np.sum(sol.fun**2))
    dof = n - len(names)
    redchi = chi2 / dof
    cov, note = _covariance(np.asarray(sol.jac), redchi, scale_covar)
    errors = None if cov is None else dict(zip(names, np.sqrt(np.diag(cov)), strict=True))
    return LMResult(
        values=dict(zip(names, sol.x, strict=True)),
        errors=errors,
        covariance=cov,
        names=names,
        chi2=chi2,
        redchi=redchi,
        n=n,
        dof=dof,
        success=bool(sol.success),
        message=str(sol.message),
        note=note,
        nfev=int(sol.nfev),
        seconds=seconds,
        jacobian=np.asarray(sol.jac),
    )


def _spaxel_values(lik):
    """Coordinates and values of the data on spaxels: a binned map's value on each member."""
    x, y = np.asarray(lik.x, dtype=float), np.asarray(lik.y, dtype=float)
    values = np.asarray(lik.data, dtype=float)
    if hasattr(lik, "to_map") and values.size != x.size:
        values = np.asarray(lik.to_map(values)).ravel()[np.asarray(lik.index)]
    return x, y, values


def disk_moment_start(lik) -> dict:
    r"""A thin-disk starting point from the data's own moments.

    The centre is the centroid of the used spaxels and ``vsys`` the median velocity. The
    receding major axis is the direction of the velocity gradient of a least-squares plane
    :math:`v = a + b\,x + c\,y`, so :math:`PA = \operatorname{atan2}(-b, c)` in the convention of
    :mod:`bayesifu.kinematics`. The inclination comes from the axis ratio :math:`q` of the
    footprint's second moments, :math:`\cos i = q`, clipped to [25, 75] deg (a round IFU
    footprint says little); ``vmax`` is half the 5-95 percentile range of the velocities divided
    by :math:`\sin i`, clipped to [20, 600] km/s; ``rt`` is a quarter of the footprint's radius.

    Parameters
    ----------
    lik : MapLikelihood or BinnedMapLikelihood
        The velocity map (``x``, ``y``, ``data``; a binned map's values are put on its spaxels).

    Returns
    -------
    dict
        ``x0, y0, pa, inc, vsys, vmax, rt`` [spaxel, deg, km/s].
    """
    x, y, v = _spaxel_values(lik)
    if x.size < 3:
        raise EmptyDataError(f"disk_moment_start: {x.size} spaxel(s) cannot give a start")
    x0, y0 = float(np.mean(x)), float(np.mean(y))
    design = np.column_stack([np.ones_like(x), x - x0, y - y0])
    _, b, c = np.linalg.lstsq(design, v, rcond=None)[0]
    lam = np.linalg.eigvalsh(np.cov(np.vstack([x, y])))
    q = float(np.sqrt(max(lam[0], 0.0) / lam[1])) if lam[1] > 0 else 1.0
    inc = float(np.clip(np.degrees(np.arccos(min(q, 1.0))), 25.0, 75.0))
    amplitude = 0.5 * float(np.subtract(*np.percentile(v, [95, 5])))
    radius = float(np.sqrt(np.max((x - x0) ** 2 + (y - y0) ** 2)))
    return {
        "x0": x0,
        "y0": y0,
        "pa": float(np.degrees(np.arctan2(-b, c)) % 360.0),
        "inc": inc,
        "vsys": float(np.median(v)),
        "vmax": float(np.clip(amplitude / np.sin(np.radians(inc)), 20.0, 600.0)),
        "rt": max(1.0, 0.25 * radius),
    }


def _normalise_disk(values: dict) -> None:
    """Map ``inc`` into [0, 90] deg, a negative ``vmax`` to a positive one (PA + 180 deg) and the
    PA into [0, 360), in place: the same velocity field."""
    inc = (values["inc"] + 180.0) % 360.0 - 180.0
    if inc < 0:  # sin i changes sign, cos i does not
        inc, values["vmax"] = -inc, -values["vmax"]
    values["inc"] = min(inc, 180.0 - inc)  # only sin i and cos^2 i enter
    if values["vmax"] < 0:
        values["vmax"], values["pa"] = -values["vmax"], values["pa"] + 180.0
    values["pa"] = values["pa"] % 360.0


def disk_lm_search(lik, pa_starts=None, *, domain=True):
    """Levenberg-Marquardt thin-disk fits from several starts, with what became of each start.

    The starts are :func:`disk_moment_start` and the same with its PA turned by 90, 180 and 270
    deg (or, with ``pa_starts``, the moment start at each of those PAs). The Jacobian is JAX's
    (see :func:`lm_fit`). For a binned map (:class:`~bayesifu.likelihood.BinnedMapLikelihood`) the
    model is averaged over each bin.

    Parameters
    ----------
    lik : MapLikelihood or BinnedMapLikelihood
        The velocity map and its covariance (the residuals are whitened by it).
    pa_starts : sequence of float, optional
        Starting position angles [deg] instead of the moment PA and its turns.
    domain : bool
        Keep only the fits inside the disk model's domain (5 < inc < 85 deg, rt > 0); False
        keeps every fit that converged (e.g. to show that the inclination runs to 0).

    Returns
    -------
    fits : list of LMResult
        Best (lowest chi-square) first; ``start`` names the start of each. ``inc`` is mapped
        into [0, 90] deg, a negative ``vmax`` made positive (PA + 180 deg) and the PA wrapped
        into [0, 360); the errors refer to the values before these changes of sign.
    failures : list of str
        One line for each start that gave no usable fit, saying why.
    """
    from .kinematics import DiskParams, disk_velocity

    x = jnp.asarray(lik.x, dtype=float)
    y = jnp.asarray(lik.y, dtype=float)
    to_data = getattr(lik, "bin_model", lambda v: v)  # binned map: average over each bin
    moments = disk_moment_start(lik)
    if pa_starts is None:
        starts = [(f"moments, PA {moments['pa']:.0f} + {turn}", moments["pa"] + turn)
                  for turn in (0, 90, 180, 270)]  # fmt: skip
    else:
        starts = [(f"moments, PA {float(pa):.0f}", float(pa)) for pa in pa_starts]
    fits, failures = [], []
    for label, pa in starts:
        guess = {**moments, "pa": pa % 360.0}
        try:
            fit = lm_fit(lambda p: to_data(disk_velocity(x, y, DiskParams(**p))), guess, lik=lik)
        except BayesifuError as err:  # this start leaves the model's domain; try the next
            failures.append(f"{label}: {err}")
            continue
        _normalise_disk(fit.values)
        fit.start = label
        v = fit.values
        if not fit.success:
            failures.append(f"{label}: MINPACK did not converge ({fit.message})")
        elif domain and not (5 < v["inc"] < 85 and v["rt"] > 0):
            failures.append(
                f"{label}: left the disk's domain (inc {v['inc']:.1f} deg, rt {v['rt']:.2g})"
            )
        else:
            fits.append(fit)
    return sorted(fits, key=lambda f: f.chi2), failures  # stable: ties keep the starts' order


def disk_lm_fits(lik, pa_starts=None, *, domain=True) -> list[LMResult]:
    """The fits of :func:`disk_lm_search` (best first; empty if none), without the failures."""
    return disk_lm_search(lik, pa_starts, domain=domain)[0]


def disk_lm_fit(lik, pa_starts=None) -> LMResult | None:
    """The best of :func:`disk_lm_fits` (moment start and its PA turned by 90, 180, 270 deg), or
    None when no start converged inside the disk's domain."""
    fits = disk_lm_fits(lik, pa_starts)
    return fits[0] if fits else None


def disk_residual_scatter(lik, fit: LMResult) -> tuple[float, float]:
    """Residual RMS of a disk fit and the intrinsic scatter that best explains it.

    The disk of ``fit.values`` is evaluated on the likelihood's points (averaged over the bins
    of a binned likelihood). Returns ``(rms, tau)``: the RMS of the data minus that model, and
    the scatter :math:`\\tau` in ``[1e-3 rms, rms]`` that maximises ``lik.log_prob(model,
    scatter=tau)`` [data unit]. With an independent likelihood this is the white scatter that
    the fit's residuals call for: a start value and a prior scale for the sampler.
    """
    from scipy.optimize import minimize_scalar

    from .kinematics import DiskParams, disk_velocity

    x, y = np.asarray(lik.x, dtype=float), np.asarray(lik.y, dtype=float)
    mu = disk_velocity(x, y, DiskParams(**fit.values))
    mu = lik.bin_model(mu) if hasattr(lik, "bin_model") else mu
    rms = float(np.sqrt(np.mean((np.asarray(lik.data) - np.asarray(mu)) ** 2)))
    best = minimize_scalar(
        lambda t: -float(lik.log_prob(mu, scatter=t)), bounds=(1e-3 * rms, rms), method="bounded"
    )
    return rms, float(best.x)
