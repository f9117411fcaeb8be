"""SevenNet-0 through the MLIP engine: the model loader, the runner's relax and MD, and batched MD
(task md_batch).

The references are independent of the engine: sevenn's own ``SevenNetCalculator('7net-0')`` called here
(its pretrained-name path, not the engine's checkpoint path), a central finite difference of the energy, an
E(a) parabola fitted here with that calculator, experiment (LiF a = 4.03 Å), and an uninterrupted run of the
same seed for the restart. The checkpoint ships in the sevenn wheel: these tests run without network access.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from aiida_superionic.engines.mlip import models, runner
from aiida_superionic.engines.mlip.runner import main, read_md_output, stitch_segments

MODEL = 'sevennet-0'


@pytest.fixture(scope='module')
def engine_calc():
    return models.load_calculator(MODEL, 'cpu')


@pytest.fixture(scope='module')
def direct_calc():
    import warnings

    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        return SevenNetCalculator('7net-0', device='cpu')


def rattled_lif(a: float = 4.03):
    atoms = bulk('LiF', 'rocksalt', a=a, cubic=True)  # 8 atoms
    atoms.rattle(0.05, seed=11)
    atoms.set_cell(
        atoms.cell * [1.0, 1.01, 0.99], scale_atoms=True
    )  # non-cubic strain: stress is anisotropic
    return atoms


def prepare(workdir: Path, atoms, task: str, settings: dict | None = None, seed: int = 5) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    if atoms is not None:
        ase.io.write(workdir / runner.STRUCTURE_FILE, atoms, format='extxyz')
    config = {'task': task, 'model': MODEL, 'device': 'cpu', 'seed': seed, 'settings': settings or {}}
    (workdir / runner.INPUT_FILE).write_text(json.dumps(config))
    return workdir


def run_task(workdir: Path, atoms, task: str, settings: dict | None = None) -> dict:
    prepare(workdir, atoms, task, settings)
    code = main(workdir)
    results = json.loads((workdir / 'results.json').read_text())
    assert code == runner.EXIT_CODES[results['status']]
    assert results['model'] == MODEL
    return results


# ------------------------------------------------------------------------------------------------ loader


def test_checkpoint_ships_in_the_sevenn_package():
    import sevenn

    path = Path(models.sevennet_checkpoint())
    assert path.is_file() and path.stat().st_size > 5_000_000  # ~10 MB of weights
    assert Path(sevenn.__file__).parent in path.parents  # inside the installed wheel, not ~/.cache
    assert path.parent.name == 'SevenNet_0__11Jul2024'


def test_loader_never_downloads(monkeypatch):
    """The loader hands sevenn the checkpoint's path: sevenn's download code is never reached."""
    import sevenn._const
    import sevenn.util

    def no_download(*args, **kwargs):
        raise AssertionError(f'download attempted: {args}')

    monkeypatch.setattr(sevenn.util, 'download_checkpoint', no_download)
    monkeypatch.setattr(sevenn.util, 'pretrained_name_to_path', no_download)
    calc = models.load_calculator(MODEL, 'cpu')
    atoms = rattled_lif()
    atoms.calc = calc
    assert np.isfinite(atoms.get_potential_energy())
    # a sevenn without the file: one clear error, no download
    monkeypatch.setattr(sevenn._const, 'SEVENNET_0_11Jul2024', '/nonexistent/checkpoint_sevennet_0.pth')
    with pytest.raises(FileNotFoundError, match='not in the installed sevenn package'):
        models.load_calculator(MODEL, 'cpu')


def test_loader_matches_sevenn_calculator(engine_calc, direct_calc):
    atoms = rattled_lif()
    ours, ref = atoms.copy(), atoms.copy()
    ours.calc, ref.calc = engine_calc, direct_calc
    e_ref = ref.get_potential_energy()
    assert ours.get_potential_energy() == pytest.approx(e_ref, abs=1e-6)
    np.testing.assert_allclose(ours.get_forces(), ref.get_forces(), atol=1e-6)
    np.testing.assert_allclose(ours.get_stress(), ref.get_stress(), atol=1e-7)
    # physical sanity: LiF at 4.03 Å is bound by several eV per atom; forces of a 0.05 Å rattle are real
    assert -6.0 < e_ref / len(atoms) < -3.0
    assert np.abs(ours.get_forces()).max() > 0.05
    assert np.abs(ours.get_stress()).max() > 1e-4
    # translation invariance: the forces sum to zero
    np.testing.assert_allclose(ours.get_forces().sum(axis=0), 0.0, atol=1e-4)


def test_force_is_minus_energy_gradient(engine_calc):
    atoms = rattled_lif()
    atoms.calc = engine_calc
    forces = atoms.get_forces()
    atom, axis, h = 3, 1, 1e-3
    energies = []
    for sign in (1, -1):
        displaced = atoms.copy()
        displaced.positions[atom, axis] += sign * h
        displaced.calc = engine_calc
        energies.append(displaced.get_potential_energy())
    fd = -(energies[0] - energies[1]) / (2 * h)
    assert forces[atom, axis] == pytest.approx(fd, abs=2e-3, rel=1e-2)
    assert abs(forces[atom, axis]) > 0.01  # a component worth checking


# ------------------------------------------------------------------------------------------------ runner


def test_runner_relax_matches_direct_e_of_a(tmp_path, direct_calc):
    # reference: E(a) of the 2-atom primitive cell with sevenn's calculator, parabola through the minimum
    grid = np.linspace(3.95, 4.20, 11)
    energies = []
    for a in grid:
        cell = bulk('LiF', 'rocksalt', a=a)
        cell.calc = direct_calc
        energies.append(cell.get_potential_energy())
    k = int(np.argmin(energies))
    assert 0 < k < len(grid) - 1, 'E(a) minimum outside the grid'
    coeffs = np.polyfit(grid[k - 2 : k + 3], energies[k - 2 : k + 3], 2)
    a_fit = -coeffs[1] / (2 * coeffs[0])

    results = run_task(tmp_path, bulk('LiF', 'rocksalt', a=3.90), 'relax', {'fmax': 0.005, 'smax_GPa': 0.01})
    assert results['status'] == 'ok', results['message']
    assert results['converged'] and results['n_steps'] > 0
    relaxed = ase.io.read(tmp_path / 'relaxed.extxyz')
    a = (4 * relaxed.get_volume()) ** (1 / 3)
    assert a == pytest.approx(a_fit, abs=0.005)
    # SevenNet-0 is fitted to PBE (MPtrj), ~1-2 % above experiment (LiF 4.03 Å, Wyckoff 1963)
    assert abs(a / 4.03 - 1) < 0.03


def lif_md_cell():
    return bulk('LiF', 'rocksalt', a=4.07, cubic=True)


MD = {
    'temperature_K': 600.0,
    'timestep_fs': 1.5,
    'frame_interval': 2,
    'checkpoint_every': 2,
    'tdamp_fs': 15.0,
}


def test_runner_nvt_md(tmp_path):
    n_steps = 40
    results = run_task(tmp_path, lif_md_cell(), 'md', {**MD, 'n_steps': n_steps, 'thermostat': 'nose-hoover'})
    assert results['status'] == 'ok', results['message']
    out = read_md_output(tmp_path)
    n_frames = n_steps // 2 + 1
    assert results['n_frames'] == n_frames == len(out['steps'])
    np.testing.assert_array_equal(out['steps'], np.arange(0, n_steps + 1, 2))
    assert out['positions'].shape == (n_frames, 8, 3)
    assert np.abs(out['velocities']).max() > 1e-4
    assert np.linalg.norm(np.diff(out['positions'], axis=0), axis=2).max() < 1.0
    assert 0.3 * 600 < results['T_mean_K'] < 1.7 * 600  # 8 atoms, 60 fs: T fluctuates by ~30 %
    assert abs(results['etotal_drift_eV_per_atom_ps']) < 0.1  # the NHC conserved quantity


def test_runner_md_restart_is_exact(tmp_path):
    """A (12 steps) = B (first 6 steps) + C (continued from B's restart.npz in a fresh folder)."""
    n_steps = 12
    settings = {**MD, 'n_steps': n_steps, 'thermostat': 'langevin'}
    assert run_task(tmp_path / 'A', lif_md_cell(), 'md', settings)['status'] == 'ok'
    assert run_task(tmp_path / 'B', lif_md_cell(), 'md', {**settings, 'n_steps': 6})['status'] == 'ok'
    restart_step = int(np.load(tmp_path / 'B' / 'restart.npz')['step'])
    assert restart_step == 6
    workdir_c = prepare(tmp_path / 'C', lif_md_cell(), 'md', settings)
    shutil.copy(tmp_path / 'B' / 'restart.npz', workdir_c / 'restart.npz')
    assert main(workdir_c) == 0
    results_c = json.loads((workdir_c / 'results.json').read_text())
    assert results_c['first_step'] == restart_step and results_c['last_step'] == n_steps
    a, b, c = (read_md_output(tmp_path / name) for name in 'ABC')
    positions, velocities, steps = stitch_segments([b, c], [restart_step])
    np.testing.assert_array_equal(steps, a['steps'])
    np.testing.assert_allclose(positions, a['positions'], atol=1e-5, rtol=0)
    np.testing.assert_allclose(velocities, a['velocities'], atol=1e-6, rtol=0)
    assert np.abs(a['positions'][-1] - a['positions'][0]).max() > 1e-3  # the atoms did move


# ------------------------------------------------------------------------------------------- md_batch


def lif7_vacancy():
    atoms = bulk('LiF', 'rocksalt', a=4.07, cubic=True)
    del atoms[0]  # one Li vacancy: another atom count in the same batch
    return atoms


def li2o_rattled():
    atoms = bulk('Li2O', 'fluorite', a=4.62, cubic=True)  # 12 atoms, another chemistry
    atoms.rattle(0.05, seed=3)
    return atoms


@pytest.mark.parametrize('graph', ['cpu', 'device'])
def test_batched_forces_are_those_of_sevenns_own_calculator(direct_calc, engine_calc, graph):
    """One batched call on three structures of different size and chemistry gives each structure the energy
    and forces of sevenn's own calculator called on it alone; the pairs built on the device (our neighbour
    list) give the same as ASE's neighbour list (``cpu``) to float32 rounding."""
    from aiida_superionic.engines.mlip.batch import BatchedSevenNet

    structures = [rattled_lif(), lif7_vacancy(), li2o_rattled()]
    structures[1].rattle(0.04, seed=5)
    batched = BatchedSevenNet(engine_calc, graph=graph)
    assert batched.graph == graph and batched.cutoff == pytest.approx(5.0)
    out = batched([(a.cell, a.numbers, a.positions) for a in structures])
    assert len(out) == len(structures)
    for atoms, (energy, forces) in zip(structures, out, strict=True):
        reference = atoms.copy()
        reference.calc = direct_calc
        assert energy == pytest.approx(reference.get_potential_energy(), abs=2e-5 * len(atoms))
        assert forces.shape == (len(atoms), 3)
        np.testing.assert_allclose(forces, reference.get_forces(), atol=1e-5, rtol=0)
        assert np.abs(forces).max() > 0.05  # rattled: the forces are not trivially zero
    assert not engine_calc.model.is_batch_data  # the calculator's own model was left unbatched


def _replica_files(workdir: Path, replicas) -> list[dict]:
    specs = []
    for name, atoms, temperature, seed in replicas:
        ase.io.write(workdir / f'{name}.extxyz', atoms, format='extxyz')
        specs.append(
            {'name': name, 'structure': f'{name}.extxyz', 'temperature_K': temperature, 'seed': seed}
        )
    return specs


def test_md_batch_replicas_each_match_their_single_sevennet_run(tmp_path):
    """Two replicas (8 and 7 atoms, 600 and 900 K, own seeds) in one md_batch with SevenNet-0: each replica's
    frames are those of task md run alone with the same seed (its own SevenNetCalculator), to the rounding of
    the batched forward pass."""
    n_steps = 10
    common = {**MD, 'thermostat': 'nose-hoover'}
    common.pop('temperature_K')
    replicas = [('stoich_T600', lif_md_cell(), 600.0, 1), ('vacancy_T900', lif7_vacancy(), 900.0, 2)]
    batch_dir = tmp_path / 'batch'
    batch_dir.mkdir()
    settings = {
        **common,
        'n_steps': n_steps,
        'graph': 'auto',
        'replicas': _replica_files(batch_dir, replicas),
    }
    batch = run_task(batch_dir, None, 'md_batch', settings)
    assert batch['status'] == 'ok', batch['message']
    assert batch['graph'] == 'cpu'  # auto on the CPU: sevenn's own graph builder
    for name, atoms, temperature, seed in replicas:
        single_dir = tmp_path / name
        prepare(
            single_dir, atoms, 'md', {**common, 'n_steps': n_steps, 'temperature_K': temperature}, seed=seed
        )
        assert main(single_dir) == 0
        mine, single = read_md_output(batch_dir / runner.REPLICAS_DIR / name), read_md_output(single_dir)
        np.testing.assert_array_equal(mine['steps'], single['steps'])
        np.testing.assert_allclose(mine['positions'], single['positions'], atol=1e-5, rtol=0)
        np.testing.assert_allclose(mine['velocities'], single['velocities'], atol=1e-6, rtol=0)
        assert np.abs(single['positions'][-1] - single['positions'][0]).max() > 1e-3  # the atoms did move


def test_md_batch_builder_accepts_sevennet_and_refuses_an_unbatched_model():
    """md.batch with SevenNet-0 builds one md_batch job naming the model; a model the runner does not batch
    fails when the work chain builds the batch, before any job is submitted."""
    from aiida import orm

    from aiida_superionic.engines.contract import get_engine
    from aiida_superionic.exceptions import InputError

    engine = get_engine('mlip')
    cell = orm.StructureData(ase=lif_md_cell())
    runs = {'a_T600': (cell, 600.0, 0), 'a_T900': (cell, 900.0, 1)}
    settings = engine.protocol('fast', {'model': MODEL, 'md': {'batch': True}})
    builder = engine.get_md_batch_builder(runs, None, settings, calcjob=True)
    parameters = builder.parameters.get_dict()
    assert parameters['task'] == 'md_batch' and parameters['model'] == MODEL
    assert [r['name'] for r in parameters['settings']['replicas']] == ['a_T600', 'a_T900']
    with pytest.raises(InputError, match=r"md.batch: model 'mace-mp-0' is not batched"):
        engine.get_md_batch_builder(runs, None, {**settings, 'model': 'mace-mp-0'})


def test_runner_md_batch_refuses_an_unbatched_model(tmp_path):
    """An aiida.json of task md_batch naming a model the runner does not batch: one error, no replica written."""
    settings = {'n_steps': 2, 'replicas': _replica_files(tmp_path, [('r0', lif_md_cell(), 600.0, 1)])}
    config = {'task': 'md_batch', 'model': 'mace-mp-0', 'device': 'cpu', 'seed': 0, 'settings': settings}
    (tmp_path / runner.INPUT_FILE).write_text(json.dumps(config))
    assert main(tmp_path) == runner.EXIT_CODES['error']
    results = json.loads((tmp_path / 'results.json').read_text())
    assert results['status'] == 'error'
    assert "md_batch: model 'mace-mp-0' is not batched" in results['message']
    assert 'chgnet-0.3.0, sevennet-0' in results['message'] and 'task md' in results['message']
    assert not (tmp_path / runner.REPLICAS_DIR).exists()
