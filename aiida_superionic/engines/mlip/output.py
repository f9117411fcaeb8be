"""Reading the MLIP runner's MD files back: one segment (:func:`read_md_output`), segments joined
(:func:`stitch_segments`). Used by the parser (in AiiDA) and by the tests; no AiiDA, ASE or torch import."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .fileformat import TRAJECTORY_FILE, TRAJECTORY_META_FILE

__all__ = ('read_md_output', 'stitch_segments')


def read_md_output(workdir: str | os.PathLike) -> dict:
    """Read one md segment: ``{'meta', 'positions' (n,N,3) float32, 'velocities' (n,N,3), 'steps' (n,)}``.

    A partially written last frame (the run was killed while writing it) is dropped.
    """
    workdir = Path(workdir)
    meta = json.loads((workdir / TRAJECTORY_META_FILE).read_text())
    n_atoms = int(meta['n_atoms'])
    path = workdir / TRAJECTORY_FILE
    frame_floats = 2 * n_atoms * 3
    size = path.stat().st_size if path.is_file() else 0
    n_frames = size // (4 * frame_floats)
    data = np.fromfile(path, dtype='<f4', count=n_frames * frame_floats) if n_frames else np.zeros(0, '<f4')
    data = data.reshape(n_frames, 2 * n_atoms, 3)
    steps = int(meta['first_step']) + int(meta['frame_interval']) * np.arange(n_frames, dtype=np.int64)
    return {
        'meta': meta,
        'positions': data[:, :n_atoms],
        'velocities': data[:, n_atoms:],
        'steps': steps,
    }


def stitch_segments(segments: list[dict], restart_steps: list[int | None]):
    """Join md segments into one trajectory: ``(positions, velocities, steps)``.

    ``segments`` are :func:`read_md_output` dicts in order. ``restart_steps[i]`` is the global step from
    which ``segments[i + 1]`` restarted (the ``step`` in the ``restart.npz`` it was given), so only frames of
    segment ``i`` with ``step <= restart_steps[i]`` are kept: frames a killed segment wrote after its last
    checkpoint are not part of the continued trajectory. The last entry (no successor) may be ``None`` or
    omitted; ``None`` anywhere means keep every frame of that segment.
    """
    from ...io.stitch import stitch_frames

    restart_steps = list(restart_steps)
    if len(restart_steps) == len(segments) - 1:
        restart_steps.append(None)
    if len(restart_steps) != len(segments):
        raise ValueError('need one restart step per segment (or one fewer)')
    if not segments:
        return np.zeros((0, 0, 3), np.float32), np.zeros((0, 0, 3), np.float32), np.zeros(0, np.int64)
    steps, (positions, velocities) = stitch_frames(
        [seg['steps'] for seg in segments],
        [None, *restart_steps[:-1]],
        [[seg['positions'], seg['velocities']] for seg in segments],
    )
    return positions, velocities, steps
