"""The MLIP engine: ASE + a universal ML potential (CHGNet 0.3.0 by default, SevenNet-0 optional),
run by the ``aiida-superionic-mlip`` runner inside the ``superionic.mlip`` CalcJob."""
