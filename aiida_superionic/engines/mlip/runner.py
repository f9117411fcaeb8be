"""Console script ``aiida-superionic-mlip``: one task of the study with a universal interatomic potential.

It runs in a working directory (the CalcJob's, or the one given as the only argument) and talks through files:

Inputs
    ``aiida.json``        ``{"task", "model", "device", "seed", "settings"}``; task is one of :data:`TASKS`,
                          or ``md_batch``: several MD runs in one process (:mod:`.batch`, its own files).
    ``structure.extxyz``  one periodic frame.
    ``restart.npz``       optional, ``md`` only: continue a previous segment exactly.

Outputs
    ``results.json``      always (also on failure): ``{"status", "message", "task", "model", "n_atoms", ...}``
                          with status ``ok`` (exit code 0), ``walltime`` / ``unconverged`` / ``unstable`` (2) or
                          ``error`` (3).
    task files            ``relaxed.extxyz`` (relax), ``force_constants.npy`` + ``phonopy_params.yaml``
                          (phonon_gamma), ``trajectory.f32`` + ``trajectory.json`` + ``restart.npz`` (md).

Units everywhere: eV, Å, GPa, fs, K; phonon energies in meV. Stresses are physical stresses (positive =
tensile), Voigt order xx yy zz yz xz xy. No AiiDA import: this runs on the compute node.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from .common import (
    EXIT_CODES,
    FORCE_CONSTANTS_FILE,
    INPUT_FILE,
    MD_DEFAULTS,
    PHONOPY_FILE,
    RELAXED_FILE,
    REPLICAS_DIR,
    RESTART_FILE,
    RESULTS_FILE,
    RUNNER_LOCK_FILE,
    STRUCTURE_FILE,
    THERMOSTATS,
    THZ_TO_MEV,
    TRAJECTORY_FILE,
    TRAJECTORY_META_FILE,
    Context,
    TaskError,
    _log,
    _next_frame_step,
    _settings,
    _write_json_atomic,
    _write_restart,
    segment_stop,
)

__all__ = (
    'EXIT_CODES',
    'TASKS',
    'main',
    'read_md_output',
    'stitch_segments',
)


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


# ----------------------------------------------------------------------------------------------- tasks


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


# ------------------------------------------------------------------------------------------------- md


def task_md(atoms, settings: dict, ctx: Context):
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.md.velocitydistribution import Stationary

    try:  # ASE >= 3.29 (same Maxwell-Boltzmann draw; MaxwellBoltzmannDistribution is deprecated there)
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # pragma: no cover - older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    s = _settings(settings, MD_DEFAULTS, required=('temperature_K', 'n_steps'))
    temperature = float(s['temperature_K'])
    timestep = float(s['timestep_fs'])
    n_steps = int(s['n_steps'])
    interval = int(s['frame_interval'])
    checkpoint_every = max(1, int(s['checkpoint_every']))
    thermostat = str(s['thermostat']).lower().replace('_', '-')
    if thermostat == 'nosehoover':
        thermostat = 'nose-hoover'
    if thermostat not in THERMOSTATS:
        raise TaskError(f'unknown thermostat {s["thermostat"]!r}; known: {THERMOSTATS}')
    if interval < 1 or n_steps < 0 or timestep <= 0 or temperature <= 0:
        raise TaskError('md: need frame_interval >= 1, n_steps >= 0, timestep_fs > 0, temperature_K > 0')
    walltime = None if s['walltime_s'] is None else float(s['walltime_s'])
    # segment_steps: run at most this many steps, then stop like a wall-time stop (restart.npz at that
    # step, status 'walltime') -- chunks a long run into queue-sized segments, deterministically
    segment_steps = None if s['segment_steps'] is None else int(s['segment_steps'])
    factor = float(s['max_temperature_factor'])
    masses = atoms.get_masses()
    n_atoms = len(atoms)
    seed_mb, seed_langevin = np.random.SeedSequence(ctx.seed).spawn(2)
    rng = np.random.default_rng(seed_langevin)

    restart_path = ctx.workdir / RESTART_FILE
    restart = None
    if restart_path.is_file():
        with np.load(restart_path, allow_pickle=False) as data:
            restart = {key: data[key] for key in data.files}
        if not np.array_equal(restart['numbers'], atoms.numbers):
            raise TaskError('restart.npz does not match structure.extxyz (atomic numbers)')
        if not np.allclose(restart['cell'], np.asarray(atoms.cell), atol=1e-8):
            raise TaskError('restart.npz does not match structure.extxyz (cell)')
        for key, value in (
            ('thermostat', thermostat),
            ('timestep_fs', timestep),
            ('temperature_K', temperature),
        ):
            if str(restart[key]) != str(value) and not (
                key != 'thermostat' and np.isclose(float(restart[key]), float(value))
            ):
                raise TaskError(f'restart.npz was written with {key} = {restart[key]}, settings say {value}')
        start_step = int(restart['step'])
        atoms.set_positions(restart['positions'])
        atoms.set_momenta(restart['momenta'])
        _log(f'md: restarting from step {start_step} of {n_steps}')
    else:
        start_step = 0
        thermalize_momenta(atoms, temperature_K=temperature, rng=np.random.default_rng(seed_mb))
        Stationary(atoms)
        _log(f'md: fresh start at {temperature:g} K, seed {ctx.seed}')

    # The thermostat objects read positions/momenta when built: set the state first, constrain afterwards.
    if thermostat == 'nose-hoover':
        dyn = NoseHooverChainNVT(
            atoms,
            timestep=timestep * units.fs,
            temperature_K=temperature,
            tdamp=float(s['tdamp_fs']) * units.fs,
        )
        if restart is not None:
            dyn._thermostat._eta[:] = restart['nhc_eta']
            dyn._thermostat._p_eta[:] = restart['nhc_p_eta']
        conserved_name = 'Nose-Hoover-chain conserved energy (ASE get_conserved_energy)'

        def conserved() -> float:
            return dyn.get_conserved_energy()

    else:
        if restart is not None:
            rng.bit_generator.state = json.loads(str(restart['rng_state']))
        dyn = Langevin(
            atoms,
            timestep=timestep * units.fs,
            temperature_K=temperature,
            friction=float(s['friction_per_fs']) / units.fs,
            fixcm=False,
            rng=rng,
        )
        atoms.set_constraint(FixCom())  # centre of mass fixed (ASE's recommended replacement of fixcm)
        conserved_name = 'total energy Epot + Ekin (Langevin has no conserved quantity in ASE)'

        def conserved() -> float:
            return float(atoms.get_potential_energy() + atoms.get_kinetic_energy())

    first_step = 0 if restart is None else _next_frame_step(start_step, interval)
    meta = {
        'n_atoms': n_atoms,
        'symbols': atoms.get_chemical_symbols(),
        'masses': masses,
        'cell': np.asarray(atoms.cell),
        'pbc': atoms.pbc,
        'timestep_fs': timestep,
        'frame_interval': interval,
        'first_step': first_step,
        'restart_step': None if restart is None else start_step,
        'n_steps': n_steps,
        'temperature_K': temperature,
        'thermostat': thermostat,
        'seed': ctx.seed,
        'model': ctx.model,
        'layout': 'little-endian float32; per frame positions (N,3) in Å (unwrapped) then velocities (N,3) in Å/fs',
    }
    _write_json_atomic(ctx.workdir / TRAJECTORY_META_FILE, meta)

    n_frames = 0
    traj = open(ctx.workdir / TRAJECTORY_FILE, 'wb')  # kept open for the whole run

    def save_frame() -> None:
        nonlocal n_frames
        frame = np.concatenate([atoms.get_positions(), atoms.get_velocities() * units.fs]).astype('<f4')
        traj.write(frame.tobytes())
        traj.flush()
        n_frames += 1

    def checkpoint(step: int) -> None:
        os.fsync(traj.fileno())
        data = {
            'positions': atoms.get_positions(),
            'momenta': atoms.get_momenta(),
            'velocities': atoms.get_velocities() * units.fs,
            'step': np.int64(step),
            'n_frames': np.int64(n_frames),
            'first_step': np.int64(first_step),
            'numbers': atoms.numbers,
            'cell': np.asarray(atoms.cell),
            'thermostat': np.str_(thermostat),
            'timestep_fs': np.float64(timestep),
            'temperature_K': np.float64(temperature),
            'frame_interval': np.int64(interval),
            'seed': np.int64(ctx.seed),
        }
        if thermostat == 'nose-hoover':
            data['nhc_eta'] = np.array(dyn._thermostat._eta)
            data['nhc_p_eta'] = np.array(dyn._thermostat._p_eta)
        else:
            data['rng_state'] = np.str_(json.dumps(rng.bit_generator.state))
        _write_restart(restart_path, data)

    temperatures, energies, times = [], [], []
    status, message = 'ok', ''
    step = start_step
    step_times: list[float] = []
    try:
        if restart is None and n_steps >= 0:
            save_frame()
        temperatures.append(atoms.get_temperature())
        energies.append(conserved())
        times.append(step * timestep)
        while step < n_steps:
            stop = segment_stop(step, start_step, segment_steps, walltime, ctx.t_start, step_times)
            if stop is not None:
                status, message = stop
                break
            t0 = time.perf_counter()
            dyn.step()
            step_times.append(time.perf_counter() - t0)
            step += 1
            t_inst = atoms.get_temperature()
            finite = np.isfinite(t_inst) and np.isfinite(atoms.get_positions()).all()
            if not finite or t_inst > factor * temperature:
                status = 'unstable'
                message = f'T = {t_inst:.1f} K at step {step} exceeds {factor:g} x {temperature:g} K (or NaN)'
                break
            temperatures.append(t_inst)
            energies.append(conserved())
            times.append(step * timestep)
            if step % interval == 0:
                save_frame()
                if n_frames % checkpoint_every == 0:
                    checkpoint(step)
            if step % int(s['log_interval']) == 0:
                _log(f'md: step {step}/{n_steps}  T = {t_inst:.1f} K  frames = {n_frames}')
        if status != 'unstable':
            checkpoint(step)
    finally:
        traj.close()

    temps = np.asarray(temperatures)
    drift = None
    if len(times) >= 2:
        slope = np.polyfit(np.asarray(times) / 1000.0, np.asarray(energies) / n_atoms, 1)[0]
        drift = float(slope)
    results = {
        'n_steps_done': step - start_step,
        'first_step': start_step,
        'last_step': step,
        'n_frames': n_frames,
        'first_frame_step': first_step,
        'T_mean_K': float(temps.mean()) if len(temps) else None,
        'T_std_K': float(temps.std()) if len(temps) else None,
        'etotal_drift_eV_per_atom_ps': drift,
        'etotal_drift_quantity': conserved_name,
        'seconds_per_step': float(np.mean(step_times)) if step_times else None,
        'restart_written': status != 'unstable',
    }
    if status == 'ok':
        message = f'{step - start_step} steps, {n_frames} frames'
    _log(f'md: {status}: {message}')
    results['status'] = status
    return status, message, results


TASKS = {
    'relax': task_relax,
    'static': task_static,
    'elastic': task_elastic,
    'phonon_gamma': task_phonon_gamma,
    'vacancy': task_vacancy,
    'md': task_md,
}


# ------------------------------------------------------------------------------------------------ main


def run(workdir: str | os.PathLike) -> tuple[str, dict]:
    """Run the task described in ``workdir``; return (status, results) after writing ``results.json``."""
    t_start = time.monotonic()
    workdir = Path(workdir).resolve()
    results: dict = {'status': 'error', 'message': '', 'task': None, 'model': None, 'n_atoms': None}
    try:
        config = json.loads((workdir / INPUT_FILE).read_text())
        task = config.get('task')
        results['task'] = task
        results['model'] = model = config.get('model') or 'chgnet-0.3.0'
        if task == 'md_batch':  # several cells, named in the settings: no structure.extxyz
            from aiida_superionic.engines.mlip.batch import task_md_batch
            from aiida_superionic.engines.mlip.models import _load_chgnet, resolve_device

            if str(model).strip().lower() != 'chgnet-0.3.0':
                raise TaskError(f'md_batch: model {model!r} is not batched; known: chgnet-0.3.0')
            seed = int(config.get('seed') if config.get('seed') is not None else 0)
            chgnet = _load_chgnet('0.3.0', resolve_device(config.get('device') or 'auto'))
            ctx = Context(workdir=workdir, calc=chgnet, seed=seed, t_start=t_start, model=model)
            _log(f'aiida-superionic-mlip: task md_batch, model {model}')
            status, message, task_results = task_md_batch(config.get('settings') or {}, ctx)
            results.update(task_results)
            results['status'], results['message'] = status, message
            return _finish(workdir, results, t_start)
        if task not in TASKS:
            raise TaskError(f'unknown task {task!r}; known: {", ".join([*TASKS, "md_batch"])}')
        structure = workdir / STRUCTURE_FILE
        if not structure.is_file():
            raise FileNotFoundError(f'{STRUCTURE_FILE} is missing in {workdir}')
        import ase.io

        atoms = ase.io.read(structure, index=0, format='extxyz')
        atoms.calc = None
        atoms.set_constraint()
        results['n_atoms'] = len(atoms)
        if not atoms.pbc.all():
            raise TaskError(f'{STRUCTURE_FILE} must be periodic in all three directions')
        from aiida_superionic.engines.mlip.models import load_calculator

        atoms.calc = load_calculator(model, config.get('device') or 'auto')
        seed = int(config.get('seed') if config.get('seed') is not None else 0)
        ctx = Context(workdir=workdir, calc=atoms.calc, seed=seed, t_start=t_start, model=model)
        _log(
            f'aiida-superionic-mlip: task {task}, model {model}, {len(atoms)} atoms, {atoms.get_chemical_formula()}'
        )
        status, message, task_results = TASKS[task](atoms, config.get('settings') or {}, ctx)
        results.update(task_results)
        results['status'], results['message'] = status, message
    except Exception as exc:  # every failure must end in results.json
        traceback.print_exc()
        results['status'] = 'error'
        results['message'] = f'{type(exc).__name__}: {exc}'
    return _finish(workdir, results, t_start)


def _finish(workdir: Path, results: dict, t_start: float) -> tuple[str, dict]:
    results['wall_time_s'] = time.monotonic() - t_start
    _write_json_atomic(workdir / RESULTS_FILE, results)
    _log(f'aiida-superionic-mlip: {results["status"]} ({results["wall_time_s"]:.1f} s) {results["message"]}')
    return results['status'], results


def main(workdir: str | os.PathLike | None = None) -> int:
    """Entry point: ``aiida-superionic-mlip [WORKDIR]`` (default: the current directory). Returns the exit code."""
    if workdir is None:
        args = sys.argv[1:]
        if args and args[0] in ('-h', '--help'):
            print(__doc__)
            return 0
        workdir = args[0] if args else '.'
    # One runner per folder: when a daemon dies between handing a job to the scheduler and recording
    # it, aiida-core submits the job again into the same folder. The second runner waits for the
    # first (if it still runs), then leaves what it wrote as it is: it must neither overwrite results
    # nor take the first runner's final restart.npz for an input to continue from.
    import fcntl

    with open(Path(workdir) / RUNNER_LOCK_FILE, 'a') as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another runner works here: wait for it
            fcntl.flock(lock, fcntl.LOCK_EX)
        previous = _previous_runner_exit_code(Path(workdir))
        if previous is not None:
            return previous
        status, _ = run(workdir)
    return EXIT_CODES.get(status, 3)


def _previous_runner_exit_code(workdir: Path) -> int | None:
    """The exit code of a runner that already worked in ``workdir``, or None if none did.

    aiida-core uploads only the inputs (``aiida.json``, ``structure.extxyz``, an MD continuation's
    ``restart.npz``): ``results.json`` or the MD frame files in the folder were written by an earlier
    runner of the same job. A finished one: its status. An MD runner that died mid-run (frames, maybe a
    checkpoint, no results): an error, touching nothing, so that the job is parsed as that run, killed
    at its last checkpoint. Running again here would instead continue from the earlier runner's own
    checkpoint -- for a finished run, its last step: zero steps, no frame -- and overwrite its frames.
    """
    try:
        results = json.loads((workdir / RESULTS_FILE).read_text())
    except FileNotFoundError:
        results = None
    except (OSError, ValueError):
        return EXIT_CODES['error']
    if results is not None:
        _log(
            f'aiida-superionic-mlip: an earlier runner of this job finished in {workdir}: keeping its results'
        )
        return EXIT_CODES.get(results.get('status'), 3)
    if (
        (workdir / TRAJECTORY_META_FILE).exists()
        or (workdir / TRAJECTORY_FILE).exists()
        or (workdir / REPLICAS_DIR).exists()  # task md_batch
    ):
        _log(f'aiida-superionic-mlip: an earlier runner of this job stopped in {workdir}: leaving its files')
        return EXIT_CODES['error']
    return None


# ------------------------------------------------------------------------------------- output helpers


def read_md_output(workdir: str | os.PathLike) -> dict:
    """Read one md segment: ``{'meta', 'positions' (n,N,3) float32, 'velocities' (n,N,3), 'steps' (n,)}``.

    A partially written last frame (the run was killed while writing it) is dropped.
    """
    workdir = Path(workdir)
    meta = json.loads((workdir / TRAJECTORY_META_FILE).read_text())
    n_atoms = int(meta['n_atoms'])
    path = workdir / TRAJECTORY_FILE
    frame_floats = 2 * n_atoms * 3
    size = path.stat().st_size if path.is_file() else 0
    n_frames = size // (4 * frame_floats)
    data = np.fromfile(path, dtype='<f4', count=n_frames * frame_floats) if n_frames else np.zeros(0, '<f4')
    data = data.reshape(n_frames, 2 * n_atoms, 3)
    steps = int(meta['first_step']) + int(meta['frame_interval']) * np.arange(n_frames, dtype=np.int64)
    return {
        'meta': meta,
        'positions': data[:, :n_atoms],
        'velocities': data[:, n_atoms:],
        'steps': steps,
    }


def stitch_segments(segments: list[dict], restart_steps: list[int | None]):
    """Join md segments into one trajectory: ``(positions, velocities, steps)``.

    ``segments`` are :func:`read_md_output` dicts in order. ``restart_steps[i]`` is the global step from
    which ``segments[i + 1]`` restarted (the ``step`` in the ``restart.npz`` it was given), so only frames of
    segment ``i`` with ``step <= restart_steps[i]`` are kept: frames a killed segment wrote after its last
    checkpoint are not part of the continued trajectory. The last entry (no successor) may be ``None`` or
    omitted; ``None`` anywhere means keep every frame of that segment.
    """
    from ...io.stitch import stitch_frames

    restart_steps = list(restart_steps)
    if len(restart_steps) == len(segments) - 1:
        restart_steps.append(None)
    if len(restart_steps) != len(segments):
        raise ValueError('need one restart step per segment (or one fewer)')
    if not segments:
        return np.zeros((0, 0, 3), np.float32), np.zeros((0, 0, 3), np.float32), np.zeros(0, np.int64)
    steps, (positions, velocities) = stitch_frames(
        [seg['steps'] for seg in segments],
        [None, *restart_steps[:-1]],
        [[seg['positions'], seg['velocities']] for seg in segments],
    )
    return positions, velocities, steps


if __name__ == '__main__':
    sys.exit(main())
