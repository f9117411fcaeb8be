"""Task ``md_batch`` through AiiDA: the ``superionic.mlip`` CalcJob + parser, and ``superionic.md`` with
``md.batch``, on the real CHGNet 0.3.0 potential (CPU) and the test profile's localhost code.

The reference of every batched run is the one-job-per-run path (task ``md`` through ``superionic.mlip.base``)
on the same cell, temperature and seed: its frames must come back unchanged, each run as its own node.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_superionic.engines.contract import get_engine
from aiida_superionic.engines.mlip.calculation import MlipCalculation
from aiida_superionic.exceptions import InputError
from aiida_superionic.workflows.md import MDWorkChain

A_LIF = 4.07  # near CHGNet 0.3.0's relaxed LiF: 8-atom MD at 600-900 K stays well behaved
MD = {'n_steps': 12, 'frame_interval': 2, 'timestep_fs': 1.5, 'tdamp_fs': 15.0, 'checkpoint_every': 3}


def _lif8():
    return bulk('LiF', 'rocksalt', a=A_LIF, cubic=True)


def _lif7_vacancy():
    atoms = _lif8()
    del atoms[0]  # a Li: another atom count in the same batch
    return atoms


def _assert_same_frames(got, expected):
    np.testing.assert_array_equal(got.get_array('steps'), expected.get_array('steps'))
    np.testing.assert_allclose(got.get_positions(), expected.get_positions(), atol=1e-5)
    np.testing.assert_allclose(got.get_velocities(), expected.get_velocities(), atol=1e-6)
    assert got.timestep_fs == expected.timestep_fs and got.temperature_K == expected.temperature_K


def _assert_close(got, expected, where='values'):
    """Equal records: the same keys, numbers equal to the frames' rounding."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), where
        for key in expected:
            _assert_close(got[key], expected[key], f'{where}.{key}')
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            _assert_close(a, b, f'{where}[{i}]')
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-9, nan_ok=True), where
    else:
        assert got == expected, where


def test_md_batch_calcjob_gives_each_run_the_frames_of_its_own_md_job(mlip_code):
    """One ``md_batch`` job of two runs (8 and 7 atoms, 600 and 900 K, own seeds): each run is its own
    trajectory, results and restart node, and its frames equal those of the same run as its own md job."""
    engine = get_engine('mlip')
    settings = engine.protocol('fast', {'md': MD})
    runs = {
        'stoich_T600': (orm.StructureData(ase=_lif8()), 600.0, 7),
        'vacancy_T900': (orm.StructureData(ase=_lif7_vacancy()), 900.0, 8),
    }
    builder = engine.get_md_batch_builder(runs, mlip_code, settings)
    assert builder.process_class is MlipCalculation
    outputs, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert node.outputs.results['status'] == 'ok' and node.outputs.results['n_replicas'] == 2
    assert 'restart' in outputs  # the batch checkpoint
    replicas = outputs['replicas']
    assert sorted(replicas) == sorted(runs)
    trajectories = {name: replicas[name]['trajectory'] for name in runs}
    assert len({t.uuid for t in trajectories.values()}) == 2
    for name, (cell, temperature, seed) in runs.items():
        traj = trajectories[name]
        assert traj.creator.uuid == node.uuid
        assert traj.n_frames == MD['n_steps'] // MD['frame_interval'] + 1
        assert traj.temperature_K == temperature
        assert replicas[name]['results']['seed'] == seed
        assert replicas[name]['results']['restart_step'] == MD['n_steps']
        single = engine.get_builder('md', cell, mlip_code, settings, temperature_K=temperature, seed=seed)
        alone, single_node = run_get_node(single)
        assert single_node.is_finished_ok, single_node.exit_message
        _assert_same_frames(traj, alone['trajectory'])


def test_md_batch_calcjob_stops_and_continues_from_the_batch_checkpoint(mlip_code):
    """A batch stopped by ``segment_steps`` ends with ERROR_WALLTIME and the batch checkpoint as ``restart``;
    a job given that ``restart`` continues it, and each run's two segments together are the frames of the
    uninterrupted batch."""
    engine = get_engine('mlip')
    settings = engine.protocol('fast', {'md': MD})
    runs = {
        'stoich_T600': (orm.StructureData(ase=_lif8()), 600.0, 7),
        'vacancy_T900': (orm.StructureData(ase=_lif7_vacancy()), 900.0, 8),
    }
    whole, node = run_get_node(engine.get_md_batch_builder(runs, mlip_code, settings))
    assert node.is_finished_ok, node.exit_message
    first = engine.get_md_batch_builder(runs, mlip_code, settings)
    params = first.parameters.get_dict()
    params['settings']['segment_steps'] = 6
    first.parameters = orm.Dict(params)
    seg1, node1 = run_get_node(first)
    assert node1.exit_status == MlipCalculation.exit_codes.ERROR_WALLTIME.status
    assert node1.outputs.results['restart_step'] == 6
    second = engine.get_md_batch_builder(runs, mlip_code, settings)
    second.restart = seg1['restart']
    seg2, node2 = run_get_node(second)
    assert node2.is_finished_ok, node2.exit_message
    for name in runs:
        a, b = seg1['replicas'][name]['trajectory'], seg2['replicas'][name]['trajectory']
        assert b.base.attributes.get('restart_from_step') == 6
        keep = a.get_array('steps') <= 6
        steps = np.concatenate([a.get_array('steps')[keep], b.get_array('steps')])
        positions = np.concatenate([a.get_positions()[keep], b.get_positions()])
        expected = whole['replicas'][name]['trajectory']
        np.testing.assert_array_equal(steps, expected.get_array('steps'))
        np.testing.assert_allclose(positions, expected.get_positions(), atol=1e-5)


def test_md_batch_calcjob_refuses_inputs_that_do_not_match(mlip_code):
    """Replica names in the settings and the structures must match; ``structure`` is not for md_batch."""
    engine = get_engine('mlip')
    settings = engine.protocol('fast', {'md': MD})
    builder = engine.get_md_batch_builder(
        {'a': (orm.StructureData(ase=_lif8()), 600.0, 1)}, mlip_code, settings
    )
    builder.replicas = {'b': orm.StructureData(ase=_lif8())}
    with pytest.raises(ValueError, match='must be the replicas inputs'):
        run_get_node(builder)
    builder.replicas = {'a': orm.StructureData(ase=_lif8())}
    builder.structure = orm.StructureData(ase=_lif8())
    with pytest.raises(ValueError, match='not structure'):
        run_get_node(builder)


def test_md_batch_refuses_a_continued_batch(mlip_code):
    """A batch runs as one segment: segment_steps / walltime_s with md.batch are refused by the builder
    and, before anything runs, at the launch of superionic.md; md.batch must be a boolean."""
    engine = get_engine('mlip')
    settings = engine.protocol('fast', {'md': {**MD, 'segment_steps': 4, 'batch': True}})
    with pytest.raises(InputError, match=r'md\.segment_steps'):
        engine.get_md_batch_builder({'a': (orm.StructureData(ase=_lif8()), 600.0, 1)}, mlip_code, settings)
    structure = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=A_LIF))
    for md, message in (
        ({'batch': True, 'walltime_s': 600}, r'md\.batch runs .* md\.walltime_s is not supported'),
        ({'batch': 'yes'}, r'md\.batch must be true or false'),
    ):
        builder = MDWorkChain.get_builder_from_protocol(mlip_code, structure, 'fast', {'md': md}, mobile='Li')
        with pytest.raises(ValueError, match=message):
            run_get_node(builder)


def test_md_workchain_batch_on_and_off_give_the_same_runs_and_records(mlip_code):
    """``superionic.md`` on LiF (stoichiometric 8 atoms + one Li vacancy, 600 and 900 K): with ``md.batch``
    one ``md_batch`` job runs all four, and each trajectory and record equals the one-job-per-run chain's."""
    structure = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=A_LIF))
    md = {**MD, 'n_steps': 30, 'min_atoms': 8, 'vacancy_fraction': 0.02}  # 16 frames: enough to fit D
    results = {}
    for batch in (False, True):
        builder = MDWorkChain.get_builder_from_protocol(
            mlip_code, structure, 'fast', {'md': {**md, 'batch': batch}}, mobile='Li', temperatures=[600, 900]
        )
        outputs, node = run_get_node(builder)
        assert node.is_finished_ok, node.exit_message
        jobs = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
        tasks = sorted(j.inputs.parameters['task'] for j in jobs)
        results[batch] = outputs
        if batch:
            assert tasks == ['md_batch']
        else:
            assert tasks == ['md'] * 4
    off, on = results[False], results[True]
    keys = sorted(off['trajectories'])
    assert keys == sorted(on['trajectories']) and len(keys) == 4
    assert sorted(off['records']) == sorted(on['records']) == keys
    for key in keys:
        assert on['trajectories'][key].uuid != off['trajectories'][key].uuid
        _assert_same_frames(on['trajectories'][key], off['trajectories'][key])
        rec_on, rec_off = on['records'][key].get_dict(), off['records'][key].get_dict()
        assert rec_on.keys() == rec_off.keys()
        _assert_close(rec_on['values'], rec_off['values'])
