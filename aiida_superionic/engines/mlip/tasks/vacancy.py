"""Task ``vacancy``: the vacancy formation energy of the mobile species."""

from __future__ import annotations

import numpy as np

from ..common import Context, TaskError, _log, _settings
from .relax import _auto_supercell, _relax


def _chemical_potential(element: str, calc) -> tuple[float, dict]:
    """μ of ``element`` by the shared rule (:func:`aiida_superionic.analysis.vacancy.chemical_potential_reference`),
    computed with ``calc``: the reference relaxed (cell too for a metal), energy per atom."""
    from ase import Atoms

    from aiida_superionic.analysis.vacancy import chemical_potential_reference
    from aiida_superionic.exceptions import InputError

    try:
        rule = chemical_potential_reference(element)
    except InputError as exc:
        raise TaskError(str(exc)) from None
    ref = Atoms(rule['symbols'], positions=rule['positions'], cell=rule['cell'], pbc=True)
    ref.calc = calc
    converged, n_steps = _relax(
        ref, fmax=0.01, max_steps=300, relax_cell=rule['relax_cell'], label=f'mu {rule["structure"]}'
    )
    if rule['kind'] == 'metal':
        detail = f'relaxed primitive vector {ref.cell.cellpar()[0]:.4f} A'
    else:
        detail = f'relaxed bond {ref.get_distance(0, 1):.4f} A; no spin in the potential'
    reference = {key: rule[key] for key in ('element', 'kind', 'structure', 'spin', 'n_atoms', 'description')}
    reference.update({'converged': converged, 'n_steps': n_steps, 'detail': detail})
    return float(ref.get_potential_energy()) / len(ref), reference


def task_vacancy(atoms, settings: dict, ctx: Context):
    """E_vac = min over the inequivalent mobile sites of E_defect + μ − E_perfect (one relaxed vacancy per
    class, :func:`aiida_superionic.analysis.vacancy.mobile_site_classes`); every class in ``sites``."""
    from aiida_superionic.analysis.vacancy import (
        MU_RULE,
        VACANCY_SYMPREC,
        mobile_site_classes,
        vacancy_site_result,
    )
    from aiida_superionic.exceptions import InputError

    s = _settings(
        settings,
        {
            'mobile': 'Li',
            'supercell': None,
            'min_length_A': 8.0,
            'fmax': 0.05,
            'max_steps': 200,
            'mu_eV': None,
            'symprec': VACANCY_SYMPREC,
        },
    )
    mobile = str(s['mobile'])
    try:
        classes = mobile_site_classes(
            np.asarray(atoms.cell), atoms.get_scaled_positions(), atoms.get_chemical_symbols(), mobile,
            float(s['symprec']),
        )  # fmt: skip
    except InputError as exc:
        raise TaskError(str(exc)) from None
    supercell = [int(n) for n in (s['supercell'] or _auto_supercell(atoms, float(s['min_length_A'])))]
    perfect = atoms.repeat(supercell)  # ASE tiling: unit-cell atom i is supercell atom i (first image)
    perfect.calc = ctx.calc
    e_perfect = float(perfect.get_potential_energy())
    if s['mu_eV'] is not None:
        mu = float(s['mu_eV'])
        reference = {'element': mobile, 'kind': 'given', 'description': 'given in settings (mu_eV)'}
        mu_text = reference['description']
    else:
        mu, reference = _chemical_potential(mobile, ctx.calc)
        mu_text = f'{reference["description"]}, same potential; {reference["detail"]}' + (
            '' if reference['converged'] else ', NOT converged'
        )
    n_images = int(np.prod(supercell))
    sites = []
    for k, site in enumerate(classes):
        defect = perfect.copy()
        del defect[site['index']]
        defect.calc = ctx.calc
        _log(
            f'vacancy: site class {k + 1}/{len(classes)} ({mobile} {site["wyckoff"]}, atom {site["index"]}); '
            f'perfect {len(perfect)} atoms, E = {e_perfect:.6f} eV'
        )
        converged, n_steps = _relax(
            defect, fmax=float(s['fmax']), max_steps=int(s['max_steps']), relax_cell=False, label='vacancy'
        )
        e_defect = float(defect.get_potential_energy())
        sites.append(
            vacancy_site_result(
                site, n_images, e_defect, e_defect + mu - e_perfect, converged, n_steps=n_steps
            )
        )
    best = min(sites, key=lambda x: x['E_vac_eV'])
    results = {
        'E_vac_eV': best['E_vac_eV'],
        'mu_eV': mu,
        'mu_reference': mu_text,
        'mu_source': 'given' if s['mu_eV'] is not None else 'computed',
        'mu_rule': MU_RULE,
        'reference': reference,
        'E_perfect_eV': e_perfect,
        'E_defect_eV': best['E_defect_eV'],
        'supercell': supercell,
        'n_atoms_supercell': len(perfect),
        'removed_index': best['index'],
        'wyckoff': best['wyckoff'],
        'mobile': mobile,
        'symprec': float(s['symprec']),
        'sites': sites,
        'n_steps': max(x['n_steps'] for x in sites),
        'converged': all(x['converged'] for x in sites),
    }
    _log(
        f'vacancy: E_vac = {best["E_vac_eV"]:.4f} eV at {mobile} {best["wyckoff"]} (lowest of {len(sites)} '
        f'site classes; mu = {mu:.4f} eV, {mu_text})'
    )
    # (the reference's convergence is recorded in ``reference``/``mu_reference``, as before: more
    # vacancy steps, which is what an 'unconverged' status gets from the work chain, would not help it)
    unconverged = [x['wyckoff'] for x in sites if not x['converged']]
    if unconverged:
        return 'unconverged', f'defect relaxation not converged at {", ".join(unconverged)}', results
    return 'ok', f'E_vac = {best["E_vac_eV"]:.4f} eV ({len(sites)} site classes)', results
