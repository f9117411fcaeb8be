"""Physics on arrays: every number of the paper's Methods and Table 1, with numpy/scipy only.

Nothing here imports AiiDA; the provenance layer wraps these functions in calcfunctions.
"""

from .arrhenius import arrhenius, nernst_einstein_conductivity
from .diffusion import einstein_fit, msd_sum_fft
from .elastic import elastic_descriptors
from .structure import structure_descriptors
from .trajectory import analyze_trajectory, nearest_neighbour_distances, unwrap
from .vibrational import dos_descriptors, normalise_dos

__all__ = [
    'analyze_trajectory',
    'arrhenius',
    'dos_descriptors',
    'einstein_fit',
    'elastic_descriptors',
    'msd_sum_fft',
    'nearest_neighbour_distances',
    'nernst_einstein_conductivity',
    'normalise_dos',
    'structure_descriptors',
    'unwrap',
]
