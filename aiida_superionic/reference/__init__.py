"""The reference set: prototypical solid electrolytes shipped with the package (``cifs/`` + ``index.yaml``).

Written from published crystallographic data by :mod:`aiida_superionic.reference.build`; the family of a
material is its mobile species as in the paper (Li, Na, halide, O, Ag/Cu). No AiiDA import at module level.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

__all__ = (
    'FAMILIES',
    'PAPER_FRACTIONS',
    'REFERENCE_DIR',
    'excluded',
    'family_fractions',
    'fast_run_plan',
    'materials',
    'stored_fast_plan',
)

REFERENCE_DIR = Path(__file__).resolve().parent
FAMILIES: tuple[str, ...] = ('Li', 'halide', 'Na', 'O', 'Ag/Cu')
#: The paper's database (61 materials): 46 % Li, 23 % halide, 15 % Na, 8 % O, 8 % Ag/Cu mobile ions.
PAPER_FRACTIONS: dict[str, float] = {'Li': 0.46, 'halide': 0.23, 'Na': 0.15, 'O': 0.08, 'Ag/Cu': 0.08}
#: MLIP speed measured on 2 CPU cores: 0.28 MD steps per second for a 216-atom cell (cost ∝ atoms).
STEPS_PER_S_216_ATOMS = 0.28


@lru_cache(maxsize=1)
def _index() -> dict:
    import yaml

    return yaml.safe_load((REFERENCE_DIR / 'index.yaml').read_text())


def materials(family: str | None = None, fast_plan: bool = False) -> list[dict]:
    """The index entries (``name``, ``formula``, ``family``, ``mobile``, ``space_group_number``,
    ``density_g_cm3``, ``reference`` ...) with ``path`` (the CIF), optionally of one ``family`` and only
    those of the stored fast-protocol plan (``fast_plan``: the 2-hour run on 2 cores)."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f'unknown family {family!r}: choose from {", ".join(FAMILIES)}')
    index = _index()
    plan = set(index.get('fast_protocol_plan', {}).get('included', [])) if fast_plan else None
    return [
        {**entry, 'path': REFERENCE_DIR / entry['file']}
        for entry in index['materials']
        if (family is None or entry['family'] == family) and (plan is None or entry['name'] in plan)
    ]


def stored_fast_plan() -> dict:
    """The fast-protocol plan stored in the index by the build (:func:`fast_run_plan` at build time)."""
    return dict(_index()['fast_protocol_plan'])


def excluded() -> list[dict]:
    """Materials left out of the set (``name``, ``reason``)."""
    return list(_index()['excluded'])


def family_fractions(entries: list[dict] | None = None) -> dict[str, float]:
    """The fraction of ``entries`` (default: the whole set) in each family."""
    entries = materials() if entries is None else entries
    return {f: sum(e['family'] == f for e in entries) / len(entries) for f in FAMILIES}


def _fast_settings() -> dict:
    """The MLIP engine's ``fast`` protocol, as the engine resolves it."""
    from ..engines.contract import get_engine

    return get_engine('mlip').protocol('fast')


def _choose(rows: list[dict], budget_s: float) -> tuple[list[str], float]:
    """Cheapest first within each family; the next pick goes to the family furthest below its share of the
    paper's proportions (:data:`PAPER_FRACTIONS`) among those whose cheapest material still fits."""
    queues = {
        f: sorted((r for r in rows if r['family'] == f), key=lambda r: (r['estimated_s'], r['name']))
        for f in FAMILIES
    }
    chosen: list[str] = []
    count = dict.fromkeys(FAMILIES, 0)
    spent = 0.0
    while True:
        fits = [f for f in FAMILIES if queues[f] and spent + queues[f][0]['estimated_s'] <= budget_s]
        if not fits:
            return chosen, spent
        family = max(fits, key=lambda f: PAPER_FRACTIONS[f] * (len(chosen) + 1) - count[f])
        row = queues[family].pop(0)
        chosen.append(row['name'])
        count[family] += 1
        spent += row['estimated_s']


def fast_run_plan(budget_s: float = 7200.0, steps_per_s_216: float = STEPS_PER_S_216_ATOMS) -> dict:
    """Cell sizes and estimated CPU time of every material on the MLIP engine's ``fast`` protocol, and which
    materials fit in ``budget_s`` (2 h by default) on the 2-core box.

    Cost model (force evaluations × atoms, at ``216 / steps_per_s_216`` atom-evaluations per second):
    MD = temperatures × (stoichiometric + vacancy cell) × n_steps at the MD supercell (the smallest diagonal
    supercell of the shipped cell with ≥ ``md.min_atoms`` atoms, as the workflow makes it); relax = the
    protocol's ``max_steps`` at the shipped cell (an upper bound); vacancy = ``max_steps`` per mobile-ion
    site at the ``min_length_A`` supercell (upper bound); Γ phonons = 6 displacements per primitive atom at the
    ``min_length_A`` supercell (upper bound: symmetry removes most). Materials are chosen by
    :func:`_choose` until the budget is spent; the rest are listed as excluded for time."""
    import numpy as np
    from pymatgen.core import Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from ..calculations.functions import diagonal_supercell

    p = _fast_settings()
    seconds_per_atom_step = 1.0 / (216 * steps_per_s_216)
    n_md_runs = len(p['md']['temperatures']) * (2 if p['md'].get('vacancy_fraction', 0) > 0 else 1)
    rows = []
    for entry in materials():
        structure = Structure.from_file(str(entry['path']))
        n = len(structure)
        md_reps = diagonal_supercell(np.array(structure.lattice.abc), n, int(p['md']['min_atoms']))
        n_md = n * math.prod(md_reps)
        sga = SpacegroupAnalyzer(structure, symprec=1e-3)
        primitive = sga.get_primitive_standard_structure()
        ph_reps = [
            max(1, math.ceil(p['phonon_gamma']['min_length_A'] / x - 1e-9)) for x in primitive.lattice.abc
        ]
        n_ph = len(primitive) * math.prod(ph_reps)
        vac_reps = [max(1, math.ceil(p['vacancy']['min_length_A'] / x - 1e-9)) for x in structure.lattice.abc]
        n_vac = n * math.prod(vac_reps)
        symm = sga.get_symmetrized_structure()
        n_mobile_classes = sum(
            1 for sites in symm.equivalent_sites if sites[0].specie.symbol == entry['mobile']
        )
        atom_steps = {
            'md': n_md_runs * p['md']['n_steps'] * n_md,
            'relax': p['relax']['max_steps'] * n,
            'vacancy': n_mobile_classes * p['vacancy']['max_steps'] * n_vac,
            'phonon': 6 * len(primitive) * n_ph,
        }
        seconds = sum(atom_steps.values()) * seconds_per_atom_step
        rows.append(
            {
                'name': entry['name'],
                'family': entry['family'],
                'atoms': n,
                'md_supercell': list(md_reps),
                'md_atoms': n_md,
                'estimated_s': round(seconds, 1),
                'md_s': round(atom_steps['md'] * seconds_per_atom_step, 1),
            }
        )
    chosen, spent = _choose(rows, budget_s)
    for row in rows:
        row['included'] = row['name'] in chosen
    return {
        'budget_s': budget_s,
        'steps_per_s_216': steps_per_s_216,
        'n_md_runs': n_md_runs,
        'n_steps': p['md']['n_steps'],
        'rows': rows,
        'included': [r['name'] for r in rows if r['included']],
        'excluded_for_time': [r['name'] for r in rows if not r['included']],
        'estimated_total_s': round(spent, 1),
    }
