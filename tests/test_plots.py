"""bayesifu.plots: every figure renders to a non-empty PNG, masks really hide spaxels, labels say
what is shown; the data come from the real 7815-3702 MAPS file where that makes sense."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy.visualization.wcsaxes import WCSAxes  # noqa: E402
from scipy import stats  # noqa: E402

import bayesifu as bi  # noqa: E402
import bayesifu.plots as bp  # noqa: E402
from bayesifu import _arviz  # noqa: E402
from bayesifu.errors import InputError, ShapeError  # noqa: E402

MAPS = "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def ha_map(data_dir):
    return bi.read_map(data_dir / MAPS, "EMLINE_GVEL", channel="Ha-6564")


@pytest.fixture(scope="module")
def stellar_map(data_dir):
    return bi.read_map(data_dir / MAPS, "STELLAR_VEL")


def save(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=50)
    assert path.stat().st_size > 1000
    return path


def grey_rgba():
    return mcolors.to_rgba(bp.MASK_COLOUR)


def test_plot_map_wcs_mask_and_colourbar(ha_map, tmp_path):
    ax = bp.plot_map(ha_map, label="H-alpha velocity", symmetric=True, title="t")
    assert isinstance(ax, WCSAxes)
    assert ax.coords[0].get_axislabel() == "RA" and ax.coords[1].get_axislabel() == "Dec"
    im = ax.images[0]
    arr = im.get_array()
    np.testing.assert_array_equal(np.ma.getmaskarray(arr), ha_map.mask)
    # Masked spaxels are drawn in the neutral grey, not a colour of the map.
    rgba = im.to_rgba(arr)
    assert np.allclose(rgba[ha_map.mask], grey_rgba())
    assert not np.any(np.all(np.isclose(rgba[~ha_map.mask], grey_rgba()), axis=-1))
    # Symmetric limits centred on 0 from the 98th percentile of |v|.
    lo, hi = im.get_clim()
    half = np.percentile(np.abs(ha_map.data[ha_map.good]), 98)
    assert lo == pytest.approx(-half) and hi == pytest.approx(half)
    cbar = ax.figure.axes[-1]
    assert cbar.get_ylabel() == "H-alpha velocity [km/s]"
    save(ax.figure, tmp_path, "map")


def test_plot_map_masked_pixels_in_rendered_image(tmp_path):
    data = np.arange(100.0).reshape(10, 10)
    mask = np.zeros((10, 10), bool)
    mask[:, :5] = True
    fig = plt.figure(figsize=(2, 2), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    bp.plot_map(data, mask=mask, ax=ax, colorbar=False)
    ax.set_axis_off()
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    grey = np.array(grey_rgba()[:3])
    left, right = img[20:-20, 20:80], img[20:-20, 120:-20]
    assert np.allclose(left, grey, atol=0.01)
    assert not np.any(np.all(np.isclose(right, grey, atol=0.01), axis=-1))


def test_plot_map_pixel_axes_and_limits(ha_map):
    data = np.where(ha_map.mask, np.nan, ha_map.data)
    ax = bp.plot_map(data, unit="km/s", label="v", vmin=-10, vmax=10)
    assert not isinstance(ax, WCSAxes)
    assert ax.get_xlabel() == "x [spaxel]" and ax.get_ylabel() == "y [spaxel]"
    assert ax.images[0].get_clim() == (-10, 10)
    np.testing.assert_array_equal(np.ma.getmaskarray(ax.images[0].get_array()), ha_map.mask)
    lo, hi = bp.plot_map(data).images[0].get_clim()
    assert (lo, hi) == pytest.approx(tuple(np.nanpercentile(data, [2, 98])))


def test_plot_map_bad_inputs():
    with pytest.raises(ShapeError, match="2-D"):
        bp.plot_map(np.zeros(5))
    with pytest.raises(ShapeError, match="mask shape"):
        bp.plot_map(np.zeros((3, 3)), mask=np.zeros((2, 2), bool))
    with pytest.raises(InputError, match="percentiles"):
        bp.plot_map(np.zeros((3, 3)), percentiles=(90, 10))


def test_plot_binmap_random_colours_and_boundaries(stellar_map, tmp_path):
    ax = bp.plot_binmap(stellar_map.binid, wcs=stellar_map.wcs)
    arr = ax.images[0].get_array()
    np.testing.assert_array_equal(np.ma.getmaskarray(arr), stellar_map.binid < 0)
    # Spaxels of one bin share a colour index; different bins get different indices.
    ids = np.unique(stellar_map.binid[stellar_map.binid >= 0])
    first = {b: arr[stellar_map.binid == b][0] for b in ids}
    for b in ids[:50]:
        assert np.all(arr[stellar_map.binid == b] == first[b])
    assert len(set(first.values())) == ids.size
    segments = ax.collections[0].get_segments()
    assert len(segments) == len(bp.bin_boundaries(stellar_map.binid)) > 0
    assert f"{ids.size} bins" in ax.get_title()
    save(ax.figure, tmp_path, "binmap")


def test_bin_boundaries_small_case():
    binid = np.array([[0, 0, 1], [-1, -1, 1]])
    segs = {tuple(map(tuple, s)) for s in bp.bin_boundaries(binid)}
    # Vertical edge between x=1 and x=2 in row 0; horizontal edges below (0,0), (0,1); none
    # between the two unused spaxels nor inside bin 1.
    assert ((1.5, -0.5), (1.5, 0.5)) in segs
    assert ((-0.5, 0.5), (0.5, 0.5)) in segs and ((0.5, 0.5), (1.5, 0.5)) in segs
    assert ((1.5, 0.5), (1.5, 1.5)) in segs
    assert len(segs) == 4


def test_plot_binmap_values_per_bin(tmp_path):
    binid = np.array([[3, 3, 7], [-1, 7, 7]])
    ax = bp.plot_binmap(binid, np.array([1.0, 2.0]), label="flux", unit="erg")
    arr = ax.images[0].get_array()
    np.testing.assert_array_equal(arr.filled(np.nan), [[1, 1, 2], [np.nan, 2, 2]])
    assert ax.figure.axes[-1].get_ylabel() == "flux [erg]"
    with pytest.raises(ShapeError, match="one value per bin"):
        bp.plot_binmap(binid, np.ones(3))
    with pytest.raises(InputError, match="integer"):
        bp.plot_binmap(np.zeros((2, 2)))
    save(ax.figure, tmp_path, "binvalues")


def test_plot_binmap_accepts_binning(stellar_map):
    b = bi.Binning(stellar_map.binid)
    ax = bp.plot_binmap(b, b.reconstruct(np.arange(b.n_bins, dtype=float)))
    assert np.ma.count_masked(ax.images[0].get_array()) == int((b.binid < 0).sum())


def test_plot_fit_panels(ha_map, tmp_path):
    y, x = np.indices(ha_map.shape)
    model = 100 * np.tanh((y - 21) / 6.0)
    whitened = np.random.default_rng(0).normal(size=ha_map.shape)
    fig = bp.plot_fit_panels(ha_map, model, whitened=whitened, label="velocity")
    axes = fig.axes[:4]
    assert all(isinstance(a, WCSAxes) for a in axes)
    assert axes[0].images[0].get_clim() == axes[1].images[0].get_clim()
    assert axes[3].images[0].get_clim() == (-3.0, 3.0)
    res = axes[2].images[0].get_array()
    np.testing.assert_allclose(res[ha_map.good], (ha_map.data - model)[ha_map.good])
    for a in axes:
        np.testing.assert_array_equal(np.ma.getmaskarray(a.images[0].get_array()), ha_map.mask)
    labels = [a.get_ylabel() for a in fig.axes[4:]]
    assert labels[0] == "velocity [km/s]" and labels[3] == "whitened residual [sigma]"
    assert "N(0, 1)" in axes[3].get_title()
    save(fig, tmp_path, "fit")
    fig3 = bp.plot_fit_panels(np.ones((4, 4)), np.zeros((4, 4)))
    assert len([a for a in fig3.axes if a.images]) == 3
    with pytest.raises(ShapeError, match="model shape"):
        bp.plot_fit_panels(ha_map, np.zeros((3, 3)))
    with pytest.raises(ShapeError, match="whitened shape"):
        bp.plot_fit_panels(ha_map, model, whitened=np.zeros(3))


def test_central_intervals_match_scipy():
    z = np.linspace(-6, 6, 4001)
    pdf = stats.norm.pdf(z)
    iv = bp.central_intervals(z, pdf)
    np.testing.assert_allclose(iv[0], stats.norm.interval(0.68), atol=2e-3)
    np.testing.assert_allclose(iv[1], stats.norm.interval(0.95), atol=2e-3)
    assert np.all(np.isnan(bp.central_intervals(z, np.zeros_like(z))))


def test_plot_pz(tmp_path):
    z = np.linspace(0.08, 0.10, 500)
    pdf = np.stack([stats.norm.pdf(z, 0.089, 3e-4), stats.norm.pdf(z, 0.090, 5e-4)])
    pdf /= pdf.sum(1, keepdims=True)
    ax = bp.plot_pz(z, pdf, ["a", "b"], truth=0.089)
    assert len(ax.lines) >= 2
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "a" in texts and any("68 %" in t for t in texts) and "true z" in texts
    lo, hi = ax.get_xlim()
    assert 0.085 < lo < 0.0875 and 0.0915 < hi < 0.094
    assert ax.get_xlabel() == "z"
    save(ax.figure, tmp_path, "pz")
    ax = bp.plot_pz(z, pdf[0], z_ref=0.089, intervals=[[[0.0888, 0.0892], [0.0884, 0.0896]]])
    assert "km/s" in ax.get_xlabel()
    with pytest.raises(ShapeError, match="pdf must have shape"):
        bp.plot_pz(z, np.ones(3))
    with pytest.raises(ShapeError, match="labels"):
        bp.plot_pz(z, pdf, ["only one"])
    with pytest.raises(ShapeError, match="truth"):
        bp.plot_pz(z, pdf, truth=[0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="increase"):
        bp.plot_pz(z[::-1], pdf)


def test_plot_pairs(tmp_path):
    rng = np.random.default_rng(0)
    idata = _arviz.to_inference_data(
        {"pa": rng.normal(163, 2, (2, 100)), "vmax": rng.normal(200, 10, (2, 100))}
    )
    fig = bp.plot_pairs(idata, var_names=["pa", "vmax"], kind="scatter")
    labels = {a.get_xlabel() for a in fig.axes} | {a.get_ylabel() for a in fig.axes}
    assert {"pa", "vmax"} <= labels
    save(fig, tmp_path, "pairs")


def test_plot_chi2_calibration(tmp_path):
    dof = 50
    values = stats.chi2(dof).rvs(size=300, random_state=1)
    ax = bp.plot_chi2_calibration(values, dof)
    patches = ax.patches
    heights = np.array([p.get_height() for p in patches])
    widths = np.array([p.get_width() for p in patches])
    assert np.sum(heights * widths) == pytest.approx(1.0)
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(y, stats.chi2(dof).pdf(x))
    text = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert f"{values.mean():.1f}" in text and f"chi^2$({dof})" in text
    save(ax.figure, tmp_path, "chi2")
    with pytest.raises(InputError, match="dof"):
        bp.plot_chi2_calibration(values, 0)
    with pytest.raises(InputError, match="finite"):
        bp.plot_chi2_calibration([np.nan, 1.0], 3)


def test_plot_pairs_units_and_ticks(tmp_path):
    """Axis labels carry units; at most PAIR_TICKS ticks per axis, x tick labels rotated."""
    from bayesifu.plots.posterior import PAIR_TICKS

    rng = np.random.default_rng(1)
    idata = _arviz.to_inference_data(
        {
            "pa": rng.normal(165, 1, (2, 100)),
            "vmax": rng.normal(200, 10, (2, 100)),
            "x0": rng.normal(20.6, 0.05, (2, 100)),
        }
    )
    units = {"pa": "deg", "vmax": "km/s", "x0": "spaxel"}
    fig = bp.plot_pairs(idata, var_names=["pa", "vmax", "x0"], kind="scatter", units=units)
    labels = {a.get_xlabel() for a in fig.axes} | {a.get_ylabel() for a in fig.axes}
    assert {"pa [deg]", "vmax [km/s]", "x0 [spaxel]"} <= labels
    assert not {"pa", "vmax", "x0"} & labels
    assert fig.axes[0].get_ylabel() == ""  # the first marginal's y axis is a density
    fig.canvas.draw()
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        shown = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert len(shown) <= PAIR_TICKS + 1, shown
        assert all(t.get_rotation() == 45 for t in ax.get_xticklabels())
    save(fig, tmp_path, "pairs_units")


def test_independent_fit_panel_is_not_called_whitened(ha_map):
    y, x = np.indices(ha_map.shape)
    model = 100 * np.tanh((y - 21) / 6.0)
    fig = bp.plot_fit_panels(ha_map, model, whitened=np.zeros(ha_map.shape),
                             titles=bp.INDEPENDENT_TITLES,
                             whitened_label="normalised residual")  # fmt: skip
    title = fig.axes[3].get_title()
    assert "C^{-1/2}" not in title and "(data - model) / sigma" in title
    assert fig.axes[7].get_ylabel() == "normalised residual [sigma]"


def test_plot_trace(tmp_path):
    """One row per parameter: per-chain histograms (left) and the draws (right), with units."""
    rng = np.random.default_rng(2)
    draws = {"pa": rng.normal(165, 1, (2, 80)), "vmax": rng.normal(200, 10, (2, 80))}
    idata = _arviz.to_inference_data(draws)
    axes = bp.plot_trace(idata, units={"pa": "deg"})
    assert axes.shape == (2, 2)
    assert axes[0, 0].get_xlabel() == "pa [deg]" and axes[1, 1].get_ylabel() == "vmax"
    for (left, right), name in zip(axes, draws, strict=True):
        assert len(right.lines) == 2  # one line per chain
        for c, line in enumerate(right.lines):
            np.testing.assert_array_equal(line.get_ydata(), draws[name][c])
        assert len(left.patches) == 2  # one step histogram per chain
    save(axes[0, 0].figure, tmp_path, "trace")
    with pytest.raises(InputError, match="'rt'"):
        bp.plot_trace(idata, var_names=["rt"])


def test_plot_redshift_maps_and_pz_zoom(tmp_path):
    """The figures of ``bayesifu redshift``: three map panels (velocity, 68 % half-width, flags)
    and two panels per spectrum (full grid, zoom with the local refinement)."""
    rng = np.random.default_rng(3)
    z_map = 0.0859 + 1e-4 * rng.normal(size=(6, 7))
    flags = np.zeros((6, 7), int)
    flags[0, :3] = 1
    fig = bp.plot_redshift_maps(z_map, np.full((6, 7), 2e-5), flags, 0.0859)
    assert len(fig.axes) == 5  # three panels and two colour bars
    assert fig.axes[2].get_title() == "flags (39 of 42 spaxels unflagged)"
    labels = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert labels == ["no flag", "NO_DATA"]
    save(fig, tmp_path, "redshift_maps")
    z = np.exp(np.linspace(np.log1p(0.08), np.log1p(0.09), 400)) - 1
    pdf = np.exp(-0.5 * ((z - 0.0859) / 2e-4) ** 2)
    pdf = np.stack([pdf / pdf.sum(), np.full(z.size, np.nan)])
    u = np.log10(1 + np.linspace(0.0857, 0.0861, 9))
    fig = bp.plot_pz_zoom(z, pdf, ["a", "b"], local_u=np.stack([u, u]),
                          local_logp=np.stack([-((u - u[4]) ** 2) * 1e8, u * np.nan]))  # fmt: skip
    assert fig.axes[0].get_title() == "a: full grid (log scale)"
    assert fig.axes[2].get_title() == "b: no data"
    assert len(fig.axes[1].lines) == 2  # grid cells and the local refinement
    save(fig, tmp_path, "pz_zoom")


def test_plot_bin_sn(tmp_path):
    flux = bi.Map(np.full((12, 12), 5.0), np.ones((12, 12)))
    bins = bi.voronoi_bins(flux, target_sn=8, correlation=bi.SpatialCorrelation.gaussian((12, 12)))
    fig = bp.plot_bin_sn(bins, title="stellar")
    assert [ax.get_title() for ax in fig.axes[:3]] == [
        "Bins (random colours)", "S/N with covariance", "S/N ignoring covariance"
    ]  # fmt: skip
    assert fig.get_suptitle().startswith(f"stellar  {bins.n_bins} bins")
    save(fig, tmp_path, "bin_sn")


def test_no_backend_is_chosen_by_the_library():
    """Importing the plotting and command modules leaves matplotlib's backend alone."""
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg');"
        "import bayesifu.plots, bayesifu.plots.redshift, bayesifu.plots.binning;"
        "import bayesifu.binning.cli_output, bayesifu.cli.redshift, bayesifu.cli.bin;"
        "import bayesifu.cli.fit;"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plot_model_fit_of_a_model_program():
    """``bayesifu fit``'s panels of a model program at given parameters: the model map is the
    plane evaluated at those values, and an independent likelihood is not called whitened."""
    from bayesifu.models import plane

    y, x = np.indices((6, 7))
    m = bi.Map(1.0 + 0.5 * x - 0.2 * y, np.full((6, 7), 0.04))
    lik = bi.MapLikelihood(m)
    params = {"z0": 1.0, "gx": 0.5, "gy": -0.2}
    fig = bp.plot_model_fit(plane.model, params, lik, m, title="plane", x_ref=0.0, y_ref=0.0)
    assert fig.get_suptitle() == "plane"
    assert "(data - model) / sigma" in fig.axes[3].get_title()
    model_image = fig.axes[1].images[0].get_array()
    np.testing.assert_allclose(np.ma.getdata(model_image), m.data, atol=1e-9)
