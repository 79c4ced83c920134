"""The scatter model is an option of the map likelihoods, not of the command line (issue 15):
``scatter_model="auto"`` (white where the dense path fits) is checked against dense scipy
covariances, and ``bayesifu fit``'s likelihood is the plain ``MapLikelihood(m, corr)``."""

import numpy as np
import pytest
import scipy.stats as st

import bayesifu as bi
import bayesifu.likelihood as lk
from bayesifu.cli import build_parser
from bayesifu.cli import fit as cli_fit
from bayesifu.io import read_flux_weights

MAPS = "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
SNRG = "manga-7815-3702-SNRG.fits.gz"
SHAPE = (7, 8)
#: (scale, scatter) pairs at which the likelihoods are compared
NOISE = [(1.0, 0.0), (1.3, 0.0), (1.0, 4.0), (0.8, 15.0)]


@pytest.fixture(scope="module")
def gaussian_map():
    """A map with a positive-definite (tapered Gaussian) correlation, where ``method="auto"``
    alone would take the banded path."""
    rng = np.random.default_rng(4)
    variance = rng.uniform(0.5, 2.0, SHAPE)
    mask = np.zeros(SHAPE, bool)
    mask[0, :2] = True
    m = bi.Map(rng.normal(size=SHAPE) * np.sqrt(variance), variance, mask=mask)
    corr = bi.SpatialCorrelation.gaussian(SHAPE, sigma=1.2, rlim=4.0)
    return m, corr


def _dense(m, corr, scale, scatter, model):
    good = m.good
    r = corr.matrix.toarray()[np.ix_(good.ravel(), good.ravel())]
    sigma = np.sqrt(m.variance[good])
    if model == "correlated":
        d = np.sqrt(scale**2 * sigma**2 + scatter**2)
        return d[:, None] * r * d[None]
    return scale**2 * sigma[:, None] * r * sigma[None] + scatter**2 * np.eye(sigma.size)


def test_auto_is_white_scatter_where_the_dense_path_fits(gaussian_map, monkeypatch):
    m, corr = gaussian_map
    assert bi.CorrelatedNormal(m.data[m.good], np.sqrt(m.variance[m.good]),
                               corr.submatrix(m.good)).method == "banded"  # fmt: skip
    lik = bi.MapLikelihood(m, corr)
    assert lik.method == "eigen" and lik.dof == lik.n
    assert lik.settings["scatter_model"].startswith("white")
    mu = np.zeros(lik.n)
    for scale, scatter in NOISE:
        ref = st.multivariate_normal(mu, _dense(m, corr, scale, scatter, "white"))
        got = float(lik.log_prob(mu, scale=scale, scatter=scatter))
        np.testing.assert_allclose(got, ref.logpdf(m.data[m.good]), rtol=1e-9)
    # an explicit factorisation fixes the scatter model
    banded = bi.MapLikelihood(m, corr, method="banded")
    assert banded.settings["scatter_model"].startswith("correlated")
    ref = st.multivariate_normal(mu, _dense(m, corr, 1.1, 2.0, "correlated"))
    got = float(banded.log_prob(mu, scale=1.1, scatter=2.0))
    np.testing.assert_allclose(got, ref.logpdf(m.data[m.good]), rtol=1e-9)
    # above EIGEN_MAX_N the dense path does not fit: the banded path, scatter correlated
    monkeypatch.setattr(lk.normal, "EIGEN_MAX_N", 10)
    big = bi.MapLikelihood(m, corr)
    assert big.method == "banded" and big.settings["scatter_model"].startswith("correlated")
    # and None keeps the factorisation's own choice
    monkeypatch.undo()
    assert bi.MapLikelihood(m, corr, scatter_model=None).method == "banded"


def test_auto_scatter_model_of_binned_maps(gaussian_map):
    m, corr = gaussian_map
    binid = np.arange(m.data.size).reshape(SHAPE) // 2
    binned = bi.Map(np.repeat(m.data.ravel()[::2], 2).reshape(SHAPE),
                    np.repeat(m.variance.ravel()[::2], 2).reshape(SHAPE), binid=binid)  # fmt: skip
    lik = bi.BinnedMapLikelihood(binned, corr)
    assert lik.method == "eigen" and lik.settings["scatter_model"].startswith("white")
    assert bi.BinnedMapLikelihood(binned, corr, method="banded").method == "banded"
    with pytest.raises(bi.errors.InputError, match="scatter_model must be 'auto'"):
        bi.MapLikelihood(m, corr, scatter_model="pink")


def _models(lik):
    """A few models: zero, the data's median, a gradient, and per-spaxel noise."""
    x, y = np.asarray(lik.x, float), np.asarray(lik.y, float)
    rng = np.random.default_rng(5)
    full = x.size
    return [
        np.zeros(full),
        np.full(full, float(np.median(lik.data))),
        3.0 * (x - x.mean()) - 2.0 * (y - y.mean()),
        rng.normal(0.0, 30.0, full),
    ]


@pytest.mark.parametrize("ext", ["EMLINE_GVEL", "STELLAR_VEL"])
@pytest.mark.parametrize(
    "correlation",
    [pytest.param("gaussian", marks=pytest.mark.slow), pytest.param(SNRG, marks=pytest.mark.slow),
     "none"],
)  # fmt: skip
def test_cli_likelihood_is_the_python_likelihood(data_dir, correlation, ext):
    """``bayesifu fit``'s likelihood and the plain Python constructor give the same log_prob at
    every (model, scale, scatter) for the three kinds of correlation."""
    path = data_dir / MAPS
    choice = str(data_dir / SNRG) if correlation == SNRG else correlation
    channel = ["--channel", "Ha-6564"] if ext == "EMLINE_GVEL" else []
    args = build_parser().parse_args(
        ["fit", str(path), "--ext", ext, "--correlation", choice] + channel
    )
    m = bi.read_map(path, ext, channel="Ha-6564" if channel else None)
    cli = cli_fit.likelihood(args, m, quiet=True)
    corr = {
        "gaussian": bi.SpatialCorrelation.gaussian(m.shape, sigma=1.92, rlim=6.4),
        "none": None,
    }.get(correlation)
    if correlation == SNRG:
        corr = bi.SpatialCorrelation.from_fits(data_dir / SNRG, ext="CORREL")
    if m.is_binned:
        flux = read_flux_weights(path, m)
        assert flux is not None  # SPX_MFLUX is usable on this file
        py = bi.BinnedMapLikelihood(m, corr, flux=flux.data, spaxel_variance=flux.variance)
    else:
        py = bi.MapLikelihood(m, corr)
    assert type(cli) is type(py)
    assert cli.settings == py.settings
    expected = {"gaussian": "eigen", SNRG: "eigen", "none": "diagonal"}[correlation]
    assert cli.method == expected
    for model in _models(py):
        for scale, scatter in NOISE:
            a = float(cli.log_prob(model, scale=scale, scatter=scatter))
            b = float(py.log_prob(model, scale=scale, scatter=scatter))
            assert np.isfinite(a) and a == b, (model[:3], scale, scatter)
