"""Shared fixtures: real VASP files, synthetic trajectories with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']

ROOT = Path(__file__).resolve().parent.parent
SHARED_MD = ROOT.parent / 'shared' / 'vasp-md'
DATA = Path(__file__).resolve().parent / 'data'


@pytest.fixture(scope='session')
def shared_md() -> Path:
    """The real VASP MD files in ../shared/vasp-md (they must be there: CI lays shared/ beside the clone)."""
    assert SHARED_MD.is_dir(), f'{SHARED_MD} is missing: clone the repository next to shared/'
    return SHARED_MD


@pytest.fixture(scope='session')
def data_dir() -> Path:
    return DATA


@pytest.fixture
def rng():
    return np.random.default_rng(20231)
