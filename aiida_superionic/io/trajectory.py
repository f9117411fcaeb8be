"""The in-memory trajectory every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Trajectory:
    """A fixed-cell MD trajectory.

    :ivar positions: (n_frames, n_atoms, 3) cartesian positions, Å, float32 (as written: may be wrapped).
    :ivar cell: (3, 3) lattice vectors as rows, Å.
    :ivar symbols: chemical symbol of each atom.
    :ivar velocities: (n_frames, n_atoms, 3) Å/fs, float32, or None when the file has none.
    :ivar metadata: what the file says about itself: ``source``, ``format``, ``stride``, and where the
        reader knows them ``frames_in_file`` (XDATCAR, vasprun.xml) and ``potim_fs``/``nblock``/``tebeg_K``
        (vasprun.xml); extra arrays of an ``.npz``.
    """

    positions: np.ndarray
    cell: np.ndarray
    symbols: list[str]
    velocities: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.positions.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[1])

    @property
    def species(self) -> list[str]:
        """Species in order of first appearance."""
        return list(dict.fromkeys(self.symbols))

    @property
    def nbytes(self) -> int:
        return int(self.positions.nbytes + (self.velocities.nbytes if self.velocities is not None else 0))

    def to_npz(self, path: str | Path, **extra: Any) -> Path:
        """Write the trajectory in the ``.npz`` layout that :func:`read_npz` reads."""
        arrays: dict[str, Any] = {
            'positions': self.positions,
            'cell': self.cell,
            'symbols': np.array(self.symbols),
            **extra,
        }
        if self.velocities is not None:
            arrays['velocities'] = self.velocities
        path = Path(path)
        np.savez_compressed(path, **arrays)
        return path
