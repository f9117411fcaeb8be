"""Tests of the structural-compositional descriptors on textbook crystal structures.

Expected values follow from the crystal geometry (worked out here in closed form), not from the module.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from aiida_superionic.analysis.structure import structure_descriptors
from aiida_superionic.exceptions import InputError

LI2O_A = 4.61  # Å, antifluorite Li2O, Fm-3m: O on 4a (0,0,0), Li on 8c (1/4,1/4,1/4)
NACL_A = 5.64  # Å, rocksalt NaCl, Fm-3m: Na on 4a, Cl on 4b
LI3N_A, LI3N_C = 3.648, 3.875  # Å, alpha-Li3N, P6/mmm: N 1a, Li(1) 1b (0,0,1/2), Li(2) 2c (1/3,2/3,0)


@pytest.fixture
def li2o() -> Structure:
    return Structure.from_spacegroup(
        'Fm-3m', Lattice.cubic(LI2O_A), ['O', 'Li'], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )


@pytest.fixture
def nacl() -> Structure:
    return Structure.from_spacegroup(
        'Fm-3m', Lattice.cubic(NACL_A), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


@pytest.fixture
def li3n() -> Structure:
    return Structure(
        Lattice.hexagonal(LI3N_A, LI3N_C),
        ['N', 'Li', 'Li', 'Li'],
        [[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0]],
    )


def test_li2o_antifluorite(li2o):
    assert len(li2o) == 12
    out = structure_descriptors(li2o, 'Li')
    assert out['formula'] == 'Li2O'
    assert out['mobile_species'] == 'Li'
    assert out['stoichiometry'] == 'stoichiometric'
    assert out['crystal_system'] == 'cubic'
    assert out['space_group_number'] == 225
    assert out['space_group_symbol'] == 'Fm-3m'
    assert out['symmetry_operations'] == 48  # |m-3m| = 48
    assert out['formula_units'] == 4
    assert out['min_lattice_constant_A'] == pytest.approx(LI2O_A)
    assert out['volume_per_formula_unit_A3'] == pytest.approx(LI2O_A**3 / 4)
    assert out['lattice_constants_std_A'] == pytest.approx(0.0, abs=1e-9)
    assert out['lattice_angles_std_deg'] == pytest.approx(0.0, abs=1e-9)
    # Li is tetrahedrally coordinated by O at a*sqrt(3)/4; next shell (Li-Li) at a/2 is 15% further out
    assert out['nearest_neighbour_distance_A'] == pytest.approx(LI2O_A * np.sqrt(3) / 4)
    assert out['n_nearest_neighbours'] == pytest.approx(4.0)
    assert out['nominal_charge'] == pytest.approx(1.0)
    assert out['mobile_mass_amu'] == pytest.approx(6.94, abs=0.01)
    assert out['crystal_polarizability_A3'] is None


def test_oxygen_as_mobile_species_in_li2o(li2o):
    out = structure_descriptors(li2o, 'O')
    assert out['nominal_charge'] == pytest.approx(-2.0)
    # O sits in a cube of 8 Li at a*sqrt(3)/4
    assert out['n_nearest_neighbours'] == pytest.approx(8.0)
    assert out['nearest_neighbour_distance_A'] == pytest.approx(LI2O_A * np.sqrt(3) / 4)
    assert out['mobile_mass_amu'] == pytest.approx(16.00, abs=0.01)


def test_nacl_rocksalt(nacl):
    out = structure_descriptors(nacl, 'Na')
    assert out['formula'] == 'NaCl'
    assert out['symmetry_operations'] == 48
    assert out['formula_units'] == 4
    assert out['volume_per_formula_unit_A3'] == pytest.approx(NACL_A**3 / 4)
    assert out['nearest_neighbour_distance_A'] == pytest.approx(NACL_A / 2)
    assert out['n_nearest_neighbours'] == pytest.approx(6.0)  # octahedral
    assert out['nominal_charge'] == pytest.approx(1.0)
    assert out['mobile_mass_amu'] == pytest.approx(22.99, abs=0.01)


def test_nn_tolerance_widens_the_shell(nacl):
    # Na-Na second neighbours (12) at a/sqrt(2) = 1.414 d_nn: inside a 50% shell, outside the default 10%
    out = structure_descriptors(nacl, 'Na', nn_tolerance=0.5)
    assert out['n_nearest_neighbours'] == pytest.approx(6.0 + 12.0)
    assert out['nearest_neighbour_distance_A'] == pytest.approx(NACL_A / 2)


def test_li3n_hexagonal(li3n):
    out = structure_descriptors(li3n, 'Li')
    assert out['crystal_system'] == 'hexagonal'
    assert out['space_group_number'] == 191
    assert out['space_group_symbol'] == 'P6/mmm'
    assert out['symmetry_operations'] == 24  # |6/mmm| = 24
    assert out['formula_units'] == 1
    assert out['min_lattice_constant_A'] == pytest.approx(LI3N_A)
    assert out['volume_per_formula_unit_A3'] == pytest.approx(np.sqrt(3) / 2 * LI3N_A**2 * LI3N_C)
    assert out['lattice_constants_std_A'] == pytest.approx(np.std([LI3N_A, LI3N_A, LI3N_C]))
    assert out['lattice_angles_std_deg'] == pytest.approx(np.std([90.0, 90.0, 120.0]))
    # Li(1): 2 N at c/2 (next: 6 Li(2) at sqrt(a^2/3 + c^2/4), outside 1.1 c/2)
    # Li(2) (x2): 3 N and 3 Li(2) at a/sqrt(3)
    d1, d2 = LI3N_C / 2, LI3N_A / np.sqrt(3)
    assert np.sqrt(d2**2 + d1**2) > 1.1 * d1
    assert out['nearest_neighbour_distance_A'] == pytest.approx((d1 + 2 * d2) / 3)
    assert out['n_nearest_neighbours'] == pytest.approx((2 + 2 * 6) / 3)
    assert out['nominal_charge'] == pytest.approx(1.0)


def test_li3n_nitrogen_charge(li3n):
    out = structure_descriptors(li3n, 'N')
    assert out['nominal_charge'] == pytest.approx(-3.0)
    # N: 2 Li(1) at c/2 and 6 Li(2) at a/sqrt(3) (< 1.1 c/2): hexagonal bipyramid, 8-fold
    assert out['n_nearest_neighbours'] == pytest.approx(8.0)


def test_clausius_mossotti_polarizability(li2o):
    eps = 2.9
    omega = LI2O_A**3 / 4
    expected = 3 * omega / (4 * np.pi) * (eps - 1) / (eps + 2)
    out = structure_descriptors(li2o, 'Li', epsilon_inf=eps)
    assert out['crystal_polarizability_A3'] == pytest.approx(expected)
    tensor = np.diag([2.5, 2.9, 3.3])  # trace/3 = 2.9
    out = structure_descriptors(li2o, 'Li', epsilon_inf=tensor)
    assert out['crystal_polarizability_A3'] == pytest.approx(expected)


def test_primitive_and_conventional_give_the_same_descriptors(li2o, nacl):
    for conv, mobile in ((li2o, 'Li'), (nacl, 'Na')):
        prim = conv.get_primitive_structure()
        assert len(prim) == len(conv) // 4
        a = structure_descriptors(conv, mobile, epsilon_inf=3.0)
        b = structure_descriptors(prim, mobile, epsilon_inf=3.0)
        assert a.keys() == b.keys()
        for key, value in a.items():
            if isinstance(value, float):
                assert b[key] == pytest.approx(value, abs=1e-8), key
            else:
                assert b[key] == value, key


def test_supercell_gives_the_same_descriptors(li3n):
    a = structure_descriptors(li3n, 'Li')
    b = structure_descriptors(li3n * (2, 2, 1), 'Li')
    assert b['symmetry_operations'] == a['symmetry_operations'] == 24
    assert b['formula_units'] == a['formula_units']
    assert b['volume_per_formula_unit_A3'] == pytest.approx(a['volume_per_formula_unit_A3'])
    assert b['n_nearest_neighbours'] == pytest.approx(a['n_nearest_neighbours'])


def test_ase_atoms_input(li2o):
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(li2o)
    assert structure_descriptors(atoms, 'Li') == structure_descriptors(li2o, 'Li')


def test_non_stoichiometric_flag(li2o):
    out = structure_descriptors(li2o, 'Li', stoichiometric=False)
    assert out['stoichiometry'] == 'non-stoichiometric'


def test_oxidation_state_decorated_structure_uses_its_charges(li3n):
    decorated = li3n.copy()
    decorated.add_oxidation_state_by_element({'Li': 1, 'N': -3})
    assert structure_descriptors(decorated, 'N')['nominal_charge'] == pytest.approx(-3.0)


def test_errors(li3n, li2o):
    with pytest.raises(InputError, match=r"mobile species 'Na' not in structure Li3N"):
        structure_descriptors(li3n, 'Na')
    with pytest.raises(InputError, match='unknown element symbol'):
        structure_descriptors(li3n, 'Xx')
    for bad in (1.0, 0.5, np.nan, np.inf, -3.0):
        with pytest.raises(InputError, match='epsilon_inf'):
            structure_descriptors(li2o, 'Li', epsilon_inf=bad)
    with pytest.raises(InputError, match='epsilon_inf'):
        structure_descriptors(li2o, 'Li', epsilon_inf=[1.5, 2.0])
    with pytest.raises(InputError, match='empty'):
        structure_descriptors(Structure(Lattice.cubic(3.0), [], []), 'Li')
    with pytest.raises(InputError, match='pymatgen Structure'):
        structure_descriptors('Li2O', 'Li')


def test_mobile_ion_polarizability_from_the_published_table(li2o, nacl, li3n):
    """α_i is the electronic polarizability of the mobile ion in its nominal charge state, as printed by
    Tessman, Kahn & Shockley, Phys. Rev. 92, 890 (1953): "Li+ 0.03, Na+ 0.41, ... Cl- 2.96, ...
    O-- 0.5-3.2 ... Values represented by a spread indicate ions that cannot be treated additively"."""
    for structure, mobile, ion, published in (
        (li2o, 'Li', 'Li+', 0.03),
        (nacl, 'Na', 'Na+', 0.41),
        (nacl, 'Cl', 'Cl-', 2.96),
    ):
        out = structure_descriptors(structure, mobile)
        assert out['mobile_polarizability_A3'] == published
        ref = out['mobile_polarizability_reference']
        assert ref['ion'] == ion and ref['reason'] is None
        assert 'Tessman' in ref['citation'] and 'electronic' in ref['kind']
    # O2- has only a spread in the table, N3- is not in it: missing, with the reason
    oxide = structure_descriptors(li2o, 'O')
    assert oxide['mobile_polarizability_A3'] is None
    assert oxide['mobile_polarizability_reference']['ion'] == 'O2-'
    assert 'additively' in oxide['mobile_polarizability_reference']['reason']
    nitride = structure_descriptors(li3n, 'N')
    assert nitride['mobile_polarizability_A3'] is None
    assert 'N3- is not in the table' in nitride['mobile_polarizability_reference']['reason']


def test_mobile_ion_polarizability_follows_the_charge_state():
    # Cu in CuO is Cu2+ (source: Cu++ 0.2), in CuCl (zincblende) Cu+ (source: Cu+ 1.6)
    cuo = Structure.from_spacegroup('Fm-3m', Lattice.cubic(4.2), ['Cu', 'O'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cucl = Structure.from_spacegroup(
        'F-43m', Lattice.cubic(5.42), ['Cu', 'Cl'], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )
    assert structure_descriptors(cuo, 'Cu')['mobile_polarizability_A3'] == 0.2
    assert structure_descriptors(cucl, 'Cu')['mobile_polarizability_A3'] == 1.6
