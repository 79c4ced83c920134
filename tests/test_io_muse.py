"""MUSE cube reader: the real Abell 478 cut-out, memory mapping, synthetic DATA/STAT/DQ files."""

import gzip
import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

import bayesifu as bi
from bayesifu.errors import MissingExtensionError, ShapeError, UnsupportedFormatError, VarianceError
from bayesifu.io.fitsio import is_file_backed

CUTOUT = "muse-abell478-cutout.fits.gz"


@pytest.fixture(scope="module")
def cutout_path(data_dir):
    return data_dir / CUTOUT


@pytest.fixture(scope="module")
def cube(cutout_path):
    return bi.read_cube(cutout_path)


@pytest.fixture(scope="module")
def header(cutout_path):
    return fits.getheader(cutout_path, "DATA")


def test_cutout_wcs_matches_original(cube, header):
    """The sky position of a spaxel agrees with the one the make script took from the original."""
    ra, dec = cube.wcs.pixel_to_world_values(header["BFXX"], header["BFXY"])
    assert ra == pytest.approx(header["BFXRA"], abs=1e-10)
    assert dec == pytest.approx(header["BFXDEC"], abs=1e-10)
    assert cube.wcs.naxis == 2
    assert cube.spaxel_scale == pytest.approx(0.2, rel=1e-9)


def test_cutout_wavelengths(cube, header):
    assert cube.wave[0] == pytest.approx(header["BFXWAVE0"], abs=1e-9)
    assert cube.shape == (header["BFXNWAVE"], 30, 30)
    np.testing.assert_allclose(np.diff(cube.wave), 1.25)
    assert cube.wave_medium == "air"
    assert cube.wave[0] < 6563 * 1.089 - 100 and cube.wave[-1] > 6731 * 1.089


def test_cutout_arrays_are_the_file(cube, cutout_path):
    with fits.open(cutout_path) as hdul:
        np.testing.assert_array_equal(cube.flux, hdul["DATA"].data)
        np.testing.assert_array_equal(cube.variance, hdul["STAT"].data)
        np.testing.assert_array_equal(cube.mask, hdul["DQ"].data != 0)
    for array in (cube.flux, cube.variance):  # float32 as in the file (big-endian, not copied)
        assert array.dtype.newbyteorder("=") == np.float32
    assert cube.unit.startswith("10**(-20)")


def test_cutout_halpha_peak_near_7149(cube):
    """The strongest line of the central spectrum sits at H-alpha + [NII] of z = 0.089."""
    ny, nx = cube.spatial_shape
    image = np.nansum(np.asarray(cube.flux, float), axis=0)
    y, x = np.unravel_index(np.nanargmax(image), image.shape)
    spectrum = np.nansum(np.asarray(cube.flux[:, y - 1 : y + 2, x - 1 : x + 2], float), axis=(1, 2))
    line = spectrum - np.median(spectrum)
    peak = cube.wave[np.argmax(line)]
    assert 7120 < peak < 7180


def test_uncompressed_file_is_memory_mapped(tmp_path, cutout_path, cube):
    plain = tmp_path / "cutout.fits"
    with gzip.open(cutout_path, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    mapped = bi.read_cube(plain)
    assert is_file_backed(mapped.flux)
    assert is_file_backed(mapped.variance)
    assert mapped.flux.dtype.newbyteorder("=") == np.float32
    assert not is_file_backed(cube.flux)  # the .gz had to be decompressed into memory
    np.testing.assert_array_equal(mapped.flux, cube.flux)
    np.testing.assert_array_equal(mapped.wave, cube.wave)


# --- synthetic MUSE files ---------------------------------------------------------------------


def _muse_header(nwave, crpix3=1.0):
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"], h["CTYPE3"] = "RA---TAN", "DEC--TAN", "AWAV"
    h["CRVAL1"], h["CRVAL2"], h["CRVAL3"] = 150.0, 2.0, 5000.0
    h["CRPIX1"], h["CRPIX2"], h["CRPIX3"] = 3.0, 4.0, crpix3
    h["CD1_1"], h["CD2_2"], h["CD3_3"] = -0.2 / 3600, 0.2 / 3600, 1.25
    h["CD1_2"] = h["CD2_1"] = h["CD1_3"] = h["CD2_3"] = h["CD3_1"] = h["CD3_2"] = 0.0
    h["CUNIT1"], h["CUNIT2"], h["CUNIT3"] = "deg", "deg", "Angstrom"
    h["BUNIT"] = "10**(-20)*erg/s/cm**2/Angstrom"
    return h


def _write_muse(path, shape=(7, 4, 5), stat=None, dq=None, drop=(), crpix3=1.0):
    rng = np.random.default_rng(1)
    data = rng.normal(size=shape).astype("f4")
    stat = np.full(shape, 0.5, "f4") if stat is None else stat
    dq = np.zeros(shape, "u1") if dq is None else dq
    primary = fits.PrimaryHDU()
    primary.header["INSTRUME"] = "MUSE"
    hdus = [primary]
    for name, arr in (("DATA", data), ("STAT", stat), ("DQ", dq)):
        if name not in drop:
            hdus.append(fits.ImageHDU(arr, header=_muse_header(shape[0], crpix3), name=name))
    fits.HDUList(hdus).writeto(path)
    return path, data


def test_synthetic_wavelengths_and_wcs(tmp_path):
    path, data = _write_muse(tmp_path / "m.fits", crpix3=3.0)
    cube = bi.read_cube(path)
    np.testing.assert_allclose(cube.wave, 5000.0 + 1.25 * (np.arange(7) + 1 - 3.0))
    reference = WCS(_muse_header(7)).celestial
    np.testing.assert_allclose(
        cube.wcs.pixel_to_world_values(1.0, 2.0), reference.pixel_to_world_values(1.0, 2.0)
    )
    np.testing.assert_array_equal(cube.flux, data)
    assert cube.spaxel_scale == pytest.approx(0.2)


def test_synthetic_dq_masks_and_gzip(tmp_path):
    dq = np.zeros((7, 4, 5), "u1")
    dq[2, 1, 1] = 4
    dq[5, 3, 0] = 1
    path, _ = _write_muse(tmp_path / "m.fits.gz", dq=dq)
    cube = bi.read_cube(path)
    np.testing.assert_array_equal(cube.mask, dq != 0)
    assert cube.masked_fraction() == pytest.approx(2 / dq.size)


def test_synthetic_without_dq(tmp_path):
    path, _ = _write_muse(tmp_path / "m.fits", drop=("DQ",))
    assert bi.read_cube(path).mask is None


def test_synthetic_missing_stat(tmp_path):
    path, _ = _write_muse(tmp_path / "m.fits", drop=("STAT",))
    with pytest.raises(MissingExtensionError, match="STAT") as err:
        bi.read_cube(path)
    assert "m.fits" in str(err.value)


def test_synthetic_shape_mismatch(tmp_path):
    path, _ = _write_muse(tmp_path / "m.fits", stat=np.ones((7, 4, 4), "f4"))
    with pytest.raises(ShapeError, match="STAT"):
        bi.read_cube(path)


@pytest.mark.parametrize("bad", [np.nan, -1.0])
def test_synthetic_bad_variance(tmp_path, bad):
    stat = np.full((7, 4, 5), 0.5, "f4")
    stat[3, 2, 2] = bad
    path, _ = _write_muse(tmp_path / "m.fits", stat=stat)
    with pytest.raises(VarianceError, match=r"m.fits\[STAT\]"):
        bi.read_cube(path)
    dq = np.zeros((7, 4, 5), "u1")
    dq[3, 2, 2] = 1  # the same pixel flagged in DQ is fine
    path, _ = _write_muse(tmp_path / "ok.fits", stat=stat, dq=dq)
    assert bi.read_cube(path).mask[3, 2, 2]


def test_muse_cube_is_not_a_map(tmp_path):
    path, _ = _write_muse(tmp_path / "m.fits")
    with pytest.raises(UnsupportedFormatError, match="read_cube"):
        bi.read_map(path, "DATA")


def test_muse_image_reads_as_map(tmp_path):
    header = _muse_header(1)
    for key in (
        "CTYPE3",
        "CRVAL3",
        "CRPIX3",
        "CD3_3",
        "CD1_3",
        "CD2_3",
        "CD3_1",
        "CD3_2",
        "CUNIT3",
    ):
        del header[key]
    header["ERRDATA"] = "STAT"
    image = np.arange(20, dtype="f4").reshape(4, 5)
    fits.HDUList(
        [
            fits.PrimaryHDU(header=fits.Header([("INSTRUME", "MUSE")])),
            fits.ImageHDU(image, header=header, name="DATA"),
            fits.ImageHDU(np.full((4, 5), 4.0, "f4"), name="STAT"),
        ]
    ).writeto(tmp_path / "img.fits")
    m = bi.read_map(tmp_path / "img.fits", "DATA")
    np.testing.assert_array_equal(m.data, image)
    np.testing.assert_array_equal(m.variance, 4.0)
    assert m.wcs.naxis == 2
