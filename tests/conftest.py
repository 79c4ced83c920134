import os
from pathlib import Path

import jax
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
jax.config.update("jax_enable_x64", True)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir():
    """Folder of the real-data cut-outs committed with the tests."""
    return DATA


def pytest_collection_modifyitems(config, items):
    """The calibration checks are slow too: ``-m "not slow"`` leaves them out."""
    for item in items:
        if item.get_closest_marker("calibration") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
