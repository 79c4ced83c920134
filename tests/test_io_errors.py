"""Bad input to the readers: missing files, non-FITS files, unsupported kinds of FITS file."""

import numpy as np
import pytest
from astropy.io import fits

import bayesifu as bi
from bayesifu.errors import BayesifuError, FileFormatError, UnsupportedFormatError
from bayesifu.io import detect_format


@pytest.mark.parametrize("reader", [bi.read_cube, bi.read_map])
def test_file_not_found(tmp_path, reader):
    with pytest.raises(FileFormatError, match="nothere.fits: file not found"):
        reader(tmp_path / "nothere.fits")


@pytest.mark.parametrize("reader", [bi.read_cube, bi.read_map])
def test_not_fits(tmp_path, reader):
    (tmp_path / "notes.fits").write_text("this is not a FITS file\n" * 200)
    with pytest.raises(FileFormatError, match="notes.fits: not a readable FITS file"):
        reader(tmp_path / "notes.fits")
    with pytest.raises(FileFormatError, match="directory"):
        reader(tmp_path)


def test_truncated_gzip(tmp_path):
    (tmp_path / "bad.fits.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(FileFormatError, match="bad.fits.gz"):
        bi.read_cube(tmp_path / "bad.fits.gz")


def _template_like(path):
    """An image without error extension, like an SDSS spectral template (spDR2-*.fit)."""
    hdu = fits.PrimaryHDU(np.ones((4, 50), "f4"))
    hdu.header["COEFF0"], hdu.header["COEFF1"] = 3.5, 1e-4
    hdu.writeto(path)
    return path


@pytest.mark.parametrize("reader", [bi.read_cube, bi.read_map])
def test_unsupported_image(tmp_path, reader):
    path = _template_like(tmp_path / "spDR2-000.fit")
    with fits.open(path) as hdul:
        assert detect_format(hdul) == "image"
    with pytest.raises(UnsupportedFormatError, match="spDR2-000.fit: not a supported"):
        reader(path)


def test_header_only_file(tmp_path):
    fits.PrimaryHDU().writeto(tmp_path / "empty.fits")
    with pytest.raises(UnsupportedFormatError, match="without image data"):
        bi.read_cube(tmp_path / "empty.fits")


def test_cube_without_errors_is_unsupported(tmp_path):
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((3, 2, 2)), name="FLUX")]).writeto(
        tmp_path / "flux.fits"
    )
    with pytest.raises(UnsupportedFormatError, match="flux.fits"):
        bi.read_cube(tmp_path / "flux.fits")


def test_every_error_is_a_bayesifu_error(tmp_path):
    with pytest.raises(BayesifuError):
        bi.read_map(tmp_path / "missing.fits", "EMLINE_GVEL")


def test_truncated_file(tmp_path):
    shape = (50, 10, 10)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.ones(shape, "f4"), name="FLUX"),
            fits.ImageHDU(np.ones(shape, "f4"), name="VAR"),
        ]
    ).writeto(tmp_path / "full.fits")
    raw = (tmp_path / "full.fits").read_bytes()
    (tmp_path / "cut.fits").write_bytes(raw[: len(raw) - 5000])
    with pytest.raises(FileFormatError, match="cut.fits: file is truncated"):
        bi.read_cube(tmp_path / "cut.fits")
