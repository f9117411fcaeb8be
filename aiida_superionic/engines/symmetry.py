"""The crystal's standard primitive cell (spglib), for the steps whose result is a property of the crystal.

Γ, the lowest optical phonon at Γ (Table 1), is a property of the crystal's primitive cell: the Γ point of a
conventional cell or a supercell also holds zone-boundary modes of the primitive cell folded back, and a
finite-displacement calculation depends on the supercell and displacement directions built on the cell it
is given. Both engines therefore run their Γ step on :func:`standard_primitive` of the relaxed structure,
whatever cell the user gave. No AiiDA import: the MLIP runner uses this on the compute node.
"""

from __future__ import annotations

import numpy as np

__all__ = ('SYMPREC_A', 'primitive_atoms', 'standard_primitive')

#: Distance tolerance (Å) of the symmetry search. A relaxation keeps a symmetric structure symmetric to the
#: round-off of its forces (~1e-6 Å); 1e-3 Å finds the symmetry of a relaxed crystal and moves no atom by
#: more than that when the cell is idealized.
SYMPREC_A = 1e-3


def standard_primitive(cell, scaled_positions, numbers, symprec: float = SYMPREC_A) -> dict[str, object]:
    """spglib's standardized primitive cell of a crystal (idealized, in the standard orientation).

    Returns ``{'cell' (3x3, Å, rows = lattice vectors), 'scaled_positions' (n x 3), 'numbers' (n,),
    'spacegroup' ('Fm-3m (225)'), 'n_input', 'symprec'}``, atoms sorted by atomic number. The same crystal
    given as any cell (primitive, conventional, a supercell, rotated, with its atoms in another order) gives
    the same lattice vectors here, in the same orientation, and the same atoms up to spglib's choice among
    equivalent origins, which is what makes a Γ step independent of the cell the user gave. Raises ``ValueError`` for a malformed
    crystal or when spglib finds no cell.
    """
    import spglib

    cell = np.asarray(cell, dtype=float)
    scaled_positions = np.asarray(scaled_positions, dtype=float)
    numbers = np.asarray(numbers, dtype=int)
    if cell.shape != (3, 3) or scaled_positions.shape != (len(numbers), 3) or not len(numbers):
        raise ValueError(
            f'bad crystal: cell {cell.shape}, positions {scaled_positions.shape}, {len(numbers)} atoms'
        )
    spg_cell = (cell, scaled_positions, numbers)
    standardized = spglib.standardize_cell(spg_cell, to_primitive=True, no_idealize=False, symprec=symprec)
    dataset = spglib.get_symmetry_dataset(spg_cell, symprec=symprec)
    if standardized is None or dataset is None:
        raise ValueError(f'spglib found no symmetry at symprec = {symprec} Å ')
    lattice, positions, prim_numbers = standardized
    order = np.argsort(prim_numbers, kind='stable')  # atoms by element, whatever order the input had
    positions, prim_numbers = np.asarray(positions)[order], np.asarray(prim_numbers)[order]
    positions = np.mod(np.asarray(positions, dtype=float), 1.0)
    positions[np.isclose(positions, 1.0, atol=1e-12)] = 0.0
    if len(numbers) % len(prim_numbers):
        raise ValueError(f'spglib: {len(prim_numbers)}-atom primitive cell of a {len(numbers)}-atom cell')
    return {
        'cell': np.asarray(lattice, dtype=float),
        'scaled_positions': positions,
        'numbers': np.asarray(prim_numbers, dtype=int),
        'spacegroup': f'{dataset.international} ({dataset.number})',
        'n_input': len(numbers),
        'symprec': float(symprec),
    }


def primitive_atoms(atoms, symprec: float = SYMPREC_A):
    """(ASE ``Atoms`` of :func:`standard_primitive` of ``atoms``, with the input's mass of each element;
    the record of that cell: ``n_atoms_input``, ``n_atoms_primitive``, ``primitive_cell_A``,
    ``primitive_symbols``, ``primitive_scaled_positions``, ``spacegroup``, ``symprec_A``), the same for
    both engines' Γ steps. Raises ``ValueError`` as :func:`standard_primitive`, or when atoms of one
    element carry different masses."""
    from ase import Atoms

    prim = standard_primitive(atoms.cell, atoms.get_scaled_positions(), atoms.numbers, symprec)
    masses: dict[int, float] = {}
    for number, mass in zip(atoms.numbers, atoms.get_masses(), strict=True):
        if abs(masses.setdefault(int(number), float(mass)) - float(mass)) > 1e-9:
            raise ValueError(f'atoms of element {number} carry different masses')
    primitive = Atoms(
        numbers=prim['numbers'],
        cell=prim['cell'],
        scaled_positions=prim['scaled_positions'],
        masses=[masses[int(n)] for n in prim['numbers']],
        pbc=True,
    )
    record = {
        'n_atoms_input': len(atoms),
        'n_atoms_primitive': len(primitive),
        'primitive_cell_A': prim['cell'].tolist(),
        'primitive_symbols': primitive.get_chemical_symbols(),
        'primitive_scaled_positions': prim['scaled_positions'].tolist(),
        'spacegroup': prim['spacegroup'],
        'symprec_A': prim['symprec'],
    }
    return primitive, record
