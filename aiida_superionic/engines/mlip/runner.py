"""Console script ``aiida-superionic-mlip``: one task of the study with a universal interatomic potential.

It runs in a working directory (the CalcJob's, or the one given as the only argument) and talks through files:

Inputs
    ``aiida.json``        ``{"task", "model", "device", "seed", "settings"}``; task is one of :data:`TASKS`
                          (one module of :mod:`.tasks` each), or ``md_batch``: several MD runs in one
                          process (:mod:`.batch`, its own files).
    ``structure.extxyz``  one periodic frame.
    ``restart.npz``       optional, ``md`` only: continue a previous segment exactly.

Outputs
    ``results.json``      always (also on failure): ``{"status", "message", "task", "model", "n_atoms", ...}``
                          with status ``ok`` (exit code 0), ``walltime`` / ``unconverged`` / ``unstable`` (2) or
                          ``error`` (3).
    task files            ``relaxed.extxyz`` (relax), ``force_constants.npy`` + ``phonopy_params.yaml``
                          (phonon_gamma), ``trajectory.f32`` + ``trajectory.json`` + ``restart.npz`` (md).

Units everywhere: eV, Å, GPa, fs, K; phonon energies in meV. Stresses are physical stresses (positive =
tensile), Voigt order xx yy zz yz xz xy. No AiiDA import: this runs on the compute node.

The file names, task names and exit codes are those of :mod:`.fileformat`, shared with the CalcJob and
the parser; the MD files are read back by :mod:`.output`.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from .common import Context, TaskError, _log, _write_json_atomic
from .fileformat import (
    EXIT_CODES,
    INPUT_FILE,
    MD_BATCH_TASK,
    RELAXED_FILE,
    REPLICAS_DIR,
    RESULTS_FILE,
    RUNNER_LOCK_FILE,
    STRUCTURE_FILE,
    TRAJECTORY_FILE,
    TRAJECTORY_META_FILE,
)
from .output import read_md_output, stitch_segments
from .tasks.elastic import task_elastic
from .tasks.md import task_md
from .tasks.phonon_gamma import task_phonon_gamma
from .tasks.relax import task_relax, task_static
from .tasks.vacancy import task_vacancy

__all__ = (
    'EXIT_CODES',
    'INPUT_FILE',
    'RELAXED_FILE',
    'STRUCTURE_FILE',
    'TASKS',
    'main',
    'read_md_output',
    'run',
    'stitch_segments',
    'task_elastic',
    'task_md',
    'task_phonon_gamma',
    'task_relax',
    'task_static',
    'task_vacancy',
)

#: Task name (:data:`.fileformat.TASKS`) -> its function.
TASKS = {
    'relax': task_relax,
    'static': task_static,
    'elastic': task_elastic,
    'phonon_gamma': task_phonon_gamma,
    'vacancy': task_vacancy,
    'md': task_md,
}


def run(workdir: str | os.PathLike) -> tuple[str, dict]:
    """Run the task described in ``workdir``; return (status, results) after writing ``results.json``."""
    t_start = time.monotonic()
    workdir = Path(workdir).resolve()
    results: dict = {'status': 'error', 'message': '', 'task': None, 'model': None, 'n_atoms': None}
    try:
        config = json.loads((workdir / INPUT_FILE).read_text())
        task = config.get('task')
        results['task'] = task
        results['model'] = model = config.get('model') or 'chgnet-0.3.0'
        if task == MD_BATCH_TASK:  # several cells, named in the settings: no structure.extxyz
            from aiida_superionic.engines.mlip.batch import BATCHED_MODELS, task_md_batch
            from aiida_superionic.engines.mlip.models import _load_chgnet, load_calculator, resolve_device

            model = results['model'] = str(model).strip().lower()
            if model not in BATCHED_MODELS:
                raise TaskError(
                    f'md_batch: model {model!r} is not batched (md_batch batches {", ".join(BATCHED_MODELS)}); '
                    'run one task md per cell with this model'
                )
            seed = int(config.get('seed') if config.get('seed') is not None else 0)
            device = resolve_device(config.get('device') or 'auto')
            # CHGNet: the model itself (predict_graph on a list of graphs); SevenNet: its ASE calculator
            calc = (
                _load_chgnet('0.3.0', device) if model == 'chgnet-0.3.0' else load_calculator(model, device)
            )
            ctx = Context(workdir=workdir, calc=calc, seed=seed, t_start=t_start, model=model)
            _log(f'aiida-superionic-mlip: task md_batch, model {model}')
            status, message, task_results = task_md_batch(config.get('settings') or {}, ctx)
            results.update(task_results)
            results['status'], results['message'] = status, message
            return _finish(workdir, results, t_start)
        if task not in TASKS:
            raise TaskError(f'unknown task {task!r}; known: {", ".join([*TASKS, MD_BATCH_TASK])}')
        structure = workdir / STRUCTURE_FILE
        if not structure.is_file():
            raise FileNotFoundError(f'{STRUCTURE_FILE} is missing in {workdir}')
        import ase.io

        atoms = ase.io.read(structure, index=0, format='extxyz')
        atoms.calc = None
        atoms.set_constraint()
        results['n_atoms'] = len(atoms)
        if not atoms.pbc.all():
            raise TaskError(f'{STRUCTURE_FILE} must be periodic in all three directions')
        from aiida_superionic.engines.mlip.models import load_calculator

        atoms.calc = load_calculator(model, config.get('device') or 'auto')
        seed = int(config.get('seed') if config.get('seed') is not None else 0)
        ctx = Context(workdir=workdir, calc=atoms.calc, seed=seed, t_start=t_start, model=model)
        _log(
            f'aiida-superionic-mlip: task {task}, model {model}, {len(atoms)} atoms, {atoms.get_chemical_formula()}'
        )
        status, message, task_results = TASKS[task](atoms, config.get('settings') or {}, ctx)
        results.update(task_results)
        results['status'], results['message'] = status, message
    except Exception as exc:  # every failure must end in results.json
        traceback.print_exc()
        results['status'] = 'error'
        results['message'] = f'{type(exc).__name__}: {exc}'
    return _finish(workdir, results, t_start)


def _finish(workdir: Path, results: dict, t_start: float) -> tuple[str, dict]:
    results['wall_time_s'] = time.monotonic() - t_start
    _write_json_atomic(workdir / RESULTS_FILE, results)
    _log(f'aiida-superionic-mlip: {results["status"]} ({results["wall_time_s"]:.1f} s) {results["message"]}')
    return results['status'], results


def main(workdir: str | os.PathLike | None = None) -> int:
    """Entry point: ``aiida-superionic-mlip [WORKDIR]`` (default: the current directory). Returns the exit code."""
    if workdir is None:
        args = sys.argv[1:]
        if args and args[0] in ('-h', '--help'):
            print(__doc__)
            return 0
        workdir = args[0] if args else '.'
    # One runner per folder: when a daemon dies between handing a job to the scheduler and recording
    # it, aiida-core submits the job again into the same folder. The second runner waits for the
    # first (if it still runs), then leaves what it wrote as it is: it must neither overwrite results
    # nor take the first runner's final restart.npz for an input to continue from.
    import fcntl

    with open(Path(workdir) / RUNNER_LOCK_FILE, 'a') as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another runner works here: wait for it
            fcntl.flock(lock, fcntl.LOCK_EX)
        previous = _previous_runner_exit_code(Path(workdir))
        if previous is not None:
            return previous
        status, _ = run(workdir)
    return EXIT_CODES.get(status, 3)


def _previous_runner_exit_code(workdir: Path) -> int | None:
    """The exit code of a runner that already worked in ``workdir``, or None if none did.

    aiida-core uploads only the inputs (``aiida.json``, ``structure.extxyz``, an MD continuation's
    ``restart.npz``): ``results.json`` or the MD frame files in the folder were written by an earlier
    runner of the same job. A finished one: its status. An MD runner that died mid-run (frames, maybe a
    checkpoint, no results): an error, touching nothing, so that the job is parsed as that run, killed
    at its last checkpoint. Running again here would instead continue from the earlier runner's own
    checkpoint -- for a finished run, its last step: zero steps, no frame -- and overwrite its frames.
    """
    try:
        results = json.loads((workdir / RESULTS_FILE).read_text())
    except FileNotFoundError:
        results = None
    except (OSError, ValueError):
        return EXIT_CODES['error']
    if results is not None:
        _log(
            f'aiida-superionic-mlip: an earlier runner of this job finished in {workdir}: keeping its results'
        )
        return EXIT_CODES.get(results.get('status'), 3)
    if (
        (workdir / TRAJECTORY_META_FILE).exists()
        or (workdir / TRAJECTORY_FILE).exists()
        or (workdir / REPLICAS_DIR).exists()  # task md_batch
    ):
        _log(f'aiida-superionic-mlip: an earlier runner of this job stopped in {workdir}: leaving its files')
        return EXIT_CODES['error']
    return None


if __name__ == '__main__':
    sys.exit(main())
