"""Shared test fixtures: where the real data lives, and how a missing file is handled."""
import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_home():
    """The folder tests read real data from: ``SKDISTILL_DATA``, else ``../shared/data``."""
    env = os.environ.get("SKDISTILL_DATA")
    return Path(env) if env else SHARED_DATA


def skip_or_fail(reason):
    """Skip the test for ``reason`` (a missing file or package), or fail it under ``CI=true``,
    where everything the Makefile installs and ``../shared/data`` must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def require_file(relpath):
    """Return the path to a real data file, skipping (or failing under ``CI=true``) if absent."""
    path = data_home() / relpath
    if not path.exists():
        skip_or_fail(f"data file {path} is missing; set SKDISTILL_DATA to a folder holding it")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_configure(config):
    # Test networks are tiny: a second intra-op thread only spins, and with two xdist workers
    # on two cores it makes each fit many times slower. Doctests get the same setting.
    import torch

    torch.set_num_threads(1)
