"""Array conversions shared by the readers, done channel-chunk by channel-chunk to bound memory.

A full MUSE field is 3681 x 300 x 300 float32 pixels (1.3 GB per extension). The conversions here
never materialise a float64 copy of a cube: they fill one preallocated float32 variance array and
one boolean mask (a quarter of the flux size), reading the inputs a chunk of channels at a time.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError, VarianceError

__all__ = [
    "CHUNK",
    "check_shapes",
    "variance_from_error",
    "mask_from_bits",
    "nonpositive",
    "check_cube_variance",
]

#: Channels processed at once (about 90 MB of float32 for a 300 x 300 MUSE field).
CHUNK = 256


def check_shapes(path, reference_name, reference, **others):
    """Raise :class:`ShapeError` if any array in ``others`` differs in shape from ``reference``."""
    for name, array in others.items():
        if array is not None and array.shape != reference.shape:
            raise ShapeError(
                f"{path}: extension {name} has shape {array.shape}, which does not match "
                f"{reference_name} {reference.shape}"
            )


def variance_from_error(error, kind):
    """Variance [unit**2] from an error array of kind ``"ivar"``, ``"var"`` or ``"err"``.

    ``"var"`` is returned as it is (no copy, memory map preserved). ``"ivar"`` becomes
    ``1 / ivar`` where ``ivar > 0``, ``inf`` where ``ivar <= 0`` (no information) and NaN where
    ``ivar`` is NaN (so that validation can report it). ``"err"`` becomes ``err**2`` with NaN and
    the sign of negative errors kept (a negative error is reported as a negative variance). The
    result keeps the input's floating dtype (float32 stays float32).
    """
    if kind == "var":
        return error
    dtype = error.dtype if np.issubdtype(error.dtype, np.floating) else np.float64
    out = np.empty(error.shape, dtype=dtype.newbyteorder("="))
    flat_in = error.reshape(error.shape[0], -1) if error.ndim > 1 else error[:, None]
    flat_out = out.reshape(flat_in.shape)
    for k0 in range(0, flat_in.shape[0], CHUNK):
        e = np.asarray(flat_in[k0 : k0 + CHUNK])
        if kind == "ivar":
            v = np.full(e.shape, np.inf, dtype=out.dtype)
            np.divide(1.0, e, out=v, where=e > 0)
            v[np.isnan(e)] = np.nan
        elif kind == "err":
            v = np.sign(e) * e * e
        else:
            raise ValueError(f"unknown error kind {kind!r}")
        flat_out[k0 : k0 + CHUNK] = v
    return out


def mask_from_bits(bitmask, bits, extra=None):
    """Boolean mask: ``True`` where ``bitmask`` has any of ``bits`` set, or ``extra`` is true.

    Parameters
    ----------
    bitmask : ndarray of int or None
        The quality extension (``None``: no bit is set anywhere).
    bits : iterable of int
        Bit numbers (0-based) that mean *do not use*; ``None`` means any non-zero value.
    extra : ndarray of bool, optional
        Further pixels to mask, same shape.
    """
    shape = bitmask.shape if bitmask is not None else extra.shape
    out = np.zeros(shape, dtype=bool)
    flat_out = out.reshape(shape[0], -1)
    value = None if bits is None else sum(1 << int(b) for b in bits)
    for k0 in range(0, shape[0], CHUNK):
        sl = slice(k0, k0 + CHUNK)
        m = np.zeros(flat_out[sl].shape, dtype=bool)
        if bitmask is not None:
            b = np.asarray(bitmask[sl]).reshape(m.shape)
            m |= (b != 0) if value is None else (b & value) != 0
        if extra is not None:
            m |= np.asarray(extra[sl]).reshape(m.shape)
        flat_out[sl] = m
    return out


def nonpositive(array):
    """Boolean array, ``True`` where ``array <= 0`` (NaN gives ``False``), computed in chunks."""
    out = np.zeros(array.shape, dtype=bool)
    for k0 in range(0, array.shape[0], CHUNK):
        out[k0 : k0 + CHUNK] = np.asarray(array[k0 : k0 + CHUNK]) <= 0
    return out


def check_cube_variance(flux, variance, mask, path, ext):
    """Raise :class:`VarianceError` if a pixel in use has a NaN or negative variance.

    A pixel is in use where it is not masked and its flux is finite. A zero or infinite variance
    is accepted: it means *no information* and the pixel is skipped downstream (see
    :meth:`bayesifu.Cube.channel_mask`).
    """
    n_nan = n_neg = 0
    for k0 in range(0, flux.shape[0], CHUNK):
        sl = slice(k0, k0 + CHUNK)
        used = np.isfinite(np.asarray(flux[sl]))
        if mask is not None:
            used &= ~np.asarray(mask[sl], dtype=bool)
        v = np.asarray(variance[sl])[used]
        n_nan += int(np.isnan(v).sum())
        n_neg += int((v < 0).sum())
    if n_nan:
        raise VarianceError(
            f"{path}[{ext}]: {n_nan} unmasked pixel(s) with finite flux have a NaN variance; "
            "mask them in the quality extension or fix the error extension"
        )
    if n_neg:
        raise VarianceError(f"{path}[{ext}]: {n_neg} unmasked pixel(s) have a negative variance")
