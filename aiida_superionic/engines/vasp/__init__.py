"""The VASP engine (aiida-vasp 5.1): protocols, output readers and the ``superionic.vasp.step`` work chain."""
