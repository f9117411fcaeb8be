"""Task ``md_batch`` through AiiDA: the ``superionic.mlip`` CalcJob + parser, and ``superionic.md`` with
``md.batch``, on the real CHGNet 0.3.0 potential (CPU) and the test profile's localhost code.

The reference of every batched run is the one-job-per-run path (task ``md`` through ``superionic.mlip.base``)
on the same cell, temperature and seed: its frames must come back unchanged, each run as its own node. A
batch over several queue slots (``segment_steps``, a SIGKILLed job) must give the numbers of the
uninterrupted batch.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_superionic.engines.contract import get_engine
from aiida_superionic.engines.mlip.calculation import MlipCalculation
from aiida_superionic.engines.mlip.workchain import MlipBaseWorkChain
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


def _runs():
    return {
        'stoich_T600': (orm.StructureData(ase=_lif8()), 600.0, 7),
        'vacancy_T900': (orm.StructureData(ase=_lif7_vacancy()), 900.0, 8),
    }


@pytest.fixture(scope='module')
def whole_batch(mlip_code):
    """The two-run batch of ``MD`` as one uninterrupted ``superionic.mlip`` job: its outputs."""
    engine = get_engine('mlip')
    builder = engine.get_md_batch_builder(
        _runs(), mlip_code, engine.protocol('fast', {'md': MD}), calcjob=True
    )
    outputs, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    return outputs


def test_md_batch_calcjob_gives_each_run_the_frames_of_its_own_md_job(mlip_code):
    """One ``md_batch`` job of two runs (8 and 7 atoms, 600 and 900 K, own seeds): each run is its own
    trajectory, results and restart node, and its frames equal those of the same run as its own md job."""
    engine = get_engine('mlip')
    settings = engine.protocol('fast', {'md': MD})
    runs = {
        'stoich_T600': (orm.StructureData(ase=_lif8()), 600.0, 7),
        'vacancy_T900': (orm.StructureData(ase=_lif7_vacancy()), 900.0, 8),
    }
    builder = engine.get_md_batch_builder(runs, mlip_code, settings, calcjob=True)
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


def test_md_batch_calcjob_stops_and_continues_from_the_batch_checkpoint(mlip_code, whole_batch):
    """A batch stopped by ``segment_steps`` ends with ERROR_WALLTIME and the batch checkpoint as ``restart``;
    a job given that ``restart`` continues it, and each run's two segments together are the frames of the
    uninterrupted batch."""
    engine = get_engine('mlip')
    settings = engine.protocol('fast', {'md': MD})
    runs = _runs()
    whole = whole_batch
    first = engine.get_md_batch_builder(runs, mlip_code, settings, calcjob=True)
    params = first.parameters.get_dict()
    params['settings']['segment_steps'] = 6
    first.parameters = orm.Dict(params)
    seg1, node1 = run_get_node(first)
    assert node1.exit_status == MlipCalculation.exit_codes.ERROR_WALLTIME.status
    assert node1.outputs.results['restart_step'] == 6
    second = engine.get_md_batch_builder(runs, mlip_code, settings, calcjob=True)
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
        {'a': (orm.StructureData(ase=_lif8()), 600.0, 1)}, mlip_code, settings, calcjob=True
    )
    builder.replicas = {'b': orm.StructureData(ase=_lif8())}
    with pytest.raises(ValueError, match='must be the replicas inputs'):
        run_get_node(builder)
    builder.replicas = {'a': orm.StructureData(ase=_lif8())}
    builder.structure = orm.StructureData(ase=_lif8())
    with pytest.raises(ValueError, match='not structure'):
        run_get_node(builder)


def test_md_batch_setting_must_be_a_boolean(mlip_code):
    """The one refusal left of ``md.batch``: it is true or false (segment_steps / walltime_s go with it)."""
    structure = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=A_LIF))
    builder = MDWorkChain.get_builder_from_protocol(
        mlip_code, structure, 'fast', {'md': {'batch': 'yes'}}, mobile='Li'
    )
    with pytest.raises(ValueError, match=r'md\.batch must be true or false'):
        run_get_node(builder)
    engine = get_engine('mlip')
    settings = engine.protocol('fast', {'md': {**MD, 'segment_steps': 4, 'walltime_s': 600, 'batch': True}})
    builder = engine.get_md_batch_builder(
        {'a': (orm.StructureData(ase=_lif8()), 600.0, 1)}, mlip_code, settings
    )
    assert builder.process_class is MlipBaseWorkChain
    task = builder.mlip.parameters['settings']
    assert (task['segment_steps'], task['walltime_s']) == (4, 600)


def _kill_once_code(mlip_code, tmp_path) -> orm.InstalledCode:
    """The runner behind a wrapper that SIGKILLs it as soon as it has written its first batch checkpoint,
    in a job that starts fresh (no restart.npz given); a continuation job runs the runner untouched."""
    script = tmp_path / 'kill-once.sh'
    runner = mlip_code.filepath_executable
    script.write_text(
        '#!/bin/bash\n'
        f'if [ -e restart.npz ]; then exec {runner}; fi\n'
        f'{runner} &\n'
        'pid=$!\n'
        'while [ ! -e restart.npz ]; do\n'
        '  kill -0 $pid 2>/dev/null || { wait $pid; exit $?; }\n'
        '  sleep 0.01\n'
        'done\n'
        'kill -9 $pid\n'
        'wait $pid\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return orm.InstalledCode(
        label=f'kill-once-{os.getpid()}-{tmp_path.name}',
        computer=mlip_code.computer,
        filepath_executable=str(script),
        default_calc_job_plugin='superionic.mlip',
        prepend_text=mlip_code.prepend_text,
    ).store()


def test_killed_batch_is_continued_from_its_batch_checkpoint(mlip_code, whole_batch, tmp_path):
    """``superionic.mlip.base`` on a batch whose first job is SIGKILLed after its first batch checkpoint
    (step 4: frames at 0, 2, 4): the job has no results (exit 400), the chain continues it from that checkpoint without using
    up a failure, and each run's stitched trajectory is the uninterrupted batch's, number for number."""
    engine = get_engine('mlip')
    settings = engine.protocol('fast', {'md': MD})
    builder = engine.get_md_batch_builder(_runs(), _kill_once_code(mlip_code, tmp_path), settings)
    builder.max_iterations = orm.Int(1)  # the continuation must not count as a failure
    outputs, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    jobs = [c for c in node.called if isinstance(c, orm.CalcJobNode)]
    assert [j.exit_status for j in jobs] == [MlipCalculation.exit_codes.ERROR_MD_INCOMPLETE.status, 0]
    assert jobs[0].outputs.results['status'] == 'killed'
    restart_step = jobs[0].outputs.results['restart_step']
    assert restart_step == 4 and jobs[1].inputs.restart.uuid == jobs[0].outputs.restart.uuid
    for name in _runs():
        got, expected = outputs['replicas'][name]['trajectory'], whole_batch['replicas'][name]['trajectory']
        assert got.creator.process_label == 'stitch_trajectories'
        np.testing.assert_array_equal(got.get_array('steps'), expected.get_array('steps'))
        np.testing.assert_array_equal(got.get_positions(), expected.get_positions())
        np.testing.assert_array_equal(got.get_velocities(), expected.get_velocities())
        assert outputs['replicas'][name]['results']['last_step'] == MD['n_steps']


_CHAIN_MD = {**MD, 'n_steps': 30, 'min_atoms': 8, 'vacancy_fraction': 0.02}  # 16 frames: enough to fit D


@pytest.fixture(scope='module')
def md_chains(mlip_code):
    """``superionic.md`` on LiF (stoichiometric 8 atoms + one Li vacancy, 600 and 900 K), once per variant
    of the md overrides: (outputs, node), computed on first use."""
    structure = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=A_LIF))
    done = {}

    def run(variant: str, **md):
        if variant not in done:
            builder = MDWorkChain.get_builder_from_protocol(
                mlip_code,
                structure,
                'fast',
                {'md': {**_CHAIN_MD, **md}},
                mobile='Li',
                temperatures=[600, 900],
            )
            outputs, node = run_get_node(builder)
            assert node.is_finished_ok, node.exit_message
            done[variant] = outputs, node
        return done[variant]

    return run


def _jobs(node):
    return sorted(
        (n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime
    )


def test_md_workchain_batch_on_and_off_give_the_same_runs_and_records(md_chains):
    """With ``md.batch`` one ``md_batch`` job runs all four runs, and each trajectory and record equals the
    one-job-per-run chain's."""
    (off, node_off), (on, node_on) = md_chains('off', batch=False), md_chains('on', batch=True)
    assert sorted(j.inputs.parameters['task'] for j in _jobs(node_on)) == ['md_batch']
    assert sorted(j.inputs.parameters['task'] for j in _jobs(node_off)) == ['md'] * 4
    keys = sorted(off['trajectories'])
    assert keys == sorted(on['trajectories']) and len(keys) == 4
    assert sorted(off['records']) == sorted(on['records']) == keys
    for key in keys:
        assert on['trajectories'][key].uuid != off['trajectories'][key].uuid
        _assert_same_frames(on['trajectories'][key], off['trajectories'][key])
        rec_on, rec_off = on['records'][key].get_dict(), off['records'][key].get_dict()
        assert rec_on.keys() == rec_off.keys()
        _assert_close(rec_on['values'], rec_off['values'])


@pytest.mark.slow  # three chains of four runs each (one job per run, batched, batched in 3 slots)
def test_md_workchain_batch_over_several_segments_equals_the_uninterrupted_batch(md_chains):
    """``md.batch`` with ``md.segment_steps`` 12: the batch runs as three jobs (12 + 12 + 6 steps), each
    continued from the previous job's batch checkpoint; every run's segments are stitched into its own
    trajectory, equal frame for frame to the uninterrupted batch (and to the one-job-per-run chain), and
    its record has the same values."""
    on, _ = md_chains('on', batch=True)
    off, _ = md_chains('off', batch=False)
    seg, node = md_chains('segments', batch=True, segment_steps=12)
    jobs = _jobs(node)
    assert [j.inputs.parameters['task'] for j in jobs] == ['md_batch'] * 3
    assert [j.exit_status for j in jobs] == [MlipCalculation.exit_codes.ERROR_WALLTIME.status] * 2 + [0]
    assert [j.outputs.results['restart_step'] for j in jobs] == [12, 24, 30]
    assert jobs[1].inputs.restart.uuid == jobs[0].outputs.restart.uuid
    keys = sorted(on['trajectories'])
    assert sorted(seg['trajectories']) == sorted(seg['records']) == keys
    for key in keys:
        got, expected = seg['trajectories'][key], on['trajectories'][key]
        assert got.creator.process_label == 'stitch_trajectories' and got.uuid != expected.uuid
        np.testing.assert_array_equal(got.get_array('steps'), expected.get_array('steps'))
        np.testing.assert_array_equal(got.get_positions(), expected.get_positions())
        np.testing.assert_array_equal(got.get_velocities(), expected.get_velocities())
        _assert_same_frames(got, off['trajectories'][key])
        values = seg['records'][key].get_dict()['values']
        assert values == on['records'][key].get_dict()['values']
        _assert_close(values, off['records'][key].get_dict()['values'])
