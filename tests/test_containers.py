import numpy as np
import pytest

import bayesifu as bi


def test_map_from_arrays_masks_nan_and_binid():
    data = np.arange(12.0).reshape(3, 4)
    data[0, 0] = np.nan
    binid = np.zeros((3, 4), int)
    binid[2, 3] = -1
    m = bi.Map(data, np.ones((3, 4)), binid=binid)
    assert m.mask[0, 0] and m.mask[2, 3]
    assert m.n_good == 10
    assert list(m.bins) == [0]
    assert m.is_binned


def test_is_binned_only_if_spaxels_in_use_share_a_bin():
    one_each = np.arange(12).reshape(3, 4)
    assert not bi.Map(np.zeros((3, 4)), np.ones((3, 4))).is_binned
    assert not bi.Map(np.zeros((3, 4)), np.ones((3, 4)), binid=one_each).is_binned
    pairs = one_each // 2
    assert bi.Map(np.zeros((3, 4)), np.ones((3, 4)), binid=pairs).is_binned
    # masked spaxels do not count: one used spaxel per pair is not binned
    mask = (one_each % 2).astype(bool)
    assert not bi.Map(np.zeros((3, 4)), np.ones((3, 4)), mask=mask, binid=pairs).is_binned


@pytest.mark.parametrize(
    "variance, err",
    [(np.nan, "NaN"), (-1.0, "negative"), (0.0, "zero")],
)
def test_map_rejects_bad_variance(variance, err):
    v = np.ones((3, 3))
    v[1, 1] = variance
    with pytest.raises(bi.VarianceError, match=err):
        bi.Map(np.zeros((3, 3)), v, name="velocity")
    # masking the spaxel makes it acceptable
    mask = np.zeros((3, 3), bool)
    mask[1, 1] = True
    assert bi.Map(np.zeros((3, 3)), v, mask=mask).n_good == 8


def test_map_shape_and_empty_errors():
    with pytest.raises(bi.ShapeError, match="variance shape"):
        bi.Map(np.zeros((3, 3)), np.ones((3, 4)))
    with pytest.raises(bi.ShapeError, match="mask shape"):
        bi.Map(np.zeros((3, 3)), np.ones((3, 3)), mask=np.zeros((2, 2), bool))
    with pytest.raises(bi.EmptyDataError, match="every spaxel"):
        bi.Map(np.zeros((2, 2)), np.ones((2, 2)), mask=np.ones((2, 2), bool))


def test_cube_validation_and_channel_map():
    flux = np.ones((5, 2, 3))
    var = np.ones((5, 2, 3))
    var[2, 0, 0] = 0.0
    c = bi.Cube(flux, var, wave=np.linspace(5000, 5004, 5))
    assert c.spatial_shape == (2, 3)
    m = c.channel_map(2)
    assert m.mask[0, 0] and m.n_good == 5
    assert c.masked_fraction() == pytest.approx(1 / 30)
    with pytest.raises(bi.ShapeError, match="wave"):
        bi.Cube(flux, var, wave=np.arange(4.0))
    with pytest.raises(bi.InputError, match="increase"):
        bi.Cube(flux, var, wave=np.array([1.0, 2, 2, 3, 4]))
    with pytest.raises(bi.InputError, match="wave_medium"):
        bi.Cube(flux, var, wave=np.arange(5.0) + 1, wave_medium="water")
