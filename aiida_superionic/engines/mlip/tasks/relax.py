"""Tasks ``relax`` and ``static``, and the relaxation helpers the other tasks share."""

from __future__ import annotations

import math

import numpy as np

from ..common import Context, TaskError, _log, _settings
from ..fileformat import RELAXED_FILE


def _voigt_stress_gpa(atoms) -> np.ndarray:
    from ase import units

    return np.asarray(atoms.get_stress(voigt=True)) / units.GPa


def _max_force(atoms) -> float:
    forces = atoms.get_forces()
    return float(np.sqrt((forces**2).sum(axis=1)).max()) if len(forces) else 0.0


def _auto_supercell(atoms, min_length: float) -> list[int]:
    """Smallest diagonal supercell whose three lattice vectors are all at least ``min_length`` Å long."""
    lengths = atoms.cell.lengths()
    return [max(1, math.ceil(min_length / length - 1e-9)) for length in lengths]


class _StressAlways:
    """Ask a calculator that supports it (``FastCHGNetCalculator``) for the stress with every evaluation."""

    def __init__(self, calc, enabled: bool = True):
        self.calc = calc
        self.enabled = enabled and hasattr(calc, 'always_stress')

    def __enter__(self):
        if self.enabled:
            self.previous = self.calc.always_stress
            self.calc.always_stress = True
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.calc.always_stress = self.previous


def _optimizer(name: str):
    from ase.optimize import BFGS, FIRE, LBFGS

    optimizers = {'FIRE': FIRE, 'BFGS': BFGS, 'LBFGS': LBFGS}
    try:
        return optimizers[str(name).upper()]
    except KeyError:
        raise TaskError(f'unknown optimizer {name!r}; known: {sorted(optimizers)}') from None


def _relax(
    atoms,
    *,
    fmax: float,
    max_steps: int,
    relax_cell: bool,
    smax_gpa: float = 0.05,
    optimizer: str = 'FIRE',
    label: str = 'relax',
    log_every: int = 10,
) -> tuple[bool, int]:
    """Relax positions (and the cell through ``FrechetCellFilter``) until max |F| <= fmax and max |σ| <= smax."""
    from ase.filters import FrechetCellFilter

    target = FrechetCellFilter(atoms) if relax_cell else atoms
    opt = _optimizer(optimizer)(target, logfile=None)

    def converged() -> tuple[bool, float, float]:
        fmax_now = _max_force(atoms)
        smax_now = float(np.abs(_voigt_stress_gpa(atoms)).max()) if relax_cell else 0.0
        return fmax_now <= fmax and smax_now <= smax_gpa, fmax_now, smax_now

    done = False
    with _StressAlways(atoms.calc, relax_cell):
        for _ in opt.irun(fmax=1e-12, steps=max_steps):
            done, fmax_now, smax_now = converged()
            if opt.nsteps % log_every == 0 or done:
                _log(
                    f'{label}: step {opt.nsteps:4d}  E = {atoms.get_potential_energy():.6f} eV  '
                    f'max|F| = {fmax_now:.4f} eV/Å' + (f'  max|σ| = {smax_now:.4f} GPa' if relax_cell else '')
                )
            if done:
                break
    return done, int(opt.nsteps)


def _single_point_copy(atoms):
    from ase.calculators.singlepoint import SinglePointCalculator

    copy = atoms.copy()
    results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces()}
    try:
        results['stress'] = atoms.get_stress()
    except Exception:  # a calculator without stress: write what there is
        pass
    copy.calc = SinglePointCalculator(copy, **results)
    return copy


def task_relax(atoms, settings: dict, ctx: Context):
    import ase.io

    s = _settings(
        settings,
        {'fmax': 0.01, 'smax_GPa': 0.05, 'max_steps': 300, 'relax_cell': True, 'optimizer': 'FIRE'},
    )
    converged, n_steps = _relax(
        atoms,
        fmax=float(s['fmax']),
        max_steps=int(s['max_steps']),
        relax_cell=bool(s['relax_cell']),
        smax_gpa=float(s['smax_GPa']),
        optimizer=s['optimizer'],
    )
    ase.io.write(ctx.workdir / RELAXED_FILE, _single_point_copy(atoms), format='extxyz')
    energy = float(atoms.get_potential_energy())
    results = {
        'energy_eV': energy,
        'energy_per_atom_eV': energy / len(atoms),
        'max_force_eV_A': _max_force(atoms),
        'stress_GPa': _voigt_stress_gpa(atoms),
        'n_steps': n_steps,
        'converged': converged,
        'volume_A3': float(atoms.get_volume()),
        'cell_A': np.asarray(atoms.cell),
        'cellpar': atoms.cell.cellpar(),
    }
    if converged:
        return 'ok', f'relaxed in {n_steps} steps', results
    return 'unconverged', f'not converged in {n_steps} steps (max_steps = {s["max_steps"]})', results


def task_static(atoms, settings: dict, ctx: Context):
    _settings(settings, {})
    with _StressAlways(atoms.calc):
        energy = float(atoms.get_potential_energy())
        forces = atoms.get_forces()
        stress = _voigt_stress_gpa(atoms)
    return (
        'ok',
        'single point',
        {
            'energy_eV': energy,
            'energy_per_atom_eV': energy / len(atoms),
            'forces_eV_A': forces,
            'max_force_eV_A': _max_force(atoms),
            'stress_GPa': stress,
            'volume_A3': float(atoms.get_volume()),
        },
    )
