"""Task ``elastic``: the elastic tensor from finite strains."""

from __future__ import annotations

import numpy as np

from ..common import Context, TaskError, _log, _settings
from .relax import _relax, _StressAlways


def task_elastic(atoms, settings: dict, ctx: Context):
    from ase import units
    from pymatgen.analysis.elasticity.elastic import ElasticTensor
    from pymatgen.analysis.elasticity.strain import Strain
    from pymatgen.analysis.elasticity.stress import Stress

    s = _settings(
        settings,
        {'strains': [-0.01, -0.005, 0.005, 0.01], 'relax_ions': True, 'fmax': 0.02, 'max_steps': 100},
    )
    magnitudes = [float(x) for x in s['strains']]
    if len(magnitudes) < 2 or any(x == 0 for x in magnitudes):
        raise TaskError('elastic: give at least two non-zero strain magnitudes')
    calc = atoms.calc
    reference = atoms.copy()
    eq_stress = np.asarray(atoms.get_stress(voigt=False)) / units.GPa  # 3x3, physical (tensile > 0), GPa
    strains, stresses = [], []
    n_unconverged = 0
    for index in range(6):
        for magnitude in magnitudes:
            voigt = np.zeros(6)
            voigt[index] = magnitude
            strain = Strain.from_voigt(voigt)  # Green-Lagrange strain, engineering shear in Voigt
            deformation = np.asarray(strain.get_deformation_matrix())  # F with (F^T F - 1)/2 = strain
            deformed = reference.copy()
            deformed.set_cell(np.asarray(reference.cell) @ deformation.T, scale_atoms=True)
            deformed.calc = calc
            if s['relax_ions']:
                ok, _ = _relax(
                    deformed,
                    fmax=float(s['fmax']),
                    max_steps=int(s['max_steps']),
                    relax_cell=False,
                    label=f'elastic e{index + 1}={magnitude:+.4f} ions',
                    log_every=50,
                )
                n_unconverged += not ok
            with _StressAlways(calc):
                stress = np.asarray(deformed.get_stress(voigt=False)) / units.GPa
            strains.append(strain)
            stresses.append(Stress(stress))
            _log(
                f'elastic: strain {index + 1} ({magnitude:+.4f})  stress/GPa = '
                + ' '.join(f'{x:+.3f}' for x in Stress(stress).voigt)
            )
    tensor = ElasticTensor.from_independent_strains(strains, stresses, eq_stress=Stress(eq_stress))
    voigt = np.asarray(tensor.voigt)
    results = {
        'voigt_GPa': voigt,
        'eq_stress_GPa': Stress(eq_stress).voigt,
        'n_deformations': len(strains),
        'strains': magnitudes,
        'relax_ions': bool(s['relax_ions']),
        'k_vrh_GPa': float(tensor.k_vrh),
        'g_vrh_GPa': float(tensor.g_vrh),
        'method': (
            'finite strains: each of the 6 independent Voigt Green-Lagrange strain states at magnitudes '
            f'{magnitudes} applied as F = Strain.get_deformation_matrix() to the input cell'
            + (
                f', ions relaxed at fixed cell (fmax {s["fmax"]} eV/Å)'
                if s['relax_ions']
                else ', ions clamped'
            )
            + '; physical stress (GPa, tensile > 0) fitted linearly per strain state with pymatgen '
            'ElasticTensor.from_independent_strains(eq_stress = stress of the undeformed cell)'
        ),
    }
    if n_unconverged:
        return 'unconverged', f'{n_unconverged} ionic relaxations did not converge', results
    return 'ok', f'{len(strains)} deformations', results
