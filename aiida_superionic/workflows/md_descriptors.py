"""``superionic.md_descriptors``: every MD-derived descriptor of one trajectory, and its record."""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from ..calculations.functions import (
    assemble_record,
    compute_diffusion,
    compute_lindemann,
    compute_structure_descriptors,
    compute_vibrational,
    parse_trajectory_file,
)
from ..data import MDTrajectoryData
from ..exceptions import InputError
from ..resubmit import run_once, submit_once


def default_record_metadata(trajectory: MDTrajectoryData, mobile: str | None) -> dict:
    from pymatgen.core import Composition

    from ..analysis._common import default_mobile

    formula = Composition(''.join(trajectory.symbols)).reduced_formula
    return {
        'material': formula,
        'formula': formula,
        'mobile_species': mobile or trajectory.mobile_species or default_mobile(trajectory.symbols),
        'temperature_K': trajectory.temperature_K,
        'stoichiometric': True,
        'engine': {'file': 'imported'}.get(
            trajectory.origin.get('kind'), trajectory.origin.get('kind', 'unknown')
        ),
        'trajectory_uuid': trajectory.uuid,
    }


class MDDescriptorsWorkChain(WorkChain):
    """Diffusion, vibrational and Lindemann descriptors of a trajectory (plus the structural ones when a
    reference structure is given), assembled into the material's descriptor record."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('trajectory', valid_type=MDTrajectoryData, help='The MD trajectory.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help="Analysis options: mobile, fit_window_ps, vdos_weighting (default 'none': eq 5).",
        )
        spec.input(
            'structure', valid_type=orm.StructureData, required=False, help='Reference (relaxed) crystal.'
        )
        spec.input(
            'structure_parameters',
            valid_type=orm.Dict,
            required=False,
            help='Options of the structural descriptors: stoichiometric, epsilon_inf.',
        )
        spec.input(
            'record_metadata',
            valid_type=orm.Dict,
            required=False,
            help='Overrides of the record metadata: material, stoichiometric, engine, ...',
        )
        spec.input_namespace(
            'parts',
            valid_type=orm.Dict,
            dynamic=True,
            required=False,
            help='Further record parts from other steps: elastic, phonon, dft (see assemble_record).',
        )
        spec.outline(cls.analyse, if_(cls.has_structure)(cls.structure_descriptors), cls.record)
        spec.output('diffusion', valid_type=orm.Dict)
        spec.output('msd', valid_type=orm.ArrayData)
        spec.output('vibrational', valid_type=orm.Dict)
        spec.output('vdos', valid_type=orm.ArrayData)
        spec.output('lindemann', valid_type=orm.Dict)
        spec.output('structure_descriptors', valid_type=orm.Dict, required=False)
        spec.output(
            'record', valid_type=orm.Dict, help='The descriptor record (one material x T x stoichiometry).'
        )
        spec.exit_code(
            300, 'ERROR_INVALID_TRAJECTORY', message='the trajectory cannot be analysed: {message}'
        )
        spec.exit_code(301, 'ERROR_INVALID_STRUCTURE', message='the structural descriptors failed: {message}')

    def _parameters(self):
        return self.inputs.parameters if 'parameters' in self.inputs else None

    def analyse(self):
        params = self._parameters()
        kwargs = {'parameters': params} if params is not None else {}
        traj = self.inputs.trajectory
        try:
            # run_once: a step replayed after a daemon kill takes the calls it already finished
            diffusion = run_once(self, 'diffusion', compute_diffusion, traj, **kwargs)
            vibrational = run_once(self, 'vibrational', compute_vibrational, traj, **kwargs)
            lindemann = run_once(self, 'lindemann', compute_lindemann, traj, **kwargs)
        except InputError as exc:
            return self.exit_codes.ERROR_INVALID_TRAJECTORY.format(message=str(exc))
        self.out('diffusion', diffusion['diffusion'])
        self.out('msd', diffusion['msd'])
        self.out('vibrational', vibrational['vibrational'])
        self.out('vdos', vibrational['vdos'])
        self.out('lindemann', lindemann)
        d = diffusion['diffusion']
        if d.get('D_resolved', True):
            text = f'D = {d["D_cm2_s"]:.3g} cm2/s'
        else:
            bound = d.get('D_upper_bound_cm2_s')
            text = 'D not resolved from zero' + (f' (D < {bound:.2g} cm2/s)' if bound is not None else '')
        self.report(
            f'{text} at {traj.temperature_K:g} K ({traj.n_frames} frames, mobile {d["mobile_species"]})'
        )

    def has_structure(self):
        return 'structure' in self.inputs

    def structure_descriptors(self):
        p = self.inputs.structure_parameters.get_dict() if 'structure_parameters' in self.inputs else {}
        p['mobile'] = self.outputs['diffusion']['mobile_species']
        try:
            result = run_once(
                self, 'structure', compute_structure_descriptors, self.inputs.structure, orm.Dict(p)
            )
        except InputError as exc:
            return self.exit_codes.ERROR_INVALID_STRUCTURE.format(message=str(exc))
        self.out('structure_descriptors', result)

    def record(self):
        traj = self.inputs.trajectory
        meta = default_record_metadata(traj, self.outputs['diffusion']['mobile_species'])
        if 'record_metadata' in self.inputs:
            meta.update(self.inputs.record_metadata.get_dict())
        parts = {k: self.outputs[k] for k in ('diffusion', 'vibrational', 'lindemann')}
        if 'structure_descriptors' in self.outputs:
            parts['structure'] = self.outputs['structure_descriptors']
        if 'parts' in self.inputs:
            parts.update(self.inputs.parts)
        self.out('record', run_once(self, 'record', assemble_record, orm.Dict(meta), **parts))


class ImportMDWorkChain(WorkChain):
    """Import an existing MD file: parse it into a trajectory node, then run ``superionic.md_descriptors``."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            'source', valid_type=orm.SinglefileData, help='The MD file (XDATCAR, vasprun.xml, .npz, ...).'
        )
        spec.input('read_parameters', valid_type=orm.Dict, help='See `parse_trajectory_file`.')
        spec.input(
            'group_label', valid_type=orm.Str, required=False, help='Add trajectory and record to this group.'
        )
        spec.expose_inputs(MDDescriptorsWorkChain, namespace='descriptors', exclude=('trajectory',))
        spec.outline(cls.parse, cls.describe, cls.results)
        spec.output('trajectory', valid_type=MDTrajectoryData)
        spec.expose_outputs(MDDescriptorsWorkChain)
        spec.exit_code(300, 'ERROR_UNREADABLE_FILE', message='the MD file cannot be read: {message}')
        spec.exit_code(310, 'ERROR_DESCRIPTORS_FAILED', message='the descriptor work chain failed')

    def parse(self):
        try:
            self.ctx.trajectory = parse_trajectory_file(self.inputs.source, self.inputs.read_parameters)
        except InputError as exc:
            return self.exit_codes.ERROR_UNREADABLE_FILE.format(message=str(exc))
        self.out('trajectory', self.ctx.trajectory)

    def describe(self):
        inputs = self.exposed_inputs(MDDescriptorsWorkChain, namespace='descriptors')
        inputs['trajectory'] = self.ctx.trajectory
        return ToContext(descriptors=submit_once(self, 'descriptors', MDDescriptorsWorkChain, **inputs))

    def results(self):
        child = self.ctx.descriptors
        if not child.is_finished_ok:
            return self.exit_codes.ERROR_DESCRIPTORS_FAILED
        self.out_many(self.exposed_outputs(child, MDDescriptorsWorkChain))
        if 'group_label' in self.inputs:
            group, _ = orm.Group.collection.get_or_create(self.inputs.group_label.value)
            group.add_nodes([self.ctx.trajectory, child.outputs.record])
