"""AiiDA data types of the plugin."""

from .trajectory import MDTrajectoryData

__all__ = ['MDTrajectoryData']
