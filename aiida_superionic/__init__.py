"""aiida-superionic: the superionic-descriptor study of López et al. (Mater. Horiz. 2023) as an AiiDA plugin.

Data flows one way: engine outputs -> trajectory/tensor nodes -> descriptor nodes -> table -> study.
The physics lives in :mod:`aiida_superionic.analysis` (numpy/scipy only, no AiiDA import).
"""

__version__ = '0.1.0.dev0'
