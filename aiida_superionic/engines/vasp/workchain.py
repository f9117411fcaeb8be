"""``superionic.vasp.step``: one step of the engine contract through aiida-vasp's ``vasp.vasp`` work chain.

aiida-vasp writes the inputs, runs VASP, parses it and handles its errors (electronic or ionic
non-convergence, unfinished runs: ``VaspWorkChain`` handlers). This work chain only turns what VASP wrote
into the contract's outputs (:mod:`aiida_superionic.engines.contract`) with the readers of
:mod:`.outputs`, and, for MD, chains segments: each continues from the CONTCAR (positions and
velocities) of the one before, and the segments' XDATCARs (read with the project's streaming reader)
are stitched into one trajectory node by ``superionic.stitch_trajectories``.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, calcfunction, if_, while_
from aiida_vasp.calcs.vasp import VaspCalculation
from aiida_vasp.workchains.v2.vasp import VaspWorkChain

from ...calculations.functions import stitch_segments
from ...data import MDTrajectoryData
from ...exceptions import InputError
from ...workflows.resubmit import submit_once
from ..builders import EngineStepBuilder
from ..symmetry import SYMPREC_A
from . import outputs as vo
from .inputs import fill_vasp_inputs, step_incar

#: aiida-vasp handlers that would restart an unfinished MD job from its last positions *without* its
#: velocities; the MD loop here continues it with them instead.
MD_DISABLED_HANDLERS = ('handler_unfinished_calc_ionic', 'handler_unfinished_calc_generic')


class VaspVelocityCalculation(VaspCalculation):
    """aiida-vasp's ``VaspCalculation`` that can also write a velocity block into the POSCAR (MD restarts)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            'velocities',
            valid_type=orm.ArrayData,
            required=False,
            help='Array ``velocities`` (n_atoms x 3, Å/fs, cartesian) written after the POSCAR positions.',
        )

    def prepare_for_submission(self, folder):
        """aiida-vasp's, except that with ``settings['SKIP_VASPRUN']`` (MD) the vasprun.xml is neither
        retrieved nor parsed: the trajectory comes from the XDATCAR, the run status from the OUTCAR."""
        calcinfo = super().prepare_for_submission(folder)
        settings = self.inputs.settings.get_dict() if 'settings' in self.inputs else {}
        if settings.get('SKIP_VASPRUN'):
            calcinfo.retrieve_list = [n for n in calcinfo.retrieve_list if n != 'vasprun.xml']
            calcinfo.retrieve_temporary_list = [
                n for n in calcinfo.retrieve_temporary_list if n != 'vasprun.xml'
            ]
        return calcinfo

    def write_poscar(self, dst: str) -> None:
        super().write_poscar(dst)
        if 'velocities' not in self.inputs:
            return
        velocities = self.inputs.velocities.get_array('velocities')
        if velocities.shape != (len(self.inputs.structure.sites), 3):
            raise InputError(
                f'velocities: shape {velocities.shape} does not match {len(self.inputs.structure.sites)} atoms'
            )
        with open(dst, 'a', encoding='utf8') as handle:
            handle.write('Cartesian\n')
            for v in velocities:
                handle.write(f'  {v[0]: .10E} {v[1]: .10E} {v[2]: .10E}\n')


class SuperionicVaspWorkChain(VaspWorkChain):
    """``vasp.vasp`` running :class:`VaspVelocityCalculation` (everything else is aiida-vasp's)."""

    _process_class = VaspVelocityCalculation


def _read_folder_file(folder: orm.FolderData, name: str, tmp: Path) -> Path:
    if name not in folder.base.repository.list_object_names():
        raise vo.VaspOutputError(f'{name} was not retrieved (the run crashed or was not asked to write it)')
    path = tmp / name
    path.write_bytes(folder.base.repository.get_object_content(name, mode='rb'))
    return path


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
            return {
                'phonon': orm.Dict({**modes, **p.get('primitive', {}), 'source': source}),
                'results': orm.Dict({'engine': 'vasp', 'gamma_mode_meV': modes['gamma_mode_meV']}),
            }
        if step == 'dielectric':
            data = vo.read_lepsilon(_read_folder_file(retrieved, 'OUTCAR', tmp))
            born = data['born_charges']
            symbols = p['symbols']
            mobile = p.get('mobile')
            iso = [float(np.trace(z) / 3) for z in born]
            mobile_idx = [i for i, s in enumerate(symbols) if s == mobile]
            return {
                'dielectric': orm.Dict(
                    {
                        'epsilon_inf': float(np.trace(data['epsilon_inf']) / 3),
                        'epsilon_inf_tensor': data['epsilon_inf'].tolist(),
                        'born_charge_e': float(np.mean([iso[i] for i in mobile_idx])) if mobile_idx else None,
                        'born_charge_species': mobile,
                        'born_charges_isotropic_e': iso,
                        'born_charges_tensor_e': born.tolist(),
                    }
                )
            }
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


class VaspStepWorkChain(EngineStepBuilder, WorkChain):
    """One contract step with VASP: ``vasp.vasp`` (one job or, for MD, a chain of segments) + readers."""

    _protocol_engine = 'vasp'  # get_builder_from_protocol: see ..builders

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(SuperionicVaspWorkChain, namespace='vasp')
        spec.input(
            'step', valid_type=orm.Str, help='relax, elastic, phonon_gamma, dielectric, band_gap or md.'
        )
        spec.input(
            'step_settings',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            help='md: n_steps, segment_steps, frame_interval, timestep_fs, temperature_K, max_segments; '
            'dielectric: mobile.',
        )
        spec.outline(
            cls.setup,
            while_(cls.should_run)(cls.run_vasp, cls.inspect),
            if_(cls.is_md)(cls.stitch).else_(cls.results),
        )
        spec.output('results', valid_type=orm.Dict, required=False)
        spec.output('structure', valid_type=orm.StructureData, required=False)
        spec.output('elastic_tensor', valid_type=orm.ArrayData, required=False)
        spec.output('phonon', valid_type=orm.Dict, required=False)
        spec.output('dielectric', valid_type=orm.Dict, required=False)
        spec.output('band_gap', valid_type=orm.Dict, required=False)
        spec.output('trajectory', valid_type=MDTrajectoryData, required=False)
        spec.exit_code(401, 'ERROR_VASP_FAILED', message='the VASP {step} job failed: {message}')
        spec.exit_code(402, 'ERROR_OUTPUT', message='the VASP {step} outputs could not be read: {message}')
        spec.exit_code(403, 'ERROR_MD_SEGMENTS', message='MD stopped after {n} segments: {message}')
        spec.exit_code(404, 'ERROR_SYMMETRY', message='the {step} step found no primitive cell: {message}')

    def setup(self):
        self.ctx.inputs = AttributeDict(self.exposed_inputs(SuperionicVaspWorkChain, 'vasp'))
        self.ctx.step = self.inputs.step.value
        self.ctx.settings = self.inputs.step_settings.get_dict()
        self.ctx.done = False
        self.ctx.segments = []  # MDTrajectoryData of finished segments
        self.ctx.md_step = 0
        self.ctx.restart_from = None
        self.ctx.primitive = None
        if self.ctx.step == 'phonon_gamma':
            # Γ of the crystal, not of the cell the user gave: VASP gets the primitive cell
            given = self.ctx.inputs.structure
            symprec = float(self.ctx.settings.get('symprec_A', SYMPREC_A))
            try:
                primitive = gamma_primitive_structure(given, orm.Float(symprec))
            except Exception as exc:  # the calcfunction raised: one clear exit code
                return self.exit_codes.ERROR_SYMMETRY.format(step=self.ctx.step, message=str(exc))
            self.ctx.inputs.structure = primitive['structure']
            self.ctx.primitive = primitive['info'].get_dict()
            self.report(
                f'phonon_gamma: the {len(given.sites)}-atom input as its '
                f'{self.ctx.primitive["n_atoms_primitive"]}-atom primitive cell ({self.ctx.primitive["spacegroup"]})'
            )
        return None

    def is_md(self):
        return self.ctx.step == 'md'

    def should_run(self):
        return not self.ctx.done

    def run_vasp(self):
        inputs = AttributeDict(self.ctx.inputs)
        if self.is_md():
            s = self.ctx.settings
            remaining = int(s['n_steps']) - self.ctx.md_step
            nblock = int(s['frame_interval'])
            nsw = min(int(s['segment_steps']), remaining)
            if self.ctx.md_step % nblock:  # realign a segment stopped off the frame grid (one short job)
                nsw = nblock - self.ctx.md_step % nblock
                nblock = nsw
            incar = inputs.parameters.get_dict()
            incar['incar'] = {
                **incar.get('incar', {}),
                'nsw': nsw,
                'nblock': nblock,
            }  # aiida-vasp: lower case
            inputs.parameters = orm.Dict(incar)
            self.ctx.segment_nblock = nblock
            self.ctx.segment_start = self.ctx.md_step
        # under a fixed call-link label: a step replayed after a daemon crash reuses the job it submitted
        node = submit_once(self, f'vasp_{len(self.ctx.segments)}', SuperionicVaspWorkChain, **inputs)
        node.base.extras.set('superionic_segment', len(self.ctx.segments))
        return ToContext(child=node)

    def _last_calc(self, node) -> orm.CalcJobNode | None:
        calcs = [n for n in node.called if isinstance(n, orm.CalcJobNode)]
        return max(calcs, key=lambda n: n.ctime) if calcs else None

    def inspect(self):
        child = self.ctx.child
        if not self.is_md():
            self.ctx.done = True
            if not child.is_finished_ok:
                return self.exit_codes.ERROR_VASP_FAILED.format(
                    step=self.ctx.step, message=f'{child.process_label}<{child.pk}>: {child.exit_message}'
                )
            return None
        return self._inspect_md_segment(child)

    def _inspect_md_segment(self, child):
        s = self.ctx.settings
        calc = self._last_calc(child)
        n = len(self.ctx.segments) + 1
        if calc is None or 'retrieved' not in calc.outputs:
            return self.exit_codes.ERROR_MD_SEGMENTS.format(n=n, message=f'{child.pk} retrieved nothing')
        retrieved = calc.outputs.retrieved
        params = {
            'nblock': self.ctx.segment_nblock,
            'start_step': self.ctx.segment_start,
            'timestep_fs': s['timestep_fs'],
            'frame_interval': s['frame_interval'],
            'temperature_K': s['temperature_K'],
            'mobile': s.get('mobile'),
            'restart_from': self.ctx.restart_from,
        }
        try:
            seg = vasp_md_segment(retrieved, orm.Dict(params))
        except InputError as exc:
            return self.exit_codes.ERROR_MD_SEGMENTS.format(n=n, message=str(exc))
        self.ctx.segments.append(seg['trajectory'])
        done = seg['info']['steps_done']
        self.ctx.md_step = self.ctx.segment_start + done
        if not child.is_finished_ok:
            self.report(
                f'MD segment {n} ({child.process_label}<{child.pk}>) stopped after {done} steps '
                f'({child.exit_message}): continuing from its CONTCAR'
            )
        if self.ctx.md_step >= int(s['n_steps']):
            self.ctx.done = True
            return None
        if n >= int(s.get('max_segments', 40)):
            return self.exit_codes.ERROR_MD_SEGMENTS.format(n=n, message='max_segments reached')
        try:
            restart = vasp_md_restart(retrieved, self.ctx.inputs.structure)
        except InputError as exc:
            return self.exit_codes.ERROR_MD_SEGMENTS.format(n=n, message=str(exc))
        self.ctx.inputs.structure = restart['structure']
        self.ctx.inputs.velocities = restart['velocities']
        self.ctx.restart_from = self.ctx.md_step
        return None

    def stitch(self):
        segments = self.ctx.segments
        try:
            trajectory = stitch_segments(segments)
        except Exception as exc:  # the calcfunction raised: report it as an exit code
            return self.exit_codes.ERROR_MD_SEGMENTS.format(n=len(segments), message=str(exc))
        self.out('trajectory', trajectory)
        self.report(f'MD: {trajectory.n_frames} frames from {len(segments)} segment(s)')
        return None

    def results(self):
        child = self.ctx.child
        step = self.ctx.step
        if step == 'relax':
            self.out(
                'structure',
                child.outputs.structure if 'structure' in child.outputs else self.ctx.inputs.structure,
            )
            self.out('results', vasp_relax_results(child.outputs.misc))
            return None
        params = {'step': step, 'mobile': self.ctx.settings.get('mobile')}
        structure = self.ctx.inputs.structure
        params['symbols'] = [structure.get_kind(site.kind_name).symbol for site in structure.sites]
        if self.ctx.primitive:
            params['primitive'] = self.ctx.primitive
        try:
            outs = vasp_step_outputs(child.outputs.retrieved, orm.Dict(params))
        except InputError as exc:
            return self.exit_codes.ERROR_OUTPUT.format(step=step, message=str(exc))
        for name, node in outs.items():
            self.out(name, node)
        return None


def vacancy_supercell(cell: np.ndarray, min_length_A: float) -> list[int]:
    """Repetitions so that every perpendicular width of the supercell is >= ``min_length_A``."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    widths = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
    return [max(1, int(np.ceil(min_length_A / w - 1e-9))) for w in widths]


def reference_incar(rule: dict, settings: dict) -> dict:
    """INCAR of the chemical-potential reference of the shared rule (:mod:`...analysis.vacancy`): a metal
    as the relax step (cell + positions); a molecule as the defect cells (positions, fixed box) with its
    spin: ``ISPIN = 2``, ``MAGMOM = 1 1``, ``NUPDOWN = 2`` for the triplet (O2), ``ISPIN = 1`` otherwise."""
    if rule['kind'] == 'metal':
        return step_incar('relax', settings)
    incar = step_incar('vacancy', settings)
    if rule['spin'] == 'triplet':
        incar.update({'ISPIN': 2, 'MAGMOM': [1.0] * rule['n_atoms'], 'NUPDOWN': rule['n_unpaired']})
    else:
        incar['ISPIN'] = 1
    return incar


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


class VaspVacancyWorkChain(EngineStepBuilder, WorkChain):
    """``superionic.vasp.vacancy``: the mobile-ion vacancy formation energy in a supercell with VASP.

    All ``vasp.vasp`` jobs at once: the perfect supercell (static), one supercell per
    symmetry-inequivalent mobile site without that site (positions relaxed, cell fixed) and, unless
    ``vacancy.mu_eV`` is given, the chemical-potential reference of the mobile ion by the shared rule
    (:mod:`aiida_superionic.analysis.vacancy`: bcc/fcc metal relaxed; X2 molecule in a box, Γ only, O2
    spin-polarized triplet). E_vac is the lowest of the site classes; all are in the output."""

    _protocol_engine = 'vasp'  # get_builder_from_protocol: see ..builders
    _protocol_step = 'vacancy'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The relaxed crystal.')
        spec.input('code', valid_type=orm.AbstractCode)
        spec.input('mobile', valid_type=orm.Str)
        spec.input('settings', valid_type=orm.Dict, help="The vasp engine's protocol settings.")
        spec.input('options', valid_type=orm.Dict, default=lambda: orm.Dict({}))
        spec.outline(cls.make_cells, cls.run_jobs, cls.results)
        spec.output('vacancy', valid_type=orm.Dict)
        spec.output('results', valid_type=orm.Dict, required=False)
        spec.exit_code(
            401, 'ERROR_VASP_FAILED', message='the VASP {role} job of the vacancy step failed: {message}'
        )
        spec.exit_code(402, 'ERROR_NO_REFERENCE', message='{message}')
        spec.exit_code(403, 'ERROR_INPUT', message='vacancy step: {message}')

    def _params(self) -> dict:
        from ...analysis.vacancy import VACANCY_SYMPREC

        vac = self.inputs.settings.get_dict().get('vacancy', {})
        return {
            'min_length_A': float(vac.get('min_length_A', 10.0)),
            'mobile': self.inputs.mobile.value,
            'mu_eV': vac.get('mu_eV'),
            'symprec': float(vac.get('symprec') or VACANCY_SYMPREC),
        }

    def make_cells(self):
        from ...analysis.vacancy import chemical_potential_reference, mobile_site_classes

        params = self._params()
        self.ctx.rule = None
        if params['mu_eV'] is None:
            try:
                self.ctx.rule = chemical_potential_reference(params['mobile'])
            except InputError as exc:
                return self.exit_codes.ERROR_NO_REFERENCE.format(message=str(exc))
        unit = self.inputs.structure.get_ase()
        try:  # the same call as in vacancy_cells: bad input is an exit code, not an excepted calcfunction
            mobile_site_classes(
                np.asarray(unit.cell), unit.get_scaled_positions(), unit.get_chemical_symbols(),
                params['mobile'], params['symprec'],
            )  # fmt: skip
        except InputError as exc:
            return self.exit_codes.ERROR_INPUT.format(message=str(exc))
        self.ctx.cells = vacancy_cells(self.inputs.structure, orm.Dict(params))
        return None

    def run_jobs(self):
        settings = self.inputs.settings.get_dict()
        options = self.inputs.options.get_dict()
        vac_incar = step_incar('vacancy', settings)
        perfect_incar = {
            **vac_incar,
            **{k.upper(): v for k, v in settings['vacancy'].get('perfect_incar', {}).items()},
        }
        jobs = {'perfect': (perfect_incar, False)}
        for name in sorted(self.ctx.cells):
            if name.startswith('defect_'):
                jobs[name] = (vac_incar, False)
        if self.ctx.rule is not None:
            self.ctx.reference_incar = reference_incar(self.ctx.rule, settings)
            jobs['reference'] = (self.ctx.reference_incar, self.ctx.rule['kind'] == 'molecule')
        futures = {}
        for role, (incar, gamma_only) in jobs.items():
            builder = SuperionicVaspWorkChain.get_builder()
            fill_vasp_inputs(
                builder,
                self.ctx.cells[role],
                self.inputs.code,
                settings,
                incar,
                options,
                gamma_only=gamma_only,
            )
            builder.metadata.label = f'vacancy {role.replace("_", " ")}'
            futures[role] = submit_once(self, f'vasp_{role}', builder)  # a replayed step reuses it
        self.ctx.roles = list(jobs)
        return ToContext(**futures)

    def results(self):
        for role in self.ctx.roles:
            node = self.ctx[role]
            if not node.is_finished_ok:
                return self.exit_codes.ERROR_VASP_FAILED.format(
                    role=role, message=f'{node.process_label}<{node.pk}>: {node.exit_message}'
                )
        perfect = self.ctx.cells['perfect']
        params = {
            **self._params(),
            'supercell': perfect.base.attributes.get('supercell'),
            'sites': perfect.base.attributes.get('vacancy_sites'),
            'n_atoms_supercell': len(perfect.sites),
        }
        if self.ctx.rule is not None:
            params['reference'] = self.ctx.rule
            params['reference_incar'] = self.ctx.reference_incar
        jobs = {role: self.ctx[role].outputs.misc for role in self.ctx.roles if role != 'perfect'}
        result = vacancy_energy(self.ctx.perfect.outputs.misc, orm.Dict(params), **jobs)
        self.out('vacancy', result)
        self.report(
            f'E_vac = {result["E_vac_eV"]:.4f} eV at {result["mobile"]} {result["wyckoff"]}, lowest of '
            f'{len(result["sites"])} site classes (mu = {result["mu_eV"]:.4f} eV, {result["mu_reference"]})'
        )
        return None
