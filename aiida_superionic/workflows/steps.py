"""Engine-neutral step work chains: ``superionic.relax``, ``.elastic``, ``.phonon_gamma``, ``.vacancy``.

Each asks the engine named by its ``engine`` input for a process builder, runs it and exposes the
contract's outputs (:mod:`aiida_superionic.engines.contract`); none of them branches on the engine.
"""

from __future__ import annotations

from typing import Any

from aiida import orm
from aiida.engine import ToContext, WorkChain

from ..calculations.functions import compute_elastic_descriptors
from ..engines.builders import EngineInputsBuilder
from ..engines.contract import OUTPUTS, declare_outputs, get_engine
from ..exceptions import InputError
from ..resubmit import run_once, submit_once


def define_engine_inputs(spec) -> None:
    """The inputs every engine-driven work chain takes, and the launch-time check of them."""
    spec.input(
        'code', valid_type=orm.AbstractCode, help='The engine code (mlip@localhost for the MLIP engine).'
    )
    spec.input('engine', valid_type=orm.Str, default=lambda: orm.Str('mlip'), help='mlip (or vasp).')
    spec.input(
        'protocol',
        valid_type=orm.Str,
        default=lambda: orm.Str('moderate'),
        help='fast, moderate or precise (with `settings`: the protocol they were resolved from).',
    )
    spec.input(
        'overrides',
        valid_type=orm.Dict,
        required=False,
        help='Deltas on the protocol, merged in when the work chain runs (old style: prefer `settings`).',
    )
    spec.input(
        'settings',
        valid_type=orm.Dict,
        required=False,
        help="The engine's settings, resolved from protocol + overrides before submission "
        '(`get_builder_from_protocol` fills them); when given, the protocol file is not read again.',
    )
    spec.input(
        'options',
        valid_type=orm.Dict,
        required=False,
        help='Scheduler options of every engine job (queue_name, account, qos, custom_scheduler_commands, '
        "resources, max_wallclock_seconds, ...), merged into the jobs' metadata.options.",
    )
    spec.inputs.validator = validate_engine_inputs


def validate_engine_inputs(inputs, _=None) -> str | None:
    """Launch-time check of the engine inputs, from any path (CLI, ``verdi run``, a notebook): the engine
    exists, an override or a setting names only keys the protocol has, the MD settings and temperatures
    are physical, and the code runs the engine's CalcJob plugin. Returns the message, or None."""
    from ..engines.contract import check_md_settings, check_temperature

    if 'engine' not in inputs:
        return None
    try:
        engine = get_engine(inputs['engine'].value)
        if 'settings' in inputs:
            if 'overrides' in inputs:
                return 'give either `settings` (resolved) or `overrides` (on the protocol), not both'
            engine.check_settings(inputs['settings'].get_dict())
        elif 'protocol' in inputs:
            overrides = inputs['overrides'].get_dict() if 'overrides' in inputs else None
            check_md_settings(engine.protocol(inputs['protocol'].value, overrides))
        if 'temperatures' in inputs:
            for t in inputs['temperatures'].get_list():
                check_temperature(t, 'temperatures')
    except InputError as exc:
        return str(exc)
    code = inputs.get('code')
    plugin = getattr(code, 'default_calc_job_plugin', None)
    if code is not None and engine.calc_job_plugin and plugin and plugin != engine.calc_job_plugin:
        return (
            f'code {code.full_label!r} runs {plugin}, not {engine.calc_job_plugin} (the {engine.name} engine)'
        )
    return None


def engine_options(workchain) -> dict[str, Any]:
    return workchain.inputs.options.get_dict() if 'options' in workchain.inputs else {}


def engine_settings(workchain) -> tuple[Any, dict[str, Any]]:
    """The engine and its settings: the resolved ``settings`` input, else protocol + overrides."""
    inputs = workchain.inputs
    engine = get_engine(inputs.engine.value)
    if 'settings' in inputs:
        return engine, inputs.settings.get_dict()
    overrides = inputs.overrides.get_dict() if 'overrides' in inputs else None
    return engine, engine.protocol(inputs.protocol.value, overrides)


class EngineStepWorkChain(EngineInputsBuilder, WorkChain):
    """Base of the step work chains: one engine process for ``_engine_step``."""

    _engine_step = ''

    @classmethod
    def _contract_outputs(cls) -> tuple[str, ...]:
        """The step's outputs of the engine contract (``contract.OUTPUTS``), besides ``results``."""
        return tuple(name for name in OUTPUTS.get(cls._engine_step, ()) if name != 'results')

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData)
        define_engine_inputs(spec)
        spec.outline(cls.run_engine, cls.results)
        declare_outputs(spec, ('results',), required=False)
        declare_outputs(spec, cls._contract_outputs())
        spec.exit_code(400, 'ERROR_ENGINE_FAILED', message='the {step} step of the engine failed: {message}')

    def step_kwargs(self) -> dict[str, Any]:
        return {}

    def run_engine(self):
        engine, settings = engine_settings(self)
        builder = engine.get_builder(
            self._engine_step,
            self.inputs.structure,
            self.inputs.code,
            settings,
            options=engine_options(self),
            **self.step_kwargs(),
        )
        return ToContext(child=submit_once(self, 'engine', builder))

    def results(self):
        child = self.ctx.child
        if not child.is_finished_ok:
            return self.exit_codes.ERROR_ENGINE_FAILED.format(
                step=self._engine_step, message=child.exit_message or child.process_state.value
            )
        for name in (*self._contract_outputs(), 'results'):
            if name in child.outputs:
                self.out(name, child.outputs[name])
        return self.post_process()

    def post_process(self):
        return None


class RelaxWorkChain(EngineStepWorkChain):
    """Relax positions and cell (force/stress thresholds from the protocol)."""

    _engine_step = 'relax'


class ElasticWorkChain(EngineStepWorkChain):
    """Elastic tensor from strained cells, then the 13 mechanical-elastic descriptors."""

    _engine_step = 'elastic'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.output('elastic_descriptors', valid_type=orm.Dict, help='The 13 M-E descriptors.')
        spec.exit_code(410, 'ERROR_MECHANICALLY_UNSTABLE', message='{message}')

    def post_process(self):
        try:
            descriptors = run_once(
                self,
                'descriptors',
                compute_elastic_descriptors,
                self.outputs['elastic_tensor'],
                self.inputs.structure,
            )
        except InputError as exc:
            return self.exit_codes.ERROR_MECHANICALLY_UNSTABLE.format(message=str(exc))
        self.out('elastic_descriptors', descriptors)


class PhononGammaWorkChain(EngineStepWorkChain):
    """Γ-point phonons (finite displacements on a supercell, or DFPT): the lowest optical mode Γ. Given
    ``mobile``, an engine whose Γ job is a DFPT run with LEPSILON (``Engine.gamma_gives_dielectric``:
    VASP) also gives the ``dielectric`` output of that same job, as :class:`DielectricWorkChain` would."""

    _engine_step = 'phonon_gamma'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            'mobile',
            valid_type=orm.Str,
            required=False,
            help='The mobile species: for the Born charge Z_B of the dielectric output, where the Γ job gives it.',
        )
        declare_outputs(spec, ('dielectric',), required=False)

    def step_kwargs(self) -> dict[str, Any]:
        return {'mobile': self.inputs.mobile.value} if 'mobile' in self.inputs else {}

    def post_process(self):
        if 'dielectric' in self.ctx.child.outputs:
            self.out('dielectric', self.ctx.child.outputs.dielectric)


class MobileIonStepWorkChain(EngineStepWorkChain):
    """A step that needs the mobile species (passed on to the engine as ``mobile``)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('mobile', valid_type=orm.Str, help='The mobile species.')

    def step_kwargs(self) -> dict[str, Any]:
        return {'mobile': self.inputs.mobile.value}


class VacancyWorkChain(MobileIonStepWorkChain):
    """Formation energy of a vacancy of the mobile ion: the lowest over its symmetry-inequivalent sites
    (every site class and the chemical-potential reference in the output; :mod:`..analysis.vacancy`)."""

    _engine_step = 'vacancy'


class DielectricWorkChain(MobileIonStepWorkChain):
    """Ion-clamped dielectric constant ε∞ and Born effective charges (DFPT); Z_B of the mobile ion."""

    _engine_step = 'dielectric'


class BandGapWorkChain(EngineStepWorkChain):
    """Band gap from a static run."""

    _engine_step = 'band_gap'
