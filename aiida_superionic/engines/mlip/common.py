"""Pieces shared by the MLIP runner's tasks (:mod:`.runner`) and its batched MD task (:mod:`.batch`).

A leaf module: it imports nothing of the package, so that ``runner``, the task modules (:mod:`.tasks`) and
``batch`` can all import it without importing each other. No AiiDA import: this runs on the compute node.
The file names, task names and exit codes are in :mod:`.fileformat` (shared with the CalcJob and parser).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

THZ_TO_MEV = 4.135667696923859  # h * 1 THz in meV


class TaskError(ValueError):
    """Invalid input for a task."""


@dataclass
class Context:
    workdir: Path
    calc: object
    seed: int
    t_start: float
    model: str
    info: dict = field(default_factory=dict)


def _log(message: str) -> None:
    print(message, flush=True)


def _jsonable(obj):
    """Numpy -> Python; non-finite floats -> None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(_jsonable(data), indent=2))
    os.replace(tmp, path)


def _settings(settings: dict, defaults: dict, required: tuple[str, ...] = ()) -> dict:
    unknown = set(settings) - set(defaults) - set(required)
    if unknown:
        raise TaskError(
            f'unknown settings {sorted(unknown)}; allowed: {sorted(set(defaults) | set(required))}'
        )
    missing = [key for key in required if settings.get(key) is None]
    if missing:
        raise TaskError(f'missing required settings {missing}')
    return {**defaults, **{k: v for k, v in settings.items() if v is not None}}


MD_DEFAULTS = {
    'timestep_fs': 1.5,
    'frame_interval': 10,
    'thermostat': 'nose-hoover',
    'tdamp_fs': 100.0,
    'friction_per_fs': 0.01,
    'checkpoint_every': 10,
    'walltime_s': None,
    'segment_steps': None,
    'max_temperature_factor': 5.0,
    'log_interval': 100,
}
THERMOSTATS = ('nose-hoover', 'langevin')


def _write_restart(path: Path, data: dict) -> None:
    tmp = path.with_name('restart.tmp.npz')
    with open(tmp, 'wb') as handle:
        np.savez(handle, **data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _next_frame_step(step: int, interval: int) -> int:
    return (step // interval + 1) * interval


def initial_momenta(atoms, temperature_K: float, seed: int) -> None:
    """The Maxwell-Boltzmann start of an MD run of ``seed`` (first child of ``SeedSequence(seed)``), centre
    of mass at rest: the same draw in task ``md`` and ``md_batch``."""
    from ase.md.velocitydistribution import Stationary

    try:  # ASE >= 3.29 (same Maxwell-Boltzmann draw; MaxwellBoltzmannDistribution is deprecated there)
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # pragma: no cover - older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    seed_mb, _ = np.random.SeedSequence(seed).spawn(2)
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed_mb))
    Stationary(atoms)


def normalize_thermostat(name) -> str:
    thermostat = str(name).lower().replace('_', '-')
    return 'nose-hoover' if thermostat == 'nosehoover' else thermostat


def thermostat_parameters(thermostat: str, settings: dict) -> dict[str, float]:
    """The parameter of ``thermostat`` in ``settings``, for the trajectory's metadata and the checkpoint:
    ``{'tdamp_fs': ...}`` (Nose-Hoover chain) or ``{'friction_per_fs': ...}`` (Langevin, ASE's friction in
    1/fs)."""
    key = 'friction_per_fs' if thermostat == 'langevin' else 'tdamp_fs'
    return {key: float(settings[key])}


def segment_stop(
    step: int, start_step: int, segment_steps: int | None, walltime: float | None, t_start: float, step_times
) -> tuple[str, str] | None:
    """``('walltime', why)`` when an MD loop must stop before its next step: ``segment_steps`` steps done in
    this segment, or too little of ``walltime`` (s since ``t_start``, monotonic) left for two more steps at
    the recent pace; ``None`` to go on. Shared by tasks ``md`` and ``md_batch``."""
    if segment_steps is not None and step - start_step >= segment_steps:
        return 'walltime', f'stopped at step {step}: segment_steps = {segment_steps} reached'
    if walltime is not None:
        elapsed = time.monotonic() - t_start
        per_step = float(np.mean(step_times[-20:])) if step_times else 0.0
        if elapsed + 2 * per_step >= walltime:
            return 'walltime', f'stopped at step {step} after {elapsed:.1f} s (walltime_s)'
    return None
