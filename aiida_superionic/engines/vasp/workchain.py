"""``superionic.vasp.step``: one step of the engine contract through aiida-vasp's ``vasp.vasp`` work chain.

aiida-vasp writes the inputs, runs VASP, parses it and handles its errors (electronic or ionic
non-convergence, unfinished runs: ``VaspWorkChain`` handlers). This work chain only turns what VASP wrote
into the contract's outputs (:mod:`aiida_superionic.engines.contract`) with the calcfunctions of
:mod:`.calcfunctions` (readers of :mod:`.outputs`), and, for MD, chains segments: each continues from the CONTCAR (positions and
velocities) of the one before, and the segments' XDATCARs (read with the project's streaming reader)
are stitched into one trajectory node by ``superionic.stitch_trajectories``.

Also ``superionic.vasp.vacancy`` (:class:`VaspVacancyWorkChain`). The VASP jobs run as
``superionic.vasp.vasp`` (:mod:`.calculation`).
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_, while_

from ...calculations.functions import stitch_segments
from ...exceptions import InputError
from ...resubmit import submit_once
from ..builders import EngineStepBuilder
from ..contract import declare_outputs
from ..symmetry import SYMPREC_A
from .calcfunctions import (
    gamma_primitive_structure,
    vacancy_cells,
    vacancy_energy,
    vasp_md_restart,
    vasp_md_segment,
    vasp_relax_results,
    vasp_step_outputs,
)
from .calculation import SuperionicVaspWorkChain
from .inputs import fill_vasp_inputs, step_incar

#: aiida-vasp handlers that would restart an unfinished MD job from its last positions *without* its
#: velocities; the MD loop here continues it with them instead.
MD_DISABLED_HANDLERS = ('handler_unfinished_calc_ionic', 'handler_unfinished_calc_generic')


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
            'dielectric: mobile; phonon_gamma: mobile and lepsilon (also the dielectric output, same job).',
        )
        spec.outline(
            cls.setup,
            while_(cls.should_run)(cls.run_vasp, cls.inspect),
            if_(cls.is_md)(cls.stitch).else_(cls.results),
        )
        declare_outputs(
            spec,
            ('results', 'structure', 'elastic_tensor', 'phonon', 'dielectric', 'band_gap', 'trajectory'),
            required=False,
        )
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
        if self.ctx.settings.get('lepsilon'):  # phonon_gamma: also ε∞ and the Born charges of the job
            params['lepsilon'] = True
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
        declare_outputs(spec, ('vacancy',))
        declare_outputs(spec, ('results',), required=False)
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
