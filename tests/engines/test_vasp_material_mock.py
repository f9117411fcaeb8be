"""One whole ``superionic.material`` through the VASP engine and aiida-vasp's ``mock-vasp``: relax, then
elastic, Γ with the dielectric (one DFPT job), vacancy and band gap, then MD at two temperatures (at 1200 K a segment killed at
its wall time and continued from its CONTCAR), up to the descriptors of the stitched trajectories; and
the same run on a real daemon SIGKILLed in the middle.

The material is the crystal of aiida-vasp's real LEPSILON recording (Zn3(PS4)2: 4 P, 16 S, 6 Zn, mobile
Zn), so that its own real outputs serve where they can. Each job is found by mock-vasp from the hash of
the inputs our chain wrote (registry cases ``material_*`` of ``tests/data/vasp-mock-registry``); no real
recording of this crystal exists for most kinds of job, so real recordings of other runs stand in:

* relax <- the LEPSILON run itself (a static run: its CONTCAR, the input crystal, is "the relaxed one");
* elastic <- the IBRION=6 run of Si2 (its C_ij, the only real elastic-tensor recording);
* Γ phonon and dielectric: one IBRION=8 + LEPSILON job (the Γ step's; no separate dielectric job) <- the
  vasprun.xml of the same IBRION=6 run of Si2 (its <dynmat>: Γ; no DFPT recording has an OUTCAR) with the
  OUTCAR of the LEPSILON run of this crystal (its own ε∞ and Born charges);
* vacancy: perfect supercell <- the converged Si2 relaxation ``exit_codes_converged``; each of the two
  defect supercells (two Zn site classes) <- the Si2 relaxation ``mock_silicon_relax`` (mu of Zn given);
* band gap <- the LEPSILON run (its eigenvalues);
* MD segments <- the LEPSILON run's XDATCAR (one frame), CONTCAR and OSZICAR, with its vasprun.xml and
  OUTCAR for a finished segment, and the truncated vasprun.xml and OUTCAR of the real killed run
  ``exit_codes_unfinished`` for the segment killed at its wall time.

So the numbers are not the physics of Zn3(PS4)2: what is tested is the whole chain on real VASP files,
with every value checked against the recordings read here with pymatgen / ase.

Where it ends: no real recording has an MD trajectory of a crystal whose other jobs are recorded, and the
only stand-in (the one-frame XDATCAR) gives a trajectory of 2 identical frames per temperature, which
``superionic.md_descriptors`` rightly refuses (at least 12 frames, and the mobile ions must move). So the
material ends with exit 403 and that one message instead of records and a table row; the records of a
whole material are tested on the MLIP engine (tests/engines/test_mlip_workflows.py) and the VASP parts of a
record (ε∞, Z_B, E_g, E_vac) on ``collect_dft_part``.

Re-recording (after a protocol change): ``SUPERIONIC_RECORD_MOCK=1 pytest
tests/engines/test_vasp_material_mock.py::test_whole_material_through_mock_vasp`` runs the chain as far
as the registry reaches, writes the inputs of the jobs it ran into their cases' ``inp/`` and runs again,
until no new job appears (a case's ``outputs.txt``, the stand-in, is chosen by hand).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from collections import Counter

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node
from pymatgen.io.vasp import Outcar, Vasprun

from aiida_superionic.workflows.material import MaterialWorkChain
from tests.engines.conftest import (
    RECORD,
    RECORDINGS,
    REGISTRY,
    _structure_of,
    assemble_registry,
    make_mock_code,
)

pytestmark = pytest.mark.slow  # 11 mock-vasp jobs and ~80 processes: minutes on 2 shared cores

#: ``moderate``, not the ``fast`` of test_vasp_mock.py: that module's single-step cases run on this same
#: crystal, and mock-vasp must not find two cases with the same inputs.
MATERIAL_OVERRIDES = {
    'vacancy': {'min_length_A': 3.0, 'mu_eV': -1.25},
    'md': {
        'min_atoms': 20,
        'vacancy_fraction': 0.0,
        'n_steps': 2,
        'segment_steps': 1,
        'frame_interval': 1,
    },
}
TEMPERATURES = [900.0, 1200.0]
MOBILE = 'Zn'


def material_inputs(code) -> dict:
    options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'withmpi': False}
    return {
        'structure': _structure_of(RECORDINGS / 'vasprun_lepsilon.xml.gz'),
        'mobile': orm.Str(MOBILE),
        'code': code,
        'engine': orm.Str('vasp'),
        'protocol': orm.Str('moderate'),
        'overrides': orm.Dict(MATERIAL_OVERRIDES),
        'options': orm.Dict(options),
        'temperatures': orm.List(TEMPERATURES),
        'label': orm.Str('Zn3(PS4)2 mock'),
        'group_label': orm.Str('mock-vasp-material'),
    }


def _call_label(node) -> str:
    return node.base.links.get_incoming(link_type=(LinkType.CALL_WORK, LinkType.CALL_CALC)).one().link_label


def case_of(calc: orm.CalcJobNode, root: orm.ProcessNode) -> str:
    """The registry case of a VASP job of the material: the call-link labels from the root down, e.g.
    ``material_relax``, ``material_vacancy_perfect``, ``material_md_stoichiometric_T1200_1``."""
    labels = []
    node = calc
    while node.pk != root.pk:
        labels.append(_call_label(node))
        node = node.caller
    labels.reverse()  # e.g. [relax, engine, vasp_0, iteration_01] or [md, md_stoichiometric_T900, vasp_1, ...]
    step = labels[0]
    if step == 'vacancy':
        return f'material_vacancy_{labels[2].removeprefix("vasp_")}'
    if step == 'md':
        segment = int(labels[2].removeprefix('vasp_')) + 1
        return f'material_{labels[1]}_{segment}'
    return f'material_{step}'


def vasp_jobs(root) -> list[orm.CalcJobNode]:
    return sorted(
        (n for n in root.called_descendants if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime
    )


def record_material_inputs(make_code, tmp_path, max_rounds: int = 8):
    """Record mode: run the material as far as the registry reaches, write the inputs of its jobs into
    their cases, and again, until no new job appears."""
    recorded = set()
    for round_ in range(max_rounds):
        code = make_code(assemble_registry(tmp_path / f'registry-{round_}'))
        _, node = run_get_node(MaterialWorkChain, **material_inputs(code))
        cases = {case_of(calc, node) for calc in vasp_jobs(node)}
        if node.is_finished_ok or cases <= recorded:
            break
        recorded |= cases
        for calc in vasp_jobs(node):
            case = REGISTRY / case_of(calc, node)
            if not (case / 'outputs.txt').is_file():
                raise AssertionError(f'no stand-in chosen for {case.name}: write its outputs.txt')
            (case / 'inp').mkdir(exist_ok=True)
            for name in ('INCAR', 'POSCAR', 'KPOINTS'):
                (case / 'inp' / name).write_text(calc.base.repository.get_object_content(name))


def _vasprun(name: str) -> Vasprun:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return Vasprun(str(RECORDINGS / name), parse_potcar_file=False)


def expected_values() -> dict:
    """What the records must hold, read from the recordings with pymatgen / ase (not by our readers)."""
    from ase.io import read
    from pymatgen.analysis.elasticity import ElasticTensor

    elastic = Outcar(str(RECORDINGS / 'OUTCAR_elastic_ibrion6.gz'))
    elastic.read_elastic_tensor()
    perm = [0, 1, 2, 4, 5, 3]  # VASP's XX YY ZZ XY YZ ZX -> Voigt
    c_gpa = np.array(elastic.data['elastic_tensor'])[np.ix_(perm, perm)] / 10.0
    et = ElasticTensor.from_voigt(c_gpa)
    lepsilon = Outcar(str(RECORDINGS / 'OUTCAR_lepsilon.gz'))
    lepsilon.read_lepsilon()
    structure = _structure_of(RECORDINGS / 'vasprun_lepsilon.xml.gz')
    zn = [i for i, site in enumerate(structure.sites) if site.kind_name == MOBILE]
    e_perfect = float(_vasprun('exit_codes_converged/vasprun.xml.gz').final_energy)
    e_defect = float(_vasprun('mock_silicon_relax/vasprun.xml.gz').final_energy)
    frame = read(str(RECORDINGS / 'XDATCAR_lepsilon'), format='vasp-xdatcar', index=-1)
    return {
        'c_GPa': c_gpa,
        'K_GPa': et.k_vrh,
        'G_GPa': et.g_vrh,
        'epsilon_inf': float(np.trace(lepsilon.dielectric_tensor) / 3),
        'born_charge_e': float(np.mean([np.trace(np.array(lepsilon.born)[i]) / 3 for i in zn])),
        'epsilon_inf_tensor': np.array(lepsilon.dielectric_tensor),
        'born_charges_tensor_e': np.array(lepsilon.born),
        'band_gap_eV': float(_vasprun('vasprun_lepsilon.xml.gz').eigenvalue_band_properties[0]),
        'E_vac_eV': e_defect + MATERIAL_OVERRIDES['vacancy']['mu_eV'] - e_perfect,
        'relax_energy_eV': float(_vasprun('vasprun_lepsilon.xml.gz').final_energy),
        'frame_positions': frame.get_positions(),
        'relaxed_structure': structure,
    }


#: Where the material ends (module docstring): the descriptors refuse a trajectory of 2 identical frames.
MD_END = (
    'the MD work chain failed: descriptors of stoichiometric_T1200 failed: the trajectory cannot be '
    'analysed: too few frames to fit D: 2 (need at least 12)'
)


def check_material(node, expected: dict) -> None:
    """Every step's output and the trajectories against the recordings (``expected_values``)."""
    assert node.exit_status == MaterialWorkChain.exit_codes.ERROR_MD_FAILED.status, node.exit_message
    assert node.exit_message == MD_END
    out = node.outputs
    # relax: the stand-in's CONTCAR (the input crystal) is the relaxed structure
    relaxed = out.relaxed_structure.get_pymatgen_structure()
    ref = expected['relaxed_structure'].get_pymatgen_structure()
    np.testing.assert_allclose(relaxed.lattice.matrix, ref.lattice.matrix, atol=1e-6)
    np.testing.assert_allclose(relaxed.frac_coords % 1, ref.frac_coords % 1, atol=1e-6)
    d = out.elastic_descriptors.get_dict()
    assert d['bulk_modulus_GPa'] == pytest.approx(expected['K_GPa'], rel=1e-6)
    assert d['shear_modulus_GPa'] == pytest.approx(expected['G_GPa'], rel=1e-6)
    assert out.phonon['gamma_mode_meV'] == pytest.approx(65.050401, abs=1e-4)  # OUTCAR: "65.050401 meV"
    assert out.dielectric['epsilon_inf'] == pytest.approx(expected['epsilon_inf'], rel=1e-6)
    assert out.dielectric['born_charge_e'] == pytest.approx(expected['born_charge_e'], rel=1e-6)
    np.testing.assert_allclose(
        out.dielectric['epsilon_inf_tensor'], expected['epsilon_inf_tensor'], atol=1e-6
    )
    np.testing.assert_allclose(
        out.dielectric['born_charges_tensor_e'], expected['born_charges_tensor_e'], atol=1e-6
    )
    assert out.band_gap['band_gap_eV'] == pytest.approx(expected['band_gap_eV'], abs=1e-6)
    assert out.vacancy['E_vac_eV'] == pytest.approx(expected['E_vac_eV'], abs=1e-6)
    assert len(out.vacancy['sites']) == 2  # two Zn site classes: two defect jobs

    jobs = {case_of(c, node): c for c in vasp_jobs(node)}
    assert sorted(jobs) == sorted(p.name for p in REGISTRY.glob('material_*'))  # each case once
    assert len(jobs) == len(vasp_jobs(node)) == 11
    # one DFPT job for the material: the Γ step's, which also gave ε∞ and the Born charges
    dfpt = [c for c in vasp_jobs(node) if 'IBRION = 8' in c.base.repository.get_object_content('INCAR')]
    assert [case_of(c, node) for c in dfpt] == ['material_phonon']
    assert 'dielectric' not in {_call_label(n) for n in node.called}
    (phonon,) = (n for n in node.called if _call_label(n) == 'phonon')
    assert out.dielectric.uuid == phonon.outputs.dielectric.uuid
    # MD: two segments per temperature; at 1200 K the first was killed at its wall time and continued
    assert not jobs['material_md_stoichiometric_T1200_1'].is_finished_ok
    for key in ('T900_2', 'T1200_2'):  # continued from the CONTCAR: positions and velocities
        assert 'velocities' in jobs[f'material_md_stoichiometric_{key}'].inputs
    (md,) = (n for n in node.called if n.process_label == 'MDWorkChain')
    trajectories = dict(md.outputs.trajectories.items())
    assert sorted(trajectories) == ['stoichiometric_T1200', 'stoichiometric_T900']
    for key, traj in trajectories.items():
        np.testing.assert_array_equal(traj.get_array('steps'), [1, 2])
        for frame in traj.get_positions():  # each segment's frame is the recorded XDATCAR frame (ase)
            np.testing.assert_allclose(frame, expected['frame_positions'], atol=1e-4)
        assert traj.temperature_K == float(key.rsplit('_T', 1)[1])
        assert traj.timestep_fs == pytest.approx(1.5) and traj.origin['segments'] == 2
    assert 'records' not in out


def vasp_calcs_of(node) -> list[orm.CalcJobNode]:
    return [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]


def process_counts(root) -> dict[str, int]:
    return dict(Counter(n.process_label for n in [root, *root.called_descendants]))


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    """The whole material run once, uninterrupted, in this process (the test profile)."""
    from aiida_vasp.data.potcar import PotcarData

    tmp = tmp_path_factory.mktemp('material')
    shutil.copytree(RECORDINGS / 'potcar_dummy', tmp / 'potcars')
    PotcarData.upload_potcar_family(
        str(tmp / 'potcars'), 'PBE.54', 'dummy test POTCARs', stop_if_existing=False
    )
    if RECORD:
        record_material_inputs(lambda reg: make_mock_code(reg, tmp / 'work', f'vasp-record-{reg.name}'), tmp)
    code = make_mock_code(assemble_registry(tmp / 'registry'), tmp / 'work', f'vasp-material-{tmp.name}')
    started = time.monotonic()
    _, node = run_get_node(MaterialWorkChain, **material_inputs(code))
    print(f'whole material through mock-vasp: {time.monotonic() - started:.0f} s')
    return node


def test_whole_material_through_mock_vasp(uninterrupted):
    check_material(uninterrupted, expected_values())


#: Run in the user's profile as ``python submit.py PROFILE WORKDIR``: the mock-vasp code (registry assembled
#: under WORKDIR), the dummy POTCAR family, and the material submitted to the daemon; prints its pk.
SUBMIT = r"""
import shutil
import sys
from pathlib import Path

from aiida import load_profile
from aiida.engine import submit

load_profile(sys.argv[1], allow_switch=True)
from aiida_vasp.data.potcar import PotcarData

from aiida_superionic.workflows.material import MaterialWorkChain
from tests.engines.conftest import RECORDINGS, assemble_registry, make_mock_code
from tests.engines.test_vasp_material_mock import material_inputs

work = Path(sys.argv[2])
shutil.copytree(RECORDINGS / 'potcar_dummy', work / 'potcars')
PotcarData.upload_potcar_family(str(work / 'potcars'), 'PBE.54', 'dummy test POTCARs')
code = make_mock_code(assemble_registry(work / 'registry'), work / 'jobs', 'localhost-mock-vasp')
print(submit(MaterialWorkChain, **material_inputs(code)).pk)
"""


def test_whole_material_daemon_sigkilled_mid_run(uninterrupted, tmp_path):
    """The same material submitted to a real daemon (embedded profile: SQLite + ZeroMQ), SIGKILLed —
    circus, worker, broker — as soon as 6 VASP jobs have a job id (the properties step submitting its 6
    jobs), and restarted: the same end, every output the same (content hash) as in the uninterrupted run,
    the same processes (none called twice with the same inputs by the same caller), every process finished
    and sealed, each job submitted once."""
    from tests.conftest import ROOT
    from tests.services.faults_harness import (
        Probe,
        audit_when_done,
        check_orphans,
        probe_function,
        reap,
        start_daemon,
    )
    from tests.services.test_daemon import BIN, User

    aiida_root = tmp_path / 'aiida'
    user = User(aiida_root)
    user.env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(ROOT), user.env.get('PYTHONPATH')]))
    user.run(BIN / 'aiida-superionic', 'setup')
    profile = 'superionic'
    probe = Probe(user, profile, tmp_path)
    script = tmp_path / 'submit.py'
    script.write_text(SUBMIT)
    pidfile = aiida_root / '.aiida' / 'daemon' / f'circus-{profile}.pid'
    user.run(BIN / 'verdi', '-p', profile, 'daemon', 'start', '1')
    try:
        pk = int(user.run(sys.executable, script, profile, tmp_path / 'vasp', cwd=ROOT).stdout.split()[-1])
        seen = probe('wait', pk, 'jobs:6', 600, pidfile, timeout=700)
        assert seen['met'], seen
        assert any('daemon worker' in k for k in seen['killed']), seen
        time.sleep(3)
        start_daemon(user, aiida_root, profile)
        facts = audit_when_done(probe, pk)
    finally:
        user.run(BIN / 'verdi', '-p', profile, 'daemon', 'stop', check=False, timeout=120)
        reap(pidfile)

    # the same end as the uninterrupted run, with the same outputs everywhere in the tree
    assert facts['root_exit'] == [uninterrupted.exit_status, MD_END]
    reference = probe_function('tree_outputs')(uninterrupted)
    differ = [o for o in facts['outputs'] if o not in reference] + [
        o for o in reference if o not in facts['outputs']
    ]
    assert facts['outputs'] == reference, differ
    assert facts['process_counts'] == process_counts(uninterrupted)
    assert facts['records_in_db'] == 0
    assert facts['duplicates'] == []
    assert facts['not_in_tree'] == [] and facts['unsealed'] == []
    # not finished: only the two compute_diffusion calcfunctions that refused the trajectories, as uninterrupted
    refused = [n for n in uninterrupted.called_descendants if n.process_state.value != 'finished']
    assert [n.process_label for n in refused] == ['compute_diffusion'] * 2
    assert len(facts['not_finished']) == len(refused)
    assert all(n < pk for n in facts['unlinked_data'])  # only the unused POTCARs uploaded before submitting
    check_orphans(facts['orphans'], kills=1)
    workdirs = facts['remote_workdirs']
    assert len(workdirs) == len(set(workdirs)) == len(vasp_calcs_of(uninterrupted))  # each job once
    print(f'killed after jobs {seen["jobs"]}: {facts["n_processes"]} processes, {facts["nodes"]} nodes')
