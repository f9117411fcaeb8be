"""Record the MLIP runner's files for the parser tests (tests/engines/test_mlip_aiida_style.py).

Run once, from the repository root:  python tests/data/mlip-runner/generate.py
Each case is a folder as the CalcJob leaves it: the inputs (aiida.json, structure.extxyz, restart.npz of a
continuation) and what the runner wrote, minus the files the CalcJob does not retrieve (phonopy_params.yaml,
the lock). The runner is the real one (CHGNet 0.3.0 on CPU, seed 7), run through its entry point ``main``
(the console script for the killed run); ``runner.out`` is its standard output and error.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path

import ase.io
from ase.build import bulk

HERE = Path(__file__).resolve().parent
KEEP = {
    'aiida.json',
    'structure.extxyz',
    'results.json',
    'relaxed.extxyz',
    'trajectory.json',
    'trajectory.f32',
    'restart.npz',
    'force_constants.npy',
    'runner.out',
    'replica_warm.extxyz',
    'replica_hot.extxyz',
}
MD = {'temperature_K': 800.0, 'timestep_fs': 1.5, 'frame_interval': 2, 'checkpoint_every': 2, 'n_steps': 6}


def prepare(name: str, atoms, task: str, settings: dict) -> Path:
    workdir = HERE / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    ase.io.write(workdir / 'structure.extxyz', atoms, format='extxyz')
    config = {'task': task, 'model': 'chgnet-0.3.0', 'device': 'cpu', 'seed': 7, 'settings': settings}
    (workdir / 'aiida.json').write_text(json.dumps(config, indent=2))
    return workdir


def run(name: str, atoms, task: str, settings: dict) -> None:
    from aiida_superionic.engines.mlip.runner import main

    workdir = prepare(name, atoms, task, settings)
    with (
        open(workdir / 'runner.out', 'w') as out,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        code = main(workdir)
    clean(workdir)
    print(name, code, json.loads((workdir / 'results.json').read_text())['status'])


def clean(workdir: Path) -> None:
    for path in workdir.rglob('*'):
        if path.is_file() and path.name not in KEEP:
            path.unlink()


def run_batch(name: str, atoms) -> None:
    """Task md_batch: two runs of the cube (800 K and 1200 K), as the CalcJob writes them."""
    from aiida_superionic.engines.mlip.runner import main

    workdir = prepare(name, atoms, 'md_batch', {})
    (workdir / 'structure.extxyz').unlink()
    runs = [
        {'name': 'warm', 'temperature_K': 800.0, 'seed': 1},
        {'name': 'hot', 'temperature_K': 1200.0, 'seed': 2},
    ]
    for run_ in runs:
        ase.io.write(workdir / f'replica_{run_["name"]}.extxyz', atoms, format='extxyz')
        run_['structure'] = f'replica_{run_["name"]}.extxyz'
    settings = {k: v for k, v in MD.items() if k != 'temperature_K'}
    config = {'task': 'md_batch', 'model': 'chgnet-0.3.0', 'device': 'cpu', 'seed': 7}
    config['settings'] = {**settings, 'replicas': runs}
    (workdir / 'aiida.json').write_text(json.dumps(config, indent=2))
    with (
        open(workdir / 'runner.out', 'w') as out,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        code = main(workdir)
    clean(workdir)
    print(name, code, json.loads((workdir / 'results.json').read_text())['status'])


def main() -> None:
    prim = bulk('LiF', 'rocksalt', a=4.03)
    cube = bulk('LiF', 'rocksalt', a=4.03, cubic=True)
    run('relax', prim, 'relax', {'fmax': 0.05, 'smax_GPa': 0.1, 'max_steps': 100})
    run('relax_unconverged', bulk('LiF', 'rocksalt', a=4.3), 'relax', {'fmax': 0.001, 'max_steps': 2})
    run('elastic', prim, 'elastic', {'strains': [-0.005, 0.005], 'max_steps': 20})
    rattled = cube.copy()
    rattled.rattle(0.05, seed=3)
    run(
        'elastic_unconverged', rattled, 'elastic', {'strains': [-0.005, 0.005], 'fmax': 0.001, 'max_steps': 1}
    )
    run('phonon_gamma', prim, 'phonon_gamma', {'supercell': [2, 2, 2]})
    run('vacancy', cube, 'vacancy', {'mobile': 'Li', 'supercell': [1, 1, 1], 'mu_eV': -1.9, 'max_steps': 20})
    run('md', cube, 'md', MD)
    run('md_segment', cube, 'md', {**MD, 'segment_steps': 4})
    # a continuation of md_segment to the end: its restart.npz is the input
    workdir = prepare('md_continued', cube, 'md', {**MD, 'segment_steps': 4})
    shutil.copy(HERE / 'md_segment' / 'restart.npz', workdir / 'restart.npz')
    from aiida_superionic.engines.mlip.runner import main as runner_main

    with (
        open(workdir / 'runner.out', 'w') as out,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        runner_main(workdir)
    clean(workdir)
    run_batch('md_batch', cube)
    run('error', prim, 'elastic', {'strains': [0.01]})
    # killed (SIGKILL) at its first checkpoint: frames and restart.npz, no results.json
    workdir = prepare('md_killed', cube, 'md', {**MD, 'n_steps': 100_000})
    sys.path.insert(0, str(HERE.parent.parent.parent))
    from tests.engines.runner_helpers import kill_at_first_checkpoint

    kill_at_first_checkpoint(workdir)
    (workdir / 'stdout.txt').rename(workdir / 'runner.out')
    clean(workdir)
    # killed before it wrote anything: only its (empty) standard output
    workdir = prepare('relax_killed', prim, 'relax', {})
    (workdir / 'runner.out').write_text('')


if __name__ == '__main__':
    main()
