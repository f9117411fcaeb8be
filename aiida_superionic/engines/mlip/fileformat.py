"""The MLIP runner's file format: the names of its files, its tasks and its exit codes, in one place.

Read by both sides: the runner (:mod:`.runner`, :mod:`.tasks`, :mod:`.batch`) on the compute node, and the
CalcJob (:mod:`.calculation`) and parser (:mod:`.parser`) in AiiDA. A leaf module of the standard library
only: importing it (from the CalcJob) loads neither numpy, ASE nor torch.
"""

from __future__ import annotations

#: The runner's input: ``{"task", "model", "device", "seed", "settings"}``.
INPUT_FILE = 'aiida.json'
#: One periodic frame, the input of every task but ``md_batch``.
STRUCTURE_FILE = 'structure.extxyz'
#: Written by every run, also on failure: ``{"status", "message", "task", "model", "n_atoms", ...}``.
RESULTS_FILE = 'results.json'
#: Held by the runner while it works in a folder (see :func:`.runner.main`).
RUNNER_LOCK_FILE = '.runner.lock'
#: Task relax: the relaxed crystal.
RELAXED_FILE = 'relaxed.extxyz'
#: Task md: the checkpoint a segment continues from (an input too, when given).
RESTART_FILE = 'restart.npz'
#: Task md: the frames (little-endian float32) and their description.
TRAJECTORY_FILE = 'trajectory.f32'
TRAJECTORY_META_FILE = 'trajectory.json'
#: Task phonon_gamma: phonopy's force constants, and its parameters file (a convenience).
FORCE_CONSTANTS_FILE = 'force_constants.npy'
PHONOPY_FILE = 'phonopy_params.yaml'
#: Task md_batch writes its replicas' files under this folder, one sub-folder per replica.
REPLICAS_DIR = 'replicas'
#: The runner's standard output, as the CalcJob names it.
STDOUT_FILE = 'runner.out'

#: The tasks that run on the one structure of ``structure.extxyz`` (each a module of :mod:`.tasks`).
TASKS = ('relax', 'static', 'elastic', 'phonon_gamma', 'vacancy', 'md')
#: The task that runs several MD replicas in one process (:mod:`.batch`; its own files).
MD_BATCH_TASK = 'md_batch'
#: The models task ``md_batch`` batches (:data:`.batch.BATCHED_MODELS`, in this order).
BATCHED_MODEL_NAMES = ('chgnet-0.3.0', 'sevennet-0')

#: ``results.json`` status -> the runner's exit code.
EXIT_CODES = {'ok': 0, 'walltime': 2, 'unconverged': 2, 'unstable': 2, 'error': 3}
