"""SevenNet-0 through the MLIP engine: the model loader, the runner's relax and MD, and md_batch's refusal.

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


def test_md_batch_refuses_sevennet(tmp_path):
    ase.io.write(tmp_path / 'r0.extxyz', lif_md_cell(), format='extxyz')
    settings = {
        'n_steps': 2,
        'timestep_fs': 1.5,
        'replicas': [{'name': 'r0', 'structure': 'r0.extxyz', 'temperature_K': 600.0, 'seed': 1}],
    }
    prepare(tmp_path, None, 'md_batch', settings)
    code = main(tmp_path)
    results = json.loads((tmp_path / 'results.json').read_text())
    assert results['status'] == 'error' and code == runner.EXIT_CODES['error']
    assert "md_batch: model 'sevennet-0' is not batched" in results['message']
    assert 'task md' in results['message']  # says what to use instead
    assert not (tmp_path / runner.REPLICAS_DIR).exists()


def test_md_batch_builder_refuses_sevennet():
    """md.batch with model sevennet-0 fails when the work chain builds the batch (ERROR_BATCH_SETTINGS),
    before any job is submitted; chgnet-0.3.0 is accepted."""
    from aiida_superionic.engines.contract import get_engine
    from aiida_superionic.exceptions import InputError

    engine = get_engine('mlip')
    runs = {'a_T600': (None, 600.0, 0)}
    settings = engine.protocol('fast', {'model': MODEL, 'md': {'batch': True}})
    with pytest.raises(InputError, match=r"md.batch: model 'sevennet-0' is not batched"):
        engine.get_md_batch_builder(runs, None, settings)
