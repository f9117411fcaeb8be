"""Task ``phonon_gamma``: the frequencies at Γ of the crystal's primitive cell."""

from __future__ import annotations

import numpy as np

from ..common import THZ_TO_MEV, Context, TaskError, _log, _settings
from ..fileformat import FORCE_CONSTANTS_FILE, PHONOPY_FILE
from .relax import _auto_supercell


def _primitive_atoms(atoms, symprec: float):
    """The standard primitive cell of ``atoms`` and its record
    (:func:`aiida_superionic.engines.symmetry.primitive_atoms`); a failure is a task error."""
    from aiida_superionic.engines.symmetry import primitive_atoms

    try:
        return primitive_atoms(atoms, symprec)
    except ValueError as exc:
        raise TaskError(f'phonon_gamma: no primitive cell of the input: {exc}') from None


#: Finite displacement of the Γ task (Å). 0.03 Å (phono3py's default) rather than phonopy's 0.01 Å: an
#: ML potential's energy surface is not smooth on the 1e-3-1e-2 Å scale everywhere (CHGNet 0.3.0 has a
#: kink of that width around the exact 180° Cl-Na-Cl angles of rocksalt), and 0.01 Å then samples the
#: kink: NaCl relaxed from its primitive and from its conventional cell (a = 5.6988 vs 5.6995 Å) gave
#: Γ = 7.80 vs 8.49 meV at 0.01 Å, 13.77 vs 13.71 meV at 0.03 Å.
PHONON_DISPLACEMENT_A = 0.03


def task_phonon_gamma(atoms, settings: dict, ctx: Context):
    """Frequencies at Γ of the crystal's primitive cell: Γ does not depend on the cell the user gave.

    The input (any cell of the crystal: primitive, conventional, a supercell, rotated) is reduced to spglib's
    standardized primitive cell; the supercell (``supercell`` or ``min_length_A``) and phonopy's
    displacements are built on that cell. A conventional cell's own Γ would also hold zone-boundary modes of
    the primitive cell folded back, and its supercell and displacement directions would differ: with CHGNet,
    whose energy is not harmonic at 0.01 Å around high-symmetry sites, that alone moved Γ of NaCl by 1.2 meV.
    """
    from ase import Atoms
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    from aiida_superionic.engines.symmetry import SYMPREC_A

    s = _settings(
        settings,
        {
            'supercell': None,
            'displacement': PHONON_DISPLACEMENT_A,
            'min_length_A': 6.0,
            'symprec_A': SYMPREC_A,
        },
    )
    primitive, primitive_record = _primitive_atoms(atoms, float(s['symprec_A']))
    _log(
        f'phonon_gamma: {primitive_record["spacegroup"]}, {len(atoms)}-atom input -> '
        f'{len(primitive)}-atom primitive cell'
    )
    supercell = s['supercell'] or _auto_supercell(primitive, float(s['min_length_A']))
    supercell_matrix = (
        np.diag([int(n) for n in supercell]) if np.ndim(supercell) == 1 else np.asarray(supercell)
    )
    unitcell = PhonopyAtoms(
        symbols=primitive.get_chemical_symbols(),
        cell=np.asarray(primitive.cell),
        scaled_positions=primitive.get_scaled_positions(),
        masses=primitive.get_masses(),
    )
    phonon = Phonopy(unitcell, supercell_matrix=supercell_matrix, primitive_matrix='P', log_level=0)
    phonon.generate_displacements(distance=float(s['displacement']))

    def forces_of(cell) -> np.ndarray:
        sc = Atoms(
            symbols=cell.symbols,
            cell=cell.cell,
            scaled_positions=cell.scaled_positions,
            masses=cell.masses,
            pbc=True,
        )
        sc.calc = ctx.calc
        return np.asarray(sc.get_forces())

    reference_forces = forces_of(phonon.supercell)  # residual forces of the undisplaced supercell
    displaced = phonon.supercells_with_displacements
    forces = []
    for k, cell in enumerate(displaced):
        forces.append(forces_of(cell) - reference_forces)
        _log(f'phonon_gamma: displacement {k + 1}/{len(displaced)}  ({len(cell)} atoms)')
    phonon.forces = np.asarray(forces)
    phonon.produce_force_constants(show_drift=False)
    phonon.symmetrize_force_constants()  # translational invariance -> acoustic modes at 0
    np.save(ctx.workdir / FORCE_CONSTANTS_FILE, phonon.force_constants)
    try:
        phonon.save(str(ctx.workdir / PHONOPY_FILE), settings={'force_constants': True})
    except Exception as exc:  # the yaml is a convenience only
        _log(f'phonon_gamma: could not write {PHONOPY_FILE}: {exc}')
    qpoints = phonon.run_qpoints([[0.0, 0.0, 0.0]])  # phonopy >= 4 returns the result, older ones None
    gamma = qpoints.frequencies[0] if qpoints is not None else phonon.get_qpoints_dict()['frequencies'][0]
    frequencies = np.sort(np.asarray(gamma) * THZ_TO_MEV)
    # The acoustic modes are the three closest to zero (not the three lowest: a structure with soft,
    # imaginary optical modes has them below the acoustic ones); Γ is the lowest of the others,
    # negative when imaginary (a dynamically unstable structure).
    acoustic = np.sort(np.argsort(np.abs(frequencies))[:3])
    optical = np.delete(frequencies, acoustic)
    results = {
        'frequencies_meV': frequencies,
        'acoustic_meV': frequencies[acoustic],
        'gamma_mode_meV': float(optical.min()) if len(optical) else None,
        'n_imaginary_optical': int(np.sum(optical < -0.5)),
        'supercell_matrix': supercell_matrix,
        'n_displacements': len(displaced),
        'n_atoms_supercell': len(phonon.supercell),
        'displacement_A': float(s['displacement']),
        **primitive_record,
        'method': 'phonopy finite displacements (reference forces subtracted), full FCs symmetrized, on a '
        "supercell of spglib's standardized primitive cell of the input; frequencies at Gamma of that "
        'primitive cell (imaginary as negative)',
    }
    return 'ok', f'{len(displaced)} displacements in a {len(phonon.supercell)}-atom supercell', results
