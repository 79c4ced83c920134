"""Generic FITS cubes and maps: FLUX with IVAR, ERR or VAR, optional MASK, WCS."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

import bayesifu as bi
from bayesifu.errors import MissingExtensionError, ShapeError, UnknownChannelError, VarianceError
from bayesifu.io.fitsio import is_file_backed

SHAPE = (8, 3, 4)


def _header(ndim):
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"], h["CRPIX1"], h["CRPIX2"] = 10.0, -5.0, 2.0, 2.0
    h["CDELT1"], h["CDELT2"] = -0.3 / 3600, 0.3 / 3600
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    if ndim == 3:
        h["CTYPE3"], h["CRVAL3"], h["CRPIX3"], h["CDELT3"], h["CUNIT3"] = (
            "WAVE",
            0.5,
            1.0,
            0.0002,
            "um",
        )
    h["BUNIT"] = "erg/s/cm2/A"
    return h


def _truth(shape):
    rng = np.random.default_rng(3)
    return rng.normal(size=shape).astype("f4"), rng.uniform(0.5, 2.0, shape).astype("f4")


def write_generic(path, kind, shape=SHAPE, mask=None, extra=(), error=None, err_name=None):
    flux, var = _truth(shape)
    stored = {"IVAR": 1 / var, "VAR": var, "ERR": np.sqrt(var)}[kind] if error is None else error
    hdus = [
        fits.PrimaryHDU(),
        fits.ImageHDU(flux, header=_header(len(shape)), name="FLUX"),
        fits.ImageHDU(stored.astype("f4"), name=err_name or kind),
    ]
    if mask is not None:
        hdus.append(fits.ImageHDU(mask.astype("u1"), name="MASK"))
    hdus.extend(extra)
    fits.HDUList(hdus).writeto(path)
    return flux, var


@pytest.mark.parametrize("kind", ["IVAR", "ERR", "VAR"])
def test_cube_error_kinds(tmp_path, kind):
    flux, var = write_generic(tmp_path / "c.fits", kind)
    cube = bi.read_cube(tmp_path / "c.fits")
    assert cube.meta["format"] == "generic-cube"
    np.testing.assert_array_equal(cube.flux, flux)
    np.testing.assert_allclose(cube.variance, var, rtol=1e-6)
    np.testing.assert_allclose(cube.wave, (0.5 + 0.0002 * np.arange(SHAPE[0])) * 1e4)
    assert cube.wave_medium == "vacuum"
    assert cube.spaxel_scale == pytest.approx(0.3)
    reference = WCS(_header(3)).celestial
    np.testing.assert_allclose(
        cube.wcs.pixel_to_world_values(1, 2), reference.pixel_to_world_values(1, 2)
    )


def test_cube_var_is_memory_mapped_and_gzip(tmp_path):
    write_generic(tmp_path / "c.fits", "VAR")
    write_generic(tmp_path / "c.fits.gz", "VAR")
    plain, packed = bi.read_cube(tmp_path / "c.fits"), bi.read_cube(tmp_path / "c.fits.gz")
    assert is_file_backed(plain.flux) and is_file_backed(plain.variance)
    np.testing.assert_array_equal(plain.variance, packed.variance)


def test_cube_mask_and_wave_extension(tmp_path):
    mask = np.zeros(SHAPE)
    mask[3, 1, 1] = 2
    wave = fits.ImageHDU(np.linspace(6000.0, 6100.0, SHAPE[0]), name="WAVE")
    wave.header["MEDIUM"] = "air"
    write_generic(tmp_path / "c.fits", "IVAR", mask=mask, extra=[wave])
    cube = bi.read_cube(tmp_path / "c.fits")
    np.testing.assert_array_equal(cube.mask, mask != 0)
    np.testing.assert_allclose(cube.wave, np.linspace(6000.0, 6100.0, SHAPE[0]))
    assert cube.wave_medium == "air"


def test_hduclas3_overrides_the_name(tmp_path):
    _, var = _truth(SHAPE)
    write_generic(tmp_path / "c.fits", "VAR", error=np.sqrt(var), err_name="VAR")
    with fits.open(tmp_path / "c.fits", mode="update") as hdul:
        hdul["VAR"].header["HDUCLAS3"] = "RMSE"  # an ESO standard deviation, despite the name
    np.testing.assert_allclose(bi.read_cube(tmp_path / "c.fits").variance, var, rtol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, -1.0])
def test_cube_bad_variance(tmp_path, bad):
    _, var = _truth(SHAPE)
    var[2, 1, 2] = bad
    write_generic(tmp_path / "c.fits", "VAR", error=var)
    with pytest.raises(VarianceError, match=r"c.fits\[VAR\]"):
        bi.read_cube(tmp_path / "c.fits")


def test_cube_negative_err_rejected(tmp_path):
    _, var = _truth(SHAPE)
    err = np.sqrt(var)
    err[0, 0, 0] = -1.0
    write_generic(tmp_path / "c.fits", "ERR", error=err)
    with pytest.raises(VarianceError, match="negative"):
        bi.read_cube(tmp_path / "c.fits")


def test_cube_shape_mismatch(tmp_path):
    write_generic(tmp_path / "c.fits", "VAR", error=np.ones((8, 3, 3)))
    with pytest.raises(ShapeError, match="VAR") as err:
        bi.read_cube(tmp_path / "c.fits")
    assert "c.fits" in str(err.value)


def test_cube_without_wavelengths(tmp_path):
    flux, var = _truth(SHAPE)
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(flux, name="FLUX"), fits.ImageHDU(var, name="VAR")]
    ).writeto(tmp_path / "c.fits")
    with pytest.raises(MissingExtensionError, match="WAVE"):
        bi.read_cube(tmp_path / "c.fits")


def test_errdata_pointing_nowhere(tmp_path):
    write_generic(tmp_path / "c.fits", "VAR")
    with fits.open(tmp_path / "c.fits", mode="update") as hdul:
        hdul["FLUX"].header["ERRDATA"] = "SIGMA"
    with pytest.raises(MissingExtensionError, match="SIGMA"):
        bi.read_cube(tmp_path / "c.fits")


@pytest.mark.parametrize("kind", ["IVAR", "ERR", "VAR"])
def test_map_error_kinds(tmp_path, kind):
    flux, var = write_generic(tmp_path / "m.fits", kind, shape=(3, 4))
    m = bi.read_map(tmp_path / "m.fits")
    np.testing.assert_array_equal(m.data, flux)
    np.testing.assert_allclose(m.variance, var, rtol=1e-6)
    assert m.unit == "erg/s/cm2/A" and m.wcs.naxis == 2 and m.n_good == 12


def test_map_zero_ivar_masked_nan_var_rejected(tmp_path):
    flux, var = _truth((3, 4))
    ivar = 1 / var
    ivar[1, 1] = 0.0
    write_generic(tmp_path / "a.fits", "IVAR", shape=(3, 4), error=ivar)
    assert bi.read_map(tmp_path / "a.fits").mask[1, 1]
    var[1, 1] = np.nan
    write_generic(tmp_path / "b.fits", "VAR", shape=(3, 4), error=var)
    with pytest.raises(VarianceError, match="b.fits"):
        bi.read_map(tmp_path / "b.fits")
    var[1, 1] = -2.0
    write_generic(tmp_path / "c.fits", "VAR", shape=(3, 4), error=var)
    with pytest.raises(VarianceError, match="negative"):
        bi.read_map(tmp_path / "c.fits", "FLUX")


def test_map_mask_extension_and_gzip(tmp_path):
    mask = np.zeros((3, 4))
    mask[0, 2] = 1
    write_generic(tmp_path / "m.fits.gz", "ERR", shape=(3, 4), mask=mask)
    m = bi.read_map(tmp_path / "m.fits.gz")
    np.testing.assert_array_equal(m.mask, mask != 0)


def test_map_channels_of_a_3d_image(tmp_path):
    """A 3-D generic file is a cube by detection; its planes read as maps by channel name."""
    from bayesifu.io.generic import read_generic_map

    flux, var = write_generic(tmp_path / "m.fits", "VAR", shape=(2, 3, 4))
    with fits.open(tmp_path / "m.fits", mode="update") as hdul:
        hdul["FLUX"].header["C1"] = "Ha"
        hdul["FLUX"].header["C2"] = "Hb"
    with fits.open(tmp_path / "m.fits") as hdul:
        m = read_generic_map(hdul, tmp_path / "m.fits", "FLUX", channel="hb")
        np.testing.assert_array_equal(m.data, flux[1])
        np.testing.assert_allclose(m.variance, var[1])
        with pytest.raises(UnknownChannelError, match="Ha, Hb"):
            read_generic_map(hdul, tmp_path / "m.fits", "FLUX", channel="OIII")
