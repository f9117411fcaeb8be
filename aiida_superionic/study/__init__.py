"""Descriptor table from the graph, correlations, PCA, k-means and ML (issue 6)."""
