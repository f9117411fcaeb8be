"""Task ``md_batch`` of the MLIP runner (several MD runs, one batched CHGNet call per step) against task ``md``.

The reference of every batched trajectory is independent of the batch code: task ``md`` (ASE's
``NoseHooverChainNVT`` driving ``FastCHGNetCalculator``, one structure per model call) run here on the same
cell, temperature and seed, or the same batch run without interruption. Small LiF cells, few steps.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('chgnet')

import ase.io
from ase.build import bulk

from aiida_superionic.engines.mlip import runner
from aiida_superionic.engines.mlip.runner import main, read_md_output, stitch_segments
from tests.engines.runner_helpers import kill_at_first_checkpoint

A_LIF = 4.07  # close to CHGNet 0.3.0's relaxed LiF (fcc a), so that 8-atom MD at 600-900 K stays well behaved
COMMON = {'timestep_fs': 1.5, 'frame_interval': 2, 'tdamp_fs': 15.0, 'checkpoint_every': 3}
N_STEPS = 24  # frames every 2 steps (the first at step 0), a checkpoint every 3 frames: at 4, 10, 16, 22, 24


def lif8():
    return bulk('LiF', 'rocksalt', a=A_LIF, cubic=True)


def lif15_vacancy():
    """1x1x2 conventional LiF (16 atoms) with the first Li removed: another size, off-stoichiometric."""
    atoms = lif8().repeat((1, 1, 2))
    del atoms[0]
    return atoms


REPLICAS = [
    {'name': 'stoich_T600', 'cell': lif8, 'temperature_K': 600.0, 'seed': 7},
    {'name': 'vacancy_T900', 'cell': lif15_vacancy, 'temperature_K': 900.0, 'seed': 8},
]


def _write_config(workdir: Path, task: str, settings: dict, seed: int = 0) -> None:
    config = {'task': task, 'model': 'chgnet-0.3.0', 'device': 'cpu', 'seed': seed, 'settings': settings}
    (workdir / 'aiida.json').write_text(json.dumps(config))


def prepare_md(workdir: Path, atoms, settings: dict, seed: int) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    ase.io.write(workdir / 'structure.extxyz', atoms, format='extxyz')
    _write_config(workdir, 'md', settings, seed)
    return workdir


def prepare_batch(workdir: Path, replicas: list[dict], settings: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    specs = []
    for replica in replicas:
        filename = f'{replica["name"]}.extxyz'
        ase.io.write(workdir / filename, replica['cell'](), format='extxyz')
        specs.append(
            {
                'name': replica['name'],
                'structure': filename,
                'temperature_K': replica['temperature_K'],
                'seed': replica['seed'],
            }
        )
    _write_config(workdir, 'md_batch', {**settings, 'replicas': specs})
    return workdir


def run_dir(workdir: Path) -> dict:
    code = main(workdir)
    results = json.loads((workdir / 'results.json').read_text())
    assert code == runner.EXIT_CODES[results['status']], results
    return results


def single_run(workdir: Path, replica: dict, n_steps: int = N_STEPS, common: dict = COMMON) -> dict:
    settings = {**common, 'n_steps': n_steps, 'temperature_K': replica['temperature_K']}
    results = run_dir(prepare_md(workdir, replica['cell'](), settings, replica['seed']))
    assert results['status'] == 'ok', results['message']
    return results


def assert_same_frames(batched: dict, single: dict) -> None:
    np.testing.assert_array_equal(batched['steps'], single['steps'])
    np.testing.assert_allclose(batched['positions'], single['positions'], atol=1e-5, rtol=0)
    np.testing.assert_allclose(batched['velocities'], single['velocities'], atol=1e-6, rtol=0)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    """The two-replica batch run through without a stop (the reference of the restart tests)."""
    workdir = prepare_batch(tmp_path_factory.mktemp('batch_a'), REPLICAS, {**COMMON, 'n_steps': N_STEPS})
    results = run_dir(workdir)
    assert results['status'] == 'ok', results['message']
    return workdir, results


def test_batch_of_one_reproduces_task_md(tmp_path):
    replica = REPLICAS[0]
    single = single_run(tmp_path / 'single', replica)
    batch = run_dir(prepare_batch(tmp_path / 'batch', [replica], {**COMMON, 'n_steps': N_STEPS}))
    assert batch['status'] == 'ok' and batch['n_replicas'] == 1 and batch['last_step'] == N_STEPS
    folder = tmp_path / 'batch' / 'replicas' / replica['name']
    assert_same_frames(read_md_output(folder), read_md_output(tmp_path / 'single'))
    mine = json.loads((folder / 'results.json').read_text())
    assert mine == batch['replicas'][replica['name']]
    for key in ('n_frames', 'first_step', 'last_step', 'n_steps_done', 'first_frame_step'):
        assert mine[key] == single[key], key
    for key in ('T_mean_K', 'T_std_K', 'etotal_drift_eV_per_atom_ps'):
        assert mine[key] == pytest.approx(single[key], rel=1e-6, abs=1e-9), key
    # the per-replica checkpoint is task md's: same step, state and thermostat
    with np.load(folder / 'restart.npz') as a, np.load(tmp_path / 'single' / 'restart.npz') as b:
        assert set(a.files) == set(b.files) - {'rng_state'}
        assert int(a['step']) == int(b['step']) == N_STEPS
        for key in ('positions', 'momenta', 'nhc_eta', 'nhc_p_eta'):
            np.testing.assert_allclose(a[key], b[key], atol=1e-9, rtol=1e-9)


def test_two_replicas_of_different_size_and_temperature_each_match_their_single_run(tmp_path, uninterrupted):
    workdir, results = uninterrupted
    assert results['n_replicas'] == 2 and results['n_atoms_total'] == 8 + 15
    for replica in REPLICAS:
        single = single_run(tmp_path / replica['name'], replica)
        batched = read_md_output(workdir / 'replicas' / replica['name'])
        assert batched['meta']['n_atoms'] == len(replica['cell']())
        assert batched['meta']['temperature_K'] == replica['temperature_K']
        assert_same_frames(batched, read_md_output(tmp_path / replica['name']))
        mine = results['replicas'][replica['name']]
        assert mine['T_mean_K'] == pytest.approx(single['T_mean_K'], rel=1e-6)
        assert mine['last_step'] == single['last_step'] == N_STEPS
    # the replicas are different runs (different seeds, sizes, temperatures), not copies of one
    a, b = (read_md_output(workdir / 'replicas' / r['name']) for r in REPLICAS)
    assert a['positions'].shape[1] != b['positions'].shape[1]


def _continue_batch(workdir: Path, restart: Path, n_steps: int = N_STEPS, common: dict = COMMON) -> dict:
    prepare_batch(workdir, REPLICAS, {**common, 'n_steps': n_steps})
    shutil.copy(restart, workdir / 'restart.npz')
    results = run_dir(workdir)
    assert results['status'] == 'ok', results['message']
    return results


def _assert_stitched_equal(reference: Path, first: Path, second: Path, restart_step: int) -> None:
    for replica in REPLICAS:
        b = read_md_output(first / 'replicas' / replica['name'])
        c = read_md_output(second / 'replicas' / replica['name'])
        interval = COMMON['frame_interval']
        assert c['meta']['first_step'] == (restart_step // interval + 1) * interval  # the next frame step
        positions, velocities, steps = stitch_segments([b, c], [restart_step])
        a = read_md_output(reference / 'replicas' / replica['name'])
        np.testing.assert_array_equal(steps, a['steps'])
        # same dynamics, same batch: frame for frame the same numbers
        np.testing.assert_array_equal(positions, a['positions'])
        np.testing.assert_array_equal(velocities, a['velocities'])


def test_batch_killed_mid_run_resumes_exactly(tmp_path, uninterrupted):
    reference, _ = uninterrupted
    # B: the console script on the same batch, asked for many more steps (n_steps does not change the
    # dynamics), killed with SIGKILL as soon as it has written a batch checkpoint
    workdir_b = prepare_batch(tmp_path / 'B', REPLICAS, {**COMMON, 'n_steps': 100_000})
    kill_at_first_checkpoint(workdir_b)
    with np.load(workdir_b / 'restart.npz') as restart:
        restart_step = int(restart['step'])
        assert [int(restart[f'r{i}_step']) for i in range(2)] == [restart_step] * 2
    assert restart_step in (4, 10, 16, 22)  # a checkpoint step: frames 0, 2, 4 | 6, 8, 10 | ...

    # C: continue the whole batch from B's checkpoint in a fresh folder, as a CalcJob continuation does
    results_c = _continue_batch(tmp_path / 'C', workdir_b / 'restart.npz')
    assert results_c['first_step'] == restart_step and results_c['last_step'] == N_STEPS
    assert results_c['n_steps_done'] == N_STEPS - restart_step
    for name, result in results_c['replicas'].items():
        assert (result['first_step'], result['last_step']) == (restart_step, N_STEPS), name
        assert result['n_frames'] == (N_STEPS - restart_step) // COMMON['frame_interval'], name
    with np.load(tmp_path / 'C' / 'restart.npz') as restart:
        assert int(restart['step']) == N_STEPS
    _assert_stitched_equal(reference, workdir_b, tmp_path / 'C', restart_step)


def test_batch_segment_stop_and_restart_count_steps(tmp_path, uninterrupted):
    """segment_steps (the deterministic wall-time stop): B stops at step 9 (not even a frame step), status
    walltime, checkpoint at 9; C continues from 9 to the end, its first frame at step 10."""
    reference, _ = uninterrupted
    workdir_b = prepare_batch(tmp_path / 'B', REPLICAS, {**COMMON, 'n_steps': N_STEPS, 'segment_steps': 9})
    results_b = run_dir(workdir_b)
    assert results_b['status'] == 'walltime' and results_b['last_step'] == 9
    assert all(r['status'] == 'walltime' and r['last_step'] == 9 for r in results_b['replicas'].values())
    with np.load(workdir_b / 'restart.npz') as restart:
        assert int(restart['step']) == 9
    results_c = _continue_batch(tmp_path / 'C', workdir_b / 'restart.npz')
    assert (results_c['first_step'], results_c['last_step'], results_c['n_steps_done']) == (9, N_STEPS, 15)
    _assert_stitched_equal(reference, workdir_b, tmp_path / 'C', 9)


def test_batch_walltime_stop_and_restart_is_exact(tmp_path, uninterrupted):
    """walltime_s (the runner's wall-time guard, counted from its start; the model is already loaded here):
    0.5 s leaves room for a few steps of the batch, which stops as a whole at one step with its
    checkpoint; continued from it, each replica's frames are the uninterrupted batch's."""
    reference, _ = uninterrupted
    workdir_b = prepare_batch(tmp_path / 'B', REPLICAS, {**COMMON, 'n_steps': N_STEPS, 'walltime_s': 0.5})
    results_b = run_dir(workdir_b)
    assert (
        results_b['status'] == 'walltime'
        and 'walltime_s' in results_b['replicas'][REPLICAS[0]['name']]['message']
    )
    with np.load(workdir_b / 'restart.npz') as restart:
        restart_step = int(restart['step'])
    assert restart_step == results_b['last_step'] < N_STEPS
    results_c = _continue_batch(tmp_path / 'C', workdir_b / 'restart.npz')
    assert (results_c['first_step'], results_c['last_step']) == (restart_step, N_STEPS)
    _assert_stitched_equal(reference, workdir_b, tmp_path / 'C', restart_step)


def test_replica_checkpoint_continues_as_task_md(tmp_path, uninterrupted):
    """A replica's own restart.npz (task md's format) continues that run alone under task md."""
    reference, _ = uninterrupted
    replica = REPLICAS[1]
    workdir_b = prepare_batch(tmp_path / 'B', REPLICAS, {**COMMON, 'n_steps': 12})
    assert run_dir(workdir_b)['status'] == 'ok'
    settings = {**COMMON, 'n_steps': N_STEPS, 'temperature_K': replica['temperature_K']}
    workdir_c = prepare_md(tmp_path / 'C', replica['cell'](), settings, replica['seed'])
    shutil.copy(workdir_b / 'replicas' / replica['name'] / 'restart.npz', workdir_c / 'restart.npz')
    results_c = run_dir(workdir_c)
    assert (results_c['first_step'], results_c['last_step']) == (12, N_STEPS)
    b = read_md_output(workdir_b / 'replicas' / replica['name'])
    positions, velocities, steps = stitch_segments([b, read_md_output(workdir_c)], [12])
    a = read_md_output(reference / 'replicas' / replica['name'])
    assert_same_frames({'steps': steps, 'positions': positions, 'velocities': velocities}, a)


@pytest.mark.parametrize(
    ('change', 'words'),
    [
        ({'thermostat': 'berendsen'}, 'unknown thermostat'),
        ({'replicas': []}, 'non-empty list'),
        ({'replicas': [{'name': 'x', 'structure': 'missing.extxyz', 'temperature_K': 600}]}, 'not found'),
        ({'walltime': 3}, 'unknown settings'),
    ],
)
def test_bad_batch_settings_are_one_error(tmp_path, change, words):
    workdir = prepare_batch(tmp_path, REPLICAS[:1], {**COMMON, 'n_steps': 2})
    config = json.loads((workdir / 'aiida.json').read_text())
    config['settings'].update(change)
    (workdir / 'aiida.json').write_text(json.dumps(config))
    assert main(workdir) == 3
    results = json.loads((workdir / 'results.json').read_text())
    assert results['status'] == 'error' and words in results['message'], results['message']


def test_restart_of_another_batch_is_refused(tmp_path, uninterrupted):
    reference, _ = uninterrupted
    workdir = prepare_batch(tmp_path, REPLICAS[:1], {**COMMON, 'n_steps': 30})
    shutil.copy(reference / 'restart.npz', workdir / 'restart.npz')
    assert main(workdir) == 3
    results = json.loads((workdir / 'results.json').read_text())
    assert results['status'] == 'error' and 'replicas' in results['message']


def test_one_model_call_per_step_for_all_replicas(tmp_path, monkeypatch):
    """The batch is batched: every MD step is one predict_graph call holding every replica's graph."""
    from aiida_superionic.engines.mlip.models import _load_chgnet

    model = _load_chgnet('0.3.0', 'cpu')  # the cached model object the runner uses
    calls = []
    original = model.predict_graph

    def counting(graph, **kwargs):
        calls.append(len(graph) if isinstance(graph, list) else 1)
        return original(graph, **kwargs)

    monkeypatch.setattr(model, 'predict_graph', counting)
    results = run_dir(prepare_batch(tmp_path, REPLICAS, {**COMMON, 'n_steps': 5}))
    assert results['status'] == 'ok'
    assert calls == [2] * (5 + 1)  # the initial forces, then one call per step


def lif8_strained():
    """LiF with every atom displaced by ~0.3 Å: far more potential energy than kT at 1 K."""
    atoms = lif8()
    atoms.rattle(0.3, seed=3)
    return atoms


def test_a_replica_that_blows_up_stops_alone(tmp_path):
    """A replica whose T exceeds max_temperature_factor x its target (strained cell released at 1 K) stops
    as 'unstable' at that step; the other replica runs to the end, still equal to its own single run."""
    hot = {'name': 'strained_T1', 'cell': lif8_strained, 'temperature_K': 1.0, 'seed': 3}
    workdir = prepare_batch(tmp_path / 'batch', [REPLICAS[0], hot], {**COMMON, 'n_steps': 12})
    results = run_dir(workdir)  # exit code 2 checked against the status
    assert results['status'] == 'unstable' and 'strained_T1' in results['message']
    bad = results['replicas']['strained_T1']
    assert bad['status'] == 'unstable' and 1 <= bad['last_step'] < 12 and not bad['restart_written']
    good = results['replicas'][REPLICAS[0]['name']]
    assert good['last_step'] == 12 and good['n_frames'] == 7
    single_run(tmp_path / 'single', REPLICAS[0], n_steps=12)
    batched = read_md_output(workdir / 'replicas' / REPLICAS[0]['name'])
    assert_same_frames(batched, read_md_output(tmp_path / 'single'))
    # the blown-up replica wrote no frame after the step it blew up at
    assert read_md_output(workdir / 'replicas' / 'strained_T1')['steps'].max() < bad['last_step']


def test_a_blown_up_replica_stays_stopped_after_a_restart(tmp_path):
    """B stops at step 12 (segment_steps) after the strained replica blew up; C continues the batch: the
    blown-up replica takes no step and writes no frame, the other one goes on exactly."""
    hot = {'name': 'strained_T1', 'cell': lif8_strained, 'temperature_K': 1.0, 'seed': 3}
    replicas = [REPLICAS[0], hot]
    workdir_b = prepare_batch(tmp_path / 'B', replicas, {**COMMON, 'n_steps': N_STEPS, 'segment_steps': 12})
    results_b = run_dir(workdir_b)
    assert results_b['status'] == 'walltime' and results_b['last_step'] == 12
    blew_up_at = results_b['replicas']['strained_T1']['last_step']
    assert results_b['replicas']['strained_T1']['status'] == 'unstable' and blew_up_at < 12
    workdir_c = prepare_batch(tmp_path / 'C', replicas, {**COMMON, 'n_steps': N_STEPS})
    shutil.copy(workdir_b / 'restart.npz', workdir_c / 'restart.npz')
    results_c = run_dir(workdir_c)
    assert results_c['status'] == 'unstable' and results_c['last_step'] == N_STEPS
    bad = results_c['replicas']['strained_T1']
    assert (bad['status'], bad['n_steps_done'], bad['n_frames'], bad['last_step']) == (
        'unstable',
        0,
        0,
        blew_up_at,
    )
    good = results_c['replicas'][REPLICAS[0]['name']]
    assert (good['first_step'], good['last_step'], good['n_steps_done']) == (12, N_STEPS, N_STEPS - 12)
    single_run(tmp_path / 'single', REPLICAS[0])
    b, c = (read_md_output(w / 'replicas' / REPLICAS[0]['name']) for w in (workdir_b, workdir_c))
    positions, velocities, steps = stitch_segments([b, c], [12])
    stitched = {'steps': steps, 'positions': positions, 'velocities': velocities}
    assert_same_frames(stitched, read_md_output(tmp_path / 'single'))


# Langevin: ASE's Langevin (fixcm off, FixCom) in task md; in md_batch the two halves of its step around the
# batched force call, each replica with its own random stream. The references are task md's runs.
LANGEVIN = {**COMMON, 'thermostat': 'langevin', 'friction_per_fs': 0.02}


@pytest.fixture(scope='module')
def langevin_runs(tmp_path_factory):
    """Task md with Langevin for each replica (its seed), and the two-replica Langevin batch, uninterrupted."""
    root = tmp_path_factory.mktemp('langevin')
    singles = {r['name']: single_run(root / r['name'], r, common=LANGEVIN) for r in REPLICAS}
    batch = prepare_batch(root / 'batch', REPLICAS, {**LANGEVIN, 'n_steps': N_STEPS})
    results = run_dir(batch)
    assert results['status'] == 'ok', results['message']
    return root, singles, results


def _assert_langevin_replica_is_its_single_run(folder: Path, single_dir: Path, single: dict, mine: dict):
    assert_same_frames(read_md_output(folder), read_md_output(single_dir))
    assert read_md_output(folder)['meta']['thermostat'] == 'langevin'
    for key in ('n_frames', 'last_step', 'n_steps_done', 'etotal_drift_quantity'):
        assert mine[key] == single[key], key
    for key in ('T_mean_K', 'T_std_K', 'etotal_drift_eV_per_atom_ps'):
        assert mine[key] == pytest.approx(single[key], rel=1e-6, abs=1e-9), key
    # the replica's own checkpoint is task md's, random stream included: the same number of normals drawn
    with np.load(folder / 'restart.npz') as a, np.load(single_dir / 'restart.npz') as b:
        assert set(a.files) == set(b.files) and str(a['thermostat']) == 'langevin'
        assert json.loads(str(a['rng_state'])) == json.loads(str(b['rng_state']))
        np.testing.assert_allclose(a['momenta'], b['momenta'], atol=1e-9, rtol=1e-9)


def test_langevin_batch_of_one_reproduces_task_md(tmp_path, langevin_runs):
    root, singles, _ = langevin_runs
    replica = REPLICAS[0]
    batch = run_dir(prepare_batch(tmp_path, [replica], {**LANGEVIN, 'n_steps': N_STEPS}))
    assert batch['status'] == 'ok' and batch['n_replicas'] == 1
    folder = tmp_path / 'replicas' / replica['name']
    mine = batch['replicas'][replica['name']]
    _assert_langevin_replica_is_its_single_run(folder, root / replica['name'], singles[replica['name']], mine)


def test_langevin_replicas_of_a_batch_each_match_their_single_run(langevin_runs):
    root, singles, results = langevin_runs
    for replica in REPLICAS:
        name = replica['name']
        folder = root / 'batch' / 'replicas' / name
        _assert_langevin_replica_is_its_single_run(
            folder, root / name, singles[name], results['replicas'][name]
        )
    # Langevin is not Nose-Hoover: the same seeds give other trajectories under the other thermostat
    nhc = single_run(root / 'nhc', REPLICAS[0], n_steps=4)
    assert nhc['T_mean_K'] != pytest.approx(singles[REPLICAS[0]['name']]['T_mean_K'], rel=1e-6)


def test_langevin_batch_stopped_and_continued_equals_the_uninterrupted_batch(tmp_path, langevin_runs):
    """B stops at step 9 (segment_steps): the batch checkpoint holds each replica's random stream; C
    continues from it and the stitched frames are the uninterrupted batch's, number for number."""
    root, _, _ = langevin_runs
    workdir_b = prepare_batch(tmp_path / 'B', REPLICAS, {**LANGEVIN, 'n_steps': N_STEPS, 'segment_steps': 9})
    results_b = run_dir(workdir_b)
    assert results_b['status'] == 'walltime' and results_b['last_step'] == 9
    with np.load(workdir_b / 'restart.npz') as restart:
        assert str(restart['thermostat']) == 'langevin' and int(restart['step']) == 9
        assert restart['r0_rng_state'] != restart['r1_rng_state']  # one stream per replica
    results_c = _continue_batch(tmp_path / 'C', workdir_b / 'restart.npz', common=LANGEVIN)
    assert (results_c['first_step'], results_c['last_step']) == (9, N_STEPS)
    _assert_stitched_equal(root / 'batch', workdir_b, tmp_path / 'C', 9)
    with np.load(tmp_path / 'C' / 'restart.npz') as a, np.load(root / 'batch' / 'restart.npz') as b:
        for i in range(len(REPLICAS)):
            assert str(a[f'r{i}_rng_state']) == str(b[f'r{i}_rng_state'])


def test_a_checkpoint_of_the_other_thermostat_is_refused(tmp_path, uninterrupted):
    reference, _ = uninterrupted  # a Nose-Hoover batch checkpoint
    workdir = prepare_batch(tmp_path, REPLICAS, {**LANGEVIN, 'n_steps': 30})
    shutil.copy(reference / 'restart.npz', workdir / 'restart.npz')
    assert main(workdir) == 3
    results = json.loads((workdir / 'results.json').read_text())
    assert results['status'] == 'error' and 'thermostat' in results['message'], results['message']


def test_device_graphs_agree_with_chgnet_converter_graphs(tmp_path, monkeypatch):
    """graph: device (torch-built graphs, :mod:`.graphs`) against graph: cpu (CHGNet's own converter): the same
    two-replica batch over 20 steps, the same trajectories to float rounding. The device run never calls
    CHGNet's converter; the cpu run never builds a torch graph."""
    from aiida_superionic.engines.mlip import graphs
    from aiida_superionic.engines.mlip.models import _load_chgnet

    model = _load_chgnet('0.3.0', 'cpu')
    built, converted = [], []
    original_graph, original_forward = graphs.crystal_graph, model.graph_converter.forward

    def counting_graph(*args, **kwargs):
        built.append(1)
        return original_graph(*args, **kwargs)

    def counting_forward(*args, **kwargs):
        converted.append(1)
        return original_forward(*args, **kwargs)

    monkeypatch.setattr(graphs, 'crystal_graph', counting_graph)
    monkeypatch.setattr(model.graph_converter, 'forward', counting_forward)
    n_steps = 20
    runs = {}
    for mode in ('device', 'cpu'):
        built.clear()
        converted.clear()
        settings = {**COMMON, 'n_steps': n_steps, 'graph': mode}
        runs[mode] = run_dir(prepare_batch(tmp_path / mode, REPLICAS, settings))
        assert runs[mode]['status'] == 'ok' and runs[mode]['last_step'] == n_steps
        counts = (len(built), len(converted))
        assert counts == ((2 * (n_steps + 1), 0) if mode == 'device' else (0, 2 * (n_steps + 1))), counts
    for replica in REPLICAS:
        a, b = (read_md_output(tmp_path / mode / 'replicas' / replica['name']) for mode in ('device', 'cpu'))
        np.testing.assert_array_equal(a['steps'], b['steps'])
        # seen on the CPU: 4e-7 / 1e-6 Å, 3e-8 / 1e-7 Å/fs, T_mean 3e-7 relative, drift 1e-5 eV/atom/ps
        np.testing.assert_allclose(a['positions'], b['positions'], atol=1e-5, rtol=0)
        np.testing.assert_allclose(a['velocities'], b['velocities'], atol=1e-6, rtol=0)
        ra, rb = (runs[mode]['replicas'][replica['name']] for mode in ('device', 'cpu'))
        assert ra['T_mean_K'] == pytest.approx(rb['T_mean_K'], rel=1e-5)
        assert ra['etotal_drift_eV_per_atom_ps'] == pytest.approx(rb['etotal_drift_eV_per_atom_ps'], abs=1e-4)
        assert (runs['device']['graph'], runs['cpu']['graph']) == ('device', 'cpu')


def test_unknown_graph_setting_is_one_error(tmp_path):
    workdir = prepare_batch(tmp_path, REPLICAS[:1], {**COMMON, 'n_steps': 2, 'graph': 'gpu'})
    assert main(workdir) == 3
    results = json.loads((workdir / 'results.json').read_text())
    assert results['status'] == 'error' and 'graph must be one of' in results['message'], results['message']
