"""Real data shipped with the package, for the demo, the notebooks and the tests.

``manga_7815_3702()`` gives the DAP output of MaNGA galaxy 7815-3702 (MaNGA-ID 1-113540,
z = 0.0294): the MAPS file (HYB10-GAU-MILESHC, DAP 2.2.3dev on DRP v2_4_3) and the SNRG file with
the g-band signal, variance and the real DRP spatial correlation matrix (CORREL table). Both come
unchanged from the sdss/mangadap repository (commit 133bec0b, examples/output), BSD-3 licensed; see
``bayesifu/data/LICENSE.mangadap.md``.
"""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["MangaExample", "manga_7815_3702"]


@dataclass(frozen=True)
class MangaExample:
    """Paths of the shipped MaNGA 7815-3702 files."""

    maps: Path
    """DAP MAPS file: EMLINE_GVEL, STELLAR_VEL (binned), SPECINDEX, ... with _IVAR and _MASK."""
    snrg: Path
    """SNRG file: SPECTRUM table (g-band SIGNAL, VARIANCE, SNR) and the CORREL table."""


def manga_7815_3702() -> MangaExample:
    """Paths of the MaNGA 7815-3702 MAPS and SNRG files shipped in ``bayesifu/data``."""
    root = Path(str(resources.files("bayesifu") / "data"))
    return MangaExample(
        maps=root / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz",
        snrg=root / "manga-7815-3702-SNRG.fits.gz",
    )
