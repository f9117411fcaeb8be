"""AiiDA data types of the plugin."""

from .table import DescriptorTableData
from .trajectory import MDTrajectoryData

__all__ = ['DescriptorTableData', 'MDTrajectoryData']
