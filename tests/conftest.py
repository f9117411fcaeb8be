"""Shared fixtures: real VASP files, synthetic trajectories with known answers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# One thread per process, as the MLIP jobs run (their job script exports the same): the runner tests load
# CHGNet in this process, and two torch threads on 2 cores shared with the job subprocesses and the
# daemon spend their time spin-waiting (tests/engines/test_mlip_runner.py: 101 -> 54 s CPU). Set before
# numpy and torch are imported; a value in the environment wins.
for _var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest_plugins = ['aiida.tools.pytest_fixtures']


def _sqlite_without_fsync(dbapi_connection, _record) -> None:
    """The test profile's SQLite database (``core.sqlite_dos``) commits without waiting for the disk
    (``PRAGMA synchronous=OFF``): a test process that dies loses its temporary profile anyway, and the
    work chains run in-process commit about a thousand times each (a material step through mock VASP:
    17 of its 145 s in ``commit`` on a loaded 2-core box). Only this process's connections: the daemon
    and fault tests run their own profiles in separate processes, with SQLite's defaults."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute('PRAGMA synchronous=OFF;')
        cursor.close()


def _install_sqlite_without_fsync() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, 'connect', _sqlite_without_fsync)


_install_sqlite_without_fsync()

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


def load_mlip_code():
    """The real MLIP runner code ``mlip-test@localhost-test`` of the test profile, made on first use."""
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


@pytest.fixture(scope='module')
def mlip_code():
    """The real MLIP runner on a localhost computer (direct scheduler) of the test profile; loaded
    afresh in every module (a CLI test may have reloaded the profile's storage)."""
    return load_mlip_code()


def pytest_collection_modifyitems(config, items):
    """No test may empty the profile's storage (``aiida_profile_clean``): the session fixtures below store
    runs that tests in several modules read, and under pytest-xdist (``bash dev test`` runs two workers)
    no order of the tests can be relied on. A test that needs a count or a query of its own filters on
    its own nodes instead."""
    offenders = [item.nodeid for item in items if 'aiida_profile_clean' in getattr(item, 'fixturenames', ())]
    if offenders:
        raise pytest.UsageError(
            'these tests empty the shared test profile (aiida_profile_clean); query their own nodes instead: '
            + ', '.join(offenders)
        )


def _run_li3n_fast() -> tuple[str, str]:
    """Li3N through the whole material chain: the MLIP engine (real CHGNet 0.3.0 on CPU), the ``fast``
    protocol unchanged, launched from ``get_builder_from_protocol``. The UUIDs of the work chain and of
    its input structure."""
    from aiida import orm
    from aiida.engine import run_get_node
    from pymatgen.core import Structure

    from aiida_superionic.workflows.material import MaterialWorkChain

    structure = orm.StructureData(pymatgen=Structure.from_file(str(DATA / 'structures' / 'Li3N.cif')))
    builder = MaterialWorkChain.get_builder_from_protocol(
        load_mlip_code(), structure, 'fast', mobile='Li', label='Li3N'
    )
    _, node = run_get_node(builder)
    return node.uuid, structure.uuid


@pytest.fixture(scope='session')
def _li3n_fast_run(tmp_path_factory, worker_id):
    """The whole material chain (``_run_li3n_fast``) once per test run, not once per pytest-xdist worker:
    the first worker that needs it runs it under a file lock in the run's shared temporary folder and
    exports it there as an AiiDA archive; a worker that comes later (each has a profile of its own)
    imports that archive, so it sees the same nodes with the same UUIDs. A run that failed to export
    leaves no archive, and the next worker runs the chain itself. The UUIDs only: the nodes are loaded
    afresh in every module (``li3n_fast``)."""
    import json

    from filelock import FileLock

    if worker_id == 'master':  # no xdist: nothing to share
        return _run_li3n_fast()
    shared = tmp_path_factory.getbasetemp().parent
    archive, index = shared / 'li3n_fast.aiida', shared / 'li3n_fast.json'
    with FileLock(str(shared / 'li3n_fast.lock')):
        if not index.is_file():
            from aiida import orm
            from aiida.tools.archive import create_archive

            uuids = _run_li3n_fast()
            create_archive([orm.load_node(uuid) for uuid in uuids], filename=archive)
            index.write_text(json.dumps(uuids))
            return uuids
    from aiida.tools.archive import import_archive

    # this worker's own runner code first: the archive's computer (another worker's, not configured
    # here) is then imported under a new label instead of taking the one later tests load by name
    load_mlip_code()
    import_archive(archive)
    node_uuid, structure_uuid = json.loads(index.read_text())
    return node_uuid, structure_uuid


@pytest.fixture(scope='module')
def li3n_fast(_li3n_fast_run):
    """The shared Li3N material run (``_li3n_fast_run``), its nodes loaded in this module: a namespace with
    ``node`` (the MaterialWorkChain), ``outputs`` (its outputs, as ``run_get_node`` gives them) and
    ``structure`` (the input structure)."""
    from types import SimpleNamespace

    from aiida import orm
    from aiida.common.exceptions import NotExistent

    node_uuid, structure_uuid = _li3n_fast_run
    try:
        node = orm.load_node(node_uuid)
    except NotExistent:
        pytest.fail('the shared Li3N run is gone: something emptied the test profile after it')
    outputs = {label: node.outputs[label] for label in node.outputs}
    return SimpleNamespace(node=node, outputs=outputs, structure=orm.load_node(structure_uuid))


#: The MD run that the continuation tests compare with: LiF (8-atom cube), 800 K, seed 7, 80 steps of 2 fs
#: (checkpoints every 8 steps: a job killed after its first one still has 72 steps to run).
LIF_MD = {'n_steps': 80, 'frame_interval': 4, 'timestep_fs': 2.0, 'checkpoint_every': 2}


def lif_md_builder(code):
    """The MLIP engine's MD builder of the ``LIF_MD`` run (fast protocol) on ``code``."""
    from aiida import orm
    from ase.build import bulk

    from aiida_superionic.engines.contract import get_engine

    engine = get_engine('mlip')
    cell = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.08, cubic=True))
    return engine.get_builder(
        'md', cell, code, engine.protocol('fast', {'md': LIF_MD}), temperature_K=800, seed=7
    )


@pytest.fixture(scope='session')
def _lif_md_reference_run():
    from aiida.engine import run_get_node

    _, node = run_get_node(lif_md_builder(load_mlip_code()))
    return node.uuid


@pytest.fixture
def lif_md_reference(_lif_md_reference_run):
    """The uninterrupted ``LIF_MD`` run, once per session (the segmented run and the run whose job is
    SIGKILLed must both equal it frame for frame): its trajectory."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        node = orm.load_node(_lif_md_reference_run)
    except NotExistent:
        pytest.fail('the shared LiF MD run is gone: something emptied the test profile after it')
    assert node.is_finished_ok, node.exit_message
    return node.outputs.trajectory


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
