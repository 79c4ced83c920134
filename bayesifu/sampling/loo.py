"""The ``log_likelihood`` group: the pointwise log-likelihood of each observed site at every
posterior draw, in the leave-one-out form :math:`\\log p(y_i \\mid y_{-i}, \\theta)` for the
correlated likelihoods (Buerkner, Gabry & Vehtari 2021) that PSIS-LOO needs."""

from __future__ import annotations

import jax
import numpy as np

from ..likelihood import LikelihoodDistribution
from .tracing import _trace


def _pointwise_log_likelihood(model, args, kwargs, flat_samples, names, batch=256):
    """``{site: (ndraws, n)}`` pointwise log-likelihood (LOO form for correlated likelihoods)."""
    if not names:
        return {}

    def one(draw):
        tr = _trace(model, args, kwargs, data=draw)
        out = {}
        for name in names:
            fn, value = tr[name]["fn"], tr[name]["value"]
            if isinstance(fn, LikelihoodDistribution):
                out[name] = fn.pointwise_loo()
            else:
                out[name] = (fn.base_dist if hasattr(fn, "base_dist") else fn).log_prob(value)
        return out

    fn = jax.jit(jax.vmap(one))
    ndraws = next(iter(flat_samples.values())).shape[0]
    parts = [
        fn({k: v[i : i + batch] for k, v in flat_samples.items()}) for i in range(0, ndraws, batch)
    ]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in names}
