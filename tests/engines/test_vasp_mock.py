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

import warnings

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from pymatgen.io.vasp import Outcar, Vasprun
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from aiida_superionic.engines.contract import get_engine
from aiida_superionic.workflows.steps import (
    ElasticWorkChain,
    PhononGammaWorkChain,
    RelaxWorkChain,
    VacancyWorkChain,
)
from tests.engines.conftest import RECORD, RECORDINGS, REGISTRY, _structure_of


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


def _record_inputs(node, cases: list[str] | dict[str, str]) -> None:
    """Record mode: the inputs of the k-th VASP job go to registry case ``cases[k]`` (or, for a dict,
    to ``cases[label of the vasp.vasp work chain that ran it]``)."""
    calcs = _calcs(node)
    if isinstance(cases, dict):
        pairs = [(c, cases[c.caller.label]) for c in calcs if c.caller.label in cases]
    else:
        pairs = list(zip(calcs, cases, strict=False))
    for calc, case in pairs:
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
    assert incar['ENCUT'] == '750' and incar['NSW'] == '1'
    phonon = outputs['phonon'].get_dict()
    assert phonon['gamma_mode_meV'] == pytest.approx(65.050401, abs=1e-4)  # OUTCAR: "65.050401 meV"
    assert len(phonon['frequencies_meV']) == 6
    assert phonon['n_atoms_input'] == phonon['n_atoms_primitive'] == 2


def test_phonon_gamma_gives_vasp_the_primitive_cell(mock_code, potcar_family):
    """Γ is a property of the crystal, not of the cell the user gave: the 8-atom conventional cube of the
    recorded Si crystal reaches VASP as its 2-atom primitive cell. mock-vasp finds the recording by the hash
    of the INCAR, POSCAR and KPOINTS the chain wrote, so the job only succeeds when they are exactly those of
    the primitive input; the POSCAR is checked against pymatgen's StructureMatcher too."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.vasp import Poscar
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    primitive = _structure_of(RECORDINGS / 'vasprun_elastic_ibrion6.xml.gz').get_pymatgen_structure()
    conventional = SpacegroupAnalyzer(primitive).get_conventional_standard_structure()
    assert len(conventional) == 8
    outputs, node = run_get_node(
        PhononGammaWorkChain, structure=orm.StructureData(pymatgen=conventional), **_common(mock_code)
    )
    assert node.is_finished_ok, node.exit_message
    (calc,) = _calcs(node)
    sent = Poscar.from_str(calc.base.repository.get_object_content('POSCAR')).structure
    assert len(sent) == 2
    assert sent.volume == pytest.approx(conventional.volume / 4, rel=1e-8)
    assert StructureMatcher(primitive_cell=False, scale=False).fit(sent, primitive)
    phonon = outputs['phonon'].get_dict()
    assert phonon['gamma_mode_meV'] == pytest.approx(65.050401, abs=1e-4)  # OUTCAR: "65.050401 meV"
    assert len(phonon['frequencies_meV']) == 6
    assert phonon['n_atoms_input'] == 8 and phonon['n_atoms_primitive'] == 2
    assert phonon['spacegroup'] == 'Fd-3m (227)'


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


def _final_energy(folder: str) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return float(
            Vasprun(str(RECORDINGS / folder / 'vasprun.xml.gz'), parse_potcar_file=False).final_energy
        )


def test_vacancy_chain_through_mock_vasp(mock_code, potcar_family):
    """superionic.vacancy with the vasp engine: a perfect supercell (static) and one without a mobile ion
    (relaxed), E_vac = E_defect + mu - E_perfect. No real vacancy-supercell recording exists: two real
    Si2 runs stand in for the two jobs (so the number is not a vacancy energy, but the chain, the INCARs
    and the arithmetic on aiida-vasp's parsed energies are what is checked, against pymatgen)."""
    structure = _structure_of(RECORDINGS / 'exit_codes_converged' / 'vasprun.xml.gz')
    overrides = {'vacancy': {'min_length_A': 3.0, 'mu_eV': -5.0}}
    cases = {'vacancy perfect': 'vacancy_perfect', 'vacancy defect 0': 'vacancy_defect'}
    inputs = _common(mock_code, 'fast', overrides)
    outputs, node = _run(VacancyWorkChain, cases, structure=structure, mobile=orm.Str('Si'), **inputs)
    assert node.is_finished_ok, node.exit_message
    by_role = {c.caller.label: c for c in _calcs(node)}
    perfect_incar = by_role['vacancy perfect'].base.repository.get_object_content('INCAR')
    defect_incar = by_role['vacancy defect 0'].base.repository.get_object_content('INCAR')
    assert 'IBRION = -1' in perfect_incar and 'NSW = 0' in perfect_incar
    assert 'IBRION = 2' in defect_incar and 'ISIF = 2' in defect_incar
    n_perfect = len(by_role['vacancy perfect'].inputs.structure.sites)
    assert len(by_role['vacancy defect 0'].inputs.structure.sites) == n_perfect - 1
    assert set(by_role) == {'vacancy perfect', 'vacancy defect 0'}  # diamond Si: one site class; mu given
    v = outputs['vacancy'].get_dict()
    e_perfect, e_defect = _final_energy('exit_codes_converged'), _final_energy('mock_silicon_relax')
    assert v['E_perfect_eV'] == pytest.approx(e_perfect, abs=1e-6)
    assert v['E_defect_eV'] == pytest.approx(e_defect, abs=1e-6)
    assert v['E_vac_eV'] == pytest.approx(e_defect - 5.0 - e_perfect, abs=1e-6)
    assert v['mu_reference'] == 'given in the protocol (vacancy.mu_eV)' and v['mu_source'] == 'given'
    sym = SpacegroupAnalyzer(structure.get_pymatgen_structure(), symprec=0.01).get_symmetrized_structure()
    assert [site['members'] for site in v['sites']] == sym.equivalent_indices == [[0, 1]]  # one Si class


def _si_o_oxide() -> orm.StructureData:
    """A 3-atom 'oxide' with two inequivalent O sites (P4mm: O at z = 0 and z = 0.3 on the 4-fold axis,
    Si at 1b): two defect jobs. The cell only has to be a valid input: its jobs are replayed."""
    from ase import Atoms

    atoms = Atoms(
        'O2Si', scaled_positions=[[0, 0, 0], [0, 0, 0.3], [0.5, 0.5, 0.6]], cell=[3.2, 3.2, 5.0], pbc=True
    )
    return orm.StructureData(ase=atoms)


def test_vacancy_chain_computes_the_o2_reference_and_tries_every_site(mock_code, potcar_family):
    """Mobile O without vacancy.mu_eV: the chain runs the shared rule's reference itself (the O2 triplet
    in a box: ISPIN = 2, MAGMOM, NUPDOWN = 2, Γ only, positions relaxed), one defect job per inequivalent O
    site, and E_vac = min_k E(defect_k) + E(O2)/2 - E(perfect) from the replayed energies (pymatgen).

    Stand-ins (registry outputs.txt): perfect <- exit_codes_converged; defect 0 <- mock_silicon_relax;
    defect 1 <- exit_codes_converged; the O2 reference <- mock_silicon_relax, a real spin-polarized
    (ISPIN = 2) relaxation of Si2 (2 atoms, so mu = E/2 as for O2). The dummy S POTCAR stands in for O
    (mock-vasp never reads POTCARs)."""
    overrides = {'vacancy': {'min_length_A': 3.0}, 'potential_mapping': {'O': 'S'}}
    cases = {
        'vacancy perfect': 'vacancy_o_perfect',
        'vacancy defect 0': 'vacancy_o_defect_0',
        'vacancy defect 1': 'vacancy_o_defect_1',
        'vacancy reference': 'vacancy_o2_reference',
    }
    inputs = _common(mock_code, 'fast', overrides)
    outputs, node = _run(VacancyWorkChain, cases, structure=_si_o_oxide(), mobile=orm.Str('O'), **inputs)
    assert node.is_finished_ok, node.exit_message
    by_role = {c.caller.label: c for c in _calcs(node)}
    assert set(by_role) == set(cases)
    ref_calc = by_role['vacancy reference']
    ref_incar = ref_calc.base.repository.get_object_content('INCAR')
    assert 'ISPIN = 2' in ref_incar and 'NUPDOWN = 2' in ref_incar and 'MAGMOM = 1.0 1.0' in ref_incar
    assert 'IBRION = 2' in ref_incar and 'ISIF = 2' in ref_incar  # positions relaxed in a fixed box
    for role in ('vacancy perfect', 'vacancy defect 0', 'vacancy defect 1'):
        assert 'ISPIN' not in by_role[role].base.repository.get_object_content('INCAR')
    assert ref_calc.inputs.kpoints.get_kpoints_mesh()[0] == [1, 1, 1]
    o2 = ref_calc.inputs.structure.get_ase()
    assert o2.get_chemical_formula() == 'O2' and o2.get_distance(0, 1) == pytest.approx(1.21)

    def positions(role):
        return {tuple(p) for p in by_role[role].inputs.structure.get_ase().get_scaled_positions().round(6)}

    removed = [positions('vacancy perfect') - positions(f'vacancy defect {k}') for k in (0, 1)]
    assert removed == [{(0.0, 0.0, 0.0)}, {(0.0, 0.0, 0.3)}]  # one O of each class (1x1x1 supercell)

    v = outputs['vacancy'].get_dict()
    e_perfect = _final_energy('exit_codes_converged')
    e_defects = [_final_energy('mock_silicon_relax'), _final_energy('exit_codes_converged')]
    mu = _final_energy('mock_silicon_relax') / 2
    assert v['mu_eV'] == pytest.approx(mu, abs=1e-6) and v['mu_source'] == 'computed'
    assert v['reference']['structure'] == 'O2 molecule' and v['reference']['spin'] == 'triplet'
    assert v['reference']['incar']['ISPIN'] == 2
    assert 'O2 molecule (triplet)' in v['mu_reference']
    assert [s['E_vac_eV'] for s in v['sites']] == pytest.approx(
        [e + mu - e_perfect for e in e_defects], abs=1e-6
    )
    assert [s['wyckoff'] for s in v['sites']] == ['1a', '1a']  # two 1a sites of P4mm, different z
    assert v['E_vac_eV'] == pytest.approx(min(e + mu - e_perfect for e in e_defects), abs=1e-6)
    best = int(np.argmin(e_defects))
    assert v['removed_index'] == v['sites'][best]['index'] and v['E_defect_eV'] == pytest.approx(
        e_defects[best]
    )


def test_vacancy_without_a_reference_is_one_clear_exit_code(mock_code, potcar_family):
    structure = _structure_of(RECORDINGS / 'exit_codes_converged' / 'vasprun.xml.gz')
    _, node = run_get_node(
        VacancyWorkChain, structure=structure, mobile=orm.Str('Si'), **_common(mock_code, 'fast')
    )
    assert not node.is_finished_ok
    assert "no chemical-potential reference for 'Si'" in node.exit_message
    assert 'vacancy.mu_eV' in node.exit_message
    assert not _calcs(node)  # stopped before any VASP job


def _run_step(mock_code, step, structure, cases, protocol='fast', overrides=None, **kwargs):
    engine = get_engine('vasp')
    settings = engine.protocol(protocol, overrides)
    options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'withmpi': False}
    builder = engine.get_builder(step, structure, mock_code, settings, options=options, **kwargs)
    return _run(builder, cases)


def test_dielectric_chain_through_mock_vasp(mock_code, potcar_family):
    """ε∞ and the Born charge of the mobile ion from the real LEPSILON recording, against pymatgen."""
    structure = _structure_of(RECORDINGS / 'vasprun_lepsilon.xml.gz')
    outputs, node = _run_step(mock_code, 'dielectric', structure, ['dielectric'], mobile='Zn')
    assert node.is_finished_ok, node.exit_message
    incar = _incar_of(node)
    assert incar['IBRION'] == '8' and incar['LEPSILON'].upper().startswith(('T', '.T'))
    ref = Outcar(str(RECORDINGS / 'OUTCAR_lepsilon.gz'))
    ref.read_lepsilon()
    d = outputs['dielectric'].get_dict()
    assert d['epsilon_inf'] == pytest.approx(np.trace(ref.dielectric_tensor) / 3)
    zn = [i for i, site in enumerate(structure.sites) if site.kind_name == 'Zn']
    assert len(zn) == 6
    assert d['born_charge_e'] == pytest.approx(np.mean([np.trace(np.array(ref.born)[i]) / 3 for i in zn]))


def test_band_gap_chain_through_mock_vasp(mock_code, potcar_family):
    structure = _structure_of(RECORDINGS / 'vasprun_lepsilon.xml.gz')
    outputs, node = _run_step(mock_code, 'band_gap', structure, ['band_gap'])
    assert node.is_finished_ok, node.exit_message
    incar = _incar_of(node)
    assert incar['IBRION'] == '-1' and incar['NSW'] == '0'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        gap = Vasprun(
            str(RECORDINGS / 'vasprun_lepsilon.xml.gz'), parse_potcar_file=False
        ).eigenvalue_band_properties[0]
    assert outputs['band_gap']['band_gap_eV'] == pytest.approx(gap, abs=1e-6)
    assert outputs['band_gap']['band_gap_eV'] == pytest.approx(2.2305, abs=1e-4)


MD_OVERRIDES = {'md': {'n_steps': 2, 'segment_steps': 1, 'frame_interval': 1}}


def test_md_segments_continue_from_contcar_and_are_stitched(mock_code, potcar_family, tmp_path):
    """Two MD segments (NSW=1 each): the second starts from the first's CONTCAR positions *and*
    velocities (a velocity block in its POSCAR), and the XDATCARs, read by the project's streaming
    reader, are stitched into one trajectory node. No real AIMD recording with its vasprun.xml, OUTCAR
    and CONTCAR exists: the closest real complete one (a static LEPSILON run, 1 XDATCAR frame, a CONTCAR
    with a zero velocity block) stands in for each segment's outputs."""
    from aiida_superionic.io.xdatcar import read_xdatcar

    structure = _structure_of(RECORDINGS / 'vasprun_lepsilon.xml.gz')
    outputs, node = _run_step(
        mock_code,
        'md',
        structure,
        ['md_segment_1', 'md_segment_2'],
        overrides=MD_OVERRIDES,
        temperature_K=900.0,
    )
    assert node.is_finished_ok, node.exit_message
    calcs = _calcs(node)
    assert len(calcs) == 2
    incar = _incar_of(node)
    assert incar['IBRION'] == '0' and incar['MDALGO'] == '2' and incar['ISIF'] == '2'
    assert float(incar['POTIM']) == 1.5 and float(incar['TEBEG']) == 900.0 == float(incar['TEEND'])
    assert incar['NSW'] == '1' and incar['NBLOCK'] == '1' and incar['ISYM'] == '0'
    kpoints = calcs[0].base.repository.get_object_content('KPOINTS').split()
    assert kpoints[-6:-3] == ['1', '1', '1']  # Γ only
    assert 'velocities' not in calcs[0].inputs and 'velocities' in calcs[1].inputs
    retrieved = calcs[0].outputs.retrieved.base.repository.list_object_names()
    assert 'XDATCAR' in retrieved and 'CONTCAR' in retrieved and 'vasprun.xml' not in retrieved
    assert calcs[0].outputs.misc['run_status']['finished']  # from the OUTCAR, no vasprun.xml parsed
    poscar_2 = calcs[1].base.repository.get_object_content('POSCAR')
    assert 'Cartesian' in poscar_2  # the velocity block written after the positions
    from pymatgen.io.vasp import Poscar

    from aiida_superionic.engines.vasp.outputs import read_poscar_velocities

    contcar = RECORDINGS / 'CONTCAR_lepsilon'
    _, vel_c = read_poscar_velocities(contcar)
    written = tmp_path / 'POSCAR_segment_2'
    written.write_text(poscar_2)
    _, vel_2 = read_poscar_velocities(written)
    np.testing.assert_array_equal(vel_2, vel_c)  # the CONTCAR's velocities (all zero in this recording)
    frac_2 = Poscar.from_file(str(written)).structure.frac_coords  # pymatgen reads the POSCAR we wrote
    np.testing.assert_allclose(frac_2, Poscar.from_file(str(contcar)).structure.frac_coords, atol=1e-8)

    traj = outputs['trajectory']
    ref = read_xdatcar(RECORDINGS / 'XDATCAR_lepsilon')
    assert traj.n_frames == 2 * ref.n_frames == 2
    np.testing.assert_allclose(traj.get_positions()[0], ref.positions[0], atol=1e-4)
    np.testing.assert_array_equal(traj.get_array('steps'), [1, 2])
    assert traj.timestep_fs == pytest.approx(1.5) and traj.temperature_K == 900.0
    assert traj.origin['segments'] == 2
    assert traj.creator.process_type.endswith('stitch_trajectories')


def test_crashed_md_segment_is_a_clear_exit_code(mock_code, potcar_family):
    """The real killed run (truncated vasprun.xml, empty CONTCAR, no XDATCAR) as an MD segment."""
    structure = _structure_of(RECORDINGS / 'exit_codes_converged' / 'vasprun.xml.gz')
    _, node = _run_step(
        mock_code, 'md', structure, ['md_crashed'], overrides=MD_OVERRIDES, temperature_K=600.0
    )
    assert node.exit_status == 403
    assert 'XDATCAR was not retrieved' in node.exit_message


def test_crashed_relax_is_a_clear_exit_code(mock_code, potcar_family):
    """The real killed run as a relaxation: aiida-vasp cannot continue it (no CONTCAR), the step fails
    with one line naming the job and aiida-vasp's reason."""
    structure = _structure_of(RECORDINGS / 'exit_codes_converged' / 'vasprun.xml.gz')
    _, node = _run(RelaxWorkChain, ['relax_crashed'], structure=structure, **_common(mock_code, 'moderate'))
    assert node.exit_status == RelaxWorkChain.exit_codes.ERROR_ENGINE_FAILED.status
    assert 'the VASP relax job failed: SuperionicVaspWorkChain<' in node.exit_message


def test_md_segment_killed_at_walltime_is_continued(mock_code, potcar_family):
    """A segment whose job was killed (aiida-vasp reports it unfinished: the real truncated vasprun.xml of
    a killed run) is not restarted from scratch: its frames are kept and the next segment continues from
    its CONTCAR, and the two are stitched."""
    structure = _structure_of(RECORDINGS / 'vasprun_lepsilon.xml.gz')
    outputs, node = _run_step(
        mock_code,
        'md',
        structure,
        ['md_killed_1', 'md_killed_2'],
        overrides=MD_OVERRIDES,
        temperature_K=1200.0,
    )
    assert node.is_finished_ok, node.exit_message
    calcs = _calcs(node)
    assert len(calcs) == 2
    assert not calcs[0].is_finished_ok and calcs[1].is_finished_ok
    assert 'velocities' in calcs[1].inputs
    assert outputs['trajectory'].n_frames == 2
    np.testing.assert_array_equal(outputs['trajectory'].get_array('steps'), [1, 2])


def test_elastic_outputs_without_moduli_are_one_clear_exit_code(mock_code, potcar_family):
    """A job that finished but whose OUTCAR has no elastic moduli (the real LEPSILON run's) -> exit 402."""
    structure = _structure_of(RECORDINGS / 'vasprun_lepsilon.xml.gz')
    _, node = _run_step(mock_code, 'elastic', structure, ['elastic_no_moduli'])
    assert node.exit_status == 402
    assert 'no "TOTAL ELASTIC MODULI" table' in node.exit_message


def test_md_last_segment_runs_only_the_remaining_steps(mock_code, potcar_family):
    """n_steps = 3 in segments of 2: each stand-in segment leaves 1 frame (1 step at NBLOCK = 1), so three
    segments run, with NSW = 2, 2 and then only the 1 remaining step."""
    structure = _structure_of(RECORDINGS / 'vasprun_lepsilon.xml.gz')
    overrides = {'md': {'n_steps': 3, 'segment_steps': 2, 'frame_interval': 1}}
    cases = ['md_remaining_1', 'md_remaining_2', 'md_remaining_3']
    outputs, node = _run_step(mock_code, 'md', structure, cases, overrides=overrides, temperature_K=700.0)
    assert node.is_finished_ok, node.exit_message
    incars = [c.base.repository.get_object_content('INCAR').splitlines() for c in _calcs(node)]
    assert [next(line for line in incar if line.startswith('NSW')) for incar in incars] == [
        'NSW = 2',
        'NSW = 2',
        'NSW = 1',
    ]
    np.testing.assert_array_equal(outputs['trajectory'].get_array('steps'), [1, 2, 3])
