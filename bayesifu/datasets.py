"""Real data shipped with the package, for the demo, the notebooks and the tests.

* :func:`manga_7815_3702`: the DAP output of MaNGA galaxy 7815-3702 (MaNGA-ID 1-113540,
  z = 0.0294): the MAPS file (HYB10-GAU-MILESHC, DAP 2.2.3dev on DRP v2_4_3) and the SNRG file
  with the g-band signal, variance and the real DRP spatial correlation matrix (CORREL table).
  Both come unchanged from the sdss/mangadap repository (commit 133bec0b, examples/output),
  BSD-3 licensed; see ``bayesifu/data/LICENSE.mangadap.md``.
* :func:`muse_abell478`: a 30 x 30 spaxel, 6800-7500 A cut-out of a real MUSE WFM cube of the
  brightest cluster galaxy of Abell 478 (ESO programme 094.A-0859(A), 900 s), made by
  ``tests/data/make_fixtures.py`` from ``mpdaf/data/sdetect/minicube.fits`` of the mpdaf 3.6
  wheel on PyPI; BSD-3 (``bayesifu/data/LICENSE.mpdaf``).
* :func:`sdss_templates`: the SDSS DR2 cross-correlation templates spDR2-023..028, unchanged from
  the crawfordsm/zSALT repository (``zsalt/template/spectemplatesDR2.tar.gz``); BSD-3
  (``bayesifu/data/sdss-templates/LICENSE.zSALT``), an SDSS data product.

Each function returns paths only (no file is opened, no JAX is imported).
"""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["MangaExample", "manga_7815_3702", "muse_abell478", "sdss_templates", "data_dir"]


def data_dir() -> Path:
    """The folder of the shipped data (``bayesifu/data`` in the installed package)."""
    return Path(str(resources.files("bayesifu") / "data"))


@dataclass(frozen=True)
class MangaExample:
    """Paths of the shipped MaNGA 7815-3702 files."""

    maps: Path
    """DAP MAPS file: EMLINE_GVEL, STELLAR_VEL (binned), SPECINDEX, ... with _IVAR and _MASK."""
    snrg: Path
    """SNRG file: SPECTRUM table (g-band SIGNAL, VARIANCE, SNR) and the CORREL table."""


def manga_7815_3702() -> MangaExample:
    """Paths of the MaNGA 7815-3702 MAPS and SNRG files shipped in ``bayesifu/data``."""
    root = data_dir()
    return MangaExample(
        maps=root / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz",
        snrg=root / "manga-7815-3702-SNRG.fits.gz",
    )


def muse_abell478() -> Path:
    """Path of the MUSE cut-out of the Abell 478 brightest cluster galaxy.

    DATA, STAT (variance) and DQ extensions, 560 channels x 30 x 30 spaxels: 6801.1-7499.9 A in
    air, 1.25 A steps, 0.2 arcsec spaxels, flux in 1e-20 erg/s/cm2/A, celestial and spectral WCS.
    Strong H-alpha + [NII] emission near 7149 A (observed) and [SII] on a stellar continuum; the
    galaxy's redshift is z = 0.0858 (the median of the unflagged spaxels of ``bayesifu redshift``;
    H-alpha/[NII] give the same). Read it with ``bayesifu.read_cube``.
    """
    return data_dir() / "muse-abell478-cutout.fits.gz"


def sdss_templates() -> list[Path]:
    """Paths of the six SDSS DR2 templates, sorted: spDR2-023 ... spDR2-028.

    Rest frame, vacuum wavelengths, log10-linear (COEFF0/COEFF1 in the primary header; row 0 of
    the image is the template), built from real SDSS galaxy spectra. spDR2-023..027 cover
    3500-9197 A and span only two dimensions
    (:meth:`bayesifu.templates.Templates.independent`); spDR2-028 (SPEC_CLN = 2, a galaxy
    template like 023) covers 3000-6800 A. Read them with ``bayesifu.read_templates``.
    """
    return sorted((data_dir() / "sdss-templates").glob("spDR2-*.fit"))
