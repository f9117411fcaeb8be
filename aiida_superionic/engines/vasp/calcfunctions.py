"""The calcfunctions of the VASP engine's work chains (:mod:`.workchain`): what VASP wrote, read with the
readers of :mod:`.outputs`, into the contract's outputs (``vasp_step_outputs``, ``vasp_relax_results``);
the MD segments (``vasp_md_segment``) and their restarts (``vasp_md_restart``); the primitive cell of the Γ
step (``gamma_primitive_structure``); the vacancy step's cells (``vacancy_cells``) and energy
(``vacancy_energy``). Each with the pure helpers it calls.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ...data import MDTrajectoryData
from ...exceptions import InputError
from . import outputs as vo


def _read_folder_file(folder: orm.FolderData, name: str, tmp: Path) -> Path:
    if name not in folder.base.repository.list_object_names():
        raise vo.VaspOutputError(f'{name} was not retrieved (the run crashed or was not asked to write it)')
    path = tmp / name
    path.write_bytes(folder.base.repository.get_object_content(name, mode='rb'))
    return path


def _dielectric(outcar: Path, p: dict, cell: str) -> orm.Dict:
    """ε∞ and the Born charges of a LEPSILON run (``p``: ``symbols`` of the cell VASP got, ``mobile``).
    ``born_charge_e`` is the mean isotropic Z* over the atoms of the mobile species: the same for any cell
    of the crystal (the primitive one included), as are the traces; the tensors and the per-atom lists are
    those of ``cell`` (its atoms, in its Cartesian frame)."""
    data = vo.read_lepsilon(outcar)
    born = data['born_charges']
    symbols = p['symbols']
    if len(born) != len(symbols):
        raise vo.VaspOutputError(f'OUTCAR has {len(born)} Born charges, the cell {len(symbols)} atoms')
    mobile = p.get('mobile')
    iso = [float(np.trace(z) / 3) for z in born]
    mobile_idx = [i for i, s in enumerate(symbols) if s == mobile]
    return orm.Dict(
        {
            'epsilon_inf': float(np.trace(data['epsilon_inf']) / 3),
            'epsilon_inf_tensor': data['epsilon_inf'].tolist(),
            'born_charge_e': float(np.mean([iso[i] for i in mobile_idx])) if mobile_idx else None,
            'born_charge_species': mobile,
            'born_charges_isotropic_e': iso,
            'born_charges_tensor_e': born.tolist(),
            'cell': cell,
        }
    )


@calcfunction
def vasp_step_outputs(retrieved: orm.FolderData, parameters: orm.Dict) -> dict[str, orm.Data]:
    """The contract outputs of an elastic, phonon_gamma, dielectric or band_gap step from its files."""
    p = parameters.get_dict()
    step = p['step']
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if step == 'elastic':
            voigt = vo.read_elastic_moduli(_read_folder_file(retrieved, 'OUTCAR', tmp))
            array = orm.ArrayData()
            array.set_array('voigt_GPa', voigt)
            results = {'source': 'OUTCAR TOTAL ELASTIC MODULI (kBar) / 10, Voigt xx yy zz yz xz xy'}
            return {'elastic_tensor': array, 'results': orm.Dict({'engine': 'vasp', **results})}
        if step == 'phonon_gamma':
            modes = vo.gamma_modes_meV(
                vo.read_dynmat_eigenvalues(_read_folder_file(retrieved, 'vasprun.xml', tmp))
            )
            source = 'vasprun.xml <dynmat> (DFPT at Γ of the primitive cell)'
            outs = {
                'phonon': orm.Dict({**modes, **p.get('primitive', {}), 'source': source}),
                'results': orm.Dict({'engine': 'vasp', 'gamma_mode_meV': modes['gamma_mode_meV']}),
            }
            if p.get('lepsilon'):  # the same DFPT job (LEPSILON): ε∞ and Born charges from its OUTCAR
                outcar = _read_folder_file(retrieved, 'OUTCAR', tmp)
                outs['dielectric'] = _dielectric(outcar, p, 'primitive cell of the Γ step')
            return outs
        if step == 'dielectric':
            return {'dielectric': _dielectric(_read_folder_file(retrieved, 'OUTCAR', tmp), p, 'as given')}
        if step == 'band_gap':
            gap = vo.read_band_gap(_read_folder_file(retrieved, 'vasprun.xml', tmp))
            return {'band_gap': orm.Dict(gap)}
    raise InputError(f'no output reader for step {step!r}')


def md_segment_info(xdatcar: Path, oszicar: Path | None, nblock: int, start_step: int):
    """Frames of one MD segment and the global MD step of each: frame k was written after step
    ``start_step + nblock * (k + 1)``. Also the number of MD steps the segment completed (the ``T=``
    lines of its OSZICAR; frames x nblock when the OSZICAR is missing or has no MD lines)."""
    from ...io.xdatcar import read_xdatcar

    traj = read_xdatcar(xdatcar, allow_truncated=True)
    steps = start_step + nblock * (np.arange(traj.n_frames) + 1)
    done = 0
    if oszicar is not None and oszicar.is_file():
        done = len(re.findall(r'^\s*\d+\s+T=', oszicar.read_text(errors='replace'), flags=re.M))
    if done == 0:  # no OSZICAR, or no MD lines in it
        done = traj.n_frames * nblock
    return traj, steps, int(done)


def md_restart_inputs(contcar: Path, structure: orm.StructureData) -> tuple[orm.StructureData, orm.ArrayData]:
    """The structure (positions of the CONTCAR, cell and species of ``structure``) and velocities
    (ArrayData ``velocities``, Å/fs) that continue an MD segment."""
    frac, velocities = vo.read_poscar_velocities(contcar)
    if len(frac) != len(structure.sites):
        raise vo.VaspOutputError(f'CONTCAR has {len(frac)} atoms, the MD cell {len(structure.sites)}')
    if velocities is None:
        raise vo.VaspOutputError('CONTCAR has no velocity block: cannot continue the MD segment')
    ase = structure.get_ase()
    ase.set_scaled_positions(frac)
    array = orm.ArrayData()
    array.set_array('velocities', velocities)
    return orm.StructureData(ase=ase), array


@calcfunction
def vasp_md_segment(retrieved: orm.FolderData, parameters: orm.Dict) -> dict[str, orm.Data]:
    """One MD segment's frames (XDATCAR, streaming reader) as MDTrajectoryData with the global step of
    each frame (array ``steps``), and ``info`` (Dict ``steps_done``)."""
    p = parameters.get_dict()
    names = retrieved.base.repository.list_object_names()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        xdatcar = _read_folder_file(retrieved, 'XDATCAR', tmp)
        oszicar = _read_folder_file(retrieved, 'OSZICAR', tmp) if 'OSZICAR' in names else None
        traj, steps, done = md_segment_info(xdatcar, oszicar, int(p['nblock']), int(p['start_step']))
    segment = MDTrajectoryData.from_trajectory(
        traj,
        timestep_fs=float(p['timestep_fs']) * int(p['frame_interval']),
        temperature_K=float(p['temperature_K']),
        mobile_species=p.get('mobile'),
        origin={'engine': 'vasp', 'format': 'XDATCAR', 'retrieved': retrieved.uuid},
    )
    segment.set_array('steps', steps)
    if p.get('restart_from') is not None:
        segment.base.attributes.set('restart_from_step', int(p['restart_from']))
    return {'trajectory': segment, 'info': orm.Dict({'steps_done': done, 'n_frames': traj.n_frames})}


@calcfunction
def vasp_md_restart(retrieved: orm.FolderData, structure: orm.StructureData) -> dict[str, orm.Data]:
    """Structure and velocities of a segment's CONTCAR, to continue the MD."""
    with tempfile.TemporaryDirectory() as tmp:
        new, velocities = md_restart_inputs(_read_folder_file(retrieved, 'CONTCAR', Path(tmp)), structure)
    return {'structure': new, 'velocities': velocities}


@calcfunction
def vasp_relax_results(misc: orm.Dict) -> orm.Dict:
    """The relax step's ``results`` from aiida-vasp's ``misc``."""
    m = misc.get_dict()
    return orm.Dict(
        {
            'engine': 'vasp',
            'energy_eV': m.get('total_energies', {}).get('energy_extrapolated'),
            'maximum_force_eV_A': m.get('maximum_force'),
            'maximum_stress_kbar': m.get('maximum_stress'),
        }
    )


@calcfunction
def gamma_primitive_structure(structure: orm.StructureData, symprec_A: orm.Float) -> dict[str, orm.Data]:
    """spglib's standardized primitive cell of ``structure`` (``structure``) and what it is (``info``): the
    cell the Γ step gives VASP, whatever cell the user gave. Γ is a property of the primitive cell; a
    conventional cell's Γ point also holds zone-boundary modes of the primitive cell folded back."""
    from ..symmetry import primitive_atoms

    try:
        primitive, info = primitive_atoms(structure.get_ase(), symprec_A.value)
    except ValueError as exc:
        raise InputError(f'no primitive cell of {structure.get_formula()}: {exc}') from None
    return {'structure': orm.StructureData(ase=primitive), 'info': orm.Dict(info)}


def vacancy_supercell(cell: np.ndarray, min_length_A: float) -> list[int]:
    """Repetitions so that every perpendicular width of the supercell is >= ``min_length_A``."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    widths = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
    return [max(1, int(np.ceil(min_length_A / w - 1e-9))) for w in widths]


@calcfunction
def vacancy_cells(structure: orm.StructureData, parameters: orm.Dict) -> dict[str, orm.StructureData]:
    """The perfect supercell, one supercell per symmetry-inequivalent mobile site without that site's
    representative (``defect_0``, ``defect_1``, ...; classes of
    :func:`~aiida_superionic.analysis.vacancy.mobile_site_classes`, kept as the attribute ``vacancy_sites`` of
    ``perfect``) and, unless ``mu_eV`` is given, the reference cell of the mobile ion's chemical
    potential (:func:`~aiida_superionic.analysis.vacancy.chemical_potential_reference`)."""
    from ase import Atoms

    from ...analysis.vacancy import chemical_potential_reference, mobile_site_classes

    p = parameters.get_dict()
    unit = structure.get_ase()
    mobile = p['mobile']
    classes = mobile_site_classes(
        np.asarray(unit.cell),
        unit.get_scaled_positions(),
        unit.get_chemical_symbols(),
        mobile,
        float(p['symprec']),
    )
    reps = vacancy_supercell(np.array(structure.cell), float(p['min_length_A']))
    perfect = unit.repeat(reps)  # ASE tiling: unit-cell atom i is supercell atom i (first image)
    out = {'perfect': orm.StructureData(ase=perfect)}
    out['perfect'].base.attributes.set_many(
        {'supercell': reps, 'vacancy_sites': classes, 'symprec': float(p['symprec'])}
    )
    for k, site in enumerate(classes):
        defect = perfect.copy()
        del defect[site['index']]
        out[f'defect_{k}'] = orm.StructureData(ase=defect)
        out[f'defect_{k}'].base.attributes.set_many(
            {'removed_index': site['index'], 'wyckoff': site['wyckoff']}
        )
    if p.get('mu_eV') is None:
        rule = chemical_potential_reference(mobile)
        ref = Atoms(rule['symbols'], positions=rule['positions'], cell=rule['cell'], pbc=True)
        out['reference'] = orm.StructureData(ase=ref)
    return out


@calcfunction
def vacancy_energy(perfect: orm.Dict, parameters: orm.Dict, **jobs: orm.Dict) -> orm.Dict:
    """E_vac = min over the site classes of E(defect_k) + mu - E(perfect), from aiida-vasp's ``misc``
    (energy extrapolated to sigma -> 0) of the perfect job, the ``defect_k`` jobs and, unless ``mu_eV``
    is given, the ``reference`` job (mu = its energy per atom)."""
    from ...analysis.vacancy import MU_RULE, vacancy_site_result

    p = parameters.get_dict()

    def energy(misc: orm.Dict) -> float:
        return float(misc.get_dict()['total_energies']['energy_extrapolated'])

    e_perfect = energy(perfect)
    if p.get('mu_eV') is not None:
        mu, source = float(p['mu_eV']), 'given'
        reference = {
            'element': p['mobile'],
            'kind': 'given',
            'description': 'given in the protocol (vacancy.mu_eV)',
        }
        text = reference['description']
    else:
        rule = p['reference']
        mu, source = energy(jobs['reference']) / int(rule['n_atoms']), 'computed'
        reference = {k: rule[k] for k in ('element', 'kind', 'structure', 'spin', 'n_atoms', 'description')}
        reference['incar'] = p['reference_incar']
        text = f'{rule["description"]}, same VASP settings'
    n_images = int(np.prod(p['supercell']))
    sites = []
    for k, site in enumerate(p['sites']):
        misc = jobs[f'defect_{k}'].get_dict()
        e_defect = energy(jobs[f'defect_{k}'])
        converged = misc.get('run_status', {}).get('ionic_converged') is not False
        sites.append(vacancy_site_result(site, n_images, e_defect, e_defect + mu - e_perfect, converged))
    best = min(sites, key=lambda x: x['E_vac_eV'])
    return orm.Dict(
        {
            'E_vac_eV': best['E_vac_eV'],
            'mu_eV': mu,
            'mu_reference': text,
            'mu_source': source,
            'mu_rule': MU_RULE,
            'reference': reference,
            'E_perfect_eV': e_perfect,
            'E_defect_eV': best['E_defect_eV'],
            'supercell': p['supercell'],
            'n_atoms_supercell': p['n_atoms_supercell'],
            'removed_index': best['index'],
            'wyckoff': best['wyckoff'],
            'mobile': p['mobile'],
            'symprec': p['symprec'],
            'sites': sites,
            'converged': all(x['converged'] for x in sites),
        }
    )
