"""``bayesifu info FILE`` on the real fixtures and on synthetic files."""

import numpy as np
import pytest
from astropy.io import fits

from bayesifu.cli import main


def _info(path, capsys):
    status = main(["info", str(path)])
    out, err = capsys.readouterr()
    return status, out, err


def test_info_maps(data_dir, capsys):
    status, out, _ = _info(data_dir / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz", capsys)
    assert status == 0
    assert "format: manga-dap-maps" in out
    assert "42 x 42 spaxels" in out and "0.5 arcsec" in out
    gvel = next(line for line in out.splitlines() if line.strip().startswith("EMLINE_GVEL ["))
    assert "22 channels" in gvel and "Ha-6564" in gvel and "773 bins" in gvel
    stellar = next(line for line in out.splitlines() if line.strip().startswith("STELLAR_VEL ["))
    assert "497 bins" in stellar


def test_info_snrg(data_dir, capsys):
    status, out, _ = _info(data_dir / "manga-7815-3702-SNRG.fits.gz", capsys)
    assert status == 0
    assert "format: manga-dap-snrg" in out
    assert "863 with data" in out
    assert "CORREL: 32314 entries" in out and "863 diagonal" in out
    assert "COVSHAPE (1764, 1764)" in out


def test_info_muse_cutout(data_dir, capsys):
    path = data_dir / "muse-abell478-cutout.fits.gz"
    status, out, _ = _info(path, capsys)
    header = fits.getheader(path, "DATA")
    assert status == 0
    assert "format: muse-cube" in out
    assert f"{header['BFXNWAVE']} channels x 30 x 30" in out
    assert f"wavelength: {header['BFXWAVE0']:.2f} - " in out and "(air)" in out
    assert "spaxel scale: 0.2 arcsec" in out
    assert "correlation tables: none" in out


def test_info_template_like_image(tmp_path, capsys):
    hdu = fits.PrimaryHDU(np.ones((4, 101), "f4"))
    hdu.header["COEFF0"], hdu.header["COEFF1"] = 3.5, 1e-3
    hdu.writeto(tmp_path / "spDR2-999.fit")
    status, out, _ = _info(tmp_path / "spDR2-999.fit", capsys)
    assert status == 0
    assert "format: image" in out
    assert "1-D log-linear spectrum image" in out
    assert f"{10**3.5:.1f} - {10**3.6:.1f} Angstrom" in out


def test_info_logcube_with_correlation_table(tmp_path, capsys):
    shape = (5, 3, 3)
    primary = fits.PrimaryHDU()
    primary.header["VERSDRP3"] = "v3_1_1"
    correl = fits.BinTableHDU.from_columns(
        [
            fits.Column(name=n, format="1J", array=[0, 1])
            for n in ("INDXI_C1", "INDXI_C2", "INDXJ_C1", "INDXJ_C2")
        ]
        + [fits.Column(name="RHOIJ", format="1D", array=[1.0, 0.5])],
        name="GCORREL",
    )
    correl.header["COVSHAPE"], correl.header["BBINDEX"] = "(9, 9)", 2
    mask = np.zeros(shape, "i4")
    mask[0] = 1 << 10
    fits.HDUList(
        [
            primary,
            fits.ImageHDU(np.ones(shape, "f4"), name="FLUX"),
            fits.ImageHDU(np.ones(shape, "f4"), name="IVAR"),
            fits.ImageHDU(mask, name="MASK"),
            fits.ImageHDU(np.linspace(3600.0, 3610.0, 5), name="WAVE"),
            correl,
        ]
    ).writeto(tmp_path / "manga-LOGCUBE.fits")
    status, out, _ = _info(tmp_path / "manga-LOGCUBE.fits", capsys)
    assert status == 0
    assert "format: manga-drp-cube" in out
    assert "wavelength: 3600.00 - 3610.00 Angstrom (vacuum)" in out
    assert "masked fraction: 0.2 " in out
    assert "correlation table GCORREL: 2 entries, COVSHAPE (9, 9), BBINDEX 2" in out


@pytest.mark.parametrize("name", ["missing.fits", "notfits.txt"])
def test_info_bad_file_one_line_and_exit_1(tmp_path, capsys, name):
    (tmp_path / "notfits.txt").write_text("hello\n")
    status, out, err = _info(tmp_path / name, capsys)
    assert status == 1
    assert err.count("\n") == 1 and name in err and err.startswith("bayesifu info: error:")
