"""The VASP engine end to end through aiida-vasp's ``mock-vasp`` on a localhost code.

``mock-vasp`` is a real executable that stands in for VASP: it hashes the INCAR, POSCAR and KPOINTS our
chain wrote and copies the outputs registered under that hash. The registry
(``tests/data/vasp-mock-registry/<case>/``) holds the inputs our protocol writes (``inp/``) and, in
``outputs.txt``, which *real recorded* VASP outputs of ``tests/data/aiida-vasp`` stand for them; it is
assembled in a temporary folder for each test. The recordings come from other runs (aiida-vasp's
tests: lower cut-off, other k-points), so the outputs are real VASP outputs but not of exactly these
inputs: what is tested is the chain (inputs as the protocol says, aiida-vasp's parser and error
handlers, our readers, the descriptors), with numbers checked against pymatgen on the same files.

Re-recording ``inp/`` after a protocol change: ``SUPERIONIC_RECORD_MOCK=1 pytest tests/engines/test_vasp_mock.py``
writes the inputs the chain produced into the registry (the outputs stay the real recordings).
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from pymatgen.io.vasp import Outcar, Vasprun

from aiida_superionic.engines.contract import get_engine
from aiida_superionic.workflows.steps import ElasticWorkChain, PhononGammaWorkChain, RelaxWorkChain

DATA = Path(__file__).parents[1] / 'data'
RECORDINGS = DATA / 'aiida-vasp'
REGISTRY = DATA / 'vasp-mock-registry'
MOCK_VASP = Path(sys.executable).with_name('mock-vasp')
RECORD = os.environ.get('SUPERIONIC_RECORD_MOCK') == '1'


def _structure_of(vasprun: Path) -> orm.StructureData:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return orm.StructureData(pymatgen=Vasprun(str(vasprun), parse_potcar_file=False).initial_structure)


@pytest.fixture
def registry(tmp_path):
    """The mock registry, assembled from ``inp/`` + the real recordings named in ``outputs.txt``."""
    base = tmp_path / 'registry'
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


@pytest.fixture
def mock_code(registry, tmp_path):
    computer = orm.Computer(
        label=f'localhost-vasp-{tmp_path.name}',
        hostname='localhost',
        transport_type='core.local',
        scheduler_type='core.direct',
        workdir=str(tmp_path / 'work'),
    ).store()
    computer.set_minimum_job_poll_interval(0.0)
    computer.configure(safe_interval=0.0)
    return orm.InstalledCode(
        label='mock-vasp',
        computer=computer,
        filepath_executable=str(MOCK_VASP),
        default_calc_job_plugin='vasp.vasp',
        prepend_text=f'export MOCK_VASP_REG_BASE={registry}',
    ).store()


@pytest.fixture
def potcar_family(tmp_path):
    """aiida-vasp's dummy test POTCARs (1.111 everywhere: inputs only, mock-vasp never reads them) as
    the protocol's family name."""
    from aiida_vasp.data.potcar import PotcarData

    source = tmp_path / 'potcars'
    shutil.copytree(RECORDINGS / 'potcar_dummy', source)
    PotcarData.upload_potcar_family(str(source), 'PBE.54', 'dummy test POTCARs', stop_if_existing=False)
    return 'PBE.54'


def _incar_of(node) -> dict[str, str]:
    calc = next(n for n in node.called_descendants if isinstance(n, orm.CalcJobNode))
    text = calc.base.repository.get_object_content('INCAR')
    tags = {}
    for line in text.splitlines():
        if '=' in line:
            key, value = line.split('=', 1)
            tags[key.strip().upper()] = value.strip()
    return tags


def _calcs(node) -> list[orm.CalcJobNode]:
    return sorted(
        (n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime
    )


def _record_inputs(node, cases: list[str]) -> None:
    """Record mode: the inputs of the k-th VASP job go to registry case ``cases[k]``."""
    for calc, case in zip(_calcs(node), cases, strict=False):
        inp = REGISTRY / case / 'inp'
        inp.mkdir(parents=True, exist_ok=True)
        for name in ('INCAR', 'POSCAR', 'KPOINTS'):
            (inp / name).write_text(calc.base.repository.get_object_content(name))


def _run(process, cases: list[str], **inputs):
    outputs, node = run_get_node(process, **inputs)
    if RECORD:
        _record_inputs(node, cases)
    return outputs, node


def _common(mock_code, protocol='precise', overrides=None):
    inputs = {'code': mock_code, 'engine': orm.Str('vasp'), 'protocol': orm.Str(protocol)}
    options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'withmpi': False}
    inputs['options'] = orm.Dict(options)
    if overrides:
        inputs['overrides'] = orm.Dict(overrides)
    return inputs


def test_elastic_chain_through_mock_vasp(mock_code, potcar_family):
    """superionic.elastic with the vasp engine: IBRION=6/ISIF=3 INCAR from the 'precise' protocol,
    C_ij from the OUTCAR (kBar -> GPa, Voigt order) and the 13 descriptors, against pymatgen."""
    outcar = RECORDINGS / 'OUTCAR_elastic_ibrion6.gz'
    structure = _structure_of(RECORDINGS / 'vasprun_elastic_ibrion6.xml.gz')
    outputs, node = _run(ElasticWorkChain, ['elastic'], structure=structure, **_common(mock_code))
    assert node.is_finished_ok, node.exit_message
    incar = _incar_of(node)
    assert incar['IBRION'] == '6' and incar['ISIF'] == '3' and incar['ENCUT'] == '750'
    assert incar['NFREE'] == '2' and incar['PREC'].lower().startswith('accurate')

    ref = Outcar(str(outcar))
    ref.read_elastic_tensor()
    perm = [0, 1, 2, 4, 5, 3]
    expected = np.array(ref.data['elastic_tensor'])[np.ix_(perm, perm)] / 10.0
    np.testing.assert_allclose(outputs['elastic_tensor'].get_array('voigt_GPa'), expected, atol=1e-6)

    from pymatgen.analysis.elasticity import ElasticTensor

    et = ElasticTensor.from_voigt(expected)
    d = outputs['elastic_descriptors'].get_dict()
    assert d['bulk_modulus_GPa'] == pytest.approx(et.k_vrh, rel=1e-6)
    assert d['shear_modulus_GPa'] == pytest.approx(et.g_vrh, rel=1e-6)
    c11, c12, c44 = expected[0, 0], expected[0, 1], expected[3, 3]  # cubic: K = (C11 + 2 C12) / 3
    assert d['bulk_modulus_GPa'] == pytest.approx((c11 + 2 * c12) / 3, rel=1e-6)
    assert d['bulk_modulus_GPa'] == pytest.approx(102.8019, abs=1e-3)
    assert d['cauchy_pressure_GPa'] == pytest.approx(c12 - c44, abs=1e-6)  # -7.107 GPa


def test_phonon_gamma_chain_through_mock_vasp(mock_code, potcar_family):
    """superionic.phonon_gamma with the vasp engine: the protocol's DFPT INCAR (IBRION=8, LEPSILON); the
    closest real recording with a Γ dynamical matrix *and* an OUTCAR is the IBRION=6 run, whose OUTCAR
    prints the frequencies VASP computed: the lowest optical mode must be that one."""
    structure = _structure_of(RECORDINGS / 'vasprun_elastic_ibrion6.xml.gz')
    outputs, node = _run(PhononGammaWorkChain, ['phonon_gamma'], structure=structure, **_common(mock_code))
    assert node.is_finished_ok, node.exit_message
    incar = _incar_of(node)
    assert incar['IBRION'] == '8' and incar['LEPSILON'].upper().startswith(('T', '.T'))
    phonon = outputs['phonon'].get_dict()
    assert phonon['gamma_mode_meV'] == pytest.approx(65.050401, abs=1e-4)  # OUTCAR: "65.050401 meV"
    assert len(phonon['frequencies_meV']) == 6


def test_relax_chain_recovers_from_unconverged_electronic_steps(mock_code, potcar_family):
    """The real NELM=8 recording (electronic steps not converged) comes back first; aiida-vasp's handler
    changes the INCAR, the new hash finds the real converged recording, and the relax step finishes
    with the structure and energy of that run."""
    structure = _structure_of(RECORDINGS / 'exit_codes_converged' / 'vasprun.xml.gz')
    cases = ['relax_elec_unconverged', 'relax_converged']
    outputs, node = _run(RelaxWorkChain, cases, structure=structure, **_common(mock_code, 'fast'))
    calcs = _calcs(node)
    assert node.is_finished_ok, node.exit_message
    assert len(calcs) == 2
    assert calcs[0].exit_status != 0  # the unconverged recording
    incar = _incar_of(node)  # the first job: the 'fast' protocol as written
    assert incar['IBRION'] == '2' and incar['ISIF'] == '3' and incar['EDIFFG'] == '-0.05'
    assert incar['ENCUT'] == '400' and 'NELM' not in incar
    second = calcs[1].base.repository.get_object_content('INCAR')
    assert 'NELM = 150' in second  # aiida-vasp's electronic-convergence handler
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ref = Vasprun(str(RECORDINGS / 'exit_codes_converged' / 'vasprun.xml.gz'), parse_potcar_file=False)
    # pymatgen's final_energy (sigma -> 0; it undoes VASP 5's swapped labels in the last <energy> block)
    assert outputs['results']['energy_eV'] == pytest.approx(float(ref.final_energy), abs=1e-6)
    assert outputs['results']['energy_eV'] == pytest.approx(-6.50161629, abs=1e-8)
    relaxed = outputs['structure'].get_pymatgen_structure()
    assert np.allclose(relaxed.frac_coords, ref.final_structure.frac_coords, atol=1e-6)


def test_engine_refuses_the_vacancy_step_with_one_clear_line(mock_code):
    engine = get_engine('vasp')
    from aiida_superionic.exceptions import InputError

    with pytest.raises(InputError, match='not implemented for the vasp engine'):
        engine.get_builder('vacancy', orm.StructureData(), mock_code, engine.protocol('fast'), mobile='Li')
