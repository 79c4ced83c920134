"""Spatial matching of images to an IFU grid, with the exact covariance of the matched images.

Each band is matched by one sparse operator on its flattened (row-major) pixels,

.. math::

    \\mathbf T = \\mathbf R\\,\\mathbf K,

the PSF-matching convolution :math:`\\mathbf K` on the image's own grid
(:func:`~bayesifu.imaging.psf.convolution_operator`) followed by the flux-conserving overlap
operator :math:`\\mathbf R` onto the IFU grid
(:func:`~bayesifu.imaging.reproject.overlap_operator`).
With independent pixel noise, :math:`\\mathbf C = {\\rm diag}(\\sigma^2)`, the matched image has

.. math::

    \\mathbf C' = \\mathbf T\\mathbf C\\mathbf T^{\\rm T} = (\\mathbf T\\mathbf S)(\\mathbf T
    \\mathbf S)^{\\rm T},\\qquad \\mathbf S = {\\rm diag}(\\sigma),

computed with sparse products: exact, with the correlation that both steps create. A target pixel
is masked where the image does not cover it wholly or where its value draws on a convolution row
that lost kernel weight to the image edge or to masked pixels (more than ``edge_tol``).

The IFU cube is degraded to the same PSF with :func:`degrade_cube`: the same convolution on the
cube grid, and the covariance of each channel :math:`\\mathbf K\\mathbf S\\boldsymbol\\rho\\mathbf S
\\mathbf K^{\\rm T}` (:meth:`DegradedCube.covariance`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..containers import Cube
from ..correlation import SpatialCorrelation
from ..errors import EmptyDataError, InputError, ShapeError
from .psf import as_psf, convolution_operator, matching_kernel
from .read import Image
from .reproject import overlap_operator

__all__ = [
    "MatchedBand",
    "PhotometricCube",
    "match_image",
    "match_images",
    "DegradedCube",
    "degrade_cube",
    "matching_operator",
    "MatchingPieces",
]


@dataclass
class MatchedBand:
    """One image matched to the IFU grid.

    Attributes
    ----------
    data, variance : numpy.ndarray, shape (ny, nx)
        The matched flux per IFU pixel [unit] and its variance [unit**2] (the diagonal of
        :attr:`covariance`).
    mask : numpy.ndarray of bool, shape (ny, nx)
        ``True`` where the value is incomplete (partial coverage, edge of the kernel).
    factor : scipy.sparse.csr_array, shape (ny*nx, n_image_pixels)
        :math:`\\mathbf F = \\mathbf T\\mathbf S`, a factor of the covariance
        :math:`\\mathbf F\\mathbf F^{\\rm T}`: far sparser than the covariance itself (whose
        rows reach twice the kernel radius), so it is what is kept.
    pieces : MatchingPieces
        :math:`\\mathbf R`, :math:`\\mathbf K` and :math:`\\sigma`, from which :attr:`operator`
        and :attr:`covariance` are computed on request.
    kernel : numpy.ndarray
        The PSF-matching kernel on the image's pixels.
    """

    data: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    factor: sp.csr_array
    pieces: MatchingPieces
    kernel: np.ndarray

    @property
    def operator(self) -> sp.csr_array:
        """:math:`\\mathbf T = \\mathbf R\\mathbf K`, shape (ny*nx, n_image_pixels)."""
        return self.pieces.operator()

    @property
    def covariance(self) -> sp.csr_array:
        """:math:`\\mathbf T\\mathbf C\\mathbf T^{\\rm T}` over the whole grid, row-major
        [unit**2] (computed on each call, see :meth:`MatchingPieces.covariance`)."""
        return self.pieces.covariance()


@dataclass
class MatchingPieces:
    """The two steps of a matching, :math:`\\mathbf T = \\mathbf R\\mathbf K`, and the input
    errors :math:`\\sigma` [unit], kept apart because the covariance is cheapest as

    .. math::

        \\mathbf T\\mathbf C\\mathbf T^{\\rm T} = \\mathbf R\\,(\\mathbf G\\mathbf G^{\\rm T})\\,
        \\mathbf R^{\\rm T},\\qquad \\mathbf G = \\mathbf K\\,{\\rm diag}(\\sigma):

    :math:`\\mathbf G\\mathbf G^{\\rm T}` lives on the image grid (few taps per row) and
    :math:`\\mathbf R` has a few entries per row, whereas :math:`\\mathbf F\\mathbf F^{\\rm T}`
    with :math:`\\mathbf F = \\mathbf R\\mathbf G` multiplies long rows by long columns; measured
    1.1-2x faster on the bands of ``benchmarks/bench_match.py`` (100 x 100 and 150 x 150 grids),
    the same result to round-off. Either way the cost is dominated by the size of the result.
    """

    resample: sp.csr_array
    smoothing: sp.csr_array
    sigma: np.ndarray

    def operator(self) -> sp.csr_array:
        """:math:`\\mathbf T = \\mathbf R\\mathbf K`."""
        return (self.resample @ self.smoothing).tocsr()

    def covariance(self, left=None) -> sp.csr_array:
        """:math:`\\mathbf A\\mathbf T\\mathbf C\\mathbf T^{\\rm T}\\mathbf A^{\\rm T}` with
        :math:`\\mathbf A` = ``left`` (e.g. a binning operator; default the identity)."""
        g = (self.smoothing @ sp.diags_array(self.sigma)).tocsr()
        r = self.resample if left is None else (sp.csr_array(left) @ self.resample).tocsr()
        m = (g @ g.T).tocsr()
        cov = ((r @ m) @ r.T).tocsr()  # (R M) R^T: 10-20 % faster than R (M R^T) here
        cov.sum_duplicates()
        return cov


def matching_operator(
    image: Image,
    target_wcs,
    target_shape,
    target_psf,
    *,
    nsigma=4.0,
    edge_tol=1e-3,
    coverage_tol=1e-6,
    target_name="IFU grid",
):
    """The operator :math:`\\mathbf T = \\mathbf R\\mathbf K` of one image and the target mask.

    Parameters
    ----------
    image : Image
        The image, with its band's PSF FWHM [arcsec] set (``image.band.psf_fwhm``) or a PSF
        object in ``image.meta["psf"]``.
    target_wcs : astropy.wcs.WCS
        The IFU grid's celestial WCS.
    target_shape : tuple of int
        ``(ny, nx)`` of the IFU grid.
    target_psf : float or PSF object
        The common PSF (a float is a Gaussian FWHM [arcsec]).
    nsigma : float
        Gaussian kernels are cut at ``nsigma`` widths.
    edge_tol : float
        Largest fraction of kernel weight a convolution row may lose (edge, masked pixels)
        before the target pixels it feeds are masked.
    coverage_tol : float
        Target pixels covered by less than ``1 - coverage_tol`` of their area are masked.
    target_name : str
        The target grid, for messages.

    Returns
    -------
    pieces : MatchingPieces
        :math:`\\mathbf R` and :math:`\\mathbf K` (``sigma`` left empty).
    mask : numpy.ndarray of bool, shape target_shape
    kernel : numpy.ndarray
    """
    source_psf = image.meta.get("psf", image.band.psf_fwhm)
    if source_psf is None:
        raise InputError(
            f"{image.name}: the PSF of band {image.band.name} is not known; give its FWHM "
            "[arcsec] (psf_fwhm=... or header PSF_FWHM/SEEING)"
        )
    kernel = matching_kernel(
        source_psf,
        target_psf,
        image.pixel_scale,
        nsigma=nsigma,
        name=f"{image.name} ({image.band.name})",
    )
    conv, used = convolution_operator(kernel, image.shape, mask=image.mask)
    resample, coverage = overlap_operator(
        image.wcs,
        image.shape,
        target_wcs,
        target_shape,
        source_mask=image.mask,
        name=image.name,
        target_name=target_name,
    )
    incomplete = (used < 1 - edge_tol) | image.mask
    touched = resample @ incomplete.ravel().astype(float)
    mask = (coverage < 1 - coverage_tol) | (touched.reshape(target_shape) > 0)
    if mask.all():
        raise EmptyDataError(
            f"{image.name}: no pixel of the {target_name} is wholly covered by the image "
            "(after the kernel's edge); nothing is matched"
        )
    return MatchingPieces(resample, conv, np.empty(0)), mask, kernel


def match_image(image: Image, target_wcs, target_shape, target_psf, **kwargs) -> MatchedBand:
    """Match one image to the target grid and PSF, with the exact covariance.

    Parameters are those of :func:`matching_operator`. Returns a :class:`MatchedBand`.
    """
    pieces, mask, kernel = matching_operator(image, target_wcs, target_shape, target_psf, **kwargs)
    good = ~image.mask
    x = np.where(good, image.data, 0.0).ravel()
    sigma = np.sqrt(np.where(good, image.variance, 0.0)).ravel()
    pieces.sigma = sigma
    factor = (pieces.resample @ (pieces.smoothing @ sp.diags_array(sigma))).tocsr()
    data = (pieces.resample @ (pieces.smoothing @ x)).reshape(target_shape)
    variance = np.asarray(factor.multiply(factor).sum(axis=1)).reshape(target_shape)
    return MatchedBand(data, variance, mask, factor, pieces, kernel)


def _gram(factor) -> sp.csr_array:
    """:math:`\\mathbf F\\mathbf F^{\\rm T}` as a CSR array (exactly symmetric)."""
    cov = (factor @ factor.T).tocsr()
    cov.sum_duplicates()
    return cov


@dataclass
class PhotometricCube:
    """Images of several bands matched to one IFU grid: ``[band, y, x]`` with band metadata.

    Attributes
    ----------
    data, variance : numpy.ndarray, shape (n_band, ny, nx)
        Flux per IFU pixel [``unit``] and variance [``unit**2``].
    mask : numpy.ndarray of bool, shape (n_band, ny, nx)
    bands : list of Band
        Filter curve, pivot wavelength [Angstrom] and original PSF FWHM [arcsec] of each band.
    wcs : astropy.wcs.WCS
        The IFU grid's celestial WCS.
    unit : astropy.units.Unit
    target_psf : object
        The common PSF.
    factors : list of scipy.sparse.csr_array
        The covariance factor :math:`\\mathbf F = \\mathbf T\\mathbf S` of each band (covariance
        :math:`\\mathbf F\\mathbf F^{\\rm T}`, see :meth:`covariance`), or an empty list.
    pieces : list of MatchingPieces
        :math:`\\mathbf R`, :math:`\\mathbf K` and :math:`\\sigma` of each band (empty for a cube
        read from a file); :attr:`operators` gives :math:`\\mathbf T = \\mathbf R\\mathbf K`.
    names : list of str
        Where each band came from.
    """

    data: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    bands: list
    wcs: object
    unit: object
    target_psf: object
    factors: list = field(default_factory=list)
    pieces: list = field(default_factory=list)
    names: list = field(default_factory=list)

    @property
    def operators(self) -> list:
        """The matching operator :math:`\\mathbf T` of each band (computed on each call)."""
        return [p.operator() for p in self.pieces]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_band, ny, nx)``."""
        return self.data.shape

    @property
    def pivots(self) -> np.ndarray:
        """Pivot wavelength of each band [Angstrom]."""
        return np.array([b.pivot for b in self.bands])

    def _factor(self, k):
        if not self.factors:
            raise InputError("this photometric cube was matched without its covariance")
        return self.factors[k]

    def covariance(self, k: int) -> sp.csr_array:
        """The covariance of band ``k`` over the whole grid, :math:`\\mathbf T\\mathbf C
        \\mathbf T^{\\rm T}`, row-major [unit**2]."""
        if self.pieces and self.pieces[k].sigma.size:
            return self.pieces[k].covariance()
        return _gram(self._factor(k))

    def binned_covariance(self, operator, k: int) -> sp.csr_array:
        """The exact covariance of aggregated values :math:`\\mathbf B\\mathbf x` of band ``k``,
        :math:`(\\mathbf B\\mathbf F)(\\mathbf B\\mathbf F)^{\\rm T}`, for a binning operator
        :math:`\\mathbf B` (e.g. ``Binning.operator()``), without forming the full covariance."""
        b = sp.csr_array(operator)
        if self.pieces and self.pieces[k].sigma.size:
            return self.pieces[k].covariance(left=b)
        return _gram((b @ self._factor(k)).tocsr())

    def correlation(self, k: int):
        """Band ``k``'s covariance split into a :class:`~bayesifu.SpatialCorrelation` and a
        variance map (NaN where the variance is zero), for the binning code."""
        return SpatialCorrelation.from_covariance(
            self.covariance(k), self.shape[1:], source=f"matched {self.bands[k].name}"
        )

    def to_cube(self) -> Cube:
        """The bands as a :class:`~bayesifu.Cube` ordered by pivot wavelength (for
        :func:`~bayesifu.sed_bins`); masked pixels get infinite variance."""
        order = np.argsort(self.pivots)
        var = np.where(self.mask, np.inf, self.variance)[order]
        return Cube(
            flux=self.data[order],
            variance=var,
            wave=self.pivots[order],
            mask=self.mask[order],
            wcs=self.wcs,
            unit=str(self.unit),
            name="matched images",
            wave_medium="vacuum",
        )


def _target_grid(cube):
    if isinstance(cube, Cube):
        if cube.wcs is None:
            raise InputError(f"{cube.name}: the cube has no celestial WCS to match onto")
        return cube.wcs, cube.spatial_shape, cube.name
    wcs, shape = cube
    return wcs, tuple(shape), "target grid"


def match_images(images, cube, target_psf=None, *, covariance=True, progress=None, **kwargs):
    """Match several images to an IFU grid and a common PSF.

    Parameters
    ----------
    images : sequence of Image
        The bands (each with a PSF FWHM).
    cube : Cube or (WCS, (ny, nx))
        The IFU cube (or its grid) to match onto.
    target_psf : float or PSF object, optional
        The common PSF; default a Gaussian of the broadest FWHM among the images.
    covariance : bool
        Propagate the covariance (:math:`\\mathbf T\\mathbf C\\mathbf T^{\\rm T}`) of each band.
    progress : callable, optional
        Called with each band's name after it is matched.
    **kwargs
        Passed to :func:`matching_operator`.

    Returns
    -------
    PhotometricCube
    """
    images = list(images)
    if not images:
        raise InputError("match_images needs at least one image")
    wcs, shape, target_name = _target_grid(cube)
    if target_psf is None:
        fwhms = [im.band.psf_fwhm for im in images]
        missing = [im.name for im, f in zip(images, fwhms, strict=True) if f is None]
        if missing:
            raise InputError(f"{missing[0]}: the PSF FWHM of the image is not known")
        target_psf = max(fwhms)
    target_psf = as_psf(target_psf)
    data, var, mask, covs, ops = [], [], [], [], []
    for im in images:
        if not isinstance(im, Image):
            raise InputError(f"match_images needs bayesifu Image objects, got {type(im).__name__}")
        if covariance:
            band = match_image(im, wcs, shape, target_psf, target_name=target_name, **kwargs)
            covs.append(band.factor)
            op, m, v, d = band.pieces, band.mask, band.variance, band.data
        else:
            op, m, _ = matching_operator(
                im, wcs, shape, target_psf, target_name=target_name, **kwargs
            )
            good = ~im.mask
            t = op.operator()
            d = (t @ np.where(good, im.data, 0.0).ravel()).reshape(shape)
            v = ((t.multiply(t)) @ np.where(good, im.variance, 0.0).ravel()).reshape(shape)
        data.append(d)
        var.append(v)
        mask.append(m)
        ops.append(op)
        if progress is not None:
            progress(im.name)
    units = {str(im.unit) for im in images}
    if len(units) > 1:
        raise ShapeError(f"images are in different units ({', '.join(sorted(units))})")
    return PhotometricCube(
        np.array(data),
        np.array(var),
        np.array(mask),
        [im.band for im in images],
        wcs,
        images[0].unit,
        target_psf,
        covs,
        ops,
        [im.name for im in images],
    )


@dataclass
class DegradedCube:
    """An IFU cube convolved to a broader PSF, with the operator for its covariance.

    Attributes
    ----------
    cube : Cube
        Flux convolved channel by channel; variance the diagonal of each channel's covariance.
    operator : scipy.sparse.csr_array, shape (ny*nx, ny*nx)
        The convolution :math:`\\mathbf K` on the cube grid.
    correlation : SpatialCorrelation or None
        The correlation of the input cube (``None``: independent spaxels).
    input_variance : numpy.ndarray
        The input variance [nwave, ny, nx] (zero where masked).
    kernel : numpy.ndarray, optional
        The matching kernel on the cube's spaxels.
    """

    cube: Cube
    operator: sp.csr_array
    correlation: SpatialCorrelation | None
    input_variance: np.ndarray
    kernel: np.ndarray | None = None

    def covariance(self, k: int) -> sp.csr_array:
        """The covariance of channel ``k``, :math:`\\mathbf K\\mathbf S\\boldsymbol\\rho\\mathbf
        S\\mathbf K^{\\rm T}`, over the whole grid."""
        sigma = np.sqrt(self.input_variance[k]).ravel()
        ks = (self.operator @ sp.diags_array(sigma)).tocsr()
        if self.correlation is None:
            return (ks @ ks.T).tocsr()
        return (ks @ self.correlation.matrix @ ks.T).tocsr()


def degrade_cube(
    cube: Cube, source_psf, target_psf, correlation=None, *, nsigma=4.0, edge_tol=1e-3
) -> DegradedCube:
    """Convolve an IFU cube to a broader PSF (e.g. the imaging PSF), with its covariance.

    Parameters
    ----------
    cube : Cube
        The cube. A spaxel masked (or with unusable variance) in any channel gets no weight.
    source_psf, target_psf : float or PSF object
        The cube's PSF and the target PSF (floats are Gaussian FWHMs [arcsec]).
    correlation : SpatialCorrelation, optional
        The cube's spatial correlation (the same in every channel).
    nsigma, edge_tol : float
        As in :func:`matching_operator`; spaxels whose kernel lost more than ``edge_tol`` of
        its weight are masked in the result.
    """
    if cube.spaxel_scale is None:
        raise InputError(f"{cube.name}: the cube's spaxel scale [arcsec] is not known")
    kernel = matching_kernel(
        source_psf, target_psf, cube.spaxel_scale, nsigma=nsigma, name=cube.name
    )
    nwave, ny, nx = cube.shape
    flux = np.asarray(cube.flux, dtype=float).reshape(nwave, -1)
    var = np.asarray(cube.variance, dtype=float).reshape(nwave, -1)
    bad = ~np.isfinite(flux) | ~np.isfinite(var) | (var <= 0)
    if cube.mask is not None:
        bad |= np.asarray(cube.mask, bool).reshape(nwave, -1)
    spatial_bad = bad.any(axis=0).reshape(ny, nx)
    if spatial_bad.all():
        raise EmptyDataError(f"{cube.name}: every spaxel is masked in some channel")
    op, used = convolution_operator(kernel, (ny, nx), mask=spatial_bad)
    flux = np.where(bad, 0.0, flux)
    var = np.where(bad, 0.0, var)
    out = (op @ flux.T).T
    if correlation is None:
        out_var = (op.multiply(op) @ var.T).T
    else:
        out_var = np.empty_like(var)
        for k in range(nwave):
            s = sp.diags_array(np.sqrt(var[k]))
            ks = op @ s
            out_var[k] = np.asarray((ks @ correlation.matrix).multiply(ks).sum(axis=1)).ravel()
    mask = np.broadcast_to(spatial_bad | (used < 1 - edge_tol), (nwave, ny, nx))
    degraded = Cube(
        out.reshape(nwave, ny, nx),
        np.where(mask, np.inf, out_var.reshape(nwave, ny, nx)),
        cube.wave,
        mask=mask.copy(),
        wcs=cube.wcs,
        wave_medium=cube.wave_medium,
        spaxel_scale=cube.spaxel_scale,
        unit=cube.unit,
        name=f"{cube.name} degraded",
        meta=dict(cube.meta),
    )
    return DegradedCube(degraded, op, correlation, var.reshape(nwave, ny, nx), kernel)
