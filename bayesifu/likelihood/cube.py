"""The likelihood of a cube: :class:`CubeLikelihood`, channel by channel with one spatial
correlation and per-channel variances (the factorisations of :mod:`bayesifu.likelihood.normal`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..errors import EmptyDataError, InputError, ShapeError
from .base import _LOG_2PI, _AsDistribution, loo_terms
from .factors import require_x64
from .normal import _check_sigma, _nugget_value, choose_factor

__all__ = ["CubeLikelihood"]


def _group_channels(masks):
    """Group channel indices by identical mask pattern: {pattern bytes: (mask, [channels])}."""
    groups = {}
    for k, m in enumerate(masks):
        key = np.packbits(m).tobytes()
        if key not in groups:
            groups[key] = (m, [])
        groups[key][1].append(k)
    return list(groups.values())


class CubeLikelihood(_AsDistribution):
    """Channel-by-channel likelihood of a :class:`~bayesifu.containers.Cube` with one correlation.

    Channel ``c`` has covariance :math:`D_c R D_c` with its own variances and the same correlation.
    Channels are grouped by mask pattern (the cube mask plus unusable variance): the correlation of
    each distinct pattern is factored once (a cube with a fixed mask factors once), and every
    evaluation processes a whole group as one matrix of right-hand sides. Fully masked channels
    are skipped (``chi2`` 0, ``dof_per_channel`` 0; ``dof`` is the sum over channels). The data
    and standard deviations of the used pixels are held in memory (``16 n`` bytes); a model is
    the full cube ``[nwave, ny, nx]``.

    * banded path: exact, :math:`\\log p_c` as in the module docstring with
      :math:`d = \\sqrt{s^2\\sigma_c^2 + \\tau^2}` (scatter correlated like the noise).
    * eigen path (rank-deficient correlation, factor of :math:`R` shared by the channels):
      :math:`w_c = \\Lambda_r^{-1/2} U_r^T (y_c - \\mu_c)/(s\\sigma_c)`,
      :math:`\\chi^2_c \\sim \\chi^2_r` for noise from :math:`D_c R D_c`;
      :math:`\\log p_c = -\\frac12(\\chi^2_c + \\log\\mathrm{pdet} R + 2 r \\log s +
      \\frac{2r}{n}\\sum_i \\log\\sigma_{ci} + r\\log 2\\pi)`, exact when ``r = n`` or the
      variances are uniform, otherwise off by a constant independent of the model and of
      ``s``. Intrinsic scatter is not available on this path (``scatter`` must be the number 0;
      anything else, a traced value included, raises :class:`~bayesifu.errors.InputError`).

    Parameters
    ----------
    cube : bayesifu.Cube
    correlation : bayesifu.SpatialCorrelation, optional
    channels : array_like of int, optional
        The channels to use (default all).
    method, rank_tol, nugget
        As for :class:`CorrelatedNormal` (the choice is made per mask group).
    """

    def __init__(
        self, cube, correlation=None, *, channels=None, method="auto", rank_tol=1e-8, nugget=None
    ):
        require_x64()
        nwave = cube.shape[0]
        self.shape = tuple(cube.spatial_shape)
        self.channels = np.arange(nwave) if channels is None else np.asarray(channels, int)
        if correlation is not None and tuple(correlation.shape) != self.shape:
            raise ShapeError(
                f"{cube.name}: correlation grid {tuple(correlation.shape)} does not match "
                f"the cube's spatial shape {self.shape}"
            )
        masks = [cube.channel_mask(int(k)) for k in self.channels]
        self.name = cube.name
        self.nwave = int(nwave)
        self.groups = []
        self.dof_per_channel = np.zeros(self.channels.size, int)
        for mask, members in _group_channels(masks):
            good = ~mask
            if not good.any():
                continue
            chans = self.channels[members]
            index = np.flatnonzero(good.ravel())
            data = np.stack([np.asarray(cube.flux[k], float).ravel()[index] for k in chans])
            var = np.stack([np.asarray(cube.variance[k], float).ravel()[index] for k in chans])
            sigma = np.sqrt(var)
            _check_sigma(sigma, f"{cube.name} channels {chans[0]}..{chans[-1]}")
            matrix = None if correlation is None else correlation.submatrix(good)
            if matrix is not None and nugget is not None:
                nu = _nugget_value(matrix, nugget)
                matrix = (1 - nu) * matrix + nu * sp.eye_array(index.size, format="csr")
            factor = choose_factor(matrix, np.ones(index.size), method, rank_tol, index, self.shape)
            self.dof_per_channel[members] = factor.rank
            self.groups.append(
                {
                    "members": jnp.asarray(members),
                    "channels": jnp.asarray(chans),
                    "index": jnp.asarray(index),
                    "data": jnp.asarray(data.T),
                    "sigma": jnp.asarray(sigma.T),
                    "factor": factor,
                }
            )
        if not self.groups:
            raise EmptyDataError(f"{cube.name}: every channel is fully masked; nothing to use")
        self.n_channels = int(self.channels.size)
        self.methods = sorted({g["factor"].method for g in self.groups})
        self.n = int(sum(g["data"].size for g in self.groups))
        self.dof = int(self.dof_per_channel.sum())
        self._settings = {
            "method": "+".join(self.methods),
            "n": self.n,
            "dof": self.dof,
            "n_channels": self.n_channels,
            "n_mask_groups": len(self.groups),
            "rank_tol": float(rank_tol),
            "nugget": "none" if nugget is None else str(nugget),
        }

    @property
    def data(self) -> np.ndarray:
        """The values used, shape (n,): mask group by group, channel by channel, the unmasked
        spaxels of each (the order of :meth:`pointwise_loo` and :meth:`to_map`)."""
        return np.concatenate([np.asarray(g["data"]).T.ravel() for g in self.groups])

    @property
    def settings(self) -> dict:
        """What the likelihood is, for InferenceData attrs."""
        return dict(self._settings)

    def _group_scaled(self, g, residual, scale, scatter):
        """``(r / d, d)`` of one mask group: its residual (pixels, channels) over the standard
        deviations :math:`d = \\sqrt{s^2\\sigma^2 + \\tau^2}`."""
        d = self._group_sd(g, scale, scatter)
        return self._group_values(g, residual) / d, d

    @staticmethod
    def _group_sd(g, scale, scatter):
        """The standard deviations :math:`d` (pixels, channels) of one mask group."""
        no_scatter = isinstance(scatter, int | float) and scatter == 0
        if g["factor"].method == "eigen" and not no_scatter:
            raise InputError(
                "intrinsic scatter is not available for a cube with a rank-deficient "
                "correlation (eigen path); use a nugget for the banded path"
            )
        return jnp.sqrt(scale**2 * g["sigma"] ** 2 + scatter**2)

    @staticmethod
    def _group_values(g, cube):
        """The used values of one mask group of a cube, shape (pixels, channels)."""
        mod = jnp.asarray(cube)[g["channels"]].reshape(g["channels"].size, -1)
        return mod[:, g["index"]].T

    def _group_terms(self, g, model, scale, scatter):
        """Per-channel chi2 and log-determinant of one mask group."""
        f = g["factor"]  # of the correlation alone (unit sigma): the channels scale it
        z, d = self._group_scaled(g, model, scale, scatter)
        z = g["data"] / d - z
        # r / n = 1 on the full-rank paths; on the eigen path the per-channel variances enter
        # the pseudo-determinant only through this approximation (see the class docstring).
        logdet = f.logdet() + 2 * f.rank / f.n * jnp.sum(jnp.log(d), axis=0)
        return f.chi2(z), logdet

    def chi2(self, model, scale=1.0, scatter=0.0):
        """Per-channel :math:`\\chi^2`, shape (n_channels,) (0 for fully masked channels)."""
        out = jnp.zeros(self.n_channels)
        for g in self.groups:
            c2, _ = self._group_terms(g, model, scale, scatter)
            out = out.at[g["members"]].set(c2)
        return out

    def log_prob(self, model, scale=1.0, scatter=0.0):
        """Sum over channels of the log-likelihood of ``model`` [nwave_used or nwave, ny, nx]."""
        total = 0.0
        for g in self.groups:
            c2, logdet = self._group_terms(g, model, scale, scatter)
            dof = g["factor"].rank
            total = total - 0.5 * jnp.sum(c2 + logdet + dof * _LOG_2PI)
        return total

    def whiten(self, residual, scale=1.0, scatter=0.0):
        """Whitened ``residual`` (a cube), shape (dof,): group by group, channel by channel, the
        factor's whitened values (standard normal where the model and covariance are right)."""
        parts = []
        for g in self.groups:
            z, _ = self._group_scaled(g, residual, scale, scatter)
            parts.append(g["factor"].whiten(z).T.ravel())
        return jnp.concatenate(parts)

    def simulate(self, key, model, scale=1.0, scatter=0.0):
        """One draw of data given ``model`` (a cube), shape (n,) in :attr:`data`'s order: per
        channel the model plus noise with covariance :math:`D_c R D_c`."""
        parts = []
        for g, k in zip(self.groups, jax.random.split(key, len(self.groups)), strict=True):
            f = g["factor"]
            d = self._group_sd(g, scale, scatter)
            w = jax.random.normal(k, (f.rank, g["channels"].size))
            parts.append((self._group_values(g, model) + d * f.colour(w)).T.ravel())
        return jnp.concatenate(parts)

    def pointwise_loo(self, model, scale=1.0, scatter=0.0):
        """Leave-one-out log predictive densities :math:`\\log p(y_i|y_{-i})` within each channel,
        shape (n,) in :attr:`data`'s order (the precision of :math:`D_c R D_c`, pseudo-inverse on
        the eigen path)."""
        parts = []
        for g in self.groups:
            f = g["factor"]
            z, d = self._group_scaled(g, model, scale, scatter)
            grad = f.precision(g["data"] / d - z) / d
            q = jnp.asarray(f.precision_diagonal())[:, None] / d**2
            parts.append(loo_terms(grad, q).T.ravel())
        return jnp.concatenate(parts)

    def to_map(self, values, fill=np.nan) -> np.ndarray:
        """Values in :attr:`data`'s order, shape (n,), as a cube ``[nwave, ny, nx]``."""
        values = np.asarray(values, dtype=float)
        if values.shape != (self.n,):
            raise ShapeError(f"{self.name}: values must have shape ({self.n},), got {values.shape}")
        out = np.full((self.nwave, self.shape[0] * self.shape[1]), fill, dtype=float)
        start = 0
        for g in self.groups:
            chans, index = np.asarray(g["channels"]), np.asarray(g["index"])
            block = values[start : start + chans.size * index.size].reshape(chans.size, index.size)
            out[np.ix_(chans, index)] = block
            start += block.size
        return out.reshape((self.nwave, *self.shape))

    def __repr__(self):
        return (
            f"CubeLikelihood(n={self.n}, dof={self.dof}, channels={self.n_channels}, "
            f"methods={self.methods})"
        )
