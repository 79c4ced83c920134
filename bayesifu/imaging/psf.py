"""PSF matching as a sparse linear operator on a row-major image.

Broadening an image with PSF :math:`P_s` to a broader PSF :math:`P_t` is a convolution with a
kernel :math:`K` such that :math:`P_s * K = P_t`. For Gaussians the kernel is the Gaussian of

.. math::

    \\sigma_K^2 = \\sigma_t^2 - \\sigma_s^2,\\qquad \\sigma = {\\rm FWHM}/(2\\sqrt{2\\ln 2}),

which exists only if the target is broader than the source. For Moffat profiles or PSF images the
kernel is the windowed Fourier ratio of :func:`photutils.psf_matching.make_kernel`.

The convolution is the sparse matrix :math:`\\mathbf K` (:func:`convolution_operator`), one row per
output pixel, :math:`(\\mathbf K\\mathbf x)_p = \\sum_q K(p - q)\\,x_q`, so that the covariance of
the matched image is :math:`\\mathbf K\\mathbf C\\mathbf K^{\\rm T}` exactly, with the correlation
that the convolution creates. Boundary: taps that fall outside the image or on masked pixels are
dropped and each row renormalised to the sum of the taps used (an unbiased surface brightness for a
locally smooth image; flux is not conserved there), and :func:`convolution_operator` returns the
fraction of kernel weight each row used, so that incomplete rows can be masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import erf

from ..errors import InputError, ShapeError

__all__ = [
    "GaussianPSF",
    "MoffatPSF",
    "ImagePSF",
    "as_psf",
    "read_psf",
    "matching_kernel",
    "convolution_operator",
    "FWHM_PER_SIGMA",
]

#: FWHM / sigma of a Gaussian, :math:`2\\sqrt{2\\ln 2}`.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def _positive(value, what):
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"{what} must be positive and finite, got {value}")
    return value


@dataclass(frozen=True)
class GaussianPSF:
    """A circular Gaussian PSF of full width at half maximum ``fwhm`` [arcsec]."""

    fwhm: float

    def __post_init__(self):
        _positive(self.fwhm, "Gaussian PSF FWHM [arcsec]")

    @property
    def sigma(self) -> float:
        """The Gaussian width [arcsec]."""
        return self.fwhm / FWHM_PER_SIGMA

    def image(self, pixel_scale, size) -> np.ndarray:
        """The PSF integrated over ``size x size`` pixels of ``pixel_scale`` [arcsec], sum 1."""
        return _pixel_gaussian(self.sigma / pixel_scale, size)


@dataclass(frozen=True)
class MoffatPSF:
    """A circular Moffat PSF, :math:`(1 + r^2/\\alpha^2)^{-\\beta}`, of FWHM ``fwhm`` [arcsec]."""

    fwhm: float
    beta: float = 4.765  # Trujillo et al. 2001, MNRAS 328, 977: the atmospheric-turbulence value

    def __post_init__(self):
        _positive(self.fwhm, "Moffat PSF FWHM [arcsec]")
        if float(self.beta) <= 1:
            raise InputError(f"Moffat beta must be > 1, got {self.beta}")

    def image(self, pixel_scale, size, oversample=5) -> np.ndarray:
        """The PSF averaged over ``size x size`` pixels of ``pixel_scale`` [arcsec], sum 1."""
        alpha = self.fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / self.beta) - 1.0)) / pixel_scale
        n = size * oversample
        c = (np.arange(n) + 0.5) / oversample - size / 2.0
        r2 = c[:, None] ** 2 + c[None] ** 2
        fine = (1 + r2 / alpha**2) ** (-self.beta)
        img = fine.reshape(size, oversample, size, oversample).sum(axis=(1, 3))
        return img / img.sum()


@dataclass(frozen=True)
class ImagePSF:
    """A PSF given as an image sampled at ``pixel_scale`` [arcsec] (centred, odd size)."""

    array: np.ndarray
    pixel_scale: float
    name: str = "PSF image"

    def __post_init__(self):
        a = np.asarray(self.array, dtype=float)
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] % 2 == 0:
            raise ShapeError(f"{self.name}: a PSF image must be square with an odd size")
        if not np.all(np.isfinite(a)) or a.sum() <= 0:
            raise InputError(f"{self.name}: a PSF image must be finite with a positive sum")
        _positive(self.pixel_scale, f"{self.name}: pixel scale [arcsec]")

    @property
    def fwhm(self) -> float:
        """The FWHM [arcsec] of the Gaussian with the same second moment."""
        a = np.asarray(self.array, float)
        c = np.arange(a.shape[0]) - a.shape[0] // 2
        r2 = c[:, None] ** 2 + c[None] ** 2
        return float(np.sqrt(np.sum(a * r2) / a.sum() / 2.0)) * FWHM_PER_SIGMA * self.pixel_scale

    def image(self, pixel_scale, size) -> np.ndarray:
        """The PSF resampled to ``pixel_scale`` [arcsec] on ``size x size`` pixels, sum 1."""
        from scipy.ndimage import map_coordinates

        a = np.asarray(self.array, float)
        c = (np.arange(size) - size // 2) * pixel_scale / self.pixel_scale + a.shape[0] // 2
        out = map_coordinates(a, np.meshgrid(c, c, indexing="ij"), order=3, mode="constant")
        return out / out.sum()


def as_psf(psf):
    """A PSF object from a FWHM [arcsec] (a Gaussian) or a PSF object (returned)."""
    if isinstance(psf, (GaussianPSF, MoffatPSF, ImagePSF)):
        return psf
    if psf is None:
        raise InputError("a PSF is needed: give its FWHM [arcsec] or a PSF object")
    return GaussianPSF(float(psf))


def _pixel_gaussian(sigma_pix, size) -> np.ndarray:
    """A Gaussian of width ``sigma_pix`` [pixel] integrated over pixels, centred, sum 1."""
    edges = np.arange(size + 1) - size / 2.0
    one = np.diff(erf(edges / (np.sqrt(2.0) * sigma_pix)))
    img = np.outer(one, one)
    return img / img.sum()


def matching_kernel(
    source, target, pixel_scale, *, nsigma=4.0, size=None, window=None, name="image"
):
    """The kernel that turns PSF ``source`` into the broader PSF ``target``.

    Parameters
    ----------
    source, target : float or GaussianPSF or MoffatPSF or ImagePSF
        The PSFs (a float is a Gaussian FWHM [arcsec]).
    pixel_scale : float
        The pixel size of the image that will be convolved [arcsec].
    nsigma : float
        For Gaussians: the kernel is cut at ``nsigma`` kernel widths (and renormalised).
    size : int, optional
        Kernel size [pixel], odd; default from ``nsigma`` or 4 target FWHM.
    window : photutils window, optional
        For non-Gaussian PSFs: the window of ``make_kernel`` (default
        ``SplitCosineBellWindow(alpha=0.4, beta=0.3)``).
    name : str
        What is being matched, for messages.

    Returns
    -------
    numpy.ndarray, shape (size, size)
        The kernel, centred, sum 1; ``[[1.0]]`` if the PSFs are equal.

    Raises
    ------
    InputError
        If the target PSF is narrower than the source (no kernel can sharpen an image).
    """
    source, target = as_psf(source), as_psf(target)
    pixel_scale = _positive(pixel_scale, "pixel scale [arcsec]")
    if target.fwhm < source.fwhm * (1 - 1e-9):
        raise InputError(
            f"{name}: its PSF (FWHM {source.fwhm:.3g} arcsec) is broader than the target PSF "
            f"(FWHM {target.fwhm:.3g} arcsec); matching can only broaden, choose a target at least "
            "as broad as the broadest input"
        )
    if isinstance(source, GaussianPSF) and isinstance(target, GaussianPSF):
        var = target.sigma**2 - source.sigma**2
        if var <= (1e-6 * pixel_scale) ** 2:
            return np.ones((1, 1))
        sigma_pix = np.sqrt(var) / pixel_scale
        if size is None:
            size = 2 * int(np.ceil(nsigma * sigma_pix)) + 1
        return _pixel_gaussian(sigma_pix, int(size))
    from photutils.psf_matching import SplitCosineBellWindow, make_kernel

    if size is None:
        size = 2 * int(np.ceil(2.0 * target.fwhm / pixel_scale)) + 1
    window = SplitCosineBellWindow(alpha=0.4, beta=0.3) if window is None else window
    kernel = make_kernel(
        source.image(pixel_scale, size), target.image(pixel_scale, size), window=window
    )
    return kernel / kernel.sum()


def convolution_operator(kernel, shape, mask=None):
    """The sparse convolution matrix of ``kernel`` on a row-major ``(ny, nx)`` image.

    Parameters
    ----------
    kernel : array_like, shape (ky, kx)
        Odd-sized, centred kernel (sum 1).
    shape : tuple of int
        The image ``(ny, nx)``; input and output are on the same grid.
    mask : array_like of bool, shape (ny, nx), optional
        Pixels that must get no weight (``True`` = masked).

    Returns
    -------
    operator : scipy.sparse.csr_array, shape (ny*nx, ny*nx)
        Row ``p`` holds :math:`K(p - q)` for the unmasked pixels ``q`` inside the image,
        renormalised to sum 1 (rows of masked output pixels are empty).
    weight_used : numpy.ndarray, shape (ny, nx)
        The fraction of the kernel's weight that row ``p`` used before renormalising (1 in the
        interior, less near edges and masked pixels).
    """
    kernel = np.asarray(kernel, dtype=float)
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ShapeError(f"kernel must be 2-D with odd sizes, got {kernel.shape}")
    ny, nx = (int(s) for s in shape)
    mask = np.zeros((ny, nx), bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != (ny, nx):
        raise ShapeError(f"mask shape {mask.shape} does not match the image {(ny, nx)}")
    kernel = kernel / kernel.sum()
    ky, kx = kernel.shape
    dy, dx = np.nonzero(kernel)
    w = kernel[dy, dx]
    dy, dx = dy - ky // 2, dx - kx // 2
    y, x = np.divmod(np.flatnonzero(~mask.ravel()), nx)
    # output p = (y, x) takes input q = p - d
    qy = y[:, None] - dy[None]
    qx = x[:, None] - dx[None]
    inside = (qy >= 0) & (qy < ny) & (qx >= 0) & (qx < nx)
    qyc, qxc = np.clip(qy, 0, ny - 1), np.clip(qx, 0, nx - 1)
    inside &= ~mask[qyc, qxc]
    rows = np.broadcast_to((y * nx + x)[:, None], qy.shape)[inside]
    cols = (qyc * nx + qxc)[inside]
    vals = np.broadcast_to(w[None], qy.shape)[inside]
    used = np.zeros(ny * nx)
    np.add.at(used, rows, vals)
    with np.errstate(divide="ignore", invalid="ignore"):
        vals = vals / used[rows]
    op = sp.csr_array((vals, (rows, cols)), shape=(ny * nx, ny * nx))
    op.sum_duplicates()
    return op, used.reshape(ny, nx)


#: Header keywords read for the pixel scale [arcsec] of a PSF image without a celestial WCS.
PSF_SCALE_KEYS = ("PSFSCALE", "PIXSCALE", "PIXSCAL", "SECPIX")


def read_psf(path, pixel_scale=None, ext=None) -> ImagePSF:
    """Read a PSF image (odd, square, centred) from a FITS file.

    Parameters
    ----------
    path : str or path-like
        The FITS file.
    pixel_scale : float, optional
        Its pixel size [arcsec]; default from the celestial WCS or the keywords
        :data:`PSF_SCALE_KEYS`.
    ext : int or str, optional
        The extension; default the first 2-D image.

    Raises
    ------
    FileFormatError
        No 2-D image or no pixel scale, naming the file.
    """
    from ..errors import FileFormatError
    from ..io.fitsio import celestial_wcs, open_fits, spaxel_scale

    with open_fits(path) as hdul:
        hdus = [hdul[ext]] if ext is not None else list(hdul)
        hdu = next(
            (h for h in hdus if h.is_image and h.data is not None and h.data.ndim == 2), None
        )
        if hdu is None:
            raise FileFormatError(f"{path}: no 2-D PSF image found")
        array = np.array(hdu.data, dtype=float)
        if pixel_scale is None:
            wcs = celestial_wcs(hdu.header)
            if wcs is not None:
                pixel_scale = spaxel_scale(wcs)
            else:
                key = next((k for k in PSF_SCALE_KEYS if k in hdu.header), None)
                if key is None:
                    raise FileFormatError(
                        f"{path}: the PSF image has no pixel scale (WCS or "
                        f"{'/'.join(PSF_SCALE_KEYS)}); give it [arcsec]"
                    )
                pixel_scale = float(hdu.header[key])
    return ImagePSF(array, float(pixel_scale), name=str(path))
