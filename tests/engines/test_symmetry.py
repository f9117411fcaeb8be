"""The standard primitive cell the Γ step of both engines works on (:mod:`aiida_superionic.engines.symmetry`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from aiida_superionic.engines.symmetry import standard_primitive

LI3N = Path(__file__).parents[1] / 'data' / 'structures' / 'Li3N.cif'


def _primitive(atoms) -> dict:
    return standard_primitive(atoms.cell, atoms.get_scaled_positions(), atoms.numbers)


def _as_structure(prim: dict) -> Structure:
    return Structure(Lattice(prim['cell']), prim['numbers'], prim['scaled_positions'])


def _variants(atoms):
    """The same crystal as other cells: a 2x1x3 supercell, and that rotated with its atoms reordered."""
    supercell = atoms.repeat((2, 1, 3))
    moved = supercell[np.random.default_rng(1).permutation(len(supercell))]
    moved.rotate(71, (2, -1, 0.5), rotate_cell=True)
    return {'supercell': supercell, 'rotated': moved}


@pytest.mark.parametrize(
    'atoms',
    [
        bulk('NaCl', 'rocksalt', a=5.64, cubic=True),
        bulk('CuI', 'zincblende', a=6.05, cubic=True),
        AseAtomsAdaptor.get_atoms(Structure.from_file(str(LI3N))),
    ],
    ids=['NaCl', 'CuI', 'Li3N'],
)
def test_every_cell_of_a_crystal_gives_the_same_primitive_cell(atoms):
    reference = _primitive(atoms)
    # pymatgen's own reduction: same number of atoms, same crystal
    expected = AseAtomsAdaptor.get_structure(atoms).get_primitive_structure()
    assert len(reference['numbers']) == len(expected)
    assert StructureMatcher(primitive_cell=False, scale=False).fit(_as_structure(reference), expected)
    for name, cell in _variants(atoms).items():
        prim = _primitive(cell)
        assert prim['n_input'] == len(cell)
        assert prim['spacegroup'] == reference['spacegroup'], name
        # the same lattice vectors in the same orientation, the same atoms (sorted by element) and the same
        # crystal (spglib may pick another of the equivalent origins)
        np.testing.assert_allclose(prim['cell'], reference['cell'], atol=1e-8, err_msg=name)
        np.testing.assert_array_equal(prim['numbers'], np.sort(reference['numbers']))
        assert StructureMatcher(primitive_cell=False, scale=False).fit(_as_structure(prim), expected), name


def test_spacegroups():
    assert _primitive(bulk('NaCl', 'rocksalt', a=5.64))['spacegroup'] == 'Fm-3m (225)'
    assert _primitive(bulk('CuI', 'zincblende', a=6.05))['spacegroup'] == 'F-43m (216)'


def test_malformed_crystal_is_one_clear_error():
    with pytest.raises(ValueError, match='bad crystal'):
        standard_primitive(np.eye(3), [[0, 0, 0]], [11, 17])
