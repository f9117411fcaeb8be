"""Vacancy site classes and the chemical-potential rule (:mod:`aiida_superionic.analysis.vacancy`).

The classes are checked against pymatgen's SpacegroupAnalyzer (symmetrized structure: equivalent
indices and Wyckoff symbols) on the same cells, and against the crystallography of the literature:
alpha-Li3N (P6/mmm) has Li on 1b and 2c (Rabenau & Schulz 1976), rocksalt one cation site (4a/4b of
Fm-3m), Li2O (antifluorite) one Li site (8c).
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from aiida_superionic.analysis.vacancy import (
    MOLECULE_BOX_A,
    chemical_potential_reference,
    mobile_site_classes,
    reference_elements,
)
from aiida_superionic.exceptions import InputError


def li3n(a=3.648, c=3.875):
    cell = [[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]]
    frac = [[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0]]
    return Atoms('NLi3', scaled_positions=frac, cell=cell, pbc=True)


def classes_of(atoms, mobile, symprec=0.01):
    return mobile_site_classes(
        np.asarray(atoms.cell), atoms.get_scaled_positions(), atoms.get_chemical_symbols(), mobile, symprec
    )


def pymatgen_classes(atoms, mobile, symprec=0.01):
    sym = SpacegroupAnalyzer(
        AseAtomsAdaptor.get_structure(atoms), symprec=symprec
    ).get_symmetrized_structure()
    return {
        tuple(idx): w
        for idx, w in zip(sym.equivalent_indices, sym.wyckoff_symbols, strict=True)
        if atoms[idx[0]].symbol == mobile
    }


def li2o():
    return crystal(
        ['O', 'Li'], basis=[(0, 0, 0), (0.25, 0.25, 0.25)], spacegroup=225, cellpar=[4.61] * 3 + [90] * 3
    )


@pytest.mark.parametrize(
    ('name', 'atoms', 'mobile', 'wyckoffs'),
    [
        ('Li3N', li3n(), 'Li', ['1b', '2c']),
        ('LiF rocksalt primitive', bulk('LiF', 'rocksalt', a=4.03), 'Li', ['4a']),
        ('NaCl rocksalt conventional', bulk('NaCl', 'rocksalt', a=5.64, cubic=True), 'Na', ['4a']),
        ('Li2O antifluorite conventional', li2o(), 'Li', ['8c']),
        ('Li3N 2x1x2 supercell', li3n().repeat([2, 1, 2]), 'Li', ['1b', '2c']),
    ],
)
def test_site_classes_match_pymatgen(name, atoms, mobile, wyckoffs):
    classes = classes_of(atoms, mobile)
    # pymatgen labels a class with its number of atoms in the given cell + the Wyckoff letter; ours is
    # the Wyckoff position proper (multiplicity in the conventional cell + letter), 'multiplicity' the former
    ours = {tuple(c['members']): f'{c["multiplicity"]}{c["wyckoff"][-1]}' for c in classes}
    assert ours == pymatgen_classes(atoms, mobile), name
    if wyckoffs is not None:
        assert sorted(c['wyckoff'] for c in classes) == wyckoffs
    n_mobile = sum(s == mobile for s in atoms.get_chemical_symbols())
    assert sum(c['multiplicity'] for c in classes) == n_mobile
    for c in classes:
        assert c['index'] == c['members'][0] and atoms[c['index']].symbol == mobile


def test_rocksalt_has_one_class_li3n_two():
    assert len(classes_of(bulk('LiF', 'rocksalt', a=4.03).repeat(2), 'Li')) == 1
    classes = classes_of(li3n(), 'Li')
    assert [c['multiplicity'] for c in classes] == [1, 2]
    assert [c['site_symmetry'] for c in classes] == ['6/mmm', '-6m2']


def test_symprec_decides_whether_a_distorted_site_is_equivalent():
    atoms = li3n()
    atoms.positions[3] += [0.0, 0.0, 0.005]  # one 2c Li moved by 0.005 Å
    assert len(classes_of(atoms, 'Li', symprec=0.01)) == 2  # within tolerance: still 1b + 2c
    loose = {tuple(c['members']) for c in classes_of(atoms, 'Li', symprec=0.01)}
    tight = {tuple(c['members']) for c in classes_of(atoms, 'Li', symprec=1e-4)}
    assert loose == set(pymatgen_classes(atoms, 'Li', 0.01))
    assert tight == set(pymatgen_classes(atoms, 'Li', 1e-4)) and len(tight) == 3


def test_site_classes_bad_input():
    with pytest.raises(InputError, match='no K atom'):
        classes_of(li3n(), 'K')
    with pytest.raises(InputError, match='symprec'):
        classes_of(li3n(), 'Li', symprec=0.0)
    with pytest.raises(InputError, match='3 x 3'):
        mobile_site_classes(np.eye(2), [[0, 0, 0]], ['Li'], 'Li')


def test_chemical_potential_rule():
    for element, structure in (('Li', 'bcc'), ('Na', 'bcc'), ('K', 'bcc'), ('Ag', 'fcc'), ('Cu', 'fcc')):
        ref = chemical_potential_reference(element)
        assert ref['kind'] == 'metal' and ref['structure'] == structure and ref['relax_cell']
        ase_ref = bulk(element)  # ASE's elemental crystal: the same lattice and lattice constant
        assert ase_ref.cell.cellpar() == pytest.approx(Atoms(ref['symbols'], cell=ref['cell']).cell.cellpar())
    for element in ('F', 'Cl', 'Br', 'I', 'O'):
        ref = chemical_potential_reference(element)
        assert ref['kind'] == 'molecule' and ref['structure'] == f'{element}2 molecule'
        assert not ref['relax_cell'] and ref['n_atoms'] == 2
        assert np.diag(ref['cell']) == pytest.approx(MOLECULE_BOX_A)
        mol = Atoms(ref['symbols'], positions=ref['positions'], cell=ref['cell'], pbc=True)
        assert mol.get_distance(0, 1, mic=True) == pytest.approx(
            mol.get_distance(0, 1)
        )  # not split by the box
        assert ref['spin'] == ('triplet' if element == 'O' else 'singlet')
        assert ref['n_unpaired'] == (2 if element == 'O' else 0)
    assert set(reference_elements()) == {'Li', 'Na', 'K', 'Ag', 'Cu', 'F', 'Cl', 'Br', 'I', 'O'}
    with pytest.raises(InputError, match=r"no chemical-potential reference for 'S'.*vacancy\.mu_eV"):
        chemical_potential_reference('S')
