"""MaNGA DAP MAPS and SNRG readers, on the real 7815-3702 files and on synthetic MAPS files.

References are astropy.io.fits / astropy.table reads of the same files, independent of the reader.
"""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

import bayesifu as bi
from bayesifu.errors import (
    InputError,
    MissingExtensionError,
    ShapeError,
    UnknownChannelError,
    UnsupportedFormatError,
    VarianceError,
)
from bayesifu.io import DAP_PIXMASK_BITS, read_flux_weights, read_map

MAPS = "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
SNRG = "manga-7815-3702-SNRG.fits.gz"


@pytest.fixture(scope="module")
def maps_path(data_dir):
    return data_dir / MAPS


@pytest.fixture(scope="module")
def snrg_path(data_dir):
    return data_dir / SNRG


@pytest.fixture(scope="module")
def maps_hdul(maps_path):
    with fits.open(maps_path) as hdul:
        hdul.readall()
        yield hdul


def test_halpha_velocity_has_773_nonzero_spaxels(maps_path, maps_hdul):
    m = read_map(maps_path, "EMLINE_GVEL", channel="Ha-6564")
    assert int((m.data != 0).sum()) == 773
    header = maps_hdul["EMLINE_GVEL"].header
    k = [int(key[1:]) - 1 for key in header if key.startswith("C") and header[key] == "Ha-6564"]
    np.testing.assert_array_equal(m.data, maps_hdul["EMLINE_GVEL"].data[k[0]])
    assert m.unit == "km/s"
    assert m.meta["channel"] == "Ha-6564"


def test_correl_diagonal_is_on_spaxels_with_snr(snrg_path, maps_hdul):
    table = Table.read(snrg_path, hdu="CORREL")
    diag = (table["INDXI_C1"] == table["INDXJ_C1"]) & (table["INDXI_C2"] == table["INDXJ_C2"])
    assert diag.sum() == 863
    snr = maps_hdul["SPX_SNR"].data
    on_diag = np.zeros(snr.shape, bool)
    on_diag[table["INDXI_C2"][diag], table["INDXI_C1"][diag]] = True  # C2 = row (y), C1 = col (x)
    np.testing.assert_array_equal(on_diag, snr > 0)
    transposed = np.zeros(snr.shape, bool)
    transposed[table["INDXI_C1"][diag], table["INDXI_C2"][diag]] = True
    assert not np.array_equal(transposed, snr > 0)  # the axis convention matters
    assert table.meta["COVSHAPE"] == "(1764, 1764)"


def test_ivar_and_mask_follow_the_file(maps_path, maps_hdul):
    m = read_map(maps_path, "EMLINE_GVEL", channel=18)
    ivar = maps_hdul["EMLINE_GVEL_IVAR"].data[18].astype(float)
    bits = maps_hdul["EMLINE_GVEL_MASK"].data[18].astype(np.int64)
    good = ~m.mask
    np.testing.assert_allclose(m.variance[good], 1.0 / ivar[good], rtol=1e-12)
    assert not np.any(good & ((bits & (1 << 30)) != 0))  # DONOTUSE always masked
    assert np.all(good[(bits == 0) & (ivar > 0)])  # clean spaxels all used
    assert np.all(m.mask[ivar <= 0])


def test_unreliable_masked_by_default_and_optional(maps_path, maps_hdul):
    bits = maps_hdul["EMLINE_SFLUX_MASK"].data.astype(np.int64)
    only_unreliable = np.argwhere(bits == 1 << 5)
    assert len(only_unreliable) > 0
    k, y, x = only_unreliable[0]
    name = maps_hdul["EMLINE_SFLUX"].header[f"C{k + 1:02d}"]
    assert read_map(maps_path, "EMLINE_SFLUX", channel=name).mask[y, x]
    kept = read_map(maps_path, "EMLINE_SFLUX", channel=name, mask_bits=("DONOTUSE",))
    assert not kept.mask[y, x]


def test_stellar_velocity_bins(maps_path, maps_hdul):
    m = read_map(maps_path, "STELLAR_VEL")
    binid = maps_hdul["BINID"].data[1]  # channel C2 = 'Stellar continua'
    assert maps_hdul["BINID"].header["C2"] == "Stellar continua"
    np.testing.assert_array_equal(m.binid, binid)
    assert len(m.bins) == len(np.unique(binid[(binid >= 0) & ~m.mask]))
    assert len(m.bins) < m.n_good  # Voronoi-binned: fewer bins than spaxels
    for b in m.bins[:50]:
        values = m.data[(m.binid == b) & m.good]
        assert np.all(values == values[0])


def test_emission_line_bins_use_em_line_models(maps_path, maps_hdul):
    m = read_map(maps_path, "EMLINE_GSIGMA", channel="Ha-6564")
    np.testing.assert_array_equal(m.binid, maps_hdul["BINID"].data[3])
    s = read_map(maps_path, "SPECINDEX", channel="HDeltaA")
    np.testing.assert_array_equal(s.binid, maps_hdul["BINID"].data[4])
    assert s.unit == "ang"
    assert read_map(maps_path, "SPX_MFLUX").binid is None
    assert not read_map(maps_path, "EMLINE_GVEL", channel="Ha-6564").is_binned  # one per bin
    assert read_map(maps_path, "STELLAR_VEL").is_binned


def test_flux_weights_of_a_binned_map(maps_path, tmp_path):
    m = read_map(maps_path, "STELLAR_VEL")
    w = read_flux_weights(maps_path, m)
    ref = read_map(maps_path, "SPX_MFLUX")
    np.testing.assert_array_equal(w.data, ref.data)
    np.testing.assert_array_equal(w.variance, ref.variance)
    assert np.all(w.data[m.good] > 0)
    assert read_flux_weights(maps_path, m, ext="NO_SUCH_EXT") is None
    # unusable on a valid spaxel (here: zero flux): None, the caller weights uniformly
    bad = tmp_path / "zero_flux.fits"
    with fits.open(maps_path) as h:
        h["SPX_MFLUX"].data[np.nonzero(m.good)[0][0], np.nonzero(m.good)[1][0]] = 0.0
        h.writeto(bad)
    assert read_flux_weights(bad, read_map(bad, "STELLAR_VEL")) is None


def test_wcs_is_celestial_and_scale(maps_path, maps_hdul):
    m = read_map(maps_path, "STELLAR_VEL")
    assert m.wcs.naxis == 2
    reference = WCS(maps_hdul["SPX_SNR"].header)
    np.testing.assert_allclose(
        m.wcs.pixel_to_world_values(5, 7), reference.pixel_to_world_values(5, 7)
    )


def test_channel_names_are_case_insensitive(maps_path):
    a = read_map(maps_path, "emline_gvel", channel="ha-6564")
    b = read_map(maps_path, "EMLINE_GVEL", channel="Ha-6564")
    np.testing.assert_array_equal(a.data, b.data)


def test_unknown_channel_lists_available(maps_path):
    with pytest.raises(UnknownChannelError, match="Ha-6564") as err:
        read_map(maps_path, "EMLINE_GVEL", channel="Halpha")
    assert MAPS in str(err.value) and "EMLINE_GVEL" in str(err.value)
    with pytest.raises(UnknownChannelError, match="choose one"):
        read_map(maps_path, "EMLINE_GVEL")
    with pytest.raises(UnknownChannelError, match="no channels"):
        read_map(maps_path, "STELLAR_VEL", channel="Ha-6564")
    with pytest.raises(UnknownChannelError, match="out of range"):
        read_map(maps_path, "EMLINE_GVEL", channel=22)
    with pytest.raises(UnknownChannelError, match="name one"):
        read_map(maps_path)


def test_missing_extensions(maps_path):
    with pytest.raises(MissingExtensionError, match="EMLINE_FOO") as err:
        read_map(maps_path, "EMLINE_FOO", channel="Ha-6564")
    assert MAPS in str(err.value)
    with pytest.raises(MissingExtensionError, match="SPX_SNR_IVAR"):
        read_map(maps_path, "SPX_SNR")


def test_unknown_mask_bit(maps_path):
    with pytest.raises(InputError, match="NOTABIT"):
        read_map(maps_path, "STELLAR_VEL", mask_bits=("NOTABIT",))


def test_maps_is_not_a_cube(maps_path):
    with pytest.raises(UnsupportedFormatError, match="read_map"):
        bi.read_cube(maps_path)


def test_snrg_signal_map(snrg_path, maps_hdul):
    m = read_map(snrg_path, "SPECTRUM", channel="SIGNAL")
    table = Table.read(snrg_path, hdu="SPECTRUM")
    assert m.shape == (42, 42)
    assert m.n_good == 863
    np.testing.assert_array_equal(m.good, maps_hdul["SPX_SNR"].data > 0)
    x, y = table["DRP_INDEX"][:, 0], table["DRP_INDEX"][:, 1]
    used = (table["FGOODPIX"] > 0) & (table["VARIANCE"] > 0)
    np.testing.assert_array_equal(m.data[y[used], x[used]], table["SIGNAL"][used])
    np.testing.assert_array_equal(m.variance[y[used], x[used]], table["VARIANCE"][used])
    with pytest.raises(UnknownChannelError, match="SIGNAL"):
        read_map(snrg_path, "SPECTRUM", channel="SNR")
    with pytest.raises(UnknownChannelError, match="SPECTRUM"):
        read_map(snrg_path, "CORREL")
    with pytest.raises(UnsupportedFormatError, match="SNRG"):
        bi.read_cube(snrg_path)


# --- synthetic MAPS files -------------------------------------------------------------------


def _write_maps(path, value, ivar, mask, channels=None, binid=None, ivar_shape=None):
    primary = fits.PrimaryHDU()
    primary.header["DAPFRMT"] = "MAPS"
    primary.header["MASKNAME"] = "MANGA_DAPPIXMASK"
    header = fits.Header()
    for i, name in enumerate(channels or []):
        header[f"C{i + 1:02d}"] = name
    header["BUNIT"] = "km/s"
    header["ERRDATA"] = "EMLINE_GVEL_IVAR"
    header["QUALDATA"] = "EMLINE_GVEL_MASK"
    hdus = [
        primary,
        fits.ImageHDU(value.astype("f4"), header=header, name="EMLINE_GVEL"),
        fits.ImageHDU(
            ivar.astype("f4") if ivar_shape is None else np.ones(ivar_shape, "f4"),
            name="EMLINE_GVEL_IVAR",
        ),
        fits.ImageHDU(mask.astype("i4"), name="EMLINE_GVEL_MASK"),
    ]
    if binid is not None:
        bheader = fits.Header()
        for i, name in enumerate(
            ["Binned spectra", "Stellar continua", "Em. line moments", "Em. line models"]
        ):
            bheader[f"C{i + 1}"] = name
        hdus.append(fits.ImageHDU(binid.astype("i4"), header=bheader, name="BINID"))
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.mark.parametrize("bit", sorted(DAP_PIXMASK_BITS, key=DAP_PIXMASK_BITS.get))
def test_each_bit_masked_as_documented(tmp_path, bit):
    shape = (1, 4, 5)
    mask = np.zeros(shape, int)
    mask[0, 2, 3] = 1 << DAP_PIXMASK_BITS[bit]
    path = _write_maps(tmp_path / "m.fits", np.ones(shape), np.ones(shape), mask, ["Ha-6564"])
    m = read_map(path, "EMLINE_GVEL", channel="Ha-6564")
    expected = bit not in ("NOCORRECTION", "MULTICOMP")
    assert m.mask[2, 3] == expected
    assert m.mask.sum() == int(expected)


def test_synthetic_binid_minus_one_is_masked(tmp_path):
    shape = (1, 3, 3)
    binid = np.zeros((4, 3, 3), int)
    binid[3] = np.arange(9).reshape(3, 3)
    binid[3, 0, 0] = -1
    path = _write_maps(
        tmp_path / "m.fits",
        np.ones(shape),
        np.ones(shape),
        np.zeros(shape),
        ["Ha-6564"],
        binid=binid,
    )
    m = read_map(path, "EMLINE_GVEL", channel="Ha-6564")
    assert m.mask[0, 0] and m.n_good == 8
    np.testing.assert_array_equal(m.bins, np.arange(1, 9))


def test_synthetic_negative_ivar_masked_nan_ivar_rejected(tmp_path):
    shape = (1, 3, 3)
    ivar = np.ones(shape)
    ivar[0, 1, 1] = -2.0
    path = _write_maps(tmp_path / "a.fits", np.ones(shape), ivar, np.zeros(shape), ["Ha-6564"])
    assert read_map(path, "EMLINE_GVEL", channel=0).mask[1, 1]
    ivar[0, 1, 1] = np.nan
    path = _write_maps(tmp_path / "b.fits", np.ones(shape), ivar, np.zeros(shape), ["Ha-6564"])
    with pytest.raises(VarianceError, match="b.fits"):
        read_map(path, "EMLINE_GVEL", channel=0)


def test_synthetic_shape_mismatch(tmp_path):
    shape = (1, 3, 3)
    path = _write_maps(
        tmp_path / "m.fits",
        np.ones(shape),
        np.ones(shape),
        np.zeros(shape),
        ["Ha-6564"],
        ivar_shape=(1, 3, 4),
    )
    with pytest.raises(ShapeError, match="EMLINE_GVEL_IVAR") as err:
        read_map(path, "EMLINE_GVEL", channel=0)
    assert "m.fits" in str(err.value)


def test_synthetic_missing_quality_extension(tmp_path):
    shape = (1, 3, 3)
    path = _write_maps(
        tmp_path / "m.fits", np.ones(shape), np.ones(shape), np.zeros(shape), ["Ha-6564"]
    )
    with fits.open(path) as hdul:
        del hdul["EMLINE_GVEL_MASK"]
        hdul.writeto(tmp_path / "n.fits")
    with pytest.raises(MissingExtensionError, match="EMLINE_GVEL_MASK"):
        read_map(tmp_path / "n.fits", "EMLINE_GVEL", channel=0)
