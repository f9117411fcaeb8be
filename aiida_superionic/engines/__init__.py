"""Engines behind one contract: ``mlip`` (ASE + universal potential) and ``vasp`` (aiida-vasp)."""
