"""Fixtures shared by the unit tests: the shipped real samples, and scratch copies of them to damage."""
import shutil

import pytest

from helpers import finder

FER_SAMPLE = finder.SAMPLES_DIR / "fer2013"
FASHION_SAMPLE = finder.SAMPLES_DIR / "fashion-mnist"


@pytest.fixture
def fer_copy(tmp_path):
    """A scratch copy of the FER2013 sample (train/<class>/, test/<class>/) that a test may break."""
    shutil.copytree(FER_SAMPLE, tmp_path / "fer")
    return tmp_path / "fer"
