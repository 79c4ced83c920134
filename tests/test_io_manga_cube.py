"""MaNGA DRP LOGCUBE reader on synthetic files with the DRP layout (FLUX, IVAR, MASK, WAVE,
SPECRES, SPECRESD, GCORREL/RCORREL)."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import bayesifu as bi
from bayesifu.errors import MissingExtensionError, ShapeError, UnsupportedFormatError, VarianceError
from bayesifu.io import DRP_MASK_BITS
from bayesifu.io.fitsio import is_file_backed

SHAPE = (6, 5, 4)  # nwave, ny, nx


def _correl_table(n_rows, bbindex):
    rng = np.random.default_rng(bbindex)
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="INDXI_C1", format="1J", array=rng.integers(0, 4, n_rows)),
            fits.Column(name="INDXI_C2", format="1J", array=rng.integers(0, 5, n_rows)),
            fits.Column(name="INDXJ_C1", format="1J", array=rng.integers(0, 4, n_rows)),
            fits.Column(name="INDXJ_C2", format="1J", array=rng.integers(0, 5, n_rows)),
            fits.Column(name="RHOIJ", format="1D", array=rng.uniform(0, 1, n_rows)),
        ]
    )
    table.header["COVSHAPE"] = "(20, 20)"
    table.header["BBINDEX"] = bbindex
    return table


def write_logcube(path, ivar=None, mask=None, drop=(), ivar_shape=None):
    rng = np.random.default_rng(0)
    flux = rng.normal(1.0, 0.1, SHAPE).astype("f4")
    ivar = np.full(SHAPE, 4.0, "f4") if ivar is None else ivar
    if ivar_shape is not None:
        ivar = np.ones(ivar_shape, "f4")
    mask = np.zeros(SHAPE, "i4") if mask is None else mask
    wave = 10 ** (3.5589 + 1e-4 * np.arange(SHAPE[0]))
    primary = fits.PrimaryHDU()
    primary.header["VERSDRP3"] = "v3_1_1"
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"], h["CTYPE3"] = "RA---TAN", "DEC--TAN", "WAVE-LOG"
    h["CRVAL1"], h["CRVAL2"], h["CRVAL3"] = 200.0, 40.0, wave[0] * 1e-10
    h["CRPIX1"], h["CRPIX2"], h["CRPIX3"] = 2.0, 3.0, 1.0
    h["CD1_1"], h["CD2_2"], h["CD3_3"] = (
        -0.5 / 3600,
        0.5 / 3600,
        wave[0] * 1e-10 * 1e-4 * np.log(10),
    )
    h["CUNIT1"], h["CUNIT2"], h["CUNIT3"] = "deg", "deg", "m"
    h["BUNIT"] = "1E-17 erg/s/cm^2/Ang/spaxel"
    h["MASKNAME"] = "MANGA_DRP3PIXMASK"
    hdus = {
        "FLUX": fits.ImageHDU(flux, header=h, name="FLUX"),
        "IVAR": fits.ImageHDU(ivar, name="IVAR"),
        "MASK": fits.ImageHDU(mask, name="MASK"),
        "WAVE": fits.ImageHDU(wave, name="WAVE"),
        "SPECRES": fits.ImageHDU(np.linspace(1800, 2000, SHAPE[0]), name="SPECRES"),
        "SPECRESD": fits.ImageHDU(np.full(SHAPE[0], 30.0), name="SPECRESD"),
        "GCORREL": _correl_table(11, 1132),
        "RCORREL": _correl_table(7, 2400),
    }
    hdus["GCORREL"].name, hdus["RCORREL"].name = "GCORREL", "RCORREL"
    hdul = fits.HDUList([primary] + [hdu for name, hdu in hdus.items() if name not in drop])
    hdul.writeto(path)
    return flux, wave


def test_logcube_values(tmp_path):
    flux, wave = write_logcube(tmp_path / "manga-1-LOGCUBE.fits")
    cube = bi.read_cube(tmp_path / "manga-1-LOGCUBE.fits")
    np.testing.assert_array_equal(cube.flux, flux)
    np.testing.assert_allclose(cube.variance, 0.25)
    np.testing.assert_allclose(cube.wave, wave)
    assert cube.wave_medium == "vacuum"
    np.testing.assert_allclose(cube.spectral_resolution, np.linspace(1800, 2000, SHAPE[0]))
    np.testing.assert_allclose(cube.meta["spectral_resolution_sigma"], 30.0)
    assert cube.meta["sampling"] == "log"
    assert cube.wcs.naxis == 2
    assert cube.spaxel_scale == pytest.approx(0.5)
    assert cube.unit == "1E-17 erg/s/cm^2/Ang/spaxel"
    assert not cube.mask.any()


def test_logcube_correlation_tables(tmp_path):
    write_logcube(tmp_path / "c.fits")
    cube = bi.read_cube(tmp_path / "c.fits")
    assert set(cube.correlation_tables) == {"GCORREL", "RCORREL"}
    g = cube.correlation_tables["GCORREL"]
    assert isinstance(g, Table)
    assert g.meta["COVSHAPE"] == "(20, 20)" and g.meta["BBINDEX"] == 1132
    reference = Table.read(tmp_path / "c.fits", hdu="GCORREL")
    for column in reference.colnames:
        np.testing.assert_array_equal(g[column], reference[column])


@pytest.mark.parametrize("bit", [0, 1, 2, 3, 4, 10])
def test_logcube_mask_bits(tmp_path, bit):
    mask = np.zeros(SHAPE, "i4")
    mask[2, 1, 3] = 1 << bit
    write_logcube(tmp_path / "c.fits", mask=mask)
    cube = bi.read_cube(tmp_path / "c.fits")
    expected = bit in DRP_MASK_BITS.values()
    assert cube.mask[2, 1, 3] == expected
    assert cube.mask.sum() == int(expected)


def test_logcube_zero_ivar_masked(tmp_path):
    ivar = np.full(SHAPE, 4.0, "f4")
    ivar[0, 0, 0] = 0.0
    write_logcube(tmp_path / "c.fits", ivar=ivar)
    cube = bi.read_cube(tmp_path / "c.fits")
    assert cube.mask[0, 0, 0] and cube.mask.sum() == 1
    assert np.isinf(cube.variance[0, 0, 0])


def test_logcube_nan_ivar_rejected(tmp_path):
    ivar = np.full(SHAPE, 4.0, "f4")
    ivar[1, 2, 2] = np.nan
    write_logcube(tmp_path / "c.fits", ivar=ivar)
    with pytest.raises(VarianceError, match=r"c.fits\[IVAR\]"):
        bi.read_cube(tmp_path / "c.fits")


def test_logcube_memory_mapped_and_gzip(tmp_path):
    flux, _ = write_logcube(tmp_path / "c.fits")
    write_logcube(tmp_path / "c.fits.gz")
    plain, packed = bi.read_cube(tmp_path / "c.fits"), bi.read_cube(tmp_path / "c.fits.gz")
    assert is_file_backed(plain.flux) and not is_file_backed(packed.flux)
    np.testing.assert_array_equal(plain.flux, packed.flux)
    np.testing.assert_array_equal(plain.variance, packed.variance)
    assert plain.variance.dtype == np.float32  # not upcast


@pytest.mark.parametrize("ext", ["IVAR", "MASK", "WAVE"])
def test_logcube_missing_extension(tmp_path, ext):
    write_logcube(tmp_path / "c.fits", drop=(ext,))
    with pytest.raises(MissingExtensionError, match=ext) as err:
        bi.read_cube(tmp_path / "c.fits")
    assert "c.fits" in str(err.value)


def test_logcube_without_optional_extensions(tmp_path):
    write_logcube(tmp_path / "c.fits", drop=("SPECRES", "SPECRESD", "GCORREL", "RCORREL"))
    cube = bi.read_cube(tmp_path / "c.fits")
    assert cube.spectral_resolution is None and cube.correlation_tables == {}


def test_logcube_shape_mismatch(tmp_path):
    write_logcube(tmp_path / "c.fits", ivar_shape=(6, 5, 5))
    with pytest.raises(ShapeError, match="IVAR") as err:
        bi.read_cube(tmp_path / "c.fits")
    assert "c.fits" in str(err.value)


def test_logcube_is_not_a_map(tmp_path):
    write_logcube(tmp_path / "c.fits")
    with pytest.raises(UnsupportedFormatError, match="read_cube"):
        bi.read_map(tmp_path / "c.fits", "FLUX")
