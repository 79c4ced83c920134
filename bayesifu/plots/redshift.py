"""Figures of redshift results (``bayesifu redshift`` writes them as PNGs): the velocity,
uncertainty and flag maps of a cube, and p(z) of a few spectra with a zoom on the peak.

Each function returns the :class:`~matplotlib.figure.Figure` it drew; write it with
:func:`~bayesifu.plots.save_figure`.
"""

from __future__ import annotations

import matplotlib.colors
import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np

from ..templates import C_KMS

__all__ = ["plot_redshift_maps", "plot_pz_zoom"]


def plot_redshift_maps(z_map, half68, flags, z_sys):
    """Three panels: velocity relative to ``z_sys`` (unflagged spaxels), 68 % half-width [km/s]
    and the flag bits (:func:`bayesifu.redshift.summary.describe_flags`).

    Parameters
    ----------
    z_map, half68 : ndarray, shape (ny, nx)
        MAP redshift and half-width of its 68 % interval.
    flags : ndarray of int, shape (ny, nx)
        Flag bits (0 = unflagged).
    z_sys : float
        Systemic redshift of the velocity panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..redshift.summary import describe_flags

    vel = C_KMS * (z_map - z_sys) / (1 + z_sys)
    ok = flags == 0
    vmax = 1.5 * np.nanpercentile(np.abs(vel[ok]), 90) if ok.any() else 1.0
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), constrained_layout=True)
    im = axes[0].imshow(
        np.where(ok, vel, np.nan), origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax
    )
    fig.colorbar(im, ax=axes[0], label=f"velocity [km/s] relative to z = {z_sys:.5f}")
    axes[0].set_title("MAP velocity (flagged spaxels blank)")
    err = C_KMS * half68 / (1 + z_sys)
    im = axes[1].imshow(
        np.where(ok, err, np.nan),
        origin="lower",
        cmap="viridis",
        vmin=0,
        vmax=np.nanpercentile(err[ok], 95) if ok.any() else 1.0,
    )
    fig.colorbar(im, ax=axes[1], label="68 % half-width [km/s]")
    axes[1].set_title("posterior uncertainty")
    values = np.unique(flags)
    cmap = matplotlib.colors.ListedColormap(plt.cm.tab10(np.arange(values.size) % 10))
    codes = np.searchsorted(values, flags)
    axes[2].imshow(codes, origin="lower", cmap=cmap, vmin=-0.5, vmax=values.size - 0.5)
    handles = [
        matplotlib.patches.Patch(
            color=cmap(i),
            label="+".join(describe_flags(v)) or "no flag",
        )
        for i, v in enumerate(values)
    ]
    axes[2].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    axes[2].set_title(f"flags ({int(ok.sum())} of {ok.size} spaxels unflagged)")
    for ax in axes:
        ax.set_xlabel("x [spaxel]")
        ax.set_ylabel("y [spaxel]")
    return fig


def plot_pz_zoom(z_grid, pdf, labels, local_u=None, local_logp=None):
    """p(z) of a few spectra: full grid (log scale) and a zoom on the main peak (linear); with
    ``local_u, local_logp [nrows, nloc]`` the zoom also shows the refined local posterior
    (rescaled to the coarse cell size). For the shaded intervals of one or a few p(z) on one
    axes see :func:`~bayesifu.plots.plot_pz`.

    Parameters
    ----------
    z_grid : ndarray, shape (nz,)
        The redshift grid (uniform in log(1+z)).
    pdf : ndarray, shape (nrows, nz)
        p(z) per grid cell of each spectrum.
    labels : list of str
        One per row.
    local_u, local_logp : ndarray, shape (nrows, nloc), optional
        The local refinement: log10(1+z) and log p.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(labels)
    fig, axes = plt.subplots(
        n, 2, figsize=(12, 3.0 * max(n, 1)), squeeze=False, constrained_layout=True
    )
    du = np.log10(1 + z_grid[1]) - np.log10(1 + z_grid[0])
    for row, (p, label) in enumerate(zip(pdf, labels, strict=True)):
        loc = None if local_u is None else (local_u[row], local_logp[row])
        ax_full, ax_zoom = axes[row]
        if not np.isfinite(p).all():
            ax_full.set_title(f"{label}: no data")
            continue
        ax_full.semilogy(z_grid, np.maximum(p, 1e-300), lw=0.8)
        ax_full.set_ylim(max(p.max() * 1e-30, 1e-300), p.max() * 3)
        ax_full.set_xlabel("z")
        ax_full.set_ylabel("p(z) per grid cell")
        ax_full.set_title(f"{label}: full grid (log scale)")
        k = int(np.argmax(p))
        width = max(30, int(np.sum(p > p[k] * 1e-3)) * 2)
        sl = slice(max(k - width, 0), min(k + width, p.size))
        vel = C_KMS * (z_grid[sl] - z_grid[k]) / (1 + z_grid[k])
        ax_zoom.step(vel, p[sl], where="mid", label="grid cells")
        if loc is not None and np.isfinite(loc[1]).any():
            lp = np.where(np.isfinite(loc[1]), loc[1], -np.inf)
            fine = np.exp(lp - lp.max())
            fine *= (len(loc[0]) - 1) / (loc[0][-1] - loc[0][0]) * du / fine.sum()
            v_loc = C_KMS * (10 ** loc[0] - 1 - z_grid[k]) / (1 + z_grid[k])
            ax_zoom.plot(v_loc, fine, color="C3", label="local refinement (x8)")
            margin = C_KMS * np.log(10) * du
            ax_zoom.set_xlim(v_loc[0] - margin, v_loc[-1] + margin)
        ax_zoom.legend(fontsize=8)
        ax_zoom.set_xlabel(f"velocity relative to z = {z_grid[k]:.5f} [km/s]")
        ax_zoom.set_ylabel("p(z) per grid cell")
        ax_zoom.set_title(f"zoom on the peak (grid step {C_KMS * np.log(10) * du:.0f} km/s)")
    return fig
