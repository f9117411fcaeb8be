"""The study: descriptor table from the graph, correlations, PCA, k-means and ML (the paper's Figs 1-5).

* :mod:`.table` — :func:`descriptor_table` (QueryBuilder -> pandas) and :func:`table_from_records`;
* :mod:`.stats` and :mod:`.ml` — the statistics and models on a table (pandas/scipy/scikit-learn only);
* :mod:`.functions` and :mod:`.workchain` — the provenance layer (calcfunctions, ``superionic.study``);
* :mod:`.figures` — PNG figures and the HTML report.
"""

from .table import descriptor_table, table_from_records

__all__ = ['descriptor_table', 'table_from_records']
