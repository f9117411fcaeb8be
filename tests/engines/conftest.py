"""Fixtures of the VASP engine tests through aiida-vasp's ``mock-vasp`` (``test_vasp_mock.py``,
``test_vasp_material_mock.py``): the registry assembled from ``tests/data/vasp-mock-registry``, a
localhost ``mock-vasp`` code and aiida-vasp's dummy POTCAR family."""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest
from aiida import orm
from pymatgen.io.vasp import Vasprun

from tests.conftest import local_computer

DATA = Path(__file__).parents[1] / 'data'
RECORDINGS = DATA / 'aiida-vasp'
REGISTRY = DATA / 'vasp-mock-registry'
MOCK_VASP = Path(sys.executable).with_name('mock-vasp')
RECORD = os.environ.get('SUPERIONIC_RECORD_MOCK') == '1'


def assemble_registry(base: Path) -> Path:
    """The mock registry in ``base``: each case's ``inp/`` + the real recordings named in its
    ``outputs.txt`` as ``out/`` (cases without ``inp/`` yet, being recorded, are left out)."""
    for case in sorted(p for p in REGISTRY.iterdir() if (p / 'outputs.txt').is_file()):
        if not (case / 'inp').is_dir():
            continue
        shutil.copytree(case / 'inp', base / case.name / 'inp')
        out = base / case.name / 'out'
        out.mkdir()
        for line in (case / 'outputs.txt').read_text().splitlines():
            if not line.strip() or line.startswith('#'):
                continue
            name, source = line.split()
            raw = (RECORDINGS / source).read_bytes()
            (out / name).write_bytes(gzip.decompress(raw) if source.endswith('.gz') else raw)
    return base


def _structure_of(vasprun: Path) -> orm.StructureData:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return orm.StructureData(pymatgen=Vasprun(str(vasprun), parse_potcar_file=False).initial_structure)


@pytest.fixture
def registry(tmp_path):
    """The mock registry, assembled from ``inp/`` + the real recordings named in ``outputs.txt``."""
    return assemble_registry(tmp_path / 'registry')


def make_mock_code(registry: Path, workdir: Path, label: str) -> orm.InstalledCode:
    """``mock-vasp`` on a new localhost computer ``label`` (jobs in ``workdir``) reading ``registry``."""
    computer = local_computer(label, workdir)
    return orm.InstalledCode(
        label='mock-vasp',
        computer=computer,
        filepath_executable=str(MOCK_VASP),
        default_calc_job_plugin='vasp.vasp',
        prepend_text=f'export MOCK_VASP_REG_BASE={registry}',
    ).store()


@pytest.fixture
def mock_code(registry, tmp_path):
    return make_mock_code(registry, tmp_path / 'work', f'localhost-vasp-{tmp_path.name}')


@pytest.fixture
def potcar_family(tmp_path):
    """aiida-vasp's dummy test POTCARs (1.111 everywhere: inputs only, mock-vasp never reads them) as
    the protocol's family name."""
    from aiida_vasp.data.potcar import PotcarData

    source = tmp_path / 'potcars'
    shutil.copytree(RECORDINGS / 'potcar_dummy', source)
    PotcarData.upload_potcar_family(str(source), 'PBE.54', 'dummy test POTCARs', stop_if_existing=False)
    return 'PBE.54'
