"""SED fitting: the Calzetti curve, the forward model against numpy, the model program, the
independent-bins variant, posterior maps with WCS, and NUTS on simulated binned SEDs."""

import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro import handlers

from bayesifu.errors import InputError, ShapeError
from bayesifu.sedmodel import (
    SEDBasis,
    band_weights,
    calzetti_attenuation,
    calzetti_k,
    independent_bins,
    sed_flux,
    sed_maps,
)


def _calzetti_reference(wave_angstrom, r_v=4.05):
    """Eq. 4 of Calzetti et al. (2000), written out again with lambda in micron."""
    lam = np.asarray(wave_angstrom, float) / 1e4
    out = np.empty_like(lam)
    blue = lam < 0.63
    lb = lam[blue]
    out[blue] = 2.659 * (-2.156 + 1.509 / lb - 0.198 / lb**2 + 0.011 / lb**3) + r_v
    out[~blue] = 2.659 * (-1.857 + 1.040 / lam[~blue]) + r_v
    return out


def test_calzetti_curve_values():
    # The values quoted from this curve at the Balmer lines (air: k(Halpha) = 3.33,
    # k(Hbeta) = 4.60), R'_V at V and E(B-V) normalisation k(B) - k(V) = 1 (to the paper's
    # rounding, 0.02).
    assert float(calzetti_k(6562.8)) == pytest.approx(3.33, abs=0.005)
    assert float(calzetti_k(4861.3)) == pytest.approx(4.60, abs=0.005)
    assert float(calzetti_k(5500.0)) == pytest.approx(4.05, abs=0.005)
    assert float(calzetti_k(4400.0) - calzetti_k(5500.0)) == pytest.approx(1.0, abs=0.02)
    wave = np.array([1200.0, 1500.0, 2200.0, 3000.0, 6299.0, 6301.0, 10000.0, 22000.0])
    np.testing.assert_allclose(np.asarray(calzetti_k(wave)), _calzetti_reference(wave), rtol=1e-13)
    # the curve falls with wavelength, and the two branches meet at 0.63 micron to 0.025
    k = np.asarray(calzetti_k(np.linspace(1200.0, 22000.0, 500)))
    assert np.all(np.diff(k) < 0)
    assert abs(float(calzetti_k(6299.999) - calzetti_k(6300.0))) < 0.03


def test_calzetti_range_and_negative_av_are_refused():
    with pytest.raises(InputError, match="validity range"):
        calzetti_k([1000.0, 5000.0])
    with pytest.raises(InputError, match="validity range"):
        calzetti_k(25000.0)
    with pytest.raises(InputError, match="A_V must be >= 0"):
        calzetti_attenuation([5000.0], -0.1)
    att = np.asarray(calzetti_attenuation(np.array([5500.0]), np.array([0.0, 1.0])))
    np.testing.assert_allclose(att[:, 0], [1.0, 10 ** (-0.4 * float(calzetti_k(5500.0)) / 4.05)])


def _toy_basis(z=0.05, filters=True, z_range=None):
    rest = np.linspace(3000.0, 10000.0, 1401)
    flux = np.stack(
        [1.0 + 0.5 * np.sin(rest / 300.0) ** 2, np.exp(-(((rest - 6000.0) / 2500) ** 2))]
    )
    wave = np.linspace(4000.0, 9000.0, 251)
    w = None
    if filters:
        edges = np.linspace(4100.0, 8900.0, 5)
        bands = [(wave >= a) & (wave < b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        w = band_weights(wave, bands)
    basis = SEDBasis.from_templates((rest, flux), wave, z=z if z_range is None else z_range,
                                    filters=w)  # fmt: skip
    return basis, rest, flux, wave, w


def _dense_flux(rest, flux, wave, w, norm, weights, av, z):
    """Loop-by-loop numpy version of the module docstring's F_bj."""
    out = []
    for b in range(weights.shape[0]):
        lam = wave / (1 + z)
        f = np.zeros(wave.size)
        for k in range(flux.shape[0]):
            f += weights[b, k] * np.interp(lam, rest, flux[k]) / norm[k]
        f *= 10 ** (-0.4 * av[b] * _calzetti_reference(lam) / 4.05) / (1 + z)
        out.append(f if w is None else w @ f)
    return np.array(out)


@pytest.mark.parametrize("filters", [False, True])
def test_sed_flux_matches_dense_numpy(filters):
    basis, rest, flux, wave, w = _toy_basis(filters=filters, z_range=(0.0, 0.1))
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.0, 2.0, (5, 2))
    av = rng.uniform(0.0, 1.5, 5)
    for z in (0.0, 0.037, 0.1):
        got = np.asarray(sed_flux(basis, weights, av, z))
        want = _dense_flux(rest, flux, wave, w, basis.norm, weights, av, z)
        assert got.shape == (5, basis.n_channels)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # normalisation: at z_ref without dust a unit weight has unit mean flux over the channels
    unit = np.asarray(sed_flux(basis, np.eye(2), np.zeros(2), basis.z_ref))
    np.testing.assert_allclose(unit.mean(axis=1), 1.0, rtol=1e-12)


def test_sed_flux_gradients():
    import jax
    from jax.test_util import check_grads

    basis, *_ = _toy_basis(z_range=(0.0, 0.1))
    weights = np.array([[1.0, 0.5], [0.2, 1.3]])
    av = np.array([0.3, 0.8])
    check_grads(lambda w, a: sed_flux(basis, w, a, 0.05), (weights, av), order=1, modes="rev")
    # z: the interpolation is piecewise linear, so a central difference of the sum over 251
    # channels crosses a few kinks: agreement to 1e-3
    g = jax.grad(lambda z: sed_flux(basis, weights, av, z).sum())(0.05)
    h = 1e-7

    def total(z):
        return float(sed_flux(basis, weights, av, z).sum())

    assert float(g) == pytest.approx((total(0.05 + h) - total(0.05 - h)) / (2 * h), rel=1e-3)


def test_basis_refuses_uncovered_wavelengths_and_bad_input():
    rest = np.linspace(3000.0, 10000.0, 100)
    flux = np.ones((1, 100))
    with pytest.raises(InputError, match="template template0"):
        SEDBasis.from_templates((rest, flux), np.linspace(4000.0, 9000.0, 10), z=(0.0, 0.5))
    with pytest.raises(InputError, match="validity range"):
        SEDBasis.from_templates((np.linspace(500, 3000, 100), flux), [1000.0, 2000.0])
    with pytest.raises(InputError, match="non-negative"):
        SEDBasis.from_templates((rest, -flux), np.linspace(4000.0, 9000.0, 10))
    with pytest.raises(ShapeError, match="filters"):
        SEDBasis.from_templates((rest, flux), np.linspace(4000.0, 9000.0, 10), filters=np.eye(3))
    basis = SEDBasis.from_templates((rest, flux), np.linspace(4000.0, 9000.0, 10), z=0.1)
    with pytest.raises(InputError, match="outside the basis"):
        sed_flux(basis, np.ones((1, 1)), np.zeros(1), 0.2)


def test_shipped_templates_make_a_basis():
    from bayesifu import datasets, read_templates

    tpl = read_templates(datasets.sdss_templates())
    basis = SEDBasis.from_templates(tpl, np.linspace(3800.0, 6800.0, 300), z=(0.0, 0.05))
    assert basis.n_templates == 6 and basis.names[0] == "spDR2-023.fit"
    with pytest.raises(InputError, match="spDR2-028"):  # covers only 3000-6800 A
        SEDBasis.from_templates(tpl, np.linspace(3800.0, 8000.0, 300), z=0.0)


@pytest.fixture(scope="module")
def sim():
    from bayesifu.models import sed

    return sed.simulated_data(sigma=0.005)


def test_independent_bins_keep_the_diagonal(sim):
    from bayesifu.likelihood import BinnedSpectraLikelihood

    binned = sim[0]
    ind = independent_bins(binned)
    for k in (0, 3):
        full = binned.covariance(k).toarray()
        diag = ind.covariance(k).toarray()
        np.testing.assert_allclose(diag, np.diag(np.diag(full)), rtol=1e-14)
        assert np.max(np.abs(full - np.diag(np.diag(full)))) > 0.3 * np.max(np.diag(full))
    np.testing.assert_array_equal(ind.flux, binned.flux)
    lik_full, lik_ind = BinnedSpectraLikelihood(binned), BinnedSpectraLikelihood(ind)
    assert lik_full.n == lik_ind.n
    resid = binned.flux * 0.01
    chi2 = np.sum(resid**2 / binned.variance)
    assert float(lik_ind.chi2(binned.flux - resid)) == pytest.approx(chi2, rel=1e-10)
    with pytest.raises(InputError, match="needs BinnedSpectra"):
        independent_bins(np.zeros(3))


def test_model_sites_prior_and_forward(sim):
    from bayesifu.models import sed
    from scipy import stats

    from bayesifu.likelihood import BinnedSpectraLikelihood

    binned, basis, truth, _ = sim
    lik = BinnedSpectraLikelihood(binned)
    tr = handlers.trace(handlers.seed(sed.model, 0)).get_trace(basis, lik, mass_to_light=[2.0, 0.5])
    nb = binned.n_bins
    for name, shape in [("av", (nb,)), ("flux_obs", (nb,)), ("fractions", (nb, 2)),
                        ("flux", (nb,)), ("weights", (nb, 2)), ("mass", (nb,)),
                        ("flux_total", ()), ("av_mean", ()), ("obs", (lik.n,))]:  # fmt: skip
        assert np.shape(tr[name]["value"]) == shape, name
    v = {k: np.asarray(tr[k]["value"]) for k in tr}
    np.testing.assert_allclose(v["weights"].sum(1), v["flux"], rtol=1e-12)
    np.testing.assert_allclose(v["mass"], v["weights"] @ (np.array([2.0, 0.5]) / basis.norm))
    # the observed site evaluates the likelihood at sed_flux of the sampled parameters
    mu = np.asarray(sed_flux(basis, v["weights"], v["av"], basis.z_ref))
    assert float(tr["obs"]["fn"].log_prob(lik.data)) == pytest.approx(float(lik.log_prob(mu)))
    # flux is sampled through flux_obs, but its prior is the one given (KS against scipy)
    draws = numpyro.infer.Predictive(sed.model, num_samples=3000)(
        __import__("jax").random.PRNGKey(1), basis, None, n_bins=2,
        priors={"flux": dist.HalfNormal(2.0), "av": dist.HalfNormal(0.5)},
    )  # fmt: skip
    flux, av = np.asarray(draws["flux"]).ravel(), np.asarray(draws["av"]).ravel()
    assert stats.kstest(flux, stats.halfnorm(scale=2.0).cdf).pvalue > 1e-3
    assert stats.kstest(av, stats.halfnorm(scale=0.5).cdf).pvalue > 1e-3
    assert abs(stats.spearmanr(flux, av)[0]) < 0.06


def test_model_bad_input(sim):
    from bayesifu.models import sed

    from bayesifu.likelihood import BinnedSpectraLikelihood

    binned, basis, _, _ = sim
    lik = BinnedSpectraLikelihood(binned)
    run = handlers.seed(sed.model, 0)
    with pytest.raises(InputError, match="needs obs or n_bins"):
        run(basis)
    with pytest.raises(InputError, match="support must lie"):
        run(basis, lik, redshift=dist.Normal(0.03, 0.01))
    with pytest.raises(InputError, match="outside the basis"):
        run(basis, lik, redshift=0.5)
    other = SEDBasis.from_templates(
        (basis.rest_wave, basis.flux), basis.wave, z=basis.z_ref
    )  # no filters: 531 channels
    with pytest.raises(ShapeError, match="channels"):
        run(other, lik)


def test_sed_maps_with_wcs(sim):
    from astropy.wcs import WCS

    from bayesifu import _arviz

    binned = sim[0]
    nb = binned.n_bins
    rng = np.random.default_rng(0)
    post = {"av": rng.uniform(0, 1, (2, 50, nb)), "weights": rng.uniform(0, 1, (2, 50, nb, 2))}
    idata = _arviz.to_inference_data(post)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.cdelt = [-0.5 / 3600, 0.5 / 3600]
    hdul = sed_maps(idata, binned.binning, wcs, names=("av", "weights"))
    names = [h.name for h in hdul[1:]]
    assert names[:4] == ["AV_MEDIAN", "AV_SD", "AV_P16", "AV_P84"]
    assert "WEIGHT1_P84" in names and len(names) == 12
    img = hdul["AV_MEDIAN"].data
    assert img.shape == binned.binning.shape
    want = binned.binning.reconstruct(np.median(post["av"].reshape(-1, nb), axis=0))
    np.testing.assert_allclose(img, want)
    assert WCS(hdul["AV_SD"].header).wcs.ctype[0] == "RA---TAN"
    assert hdul["AV_MEDIAN"].header["BUNIT"] == "mag"
    with pytest.raises(InputError, match="no variable"):
        sed_maps(idata, binned, names=("mass",))


@pytest.mark.slow
def test_nuts_recovers_simulated_binned_seds(sim):
    """Joint fit of 16 bins with the exact covariance between bins (bin_spectra of a simulated
    cube with Gaussian spatial correlation): every A_V and flux within 4 posterior sd of the
    truth, the chain converged."""
    from bayesifu.models import sed

    from bayesifu import _arviz
    from bayesifu.likelihood import BinnedSpectraLikelihood
    from bayesifu.sampling import sample

    binned, basis, truth, _ = sim
    lik = BinnedSpectraLikelihood(binned)
    idata = sample(sed.model, basis, lik, chains=1, draws=300, warmup=300, check="ignore")
    post = _arviz.group(idata, "posterior")
    for name, true in (("av", truth["av"]), ("flux", truth["weights"].sum(1))):
        d = np.asarray(post[name]).reshape(-1, binned.n_bins)
        zscore = (d.mean(0) - true) / d.std(0)
        assert np.all(np.abs(zscore) < 4), (name, zscore)
    assert int(np.asarray(_arviz.group(idata, "sample_stats")["diverging"]).sum()) <= 3
    hdul = sed_maps(idata, binned)
    assert np.isfinite(hdul["FLUX_MEDIAN"].data).all()


@pytest.mark.slow
def test_free_redshift_is_recovered_from_binned_spectra():
    """A free shared redshift (``redshift=`` a distribution, the ``bayesifu sedfit --z-range``
    path): simulated binned spectra of 4 bins at z = 0.031 with correlated noise, fitted with a
    uniform prior on 0.02-0.045. The posterior has a dozen local maxima in z: chains started at
    random redshifts disagree (r-hat of z 1.83), so they start at the profile-chi-square scan's
    redshift (:func:`bayesifu.sedmodel.redshift_start`). The posterior of z then holds the truth
    within 3 sd and is much narrower than the prior, and the chains converge."""
    import numpyro.distributions as dist
    from bayesifu.models import sed
    from numpyro.infer import init_to_value

    from bayesifu import _arviz, datasets, read_templates
    from bayesifu.correlation import SpatialCorrelation
    from bayesifu.likelihood import BinnedSpectraLikelihood
    from bayesifu.sampling import sample
    from bayesifu.sedmodel import redshift_start
    from bayesifu.sedmodel.simulate import simulate_binned_seds

    tpl = read_templates([p for p in datasets.sdss_templates() if p.name == "spDR2-023.fit"])
    basis = SEDBasis.from_templates(tpl, np.geomspace(3900.0, 8600.0, 120), z=(0.02, 0.045))
    binid = (np.indices((4, 4)) // 2 * [[[2]], [[1]]]).sum(axis=0)
    corr = SpatialCorrelation.gaussian((4, 4), sigma=1.92, rlim=6.4)
    av, z_true = np.array([0.3, 0.5, 0.7, 0.4]), 0.031
    weights = np.array([[3.0], [2.0], [2.5], [1.5]])
    binned, _ = simulate_binned_seds(
        basis, binid, weights, av, z_true, sigma=0.02, correlation=corr, seed=5
    )
    z0 = redshift_start(basis, binned.flux, binned.variance)
    assert abs(z0 - z_true) < 0.001
    start = {"init_strategy": init_to_value(values={"z": z0})}
    # 1000 draws: at 400 the r-hat of z exceeded 1.01 for 2 of seeds 0-3 (1.023, 1.014), at
    # 1000 none did (max 1.0058 over z and av)
    idata = sample(sed.model, basis, BinnedSpectraLikelihood(binned), chains=2, draws=1000,
                   warmup=400, redshift=dist.Uniform(0.02, 0.045), check="raise",
                   sampler_options=start)  # fmt: skip
    z = np.asarray(_arviz.group(idata, "posterior")["z"]).ravel()
    print(f"z posterior {z.mean():.5f} +- {z.std():.5f} (truth {z_true})")
    assert abs(z.mean() - z_true) < 3 * z.std()
    assert z.std() < 0.1 * (0.045 - 0.02) / np.sqrt(12)


def test_redshift_scan_is_nonnegative_least_squares_per_bin():
    """The profile chi-square at each redshift equals scipy's NNLS of every bin, minimised over
    the A_V values, summed over bins (two templates, three bins, one with a negative LS weight)."""
    from scipy.optimize import nnls

    from bayesifu.sedmodel import redshift_scan, sed_flux

    basis = _toy_basis(filters=False, z_range=(0.03, 0.07))[0]
    rng = np.random.default_rng(3)
    g = np.asarray(sed_flux(basis, np.eye(2), np.zeros(2), 0.05))
    flux = np.array([[1.0, 0.5], [0.2, 1.3], [1.0, -0.3]]) @ g
    flux += 0.05 * rng.standard_normal(flux.shape)
    variance = np.full(flux.shape, 0.05**2)
    z_grid, chi2 = redshift_scan(basis, flux, variance, n_z=7, av=(0.0, 0.7))
    for z, got in zip(z_grid, chi2, strict=True):
        best = []
        for a in (0.0, 0.7):
            t = np.asarray(sed_flux(basis, np.eye(2), np.full(2, a), z)) / 0.05
            best.append(sum(nnls(t.T, f / 0.05)[1] ** 2 for f in flux))
        np.testing.assert_allclose(got, min(best), rtol=1e-8)
    assert np.argmin(chi2) == 3  # z = 0.05, the middle of the grid
