"""Shared fixtures: real VASP files, synthetic trajectories with known answers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']

ROOT = Path(__file__).resolve().parent.parent
SHARED_MD = ROOT.parent / 'shared' / 'vasp-md'
DATA = Path(__file__).resolve().parent / 'data'
RUNNER = Path(sys.executable).with_name('aiida-superionic-mlip')


def local_computer(label: str, workdir, scheduler: str = 'core.direct'):
    """A stored, configured localhost computer for test jobs (no polling delays)."""
    from aiida import orm

    computer = orm.Computer(
        label=label,
        hostname='localhost',
        transport_type='core.local',
        scheduler_type=scheduler,
        workdir=str(workdir),
    ).store()
    computer.set_minimum_job_poll_interval(0.0)
    computer.configure(safe_interval=0.0)
    return computer


def mlip_runner_code(computer, label: str = 'mlip'):
    """The real MLIP runner (single-threaded) as an InstalledCode on ``computer``."""
    from aiida import orm

    return orm.InstalledCode(
        label=label,
        computer=computer,
        filepath_executable=str(RUNNER),
        default_calc_job_plugin='superionic.mlip',
        prepend_text='export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1',
    ).store()


@pytest.fixture(scope='module')
def mlip_code():
    """The real MLIP runner on a localhost computer (direct scheduler) of the test profile; loaded
    afresh in every module (a CLI test may have reloaded the profile's storage)."""
    import tempfile

    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_code('mlip-test@localhost-test')
    except NotExistent:
        pass
    try:
        computer = orm.load_computer('localhost-test')
    except NotExistent:
        computer = local_computer('localhost-test', tempfile.mkdtemp(prefix='superionic-work-'))
    return mlip_runner_code(computer, 'mlip-test')


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
