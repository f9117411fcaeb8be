"""``superionic.material``: one material through the whole paper — relax, elastic, Γ phonons, vacancy
energy, NVT MD at several temperatures (stoichiometric and with mobile-ion vacancies) — ending with the
material's descriptor records."""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain

from ..calculations.functions import collect_dft_part
from ..engines.builders import EngineInputsBuilder
from ..resubmit import run_once, submit_once
from .md import MDWorkChain
from .steps import (
    BandGapWorkChain,
    DielectricWorkChain,
    ElasticWorkChain,
    PhononGammaWorkChain,
    RelaxWorkChain,
    VacancyWorkChain,
    engine_settings,
    validate_engine_inputs,
)


def _validate_label(value, _ctx) -> str | None:
    """A label the database can store: aiida-core's node and group labels are ``varchar(255)``."""
    if value is not None and len(value.value) > 255:
        return f'the label is {len(value.value)} characters long; AiiDA stores labels of at most 255'
    return None


class MaterialWorkChain(EngineInputsBuilder, WorkChain):
    """The top-level work chain behind ``aiida-superionic submit``."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The crystal as given by the user.')
        spec.input('mobile', valid_type=orm.Str, help='The mobile species.')
        spec.expose_inputs(RelaxWorkChain, exclude=('structure',))
        spec.input('temperatures', valid_type=orm.List, required=False, help='MD temperatures (K).')
        spec.input(
            'label',
            valid_type=orm.Str,
            required=False,
            validator=_validate_label,
            help='Material label of the records.',
        )
        spec.input(
            'group_label',
            valid_type=orm.Str,
            required=False,
            validator=_validate_label,
            help='Add the records to this group.',
        )
        spec.inputs.validator = validate_engine_inputs  # a bad override fails at launch, not after relax
        spec.outline(cls.relax, cls.properties, cls.molecular_dynamics, cls.results)
        spec.output('relaxed_structure', valid_type=orm.StructureData)
        spec.output('elastic_descriptors', valid_type=orm.Dict, required=False)
        spec.output('phonon', valid_type=orm.Dict)
        spec.output('vacancy', valid_type=orm.Dict)
        spec.output('dielectric', valid_type=orm.Dict, required=False, help='ε∞ and Born charges (DFT).')
        spec.output('band_gap', valid_type=orm.Dict, required=False, help='Band gap (DFT).')
        spec.output_namespace('records', valid_type=orm.Dict, dynamic=True)
        spec.output_namespace('arrhenius', valid_type=orm.Dict, dynamic=True, required=False)
        spec.exit_code(401, 'ERROR_RELAX_FAILED', message='the relaxation failed: {message}')
        spec.exit_code(402, 'ERROR_STEP_FAILED', message='the {step} step failed: {message}')
        spec.exit_code(403, 'ERROR_MD_FAILED', message='the MD work chain failed: {message}')

    @classmethod
    def _fill_step_inputs(
        cls, builder, settings, *, temperatures=None, label: str | None = None, group_label: str | None = None
    ) -> None:
        """As :class:`MDWorkChain`'s, the process label (``label``, else the formula) and ``group_label``."""
        MDWorkChain._fill_step_inputs(builder, settings, temperatures=temperatures, label=label)
        builder.metadata.label = (
            label if label is not None else builder.structure.get_formula(mode='hill_compact')
        )
        if group_label is not None:
            builder.group_label = orm.Str(group_label)

    def _engine_inputs(self):
        return self.exposed_inputs(RelaxWorkChain)

    def relax(self):
        self.report(
            f'relaxing {self.inputs.structure.get_formula()} with the {self.inputs.engine.value} engine'
        )
        return ToContext(
            relax=submit_once(
                self, 'relax', RelaxWorkChain, structure=self.inputs.structure, **self._engine_inputs()
            )
        )

    def properties(self):
        relax = self.ctx.relax
        if not relax.is_finished_ok:
            return self.exit_codes.ERROR_RELAX_FAILED.format(
                message=relax.exit_message or relax.process_state.value
            )
        structure = relax.outputs.structure
        self.out('relaxed_structure', structure)
        common = {'structure': structure, **self._engine_inputs()}
        engine, settings = engine_settings(self)
        unavailable = engine.unavailable()
        # one DFPT job for Γ and ε∞ / Born charges where the engine's Γ job is a LEPSILON run (VASP)
        gamma_dielectric = 'dielectric' not in unavailable and engine.gamma_gives_dielectric(settings)
        phonon_kwargs = {'mobile': self.inputs.mobile} if gamma_dielectric else {}
        futures = {
            'elastic': submit_once(self, 'elastic', ElasticWorkChain, **common),
            'phonon': submit_once(self, 'phonon', PhononGammaWorkChain, **phonon_kwargs, **common),
            'vacancy': submit_once(self, 'vacancy', VacancyWorkChain, mobile=self.inputs.mobile, **common),
        }
        if 'dielectric' not in unavailable and not gamma_dielectric:  # ε∞ and Born charges (DFT engines)
            futures['dielectric'] = submit_once(
                self, 'dielectric', DielectricWorkChain, mobile=self.inputs.mobile, **common
            )
        if 'band_gap' not in unavailable:
            futures['band_gap'] = submit_once(self, 'band_gap', BandGapWorkChain, **common)
        return ToContext(**futures)

    def molecular_dynamics(self):
        parts = {}
        elastic = self.ctx.elastic
        if elastic.is_finished_ok:
            self.out('elastic_descriptors', elastic.outputs.elastic_descriptors)
            parts['elastic'] = elastic.outputs.elastic_descriptors
        elif elastic.exit_status == ElasticWorkChain.exit_codes.ERROR_MECHANICALLY_UNSTABLE.status:
            self.report(f'no elastic descriptors: {elastic.exit_message}')  # a real finding, not a crash
        else:
            return self.exit_codes.ERROR_STEP_FAILED.format(step='elastic', message=elastic.exit_message)
        for step in ('phonon', 'vacancy'):
            node = self.ctx[step]
            if not node.is_finished_ok:
                return self.exit_codes.ERROR_STEP_FAILED.format(step=step, message=node.exit_message)
            self.out(step, node.outputs[step])
        parts['phonon'] = self.ctx.phonon.outputs.phonon
        engine, _ = engine_settings(self)
        dft_inputs = {'vacancy': self.ctx.vacancy.outputs.vacancy}
        if 'dielectric' in self.ctx.phonon.outputs:  # from the Γ step's DFPT job (no separate step ran)
            dft_inputs['dielectric'] = self.ctx.phonon.outputs.dielectric
            self.out('dielectric', self.ctx.phonon.outputs.dielectric)
        for step in ('dielectric', 'band_gap'):
            if step in self.ctx:
                node = self.ctx[step]
                if not node.is_finished_ok:
                    return self.exit_codes.ERROR_STEP_FAILED.format(step=step, message=node.exit_message)
                dft_inputs[step] = node.outputs[step]
                self.out(step, node.outputs[step])
        parts['dft'] = run_once(
            self, 'dft_part', collect_dft_part, orm.Dict(engine.unavailable()), **dft_inputs
        )
        inputs = {
            'structure': self.outputs['relaxed_structure'],
            'mobile': self.inputs.mobile,
            'parts': parts,
            **self._engine_inputs(),
        }
        for name in ('temperatures', 'label'):
            if name in self.inputs:
                inputs[name] = self.inputs[name]
        return ToContext(md=submit_once(self, 'md', MDWorkChain, **inputs))

    def results(self):
        md = self.ctx.md
        if not md.is_finished_ok:
            return self.exit_codes.ERROR_MD_FAILED.format(message=md.exit_message or md.process_state.value)
        for key, record in md.outputs.records.items():
            self.out(f'records.{key}', record)
        if 'arrhenius' in md.outputs:
            for key, fit in md.outputs.arrhenius.items():
                self.out(f'arrhenius.{key}', fit)
        if 'group_label' in self.inputs:
            group, _ = orm.Group.collection.get_or_create(self.inputs.group_label.value)
            group.add_nodes(list(md.outputs.records.values()))
        self.report(f'done: {len(md.outputs.records)} descriptor records')
