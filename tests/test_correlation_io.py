"""Correlation tables: MaNGA CORREL and astropy layouts, FITS round trips, the real SNRG file."""

import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import Covariance
from astropy.table import Table, vstack
from scipy.linalg import eigvalsh

from bayesifu import SpatialCorrelation
from bayesifu.correlation.fits import read_spectrum_table
from bayesifu.errors import (
    CovarianceError,
    FileFormatError,
    InputError,
    MissingExtensionError,
    ShapeError,
)

SNRG = "manga-7815-3702-SNRG.fits.gz"


@pytest.fixture
def corr():
    good = np.ones((7, 9), bool)
    good[0, :3] = False
    good[5, 6] = False
    return SpatialCorrelation.gaussian((7, 9), sigma=1.4, rlim=3.5, footprint=good)


def same(a, b):
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.defined, b.defined)
    np.testing.assert_allclose(a.matrix.toarray(), b.matrix.toarray(), rtol=0, atol=1e-15)


@pytest.mark.parametrize("layout", ["correl", "astropy"])
def test_table_round_trip(corr, layout):
    table = corr.to_table(layout)
    back = SpatialCorrelation.from_table(table)
    same(corr, back)
    assert back.params["layout"] == layout


@pytest.mark.parametrize("layout", ["correl", "astropy"])
def test_fits_round_trip(corr, layout, tmp_path):
    path = tmp_path / "c.fits"
    corr.write(path, ext="GCORREL", layout=layout)
    same(corr, SpatialCorrelation.from_fits(path, ext="GCORREL"))
    assert sorted(os.listdir(tmp_path)) == ["c.fits"]


def test_correl_table_is_upper_triangle_in_manga_order(corr):
    table = corr.to_table("correl")
    ny = corr.shape[0]
    a = table["INDXI_C1"] * ny + table["INDXI_C2"]
    b = table["INDXJ_C1"] * ny + table["INDXJ_C2"]
    assert np.all(a <= b)
    assert table.meta["COVSHAPE"] == str((63, 63))
    assert table.meta["COVDSHP"] == str((7, 9))
    n_upper = (corr.matrix.nnz + corr.defined.sum()) // 2
    assert len(table) == n_upper


def test_astropy_table_reads_in_astropy(corr):
    cov = Covariance.from_table(corr.to_table("astropy"))
    np.testing.assert_allclose(cov.to_dense(), corr.matrix.toarray(), atol=1e-15)
    assert cov.data_shape == corr.shape


def test_astropy_table_without_data_shape(corr):
    """A flat astropy table (no COVDSHP) of a square grid, or with the shape given."""
    cov = Covariance(array=corr.matrix.tocsr(), assume_symmetric=True)
    table = cov.to_table()
    with pytest.raises(ShapeError, match="not a square grid"):
        SpatialCorrelation.from_table(table)
    same(corr, SpatialCorrelation.from_table(table, shape=corr.shape))


def test_both_triangles_accepted(corr):
    table = corr.to_table("correl")
    flipped = Table(
        [
            table["INDXJ_C1"],
            table["INDXJ_C2"],
            table["INDXI_C1"],
            table["INDXI_C2"],
            table["RHOIJ"],
        ],
        names=table.colnames,
        meta=table.meta,
    )
    same(corr, SpatialCorrelation.from_table(vstack([table, flipped])))


def test_write_refuses_to_overwrite(corr, tmp_path):
    path = tmp_path / "c.fits"
    path.write_bytes(b"keep me")
    with pytest.raises(InputError, match="exists"):
        corr.write(path)
    assert path.read_bytes() == b"keep me"
    corr.write(path, overwrite=True)
    same(corr, SpatialCorrelation.from_fits(path))


def test_failed_write_leaves_nothing(corr, tmp_path, monkeypatch):
    path = tmp_path / "c.fits"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", boom)
    with pytest.raises(RuntimeError):
        corr.write(path)
    assert os.listdir(tmp_path) == []


def test_bad_layout(corr):
    with pytest.raises(InputError, match="layout"):
        corr.to_table("csv")


# -------------------------------------------------------------------------- bad tables
def correl_table(rows, covshape="(4, 4)"):
    names = ("INDXI_C1", "INDXI_C2", "INDXJ_C1", "INDXJ_C2", "RHOIJ")
    cols = list(zip(*rows, strict=True))
    return Table([np.array(c) for c in cols], names=names, meta={"COVSHAPE": covshape})


GOOD_ROWS = [(0, 0, 0, 0, 1.0), (1, 0, 1, 0, 1.0), (0, 0, 1, 0, 0.4)]


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (GOOD_ROWS[:2] + [(0, 0, 1, 0, np.nan)], "NaN"),
        (GOOD_ROWS[:2] + [(0, 0, 1, 0, 1.3)], r"outside \[-1, 1\]"),
        (GOOD_ROWS + [(1, 0, 0, 0, 0.5)], "asymmetric"),
        ([(0, 0, 0, 0, 2.0), (1, 0, 1, 0, 1.0)], "diagonal"),
    ],
)
def test_bad_table_values(rows, match):
    with pytest.raises(CovarianceError, match=match):
        SpatialCorrelation.from_table(correl_table(rows))


def test_bad_table_structure():
    table = correl_table(GOOD_ROWS)
    with pytest.raises(ShapeError, match="does not match COVSHAPE"):
        SpatialCorrelation.from_table(table, shape=(3, 3))
    with pytest.raises(ShapeError, match="not a square grid"):
        SpatialCorrelation.from_table(correl_table(GOOD_ROWS, "(6, 6)"))
    with pytest.raises(FileFormatError, match="COVSHAPE"):
        SpatialCorrelation.from_table(correl_table(GOOD_ROWS, "(4, 5)"))
    with pytest.raises(FileFormatError, match="COVSHAPE"):
        SpatialCorrelation.from_table(correl_table(GOOD_ROWS, "four"))
    with pytest.raises(FileFormatError, match="INDXJ_C1"):
        SpatialCorrelation.from_table(correl_table(GOOD_ROWS[:2] + [(0, 0, 2, 0, 0.1)]))
    no_key = correl_table(GOOD_ROWS)
    no_key.meta = {}
    with pytest.raises(FileFormatError, match="COVSHAPE header key"):
        SpatialCorrelation.from_table(no_key)
    with pytest.raises(FileFormatError, match="not a correlation table"):
        SpatialCorrelation.from_table(Table({"A": [1]}, meta={"COVSHAPE": "(1, 1)"}))


def test_bad_files(tmp_path, data_dir):
    with pytest.raises(MissingExtensionError, match="NOPE"):
        SpatialCorrelation.from_fits(data_dir / SNRG, ext="NOPE")
    with pytest.raises(FileFormatError, match="not a binary table"):
        SpatialCorrelation.from_fits(data_dir / SNRG, ext="PRIMARY")
    with pytest.raises(FileFormatError, match="no such file"):
        SpatialCorrelation.from_fits(tmp_path / "missing.fits")
    junk = tmp_path / "junk.fits"
    junk.write_text("not a fits file at all" * 200)
    with pytest.raises(FileFormatError, match="junk.fits"):
        SpatialCorrelation.from_fits(junk)


# -------------------------------------------------------------------------- the real file
@pytest.fixture(scope="module")
def real(data_dir):
    return SpatialCorrelation.from_fits(data_dir / SNRG)


def test_real_footprint_is_snr_positive(real, data_dir):
    """CORREL (C1, C2) = image[C2, C1]: its 863 spaxels are exactly those with SNR > 0."""
    spec = read_spectrum_table(data_dir / SNRG)
    assert real.shape == (42, 42)
    assert real.defined.sum() == 863
    np.testing.assert_array_equal(real.defined, spec["SNR"] > 0)
    with fits.open(data_dir / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz") as maps:
        np.testing.assert_array_equal(real.defined, maps["SPX_SNR"].data > 0)


def test_spectrum_table_order(data_dir):
    """SPECTRUM rows are x-major: row C1 * ny + C2, DRP_INDEX = (C1, C2)."""
    with fits.open(data_dir / SNRG) as hdul:
        index = np.asarray(hdul["SPECTRUM"].data["DRP_INDEX"])
    np.testing.assert_array_equal(index[:, 0] * 42 + index[:, 1], np.arange(42 * 42))
    spec = read_spectrum_table(data_dir / SNRG)
    np.testing.assert_array_equal(spec["VARIANCE"] > 0, spec["SNR"] > 0)
    with fits.open(data_dir / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz") as maps:
        np.testing.assert_allclose(spec["SNR"], maps["SPX_SNR"].data, rtol=1e-6)


@pytest.mark.slow
def test_real_matrix_rank_and_round_trip(real, tmp_path):
    dense = real.submatrix(real.defined).toarray()
    eig = np.linalg.eigvalsh(dense)
    rank = int(np.sum(eig > 1e-10 * eig.max()))
    assert 540 <= rank <= 570  # 554 measured; the README says "about 554"
    assert eig.min() > -1e-12
    path = tmp_path / "real.fits"
    real.write(path)
    same(real, SpatialCorrelation.from_fits(path))
    same(real, SpatialCorrelation.from_table(real.to_table("astropy")))


@pytest.mark.slow
def test_real_footprint_gaussian_eigenvalues(real):
    """Hard cut: indefinite (about -0.025, README); kernel and Wendland: positive-definite."""
    good = real.defined
    eig = {}
    for taper in ["kernel", "wendland", None]:
        g = SpatialCorrelation.gaussian((42, 42), 1.92, 6.4, taper=taper, footprint=good)
        eig[taper] = eigvalsh(g.submatrix(good).toarray(), subset_by_index=[0, 0])[0]
    assert -0.03 < eig[None] < -0.02
    assert eig["kernel"] > 0
    assert eig["wendland"] > 0
