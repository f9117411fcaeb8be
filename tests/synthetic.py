"""Synthetic trajectories with known answers."""

from __future__ import annotations

import numpy as np

from aiida_superionic.analysis._common import H_MEV_FS


def brownian(rng, n_frames, n_atoms, D_A2_fs, dt_fs, box):
    """Unwrapped Brownian paths with diffusion coefficient D (Å²/fs)."""
    steps = rng.normal(scale=np.sqrt(2.0 * D_A2_fs * dt_fs), size=(n_frames, n_atoms, 3))
    steps[0] = rng.uniform(0, box, size=(n_atoms, 3))
    return np.cumsum(steps, axis=0)


def oscillators(rng, n_frames, sites, energy_meV, amplitude, dt_fs):
    """Atoms oscillating about ``sites`` at one frequency (E = h f), random phases per direction."""
    f = energy_meV / H_MEV_FS
    t = np.arange(n_frames)[:, None, None] * dt_fs
    phase = rng.uniform(0, 2 * np.pi, size=(1, len(sites), 3))
    return sites[None] + amplitude * np.sin(2 * np.pi * f * t + phase)
