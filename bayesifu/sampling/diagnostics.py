"""Convergence checks of the sampler's output: divergences, the rank-normalised split r-hat and the
bulk effective sample size (Vehtari et al. 2021, doi:10.1214/20-BA1221), the values ArviZ's
summary prints, each problem a sentence that says what to do."""

from __future__ import annotations

import numpy as np
from numpyro.diagnostics import effective_sample_size, gelman_rubin

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100


class ConvergenceWarning(UserWarning):
    """The sampler's output shows divergences, a large r-hat or a small effective sample size."""


def _listing(values: dict, fmt: str, most: int = 10) -> str:
    """``"name value, ..."`` for every entry, or the first ``most`` and how many more."""
    items = [f"{k} {fmt.format(v)}" for k, v in sorted(values.items())]
    more = len(items) - most
    return ", ".join(items[:most]) + (f" and {more} more" if more > 0 else "")


def _rank_normalised(col):
    """Split chains ``[chain, draw]`` in halves and take the normal scores of the pooled ranks:
    the input of the bulk ESS (Vehtari et al. 2021, eq. 14), the number ArviZ reports as
    ``ess_bulk``."""
    from scipy.stats import norm, rankdata

    half = col.shape[1] // 2
    split = np.concatenate([col[:, :half], col[:, col.shape[1] - half :]], axis=0)
    ranks = rankdata(split, method="average").reshape(split.shape)
    return norm.ppf((ranks - 0.375) / (split.size + 0.25))


def _rank_rhat(col) -> float:
    """Rank-normalised split r-hat, the larger of the bulk and the folded (tail) values
    (Vehtari et al. 2021, eq. 14-15): the number ArviZ reports as ``r_hat``."""
    bulk = float(gelman_rubin(_rank_normalised(col)))
    folded = float(gelman_rubin(_rank_normalised(np.abs(col - np.median(col)))))
    return max(bulk, folded)


def check_convergence(posterior: dict, latent, diverging=None, *, chains_are_walkers=False):
    """Return a list of problems (strings, each saying what to do); empty if none.

    ``posterior`` maps names to arrays ``(chain, draw, ...)``; only ``latent`` sites are checked.
    """
    problems = []
    if diverging is not None and int(np.sum(diverging)) > 0:
        problems.append(
            f"{int(np.sum(diverging))} divergent transition(s) after warmup: the posterior has "
            "regions NUTS cannot integrate; raise target_accept (e.g. 0.95), reparametrise "
            "(orthogonal basis, non-centred or narrower priors) and check the model"
        )
    worst_rhat, low_ess = {}, {}
    for name in latent:
        x = np.asarray(posterior[name], dtype=float)
        x = x.reshape(x.shape[0], x.shape[1], -1)
        if x.shape[1] < 4:
            continue
        for k in range(x.shape[2]):
            col = x[:, :, k]
            if np.ptp(col) == 0:
                continue
            label = name if x.shape[2] == 1 else f"{name}[{k}]"
            if col.shape[0] > 1:
                rhat = _rank_rhat(col)
                if not np.isfinite(rhat) or rhat > RHAT_MAX:
                    worst_rhat[label] = rhat
            with np.errstate(divide="ignore"):  # a few anticorrelated draws give tau = 0
                ess = float(effective_sample_size(_rank_normalised(col)))
            if ess < ESS_PER_CHAIN_MIN * col.shape[0]:
                low_ess[label] = ess
    if worst_rhat:
        top = _listing(worst_rhat, "{:.3f}")
        problems.append(
            f"r-hat > {RHAT_MAX} for {len(worst_rhat)} parameter(s) ({top}): the chains disagree; "
            "run longer (more warmup and draws) or more chains, and look for multimodality"
            + (" (emcee: more walkers/steps)" if chains_are_walkers else "")
        )
    if low_ess:
        top = _listing(low_ess, "{:.0f}")
        problems.append(
            f"bulk effective sample size below {ESS_PER_CHAIN_MIN} per chain for "
            f"{len(low_ess)} parameter(s) ({top}): draw more samples before trusting tails"
        )
    return problems
