"""Calcfunctions (and, with the engines, CalcJobs) that put every descriptor into the provenance graph."""
