"""``superionic.trajectory``: a fixed-cell MD trajectory in the file repository.

Why an :class:`~aiida.orm.ArrayData` subclass (and not aiida-core's ``TrajectoryData`` or a compressed
file in a ``SinglefileData``):

* the arrays go to the **file repository** as ``.npy`` files (positions float32: 300 atoms x 100k
  frames = 360 MB), never into the database; the attributes hold only small metadata (symbols, cell,
  time step, temperature, the source's SHA-256), so queries stay fast;
* ``TrajectoryData`` stores a cell per frame and float64 positions: twice the size for the paper's NVT
  runs, whose cell is fixed;
* a ``.npy`` is read back with one ``numpy.load`` into one float32 array, which the analysis consumes
  without another full copy (an ``.npz``/HDF5 file would need decompression into a second buffer);
* a plain Data subclass keeps AiiDA's hashing, so the caching of the descriptor calcfunctions works on
  identical trajectories.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aiida.orm import ArrayData

from ..exceptions import InputError
from ..io import Trajectory


class MDTrajectoryData(ArrayData):
    """Positions (and optionally velocities) of an NVT MD run, with its time step and temperature.

    Arrays: ``positions`` (n_frames, n_atoms, 3) Å float32 and optional ``velocities`` (Å/fs).
    Attributes: ``symbols``, ``cell`` (rows, Å), ``timestep_fs`` (time between stored frames),
    ``temperature_K``, ``n_frames``, ``n_atoms``, ``mobile_species`` (may be None) and ``origin``
    (what the trajectory was read from: file name, format, SHA-256, or the engine run).
    """

    @classmethod
    def from_trajectory(
        cls,
        traj: Trajectory,
        *,
        timestep_fs: float,
        temperature_K: float,
        mobile_species: str | None = None,
        origin: dict[str, Any] | None = None,
    ) -> MDTrajectoryData:
        """Build an unstored node from a :class:`~aiida_superionic.io.Trajectory`."""
        for name, value in (('timestep_fs', timestep_fs), ('temperature_K', temperature_K)):
            if not (np.isfinite(value) and value > 0):
                raise InputError(f'{name} must be > 0, got {value}')
        node = cls()
        node.set_array('positions', np.ascontiguousarray(traj.positions, dtype=np.float32))
        if traj.velocities is not None:
            node.set_array('velocities', np.ascontiguousarray(traj.velocities, dtype=np.float32))
        node.base.attributes.set_many(
            {
                'symbols': list(traj.symbols),
                'cell': np.asarray(traj.cell, dtype=float).tolist(),
                'timestep_fs': float(timestep_fs),
                'temperature_K': float(temperature_K),
                'n_frames': traj.n_frames,
                'n_atoms': traj.n_atoms,
                'mobile_species': mobile_species,
                'origin': dict(origin or {}),
            }
        )
        return node

    @property
    def symbols(self) -> list[str]:
        return self.base.attributes.get('symbols')

    @property
    def cell(self) -> np.ndarray:
        return np.array(self.base.attributes.get('cell'))

    @property
    def timestep_fs(self) -> float:
        return self.base.attributes.get('timestep_fs')

    @property
    def temperature_K(self) -> float:
        return self.base.attributes.get('temperature_K')

    @property
    def mobile_species(self) -> str | None:
        return self.base.attributes.get('mobile_species')

    @property
    def origin(self) -> dict[str, Any]:
        """Where the frames came from: the imported file (name, format, SHA-256) or the engine run."""
        return self.base.attributes.get('origin', {})

    @property
    def n_frames(self) -> int:
        return self.base.attributes.get('n_frames')

    def get_positions(self) -> np.ndarray:
        return self.get_array('positions')

    def get_velocities(self) -> np.ndarray | None:
        return self.get_array('velocities') if 'velocities' in self.get_arraynames() else None
