"""Sample a NumPyro model with NUTS or emcee and return ArviZ results, checked for convergence.

:func:`sample` runs a model program (see :mod:`bayesifu.models`) and returns ArviZ results with the
groups ``posterior``, ``sample_stats``, ``observed_data`` and ``log_likelihood``, and the settings
of each likelihood in the attributes. Models add their likelihood with :func:`observe`, which for a
correlated likelihood (:class:`~bayesifu.MapLikelihood`) adds an observed site whose distribution
is the likelihood (``lik.distribution(...)``), from which :func:`sample` computes, after sampling,
the *pointwise leave-one-out* log-likelihood
:math:`\\log p(y_i \\mid y_{-i}, \\theta)` of the multivariate normal (Buerkner, Gabry &
Vehtari 2021, Comput. Stat. 36, 1243, doi:10.1007/s00180-020-01045-4). Those terms, not the marginal
:math:`\\log p(y_i \\mid \\theta)`, are what PSIS-LOO (:func:`arviz.loo`) needs for a
non-factorised model.

``sampler="nuts"`` uses NumPyro's NUTS (Hoffman & Gelman 2014, arXiv:1111.4246).
``sampler="emcee"`` runs the affine-invariant ensemble sampler (Foreman-Mackey et al. 2013,
doi:10.1086/670067) on the *same* log-density: NumPyro's potential on the unconstrained space
(Jacobian included), jitted and vectorised over walkers; walkers appear as chains.

After sampling, divergent transitions, the rank-normalised split r-hat (> 1.01) and the bulk
effective sample size (< 100 per chain) are checked (Vehtari et al. 2021, doi:10.1214/20-BA1221),
the values ArviZ's summary prints; each problem gives a
:class:`ConvergenceWarning` that says what to do, or a :class:`~bayesifu.errors.SamplingError`
with ``check="raise"`` (the results are written to ``out`` first and attached to the error).
"""

from ..modelling import (
    default_scatter,
    noise_terms,
    observe,
    observed_values,
    require_points,
)
from .diagnostics import (
    RHAT_MAX,
    ConvergenceWarning,
    _rank_normalised,  # noqa: F401 (private, imported by tests from here)
    _rank_rhat,  # noqa: F401
    check_convergence,
)
from .nuts import laplace_inverse_mass
from .runner import _finish, sample  # noqa: F401 (_finish: tests)
from .tracing import predict

__all__ = [
    "sample",
    "observe",
    "noise_terms",
    "require_points",
    "observed_values",
    "default_scatter",
    "ConvergenceWarning",
    "check_convergence",
    "predict",
    "laplace_inverse_mass",
    "RHAT_MAX",
]
