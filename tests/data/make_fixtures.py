"""Make the real-data test fixtures in this folder from the original public files.

Provenance of the originals (``SOURCE`` is any folder that holds them under these names):

* ``manga-7815-3702/manga-7815-3702-{MAPS-HYB10-GAU-MILESHC,SNRG}.fits.gz``: the sdss/mangadap
  repository, commit 133bec0b, ``examples/output`` (BSD-3);
* ``muse-abell478/minicube.fits.gz``: ``mpdaf/data/sdetect/minicube.fits`` of the mpdaf 3.6 wheel
  on PyPI, gzipped (BSD-3).

The project, its tests and its demo use only the results committed here and in ``bayesifu/data``;
this script is how they were made, and is run by hand only::

    uv run python tests/data/make_fixtures.py --source SOURCE

It

* copies the MaNGA DAP files of galaxy 7815-3702 (MAPS and SNRG, 1.6 MB together) unchanged;
* copies the SDSS DR2 templates spDR2-023..028 (0.55 MB) unchanged;
* cuts the MUSE cube of the Abell 478 brightest cluster galaxy (mpdaf ``minicube.fits``, 3681 x 40
  x 40) down to a 30 x 30 spaxel crop around the galaxy centre and the 6800-7500 Angstrom (air)
  range, which holds H-alpha + [NII] (near 7149 Angstrom observed, z = 0.089), [SII] and stretches
  of continuum on both sides. DATA, STAT and DQ are kept as float32/float32/uint8; the headers get
  the shifted ``CRPIX1``/``CRPIX2`` and a ``CRVAL3`` at the first kept channel (``CRPIX3 = 1``).
  The script records, computed from the *original* file, the sky position of one spaxel and the
  wavelength of the first kept channel in ``BFX*`` keys of the ``DATA`` header, so that a test can
  check the cut-out's WCS without reading the original.
"""

from __future__ import annotations

import argparse
import shutil
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

HERE = Path(__file__).resolve().parent
#: Every file ships with the package (bi.datasets; the demo and the notebooks use them);
#: tests/data links to them.
PACKAGE_DATA = HERE.parents[1] / "bayesifu" / "data"

MANGA_FILES = (
    "manga-7815-3702/manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz",
    "manga-7815-3702/manga-7815-3702-SNRG.fits.gz",
)
SDSS_TEMPLATES = [f"sdss-templates/spDR2-0{k}.fit" for k in range(23, 29)] + [
    "sdss-templates/LICENSE.zSALT"
]
MUSE_SOURCE = "muse-abell478/minicube.fits.gz"
MUSE_CUTOUT = "muse-abell478-cutout.fits.gz"
#: Crop (0-based, end exclusive) in the original: rows (y), columns (x), and wavelength [Angstrom].
Y0, Y1, X0, X1 = 0, 30, 10, 40
WAVE_RANGE = (6800.0, 7500.0)
#: The spaxel (cut-out pixel coordinates, 0-based) whose sky position is recorded.
CHECK_X, CHECK_Y = 13, 14


def muse_wavelengths(header, n):
    """MUSE wavelengths [Angstrom]: CRVAL3 + CD3_3 * (i + 1 - CRPIX3)."""
    return header["CRVAL3"] + header["CD3_3"] * (np.arange(n) + 1.0 - header["CRPIX3"])


def clean(header):
    """Drop checksums (the data change) from a copy of ``header``."""
    header = header.copy()
    for key in ("CHECKSUM", "DATASUM"):
        header.remove(key, ignore_missing=True)
    return header


def cut_muse(source: Path, target: Path) -> None:
    with fits.open(source) as hdul:
        data_header = hdul["DATA"].header
        wave = muse_wavelengths(data_header, data_header["NAXIS3"])
        k0, k1 = np.searchsorted(wave, WAVE_RANGE)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            original = WCS(data_header).celestial
        ra, dec = original.pixel_to_world_values(CHECK_X + X0, CHECK_Y + Y0)
        out = [fits.PrimaryHDU(header=clean(hdul[0].header))]
        for name in ("DATA", "STAT", "DQ"):
            hdu = hdul[name]
            header = clean(hdu.header)
            if "CRPIX1" in header:
                header["CRPIX1"] = hdu.header["CRPIX1"] - X0
                header["CRPIX2"] = hdu.header["CRPIX2"] - Y0
                header["CRVAL3"] = float(wave[k0])
                header["CRPIX3"] = 1.0
            cut = np.ascontiguousarray(hdu.data[k0:k1, Y0:Y1, X0:X1])
            out.append(fits.ImageHDU(cut, header=header, name=name))
    check = out[1].header
    check["BFXSRC"] = (MUSE_SOURCE, "bayesifu fixture: source file")
    check["BFXCUT"] = (f"[{k0}:{k1}, {Y0}:{Y1}, {X0}:{X1}]", "cut of the source (numpy)")
    check["BFXX"] = (CHECK_X, "check spaxel x (0-based, cut-out)")
    check["BFXY"] = (CHECK_Y, "check spaxel y (0-based, cut-out)")
    check["BFXRA"] = (float(ra), "[deg] its RA from the source WCS")
    check["BFXDEC"] = (float(dec), "[deg] its Dec from the source WCS")
    check["BFXWAVE0"] = (float(wave[k0]), "[Angstrom] source wavelength of channel 0")
    check["BFXNWAVE"] = (int(k1 - k0), "channels kept")
    fits.HDUList(out).writeto(target, overwrite=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", type=Path, required=True, help="folder holding the original files"
    )
    args = parser.parse_args(argv)
    for name in MANGA_FILES:
        shutil.copyfile(args.source / name, PACKAGE_DATA / Path(name).name)
        _link(Path(name).name)
        print(f"copied {name} to {PACKAGE_DATA}, linked from {HERE}")
    (PACKAGE_DATA / "sdss-templates").mkdir(exist_ok=True)
    for name in SDSS_TEMPLATES:  # unchanged copies
        shutil.copyfile(args.source / name, PACKAGE_DATA / name)
    _link("sdss-templates")
    shutil.copyfile(args.source / "muse-abell478/LICENSE.mpdaf", PACKAGE_DATA / "LICENSE.mpdaf")
    cut_muse(args.source / MUSE_SOURCE, PACKAGE_DATA / MUSE_CUTOUT)
    _link(MUSE_CUTOUT)
    size = (PACKAGE_DATA / MUSE_CUTOUT).stat().st_size / 1e6
    print(f"wrote {PACKAGE_DATA / MUSE_CUTOUT} ({size:.1f} MB), linked from {HERE}")


def _link(name: str) -> None:
    """``tests/data/<name>`` -> ``bayesifu/data/<name>`` (a relative symbolic link)."""
    link = HERE / name
    if not link.is_symlink():
        if link.is_dir():
            shutil.rmtree(link)
        link.unlink(missing_ok=True)
        link.symlink_to(Path("../../bayesifu/data") / name)


if __name__ == "__main__":
    main()
