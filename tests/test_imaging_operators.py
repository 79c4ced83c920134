"""Matching operators: PSF convolution and exact overlap reprojection as sparse T, with the
covariance T C T^T checked against dense numpy, reproject_exact and Monte Carlo noise draws."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.signal import convolve2d

import bayesifu as bi
from bayesifu.errors import EmptyDataError, InputError
from bayesifu.imaging import (
    FWHM_PER_SIGMA,
    GaussianPSF,
    Image,
    ImagePSF,
    MoffatPSF,
    convolution_operator,
    degrade_cube,
    load_band,
    match_image,
    match_images,
    matching_kernel,
    overlap_operator,
    tan_wcs,
)

CENTER = (150.0, 2.0)


def test_gaussian_kernel_has_the_difference_of_variances():
    k = matching_kernel(1.0, 1.5, 0.1, nsigma=6)
    c = np.arange(k.shape[0]) - k.shape[0] // 2
    var = np.sum(k * c[None] ** 2) * 0.1**2  # along x [arcsec^2]
    expect = (1.5**2 - 1.0**2) / FWHM_PER_SIGMA**2 + 0.1**2 / 12  # plus the pixel window
    assert var == pytest.approx(expect, rel=1e-3)
    assert k.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(matching_kernel(1.0, 1.0, 0.2), [[1.0]])


def test_narrower_target_is_refused_naming_the_input():
    with pytest.raises(InputError, match="r-band.*broader than the target"):
        matching_kernel(1.5, 1.0, 0.2, name="r-band")
    with pytest.raises(InputError, match="broader than the target"):
        matching_kernel(MoffatPSF(1.6), GaussianPSF(1.2), 0.2)


def test_image_psf_kernel_matches_the_gaussian_one():
    src = ImagePSF(GaussianPSF(1.0).image(0.2, 41), 0.2)
    assert src.fwhm == pytest.approx(1.0, rel=0.02)
    k_img = matching_kernel(src, GaussianPSF(1.6), 0.2, size=41)
    k_gau = matching_kernel(1.0, 1.6, 0.2, size=41)
    assert np.abs(k_img - k_gau).max() < 0.02 * k_gau.max()


def test_convolution_operator_is_convolve2d_in_the_interior_and_renormalised_at_edges():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 40))
    k = matching_kernel(0.8, 1.4, 0.2)  # 4-sigma kernel
    op, used = convolution_operator(k, x.shape)
    h = k.shape[0] // 2
    out = (op @ x.ravel()).reshape(x.shape)
    ref = convolve2d(x, k, mode="same")
    np.testing.assert_allclose(out[h:-h, h:-h], ref[h:-h, h:-h], atol=1e-13)
    np.testing.assert_allclose(np.asarray(op.sum(axis=1)), 1.0)
    assert used[h:-h, h:-h].min() == pytest.approx(1.0) and used[0, 0] < 0.5
    # masked pixels get no weight
    mask = np.zeros(x.shape, bool)
    mask[10, 10] = True
    opm, _ = convolution_operator(k, x.shape, mask=mask)
    assert opm[:, [10 * 40 + 10]].nnz == 0


def _grids(rotation=25.0, shift=(0.3, -0.2)):
    target = tan_wcs(CENTER, 0.2, (24, 30))
    src = tan_wcs(
        (CENTER[0] + shift[0] / 3600, CENTER[1] + shift[1] / 3600), 0.45, (20, 20), rotation
    )
    return src, target


def test_overlap_operator_conserves_flux_and_matches_reproject_exact():
    reproject = pytest.importorskip("reproject")
    src, target = _grids()
    r, coverage = overlap_operator(src, (20, 20), target, (24, 30))
    inside = coverage > 1 - 1e-9
    assert inside.sum() == 24 * 30  # the rotated source covers the target grid
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (20, 20))
    ref, _ = reproject.reproject_exact((x, src), target, shape_out=(24, 30))
    # reproject_exact averages surface brightness; flux per pixel scales by the area ratio
    np.testing.assert_allclose(
        (r @ x.ravel()).reshape(24, 30), ref * (0.2 / 0.45) ** 2, rtol=1e-8, atol=1e-12
    )
    # a source grid wholly inside the target: every column sums to 1 (flux conserved)
    big = tan_wcs(CENTER, 0.2, (80, 80))
    r2, _ = overlap_operator(src, (20, 20), big, (80, 80))
    np.testing.assert_allclose(np.asarray(r2.sum(axis=0)), 1.0, atol=1e-12)
    assert (r2 @ x.ravel()).sum() == pytest.approx(x.sum(), rel=1e-12)
    # a uniform surface brightness stays uniform: flux per target pixel = sb * target area
    ones = np.ones(400) * (0.45 / 0.2) ** 2
    np.testing.assert_allclose(r @ ones, 1.0, rtol=1e-8)  # TAN distortion ~1e-10


def test_no_overlap_is_an_error_naming_the_image():
    far = tan_wcs((CENTER[0] + 0.1, CENTER[1]), 0.45, (20, 20))
    with pytest.raises(EmptyDataError, match="g-image: no pixel of the image overlaps the cube"):
        overlap_operator(
            far,
            (20, 20),
            tan_wcs(CENTER, 0.2, (24, 30)),
            (24, 30),
            name="g-image",
            target_name="cube",
        )


def _image(rng, fwhm=1.0, rotation=25.0, shape=(20, 20)):
    src, _ = _grids(rotation)
    data = rng.uniform(1, 2, shape)
    var = rng.uniform(0.5, 1.5, shape)
    return Image(data, var, src, load_band("sdss-r", fwhm), name="test image")


def test_matched_covariance_is_dense_tct_and_monte_carlo():
    rng = np.random.default_rng(3)
    im = _image(rng)
    target = tan_wcs(CENTER, 0.2, (24, 30))
    band = match_image(im, target, (24, 30), 1.5)
    t = band.operator.toarray()
    dense = t @ np.diag(im.variance.ravel()) @ t.T
    np.testing.assert_allclose(band.covariance.toarray(), dense, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(band.data.ravel(), t @ im.data.ravel(), rtol=1e-12)
    # noise draws through T: their sample covariance converges to T C T^T
    n = 4000
    draws = rng.normal(size=(n, im.data.size)) * np.sqrt(im.variance.ravel())
    out = draws @ t.T
    sample = np.cov(out.T)
    corr = dense / np.sqrt(np.outer(np.diag(dense), np.diag(dense)))
    scorr = sample / np.sqrt(np.outer(np.diag(sample), np.diag(sample)))
    assert np.abs(scorr - corr).max() < 5.5 / np.sqrt(n)
    # neighbours are strongly correlated: the matching creates correlation
    assert corr[0, 1] > 0.7
    # the result feeds the binning code: a SpatialCorrelation and a variance map
    pc = match_images([im], (target, (24, 30)), 1.5)
    rho, var = pc.correlation(0)
    assert isinstance(rho, bi.SpatialCorrelation)
    np.testing.assert_allclose(var, band.variance)
    binned = bi.Binning(np.arange(24 * 30).reshape(24, 30) // 60).aggregate(
        bi.Map(pc.data[0], var), rho
    )
    tb = bi.Binning(np.arange(24 * 30).reshape(24, 30) // 60).operator("sum")
    np.testing.assert_allclose(binned.covariance.toarray(), tb @ dense @ tb.T, rtol=1e-10)


def test_matching_masks_partial_coverage_and_refuses_a_broader_psf():
    rng = np.random.default_rng(4)
    im = _image(rng, rotation=0.0, shape=(8, 8))  # 3.6" image on a 6" x 4.8" grid
    target = tan_wcs(CENTER, 0.2, (24, 30))
    band = match_image(im, target, (24, 30), 1.2)
    assert band.mask.any() and not band.mask.all()
    _, coverage = overlap_operator(im.wcs, im.shape, target, (24, 30))
    assert np.all(band.mask[coverage < 1 - 1e-6])
    with pytest.raises(InputError, match="test image.*broader than the target"):
        match_image(im, target, (24, 30), 0.8)
    no_psf = Image(im.data, im.variance, im.wcs, load_band("sdss-r"), name="nopsf")
    with pytest.raises(InputError, match="nopsf: the PSF of band sdss2010-r is not known"):
        match_image(no_psf, target, (24, 30), 1.2)


def test_degrade_cube_covariance_with_spatial_correlation():
    rng = np.random.default_rng(5)
    flux = rng.normal(size=(3, 12, 14)) + 5
    var = rng.uniform(0.5, 1.0, (3, 12, 14))
    cube = bi.Cube(
        flux,
        var,
        np.array([5000.0, 5001.0, 5002.0]),
        wcs=tan_wcs(CENTER, 0.2, (12, 14)),
        spaxel_scale=0.2,
    )
    corr = bi.SpatialCorrelation.gaussian((12, 14), sigma=1.0)
    d = degrade_cube(cube, 0.6, 1.0, correlation=corr)
    k = d.operator.toarray()
    s = np.diag(np.sqrt(var[1].ravel()))
    dense = k @ s @ corr.matrix.toarray() @ s @ k.T
    np.testing.assert_allclose(d.covariance(1).toarray(), dense, rtol=1e-10, atol=1e-14)
    good = ~d.cube.mask[1]
    np.testing.assert_allclose(
        d.cube.variance[1][good], np.diag(dense).reshape(12, 14)[good], rtol=1e-10
    )
    np.testing.assert_allclose(d.cube.flux[1].ravel(), k @ flux[1].ravel(), rtol=1e-12)
    with pytest.raises(InputError, match="broader than the target"):
        degrade_cube(cube, 1.2, 1.0)


def test_operator_is_sparse_at_scale():
    rng = np.random.default_rng(6)
    src = tan_wcs(CENTER, 0.4, (60, 60), 10.0)
    im = Image(rng.normal(size=(60, 60)), np.ones((60, 60)), src, load_band("sdss-i", 1.0))
    band = match_image(im, tan_wcs(CENTER, 0.2, (100, 100)), (100, 100), 1.4)
    # the factor T S is far sparser than T C T^T (which is what makes 300 x 300 grids fit)
    assert isinstance(band.factor, sp.csr_array)
    assert band.factor.nnz < 0.15 * band.covariance.nnz
    assert band.covariance.nnz < 0.2 * 100**4


def test_moffat_kernel_turns_the_source_psf_into_the_target():
    pytest.importorskip("photutils")
    src, tgt = MoffatPSF(1.0, beta=3.0), MoffatPSF(1.5, beta=3.0)
    k = matching_kernel(src, tgt, 0.2)
    size = 61
    out = convolve2d(src.image(0.2, size), k, mode="same")
    ref = tgt.image(0.2, size)
    assert np.abs(out - ref).max() < 0.02 * ref.max()


def test_photometric_cube_feeds_sed_bins():
    rng = np.random.default_rng(7)
    target = tan_wcs(CENTER, 0.2, (24, 30))
    ims = []
    for name, fwhm in (("sdss-g", 1.2), ("sdss-r", 1.1), ("sdss-i", 1.0)):
        im = _image(rng, fwhm)
        ims.append(Image(im.data * 50, im.variance, im.wcs, load_band(name, fwhm), name=name))
    pc = match_images(ims, (target, (24, 30)), 1.4)
    cube = pc.to_cube()
    assert np.all(np.diff(cube.wave) > 0) and cube.shape == (3, 24, 30)
    rho, _ = pc.correlation(1)
    bins = bi.sed_bins(cube, target_sn=30, min_diameter=2, correlation=rho)
    assert bins.n_bins >= 1 and np.all(bins.sn >= 30 * (1 - 1e-9))
