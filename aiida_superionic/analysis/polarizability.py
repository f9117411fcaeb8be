"""α_i of Table 1: the mobile ion's polarizability, from a published table of ionic polarizabilities.

The paper lists α_i as "DFT" without saying how it was obtained. None of our engines can give the
polarizability of one ion inside a crystal (CHGNet has no electrons; VASP's linear response gives the
crystal's ε∞ and Born charges, i.e. α_c, not a per-ion split). So α_i is taken from ONE published
table, for every family, and the citation travels with the value:

* J. R. Tessman, A. H. Kahn and W. Shockley, "Electronic Polarizabilities of Ions in Crystals",
  Phys. Rev. 92, 890 (1953); the "best values for the sodium D line in Å^3" of the paper's abstract.

Kind of polarizability: **electronic** (optical frequency, sodium D line — no ionic/lattice part),
**in-crystal** (not free-ion), obtained by a least-squares fit of the refraction of crystals assuming
additivity and the Lorentz factor 4π/3 (Clausius-Mossotti/Lorentz-Lorenz); polarizability volume in
Å^3 (Gaussian units), the same convention as α_c (``clausius_mossotti_polarizability``).

The table covers every mobile species of the paper but one: Li+, Na+, Ag+, Cu+, F-, Cl-, Br-, I-. For
O2- (and S2-, Se2-, Te2-) the paper gives only a spread (O2-: 0.5-3.2 Å^3) because these "ions ...
cannot be treated additively"; they have no single value and α_i stays None, with that reason. No
value here is interpolated, fitted or taken from another table.
"""

from __future__ import annotations

import math
from typing import Any

from ..exceptions import InputError

#: The source of every value in :data:`ELECTRONIC_POLARIZABILITY_A3`.
CITATION = (
    'J. R. Tessman, A. H. Kahn and W. Shockley, "Electronic Polarizabilities of Ions in Crystals", '
    'Phys. Rev. 92, 890 (1953)'
)
DOI = '10.1103/PhysRev.92.890'
#: The table within that source.
TABLE = 'best values for the sodium D line in A^3 (abstract of Tessman, Kahn & Shockley 1953)'
#: Which kind of polarizability the values are.
KIND = (
    'electronic polarizability of the ion in the crystal (optical frequency, sodium D line; no ionic '
    'part), from a least-squares fit of refraction data with additivity and Lorentz factor 4*pi/3; '
    'polarizability volume in A^3'
)

#: (element, charge) -> α (Å^3), exactly as printed in the source (every single-valued ion it lists).
ELECTRONIC_POLARIZABILITY_A3: dict[tuple[str, int], float] = {
    ('Li', 1): 0.03,
    ('Na', 1): 0.41,
    ('K', 1): 1.33,
    ('Rb', 1): 1.98,
    ('Cs', 1): 3.34,
    ('F', -1): 0.64,
    ('Cl', -1): 2.96,
    ('Br', -1): 4.16,
    ('I', -1): 6.43,
    ('Ca', 2): 1.1,
    ('Sr', 2): 1.6,
    ('Ba', 2): 2.5,
    ('Ag', 1): 2.4,
    ('Cu', 1): 1.6,
    ('Cu', 2): 0.2,
    ('Zn', 2): 0.8,
    ('Cd', 2): 1.8,
    ('Ge', 4): 1.0,
    ('Sn', 4): 3.4,
    ('Pb', 2): 4.9,
}

#: (element, charge) -> (low, high) Å^3: ions the source gives only as a spread ("cannot be treated
#: additively"); no single value exists, so α_i stays None for them.
NOT_ADDITIVE_RANGE_A3: dict[tuple[str, int], tuple[float, float]] = {
    ('O', -2): (0.5, 3.2),
    ('S', -2): (4.8, 5.9),
    ('Se', -2): (6.0, 7.5),
    ('Te', -2): (8.3, 10.2),
}


def ion_label(symbol: str, charge: int) -> str:
    """'Li+', 'O2-', 'Ge4+' for (symbol, integer charge)."""
    if charge == 0:
        return symbol
    magnitude = '' if abs(charge) == 1 else str(abs(charge))
    return f'{symbol}{magnitude}{"+" if charge > 0 else "-"}'


def mobile_ion_polarizability(symbol: str, charge: float) -> dict[str, Any]:
    """α_i of the ion ``symbol`` with oxidation state ``charge`` (e.g. Z_N) from the table.

    :returns: dict with ``value_A3`` (float, or None where the table has no single value), ``ion``
        (the ion looked up, e.g. 'Li+'; None for a non-integer charge), ``citation``, ``doi``,
        ``table``, ``kind`` and ``reason`` (None when a value was found, else why there is none).
    :raises InputError: ``symbol`` is not a string or ``charge`` is not a finite number.
    """
    if not isinstance(symbol, str) or not symbol.strip():
        raise InputError(f'ion symbol must be an element symbol, not {symbol!r}')
    try:
        z = float(charge)
    except (TypeError, ValueError):
        raise InputError(f'ion charge must be a number, not {charge!r}') from None
    if not math.isfinite(z):
        raise InputError(f'ion charge must be finite, not {charge!r}')
    symbol = symbol.strip()
    out: dict[str, Any] = {
        'value_A3': None,
        'ion': None,
        'citation': CITATION,
        'doi': DOI,
        'table': TABLE,
        'kind': KIND,
        'reason': None,
    }
    if abs(z - round(z)) > 1e-6:
        out['reason'] = (
            f'non-integer oxidation state {z:g} of {symbol}: the table lists ions of integer charge only'
        )
        return out
    key = (symbol, round(z))
    out['ion'] = ion_label(*key)
    if key in ELECTRONIC_POLARIZABILITY_A3:
        out['value_A3'] = ELECTRONIC_POLARIZABILITY_A3[key]
    elif key in NOT_ADDITIVE_RANGE_A3:
        low, high = NOT_ADDITIVE_RANGE_A3[key]
        out['reason'] = (
            f'{out["ion"]}: the table gives only a spread, {low:g}-{high:g} A^3 ("cannot be treated '
            'additively"), no single value'
        )
    else:
        out['reason'] = f'{out["ion"]} is not in the table'
    return out
