"""Tests of bayesifu.templates: reading, air/vacuum, basis reduction, broadening, line templates."""

import numpy as np
import pytest
from astropy.io import fits
from scipy.ndimage import convolve1d

import bayesifu as bi
from bayesifu.errors import FileFormatError, InputError, ShapeError
from bayesifu.templates import (
    C_KMS,
    Templates,
    air_to_vacuum,
    emission_line_templates,
    vacuum_to_air,
)


@pytest.fixture(scope="module")
def sdss_paths(data_dir):
    return sorted((data_dir / "sdss-templates").glob("spDR2-02*.fit"))


def test_read_sdss_matches_header(sdss_paths):
    tpl = bi.read_templates(sdss_paths[:5])
    with fits.open(sdss_paths[0]) as hdul:
        hdr, row0 = hdul[0].header, hdul[0].data[0]
    assert tpl.ntemplates == 5
    assert tpl.loglam0 == pytest.approx(hdr["COEFF0"])
    assert tpl.dloglam == pytest.approx(hdr["COEFF1"])
    np.testing.assert_allclose(tpl.flux[0, : row0.size], row0, rtol=1e-6)
    assert tpl.names[0] == sdss_paths[0].name


def test_read_templates_with_offset_grid(sdss_paths):
    """spDR2-028 starts at 3000 A on a grid offset by a fraction of a pixel: interpolated."""
    tpl = bi.read_templates(sdss_paths)
    with fits.open(sdss_paths[5]) as hdul:
        hdr, row0 = hdul[0].header, np.asarray(hdul[0].data[0], float)
    loglam = hdr["COEFF0"] + hdr["COEFF1"] * np.arange(row0.size)
    inside = (tpl.loglam > loglam[0]) & (tpl.loglam < loglam[-1])
    np.testing.assert_allclose(tpl.flux[5, inside], np.interp(tpl.loglam[inside], loglam, row0))
    assert np.isnan(tpl.flux[5, tpl.loglam > loglam[-1] + 1e-9]).all()
    lo, hi = tpl.rest_range()
    assert lo == pytest.approx(3500, rel=1e-3) and hi == pytest.approx(6800, rel=1e-3)


def test_vacuum_air_reference_values():
    """NIST: H-alpha 6564.61 (vacuum) = 6562.80 (air); [NII] 6585.27 = 6583.45."""
    np.testing.assert_allclose(vacuum_to_air([6564.61, 6585.27]), [6562.80, 6583.45], atol=0.01)
    np.testing.assert_allclose(air_to_vacuum([6562.80, 6583.45]), [6564.61, 6585.27], atol=0.01)


def test_air_vacuum_round_trip():
    wave = np.linspace(3000, 10000, 50)
    np.testing.assert_allclose(vacuum_to_air(air_to_vacuum(wave)), wave, rtol=1e-13)
    with pytest.raises(InputError, match="2000"):
        vacuum_to_air([1500.0])


def test_generic_text_and_fits_tables(tmp_path):
    wave = np.linspace(4000, 8000, 300)
    flux = 1 + np.sin(wave / 300.0)
    txt = tmp_path / "t.txt"
    np.savetxt(txt, np.c_[wave, flux])
    tab = tmp_path / "t.fits"
    cols = [
        fits.Column(name="WAVE", format="D", array=wave),
        fits.Column(name="FLUX", format="D", array=flux),
    ]
    fits.BinTableHDU.from_columns(cols).writeto(tab)
    tpl = bi.read_templates([txt, tab], dloglam=1e-4)
    ref = np.interp(tpl.loglam, np.log10(wave), flux)
    good = np.isfinite(tpl.flux[0])
    np.testing.assert_allclose(tpl.flux[0, good], ref[good], rtol=1e-6)
    np.testing.assert_allclose(tpl.flux[1], tpl.flux[0], equal_nan=True)
    air = bi.read_templates(txt, medium="air", dloglam=1e-4)
    assert air.loglam0 == pytest.approx(np.log10(air_to_vacuum(wave[:1]))[0])


def test_bad_template_files(tmp_path):
    with pytest.raises(FileFormatError, match="no such"):
        bi.read_templates(tmp_path / "missing.fits")
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\nx y z\n")
    with pytest.raises(FileFormatError, match="bad.txt"):
        bi.read_templates(bad)
    one = tmp_path / "one.txt"
    np.savetxt(one, np.arange(5.0)[:, None])
    with pytest.raises(FileFormatError, match="two columns"):
        bi.read_templates(one)
    nocol = tmp_path / "nocol.fits"
    fits.BinTableHDU.from_columns([fits.Column(name="A", format="D", array=[1.0])]).writeto(nocol)
    with pytest.raises(FileFormatError, match="wavelength column"):
        bi.read_templates(nocol)
    with pytest.raises(InputError, match="no template"):
        bi.read_templates([])
    with pytest.raises(InputError, match="medium"):
        bi.read_templates(one, medium="water")


def test_templates_validation():
    with pytest.raises(InputError, match="dloglam"):
        Templates(3.5, -1.0, np.ones((1, 10)))
    with pytest.raises(ShapeError, match="names"):
        Templates(3.5, 1e-4, np.ones((2, 10)), names=["a"])
    with pytest.raises(InputError, match="no finite"):
        Templates(3.5, 1e-4, np.full((1, 10), np.nan))
    with pytest.raises(ShapeError, match="is_line"):
        Templates(3.5, 1e-4, np.ones((2, 10)), is_line=[True])


def test_independent_spans_the_same_space(sdss_paths):
    tpl = bi.read_templates(sdss_paths[:5])
    basis = tpl.independent()
    assert basis.ntemplates == 2  # the five DR2 galaxy templates span two dimensions
    lo, hi = tpl.coverage()[:, 0].max(), tpl.coverage()[:, 1].min()
    x = tpl.flux[:, lo : hi + 1].T
    b = basis.flux[:, lo : hi + 1].T
    resid = x - b @ np.linalg.lstsq(b, x, rcond=None)[0]
    assert np.abs(resid).max() < 1e-6 * np.abs(x).max()
    # spDR2-028 stops at 6800 A: it is its own group, and the galaxy basis keeps 3500-9200 A.
    six = bi.read_templates(sdss_paths[:6]).independent()
    assert six.ntemplates == 3
    ranges = sorted((round(six.wave[a]), round(six.wave[b])) for a, b in six.coverage())
    assert ranges[0] == (3000, 6800) and ranges[1] == ranges[2] and ranges[1][1] > 9190
    gap = Templates(3.5, 1e-4, np.array([[1, np.nan, 1, 1]]))
    with pytest.raises(InputError, match="gaps"):
        gap.independent()


def test_broaden_matches_direct_convolution():
    rng = np.random.default_rng(0)
    flux = rng.normal(size=(1, 400))
    tpl = Templates(3.6, 1e-4, flux)
    sigma_kms = 150.0
    out = tpl.broaden(sigma_kms)
    sig = sigma_kms / (C_KMS * np.log(10) * 1e-4)
    radius = int(4 * sig + 0.5)  # the 4-sigma truncation of scipy.ndimage
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sig) ** 2)
    ref = convolve1d(flux[0], kernel / kernel.sum(), mode="nearest")
    good = np.isfinite(out.flux[0])
    assert good.sum() > 300 and np.isnan(out.flux[0, :5]).all()
    np.testing.assert_allclose(out.flux[0, good], ref[good], atol=1e-6)
    with pytest.raises(InputError, match="sigma"):
        tpl.broaden(-1.0)


def test_match_resolution():
    tpl = Templates(3.6, 1e-4, np.ones((1, 200)), fwhm_kms=100.0)
    out = tpl.match_resolution(200.0)
    assert out.fwhm_kms == pytest.approx(200.0)
    with pytest.raises(InputError, match="deconvolve"):
        tpl.match_resolution(50.0)
    with pytest.raises(InputError, match="unknown"):
        Templates(3.6, 1e-4, np.ones((1, 200))).match_resolution(200.0)


def test_emission_line_templates(sdss_paths):
    base = bi.read_templates(sdss_paths[:5]).independent()
    lines = emission_line_templates(base, sigma_kms=100.0)
    assert lines.is_line.all()
    k = lines.names.index("Halpha")
    peak = lines.wave[np.nanargmax(lines.flux[k])]
    assert peak == pytest.approx(6564.61, abs=1.0)
    both = base.concatenate(lines)
    assert both.ntemplates == base.ntemplates + lines.ntemplates
    assert both.independent().ntemplates == both.ntemplates  # lines are kept as they are
    with pytest.raises(InputError, match="different grids"):
        base.concatenate(Templates(3.0, 1e-4, np.ones((1, 10))))
    with pytest.raises(InputError, match="sigma_kms"):
        emission_line_templates(base, sigma_kms=0.0)
