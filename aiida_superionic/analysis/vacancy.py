"""The vacancy energy E_vac of Table 1: which sites are tried and which chemical potential is used.

Both engines (the MLIP runner and the VASP vacancy chain) take these two rules from here, so that an
E_vac of one engine means the same as one of the other.

Sites
    :func:`mobile_site_classes`: the symmetry-inequivalent sites of the mobile species in the (relaxed)
    unit cell, from spglib's ``equivalent_atoms`` with tolerance ``symprec`` (Å; default
    :data:`VACANCY_SYMPREC`). One vacancy is relaxed per class, in the supercell ``atoms.repeat(reps)``
    (ASE tiling: atom ``i`` of the unit cell is atom ``i`` of the supercell's first image, so the
    representative's index is also its supercell index), and E_vac is the **lowest** of the classes;
    every class is kept in the output.

Chemical potential (:func:`chemical_potential_reference`)
    μ of the mobile species is the energy per atom of its elemental reference, computed with the same
    engine and settings as the defect cells:

    * Li, Na, K: the bcc metal; Ag, Cu: the fcc metal (cell and positions relaxed). bcc is the
      room-temperature structure of the alkali metals; the close-packed low-temperature polymorphs of
      Li and Na lie within a few meV/atom of it in PBE, negligible on the eV scale of E_vac.
    * F, Cl, Br, I: half the energy of the isolated X2 molecule (closed-shell singlet, spin not
      polarized) in a periodic orthorhombic box of :data:`MOLECULE_BOX_A` Å (positions relaxed).
    * O: half the energy of the isolated O2 molecule in its **triplet** ground state, in the same box.
      VASP: ``ISPIN = 2``, ``MAGMOM = 1 1``, ``NUPDOWN = 2`` (two unpaired electrons fixed); the MLIP
      potential has no spin: its O2 energy is the one it learned from spin-polarized (Materials
      Project, PBE) calculations.
    * any other species: no rule; the user gives μ (``vacancy.mu_eV``), which is recorded as given.

Nothing here imports AiiDA or ASE: structures are plain arrays (cell rows in Å, cartesian positions).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import InputError

__all__ = (
    'METAL_REFERENCES',
    'MOLECULE_BOX_A',
    'MOLECULE_REFERENCES',
    'MU_RULE',
    'VACANCY_SYMPREC',
    'chemical_potential_reference',
    'mobile_site_classes',
    'reference_elements',
)

#: Default spglib tolerance (Å) for the equivalence classes of the mobile sites.
VACANCY_SYMPREC = 0.01

#: Elemental metals: structure and starting conventional lattice constant (Å; ASE's reference values).
METAL_REFERENCES: dict[str, tuple[str, float]] = {
    'Li': ('bcc', 3.49),
    'Na': ('bcc', 4.23),
    'K': ('bcc', 5.23),
    'Ag': ('fcc', 4.09),
    'Cu': ('fcc', 3.61),
}
#: Diatomic molecules: starting bond length (Å) and spin state.
MOLECULE_REFERENCES: dict[str, tuple[float, str]] = {
    'F': (1.42, 'singlet'),
    'Cl': (1.99, 'singlet'),
    'Br': (2.28, 'singlet'),
    'I': (2.67, 'singlet'),
    'O': (1.21, 'triplet'),
}
#: Periodic box of the isolated molecules (Å): orthorhombic, so no two axes are equivalent.
MOLECULE_BOX_A = (12.0, 12.5, 13.0)

#: The rule in one line (recorded with every vacancy result).
MU_RULE = (
    'mu = energy per atom of the elemental reference computed with the same engine and settings: '
    'bcc Li/Na/K, fcc Ag/Cu (cell + positions relaxed); half the isolated X2 molecule for F/Cl/Br/I '
    '(singlet) and O (O2 triplet) in a {:g} x {:g} x {:g} A box (positions relaxed); '
    'otherwise given by the user (vacancy.mu_eV)'.format(*MOLECULE_BOX_A)
)


def reference_elements() -> tuple[str, ...]:
    """Elements for which :func:`chemical_potential_reference` has a rule."""
    return tuple(METAL_REFERENCES) + tuple(MOLECULE_REFERENCES)


def chemical_potential_reference(element: str) -> dict[str, Any]:
    """The reference structure of ``element``'s chemical potential (see the module docstring).

    Returns a dict with ``element``, ``kind`` (``'metal'`` or ``'molecule'``), ``structure`` (``'bcc'``,
    ``'fcc'`` or ``'X2 molecule'``), ``spin`` (``'none'``, ``'singlet'`` or ``'triplet'``),
    ``n_unpaired`` (unpaired electrons of the molecule), ``relax_cell`` (bool), the starting cell
    ``symbols``, ``cell`` (3 x 3, rows, Å), ``positions`` (cartesian, Å), ``n_atoms`` and a
    ``description`` (one line)."""
    element = str(element).strip()
    if element in METAL_REFERENCES:
        structure, a = METAL_REFERENCES[element]
        half = a / 2
        if structure == 'bcc':  # primitive vectors as ase.build.bulk
            cell = [[-half, half, half], [half, -half, half], [half, half, -half]]
        else:
            cell = [[0.0, half, half], [half, 0.0, half], [half, half, 0.0]]
        return {
            'element': element,
            'kind': 'metal',
            'structure': structure,
            'spin': 'none',
            'n_unpaired': 0,
            'relax_cell': True,
            'symbols': [element],
            'cell': cell,
            'positions': [[0.0, 0.0, 0.0]],
            'n_atoms': 1,
            'description': f'energy per atom of {structure} {element} metal (cell + positions relaxed)',
        }
    if element in MOLECULE_REFERENCES:
        bond, spin = MOLECULE_REFERENCES[element]
        box = np.diag(MOLECULE_BOX_A)
        centre = np.diag(box) / 2
        half_bond = np.array([0.0, 0.0, bond / 2])
        positions = [list(centre - half_bond), list(centre + half_bond)]
        n_unpaired = 2 if spin == 'triplet' else 0
        return {
            'element': element,
            'kind': 'molecule',
            'structure': f'{element}2 molecule',
            'spin': spin,
            'n_unpaired': n_unpaired,
            'relax_cell': False,
            'symbols': [element, element],
            'cell': box.tolist(),
            'positions': [[float(x) for x in p] for p in positions],
            'n_atoms': 2,
            'description': (
                f'half the energy of the isolated {element}2 molecule ({spin}) in a '
                '{:g} x {:g} x {:g} A periodic box (positions relaxed)'.format(*MOLECULE_BOX_A)
            ),
        }
    raise InputError(
        f'no chemical-potential reference for {element!r} (the rule covers {", ".join(reference_elements())}): '
        'give vacancy.mu_eV'
    )


def mobile_site_classes(
    cell: Any, scaled_positions: Any, symbols: Any, mobile: str, symprec: float = VACANCY_SYMPREC
) -> list[dict[str, Any]]:
    """Symmetry-inequivalent sites of ``mobile`` in one periodic cell.

    :param cell: 3 x 3 lattice vectors (rows, Å).
    :param scaled_positions: fractional coordinates (n x 3).
    :param symbols: chemical symbols (n).
    :param mobile: the mobile element.
    :param symprec: spglib tolerance in Å.
    :returns: one dict per class, ordered by the first atom of the class: ``index`` (that atom, the
        representative), ``members`` (indices of the class in this cell), ``multiplicity`` (their number
        in this cell), ``wyckoff`` (multiplicity in spglib's conventional standard cell and Wyckoff
        letter, e.g. ``'2c'``) and ``site_symmetry`` (spglib's site-symmetry symbol).
    """
    import spglib

    symbols = [str(s) for s in symbols]
    frac = np.asarray(scaled_positions, dtype=float)
    lattice = np.asarray(cell, dtype=float)
    if lattice.shape != (3, 3) or frac.shape != (len(symbols), 3):
        raise InputError(
            f'site classes: cell {lattice.shape} must be 3 x 3 and positions {frac.shape} n_atoms x 3'
        )
    if not symprec > 0:
        raise InputError(f'site classes: symprec must be > 0 Å, got {symprec!r}')
    if mobile not in symbols:
        raise InputError(f'no {mobile} atom in the structure ({"".join(sorted(set(symbols)))})')
    species = sorted(set(symbols))
    numbers = [species.index(s) + 1 for s in symbols]
    dataset = spglib.get_symmetry_dataset((lattice, frac, numbers), symprec=float(symprec))
    if dataset is None:
        raise InputError(
            f'site classes: spglib found no symmetry (symprec={symprec} Å): {spglib.get_error_message()}'
        )

    def field(name):
        return dataset[name] if isinstance(dataset, dict) else getattr(dataset, name)

    equivalent = np.asarray(field('equivalent_atoms'))
    wyckoffs = list(field('wyckoffs'))
    site_symmetry = list(field('site_symmetry_symbols'))
    n_std = len(field('std_types'))
    classes: dict[int, list[int]] = {}
    for i, sym in enumerate(symbols):
        if sym == mobile:
            classes.setdefault(int(equivalent[i]), []).append(i)
    out = []
    for members in sorted(classes.values(), key=lambda m: m[0]):
        first = members[0]
        in_std = len(members) * n_std / len(symbols)
        out.append(
            {
                'index': first,
                'members': members,
                'multiplicity': len(members),
                'wyckoff': f'{round(in_std)}{wyckoffs[first]}',
                'site_symmetry': str(site_symmetry[first]).strip(),
            }
        )
    return out


def vacancy_site_result(
    site: dict[str, Any], n_images: int, e_defect: float, e_vac: float, converged: bool, **extra: Any
) -> dict[str, Any]:
    """One entry of a vacancy step's ``sites``: the class from :func:`mobile_site_classes` (its
    representative keeps its index in a supercell made by repeating the cell ``n_images`` times), the
    relaxed defect's energy, E_vac and whether the relaxation converged (eV)."""
    return {
        'index': site['index'],
        'supercell_index': site['index'],
        'wyckoff': site['wyckoff'],
        'site_symmetry': site['site_symmetry'],
        'multiplicity': site['multiplicity'],
        'multiplicity_supercell': site['multiplicity'] * n_images,
        'members': site['members'],
        'E_defect_eV': e_defect,
        'E_vac_eV': e_vac,
        'converged': converged,
        **extra,
    }
