"""Calcfunctions and CalcJobs that wrap :mod:`aiida_superionic.analysis` (provenance layer, issue 3)."""
