"""Reading the crystal structures users give on the command line."""

from __future__ import annotations

from pathlib import Path

from ..exceptions import InputError


def read_structure(path: Path, mobile: str | None = None):
    """A pymatgen Structure from CIF, POSCAR or anything pymatgen/ASE read; one clear error otherwise
    (missing or unreadable file, no atoms, partial occupancies, overlapping atoms, no ``mobile`` species)."""
    import warnings

    import numpy as np
    from pymatgen.core import Structure

    if not path.is_file():
        raise InputError(f'no such structure file: {path}')
    try:
        with (
            warnings.catch_warnings()
        ):  # e.g. CIF coordinates rounded to ideal values: not the user's problem
            warnings.simplefilter('ignore')
            structure = Structure.from_file(str(path))
    except Exception as exc:  # pymatgen raises many types for unreadable files
        try:
            import ase.io
            from pymatgen.io.ase import AseAtomsAdaptor

            structure = AseAtomsAdaptor.get_structure(ase.io.read(path))
        except Exception:
            # the file ends before the atoms do (a CIF loop cut after its headers: ZeroDivisionError)
            if isinstance(exc, (IndexError, EOFError, StopIteration, ZeroDivisionError)):
                raise InputError(
                    f'cannot read the structure {path.name}: the file ends early (truncated?)'
                ) from None
            raise InputError(f'cannot read the structure {path.name}: {type(exc).__name__}: {exc}') from None
    if len(structure) == 0:
        raise InputError(f'the structure {path.name} has no atoms')
    if not structure.is_ordered:
        raise InputError(
            f'the structure {path.name} has partial occupancies: order it first (one atom per site)'
        )
    volume = float(abs(np.linalg.det(structure.lattice.matrix)))
    if not (np.isfinite(volume) and volume > 1.0):
        raise InputError(f'the structure {path.name} has a degenerate cell (volume {volume:.3g} Å³)')
    distances = structure.distance_matrix
    if len(structure) > 1:
        closest = float(
            min(distances[i, j] for i in range(len(structure)) for j in range(i + 1, len(structure)))
        )
        if closest < 0.5:
            raise InputError(f'the structure {path.name} has overlapping atoms ({closest:.2f} Å apart)')
    if mobile is not None and mobile not in {el.symbol for el in structure.composition.elements}:
        raise InputError(
            f'mobile species {mobile!r} not in structure {structure.composition.reduced_formula}'
        )
    return structure
