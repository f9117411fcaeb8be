"""Trajectory files in, :class:`Trajectory` out (numpy only; no AiiDA import)."""

from .readers import FORMATS, guess_format, read_ase, read_npz, read_trajectory, read_vasprun, sniff_format
from .trajectory import Trajectory
from .xdatcar import read_xdatcar

__all__ = [
    'FORMATS',
    'Trajectory',
    'guess_format',
    'read_ase',
    'read_npz',
    'read_trajectory',
    'read_vasprun',
    'read_xdatcar',
    'sniff_format',
]
