"""The MLIP engine through AiiDA: CalcJob + parser + restart work chain + the material work chain,
on the real CHGNet 0.3.0 potential (CPU), in-process on a temporary profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_superionic.engines.contract import get_engine
from aiida_superionic.engines.mlip.calculation import MlipCalculation
from aiida_superionic.workflows.material import MaterialWorkChain
from tests.conftest import lif_md_builder

LI3N = Path(__file__).parents[1] / 'data' / 'structures' / 'Li3N.cif'


def _lif(a=4.2):
    return orm.StructureData(ase=bulk('LiF', 'rocksalt', a=a))


def test_relax_through_the_restart_workchain(mlip_code):
    engine = get_engine('mlip')
    builder = engine.get_builder('relax', _lif(), mlip_code, engine.protocol('fast'))
    outputs, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    relaxed = outputs['structure'].get_pymatgen_structure()
    a = relaxed.lattice.abc[0] * np.sqrt(2)  # primitive fcc vector -> cubic lattice constant
    assert a == pytest.approx(4.03, rel=0.03)  # experiment 4.03 Å
    calc = node.called[0]
    assert isinstance(calc, orm.CalcJobNode) and calc.process_class is MlipCalculation
    assert outputs['results']['converged'] is True


def test_vacancy_node_keeps_every_site_class(mlip_code):
    """The vacancy step through CalcJob + parser: the output node holds every inequivalent Li site of
    Li3N (1b and 2c of P6/mmm, pymatgen's classes of the same cell) and E_vac is the lowest of them."""
    from pymatgen.core import Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    pmg = Structure.from_file(LI3N)
    engine = get_engine('mlip')
    settings = engine.protocol('fast', {'vacancy': {'max_steps': 40}})
    builder = engine.get_builder('vacancy', orm.StructureData(pymatgen=pmg), mlip_code, settings, mobile='Li')
    outputs, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    v = outputs['vacancy'].get_dict()
    sym = SpacegroupAnalyzer(pmg, symprec=0.01).get_symmetrized_structure()
    li_classes = [idx for idx in sym.equivalent_indices if pmg[idx[0]].specie.symbol == 'Li']
    assert [site['members'] for site in v['sites']] == li_classes
    assert [site['wyckoff'] for site in v['sites']] == ['1b', '2c']
    assert v['E_vac_eV'] == min(site['E_vac_eV'] for site in v['sites'])
    assert v['mu_source'] == 'computed' and v['reference']['structure'] == 'bcc'
    assert all(site['converged'] for site in v['sites']) and v['converged'] is True


def test_md_walltime_segments_are_continued_and_stitched(mlip_code, lif_md_reference):
    """A walltime-limited MD run continues from its checkpoints; the stitched trajectory equals an
    uninterrupted run of the same seed (conftest ``lif_md_reference``), frame for frame."""
    # segments of 25 steps: each stops like a wall-time stop (a checkpoint at that step, status walltime)
    interrupted = lif_md_builder(mlip_code)
    params = interrupted.mlip.parameters.get_dict()
    params['settings']['segment_steps'] = 25
    interrupted.mlip.parameters = orm.Dict(params)
    interrupted.max_iterations = orm.Int(20)
    outputs, node = run_get_node(interrupted)
    assert node.is_finished_ok, node.exit_message
    calcs = [c for c in node.called if isinstance(c, orm.CalcJobNode)]
    assert len(calcs) == 4  # 25 + 25 + 25 + 5 steps
    assert [c.exit_status for c in calcs[:-1]] == [401] * (len(calcs) - 1)
    stitched = outputs['trajectory']
    expected = lif_md_reference
    np.testing.assert_array_equal(stitched.get_array('steps'), np.arange(0, 81, 4))
    np.testing.assert_allclose(stitched.get_positions(), expected.get_positions(), atol=1e-5)
    np.testing.assert_allclose(stitched.get_velocities(), expected.get_velocities(), atol=1e-6)
    assert stitched.creator.process_label == 'stitch_trajectories'


def test_phonon_gamma_of_a_conventional_cell_is_that_of_its_primitive_cell(mlip_code):
    """The Γ step through AiiDA: a conventional NaCl cube (8 atoms) is worked on as its 2-atom primitive
    cell, and the phonon output says so."""
    from aiida_superionic.workflows.steps import PhononGammaWorkChain

    a = 5.64
    outputs, node = run_get_node(
        PhononGammaWorkChain,
        structure=orm.StructureData(ase=bulk('NaCl', 'rocksalt', a=a, cubic=True)),
        code=mlip_code,
        protocol=orm.Str('fast'),
    )
    assert node.is_finished_ok, node.exit_message
    phonon = outputs['phonon'].get_dict()
    assert phonon['n_atoms_input'] == 8 and phonon['n_atoms_primitive'] == 2
    assert phonon['spacegroup'] == 'Fm-3m (225)' and sorted(phonon['primitive_symbols']) == ['Cl', 'Na']
    assert abs(np.linalg.det(phonon['primitive_cell_A'])) == pytest.approx(a**3 / 4, rel=1e-9)
    assert len(phonon['frequencies_meV']) == 6  # 3 x 2 atoms: Γ of the primitive cell, nothing folded in
    n = phonon['n_atoms_supercell']
    assert n == 2 * round(abs(np.linalg.det(phonon['supercell_matrix'])))
    calc = next(c for c in node.called_descendants if isinstance(c, orm.CalcJobNode))
    assert calc.outputs.force_constants.get_array('force_constants').shape == (n, n, 3, 3)


@pytest.mark.slow  # the whole Li3N chain on the real potential (shared: conftest li3n_fast)
def test_material_workchain_fast_protocol_li3n(li3n_fast):
    """The whole chain on the real potential: relax -> elastic, Γ phonons, vacancy -> MD at two
    temperatures, stoichiometric and with Li vacancies -> descriptor records and Arrhenius fits. The run
    is the session's shared one (conftest ``li3n_fast``: the fast protocol from the builder, unchanged),
    which the study tests use too."""
    outputs, node, structure = li3n_fast.outputs, li3n_fast.node, li3n_fast.structure
    assert node.is_finished_ok, node.exit_message
    assert node.process_class is MaterialWorkChain and node.inputs.protocol.value == 'fast'
    assert node.inputs.structure.uuid == structure.uuid and node.inputs.label.value == 'Li3N'
    # the settings resolved before submission travel unchanged to every step: no step re-reads the YAML
    steps = [
        n
        for n in node.called_descendants
        if isinstance(n, orm.WorkChainNode) and 'settings' in n.base.links.get_incoming().all_link_labels()
    ]
    assert {n.process_label for n in steps} >= {'RelaxWorkChain', 'ElasticWorkChain', 'MDWorkChain'}
    assert {n.inputs.settings.uuid for n in steps} == {node.inputs.settings.uuid}
    # the docs' query recipe: every record made by engine X from structure Y
    import runpy

    recipes = runpy.run_path(str(Path(__file__).parents[2] / 'docs' / 'examples' / 'queries.py'))
    by_engine = recipes['records_by_engine_from_structure']
    assert {r.uuid for r in by_engine('mlip', structure.uuid)} == {
        r.uuid for r in outputs['records'].values()
    }
    assert by_engine('vasp', structure.uuid) == []
    records = outputs['records']
    assert sorted(records) == [
        'non_stoichiometric_T1500',
        'non_stoichiometric_T900',
        'stoichiometric_T1500',
        'stoichiometric_T900',
    ]
    for key, record in records.items():
        values = record['values']
        assert record['material'] == 'Li3N' and record['engine'] == 'mlip'
        assert record['stoichiometric'] == key.startswith('stoich')
        assert values['B'] is not None and values['B'] > 0  # elastic step
        assert values['E_vac'] is not None and values['E_vac'] > 0  # vacancy step
        assert values['Gamma'] is not None  # phonon step
        assert values['E_g'] is None and values['epsilon'] is None  # not available from an ML potential
        assert values['SO'] == 24 and values['Sym'] == 'hexagonal'
        # α_i of Li+, Tessman, Kahn & Shockley, Phys. Rev. 92, 890 (1953): "Li+ 0.03" (Å^3)
        assert values['alpha_i'] == 0.03 and 'Tessman' in record['references']['alpha_i']['citation']
        assert values['C_v_all'] == pytest.approx(3.0, abs=0.2)  # near the classical limit at 900-1500 K
    # relaxed lattice within a few % of experiment (a = 3.648, c = 3.875 Å)
    a, _, c = outputs['relaxed_structure'].get_pymatgen_structure().lattice.abc
    assert a == pytest.approx(3.648, rel=0.04) and c == pytest.approx(3.875, rel=0.04)
    # Li moves further at 1500 K than at 900 K, in both cells: the mean squared displacement of Li at the end
    # of the fit window (vibrations alone scale it with T). Not D itself: in a sub-picosecond run of a 12-atom cell, D is
    # often not resolved from zero, and which run resolves it changes with the last bits of the forces
    # (another CPU's kernels), though each run is seeded and reproducible on one machine
    diffusion = {k: records[k].creator.inputs['diffusion'] for k in records}
    for cell in ('stoichiometric', 'non_stoichiometric'):
        hot, cold = diffusion[f'{cell}_T1500'], diffusion[f'{cell}_T900']
        assert hot['mobile_species'] == cold['mobile_species'] == 'Li'
        assert hot['msd_at_window_end_A2'] > cold['msd_at_window_end_A2'] > 0
    # each record's D: resolved (D > 2 sigma, with its error) or None with its upper bound, never negative
    for key, record in records.items():
        raw = diffusion[key]
        if record['D_resolved']:
            assert record['values']['D'] == pytest.approx(raw['D_cm2_s']) and record['values']['D'] > 0
            assert raw['D_cm2_s'] > 2 * raw['D_stderr_cm2_s'] > 0
        else:
            assert record['values']['D'] is None
            # the bound is max(D, 0) + 2 sigma (docs/descriptors.rst), equal to 2 sigma to rounding when D <= 0
            bound = max(raw['D_cm2_s'], 0.0) + 2 * raw['D_stderr_cm2_s']
            assert raw['D_stderr_cm2_s'] > 0
            assert record['D_upper_bound_cm2_s'] == pytest.approx(bound, rel=1e-9)
    phonon = outputs['phonon']
    optical = np.delete(
        np.array(phonon['frequencies_meV']), np.argsort(np.abs(phonon['frequencies_meV']))[:3]
    )
    assert phonon['gamma_mode_meV'] == pytest.approx(optical.min())
    dft = records['stoichiometric_T900'].creator.inputs.dft
    assert 'band_gap' in dft['not_available']
    # an Arrhenius fit for each cell whose D is resolved at both temperatures, none for the others
    resolved = {
        cell: sum(records[f'{cell}_T{t}']['D_resolved'] for t in (900, 1500))
        for cell in ('stoichiometric', 'non_stoichiometric')
    }
    assert set(outputs.get('arrhenius', {})) == {cell for cell, n in resolved.items() if n == 2}


def test_unstable_md_is_restarted_with_a_smaller_time_step(mlip_code):
    engine = get_engine('mlip')
    cell = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.08, cubic=True))
    md = {'n_steps': 30, 'frame_interval': 5, 'timestep_fs': 24.0}  # far too long a step for Li
    outputs, node = run_get_node(
        engine.get_builder(
            'md', cell, mlip_code, engine.protocol('fast', {'md': md}), temperature_K=800, seed=3
        )
    )
    assert node.is_finished_ok, node.exit_message
    calcs = [c for c in node.called if isinstance(c, orm.CalcJobNode)]
    assert calcs[0].exit_status == MlipCalculation.exit_codes.ERROR_MD_UNSTABLE.status
    steps = [c.inputs.parameters['settings']['timestep_fs'] for c in calcs]
    assert steps == [24.0 / 2**i for i in range(len(steps))]  # halved at every blow-up
    final = calcs[-1].inputs.parameters['settings']
    assert final['n_steps'] * final['timestep_fs'] == 30 * 24.0  # the same simulated time
    assert outputs['trajectory'].timestep_fs == final['timestep_fs'] * final['frame_interval']


def test_unconverged_relaxation_continues_from_its_last_structure(mlip_code):
    engine = get_engine('mlip')
    settings = engine.protocol('fast', {'relax': {'max_steps': 6, 'fmax': 0.05, 'smax_GPa': 0.2}})
    builder = engine.get_builder('relax', _lif(a=4.3), mlip_code, settings)
    builder.max_iterations = orm.Int(15)
    outputs, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    calcs = [c for c in node.called if isinstance(c, orm.CalcJobNode)]
    assert len(calcs) >= 2
    assert all(
        c.exit_status == MlipCalculation.exit_codes.ERROR_RELAX_NOT_CONVERGED.status for c in calcs[:-1]
    )
    assert calcs[1].inputs.structure.uuid == calcs[0].outputs.structure.uuid  # continued, not restarted
    a = outputs['structure'].get_pymatgen_structure().lattice.abc[0] * np.sqrt(2)
    assert a == pytest.approx(4.03, rel=0.03)
