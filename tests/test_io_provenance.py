"""Provenance headers and attributes: long values written whole and read back."""

import numpy as np
from astropy.io import fits

import bayesifu
from bayesifu.io.provenance import add_provenance, provenance_attrs, read_provenance


def _long_path(tmp_path):
    name = "a-very-long-folder-name-with  two spaces-" * 8
    path = tmp_path / name[:150] / ("input-" + "x" * 120 + ".fits")
    assert len(str(path)) > 300
    return path


def test_long_path_survives_a_fits_round_trip(tmp_path):
    path = _long_path(tmp_path)
    argv = ["bayesifu", "bin", str(path), "--target-sn", "20", "--out", "b.fits"]
    header = fits.PrimaryHDU(np.zeros(2)).header
    add_provenance(header, "bin", options={"target_sn": 20.0, "out": "b.fits"}, inputs=[path],
                   argv=argv)  # fmt: skip
    out = tmp_path / "p.fits"
    fits.PrimaryHDU(np.zeros(2), header=header).writeto(out)
    with fits.open(out) as hdul:
        records = read_provenance(hdul[0].header)
        cards = [str(c) for c in hdul[0].header["HISTORY"]]
    assert all(len(c) <= 72 for c in cards)
    got = dict(records)
    assert got["version"] == bayesifu.__version__
    assert got["date"].startswith("20")
    assert got["command"] == "bin"
    assert got["input"] == str(path.resolve())
    assert got["cmdline"] == f"bayesifu bin '{path}' --target-sn 20 --out b.fits"
    assert got["option target_sn"] == "20.0"


def test_values_split_at_a_space_keep_it(tmp_path):
    """A card boundary that falls on a space does not lose the space (FITS strips trailing
    blanks)."""
    value = "x" * 60 + "    " + "y" * 200
    header = fits.Header()
    add_provenance(header, "fit", options={"note": value}, argv=["bayesifu"])
    out = tmp_path / "h.fits"
    fits.PrimaryHDU(header=header).writeto(out)
    assert dict(read_provenance(fits.getheader(out)))["option note"] == value


def test_netcdf_attrs_carry_the_same(tmp_path):
    path = _long_path(tmp_path)
    attrs = provenance_attrs("fit", options={"draws": 1000}, inputs=[path, "b.fits"],
                             argv=["bayesifu", "fit"])  # fmt: skip
    assert attrs["bayesifu_version"] == bayesifu.__version__
    assert attrs["bayesifu_command"] == "fit"
    assert attrs["bayesifu_cmdline"] == "bayesifu fit"
    assert attrs["bayesifu_option_draws"] == "1000"
    assert attrs["bayesifu_input_0"] == str(path.resolve())
    assert attrs["bayesifu_input_1"].endswith("b.fits")


def test_correlation_fits_carries_provenance(tmp_path):
    import bayesifu as bi
    from bayesifu.correlation import fits as correlation_io

    path = _long_path(tmp_path)
    corr = bi.SpatialCorrelation.gaussian((6, 6), sigma=1.0, rlim=3.0)
    out = tmp_path / "corr.fits"
    correlation_io.write_fits(corr.to_table(), out, provenance={"command": "bin",
                              "inputs": [path], "argv": ["bayesifu", "bin"]})  # fmt: skip
    records = dict(read_provenance(fits.getheader(out)))
    assert records["input"] == str(path.resolve()) and records["command"] == "bin"
    back = bi.SpatialCorrelation.from_fits(out)
    assert back.shape == (6, 6)
