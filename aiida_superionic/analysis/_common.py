"""Constants, species handling and array helpers shared by the analysis modules (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import constants as sc

from ..exceptions import InputError

#: Boltzmann constant in meV/K.
KB_MEV = sc.k / sc.e * 1e3
#: Planck constant in meV*fs (E = h*f with f in 1/fs).
H_MEV_FS = sc.h / sc.e * 1e3 * 1e15
#: Boltzmann constant in eV/K.
KB_EV = sc.k / sc.e
#: 1 Å^2/fs in cm^2/s.
A2_PER_FS_TO_CM2_PER_S = 1e-16 / 1e-15

#: The paper's order of preference for the mobile species (Li, Na, Ag, Cu, Cl, I, Br, F, O).
MOBILE_PREFERENCE = ('Li', 'Na', 'Ag', 'Cu', 'Cl', 'I', 'Br', 'F', 'O')

#: Number of atoms per chunk when a loop over atoms keeps float64 work arrays small.
ATOM_CHUNK = 16


def default_mobile(symbols: Sequence[str]) -> str:
    """Return the mobile species the paper would pick for a structure: the first of
    :data:`MOBILE_PREFERENCE` present in ``symbols``."""
    present = set(symbols)
    for species in MOBILE_PREFERENCE:
        if species in present:
            return species
    raise InputError(
        f'no mobile species given and none of {", ".join(MOBILE_PREFERENCE)} is present '
        f'(species: {", ".join(sorted(present))}); pass mobile=...'
    )


def atomic_masses(symbols: Sequence[str]) -> np.ndarray:
    """Atomic masses (amu) of ``symbols``; unknown symbols raise :class:`InputError`."""
    from ase.data import atomic_masses as masses
    from ase.data import atomic_numbers

    try:
        return np.array([masses[atomic_numbers[s]] for s in symbols], dtype=float)
    except KeyError as exc:
        raise InputError(f'unknown chemical symbol {exc.args[0]!r}') from None


def iter_chunks(indices: np.ndarray, size: int = ATOM_CHUNK):
    """Yield successive slices of ``indices`` of at most ``size`` items."""
    for start in range(0, len(indices), size):
        yield indices[start : start + size]
