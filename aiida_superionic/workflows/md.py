"""``superionic.md``: NVT MD at several temperatures, stoichiometric and with mobile-ion vacancies,
and the descriptor record of every run."""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain

from ..calculations.functions import arrhenius_runs, fit_arrhenius, make_md_cells
from ..engines.builders import EngineInputsBuilder
from .md_descriptors import MDDescriptorsWorkChain
from .resubmit import submit_once
from .steps import define_engine_inputs, engine_options, engine_settings


class MDWorkChain(EngineInputsBuilder, WorkChain):
    """Temperatures x stoichiometries of NVT MD through the engine, then ``superionic.md_descriptors``
    on each trajectory and an Arrhenius fit per stoichiometry."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            'structure',
            valid_type=orm.StructureData,
            help='The relaxed crystal (MD cells are supercells of it).',
        )
        spec.input('mobile', valid_type=orm.Str, help='The mobile species.')
        define_engine_inputs(spec)
        spec.input('temperatures', valid_type=orm.List, required=False, help='K; default from the protocol.')
        spec.input('label', valid_type=orm.Str, required=False, help='Material label of the records.')
        spec.input_namespace(
            'parts', valid_type=orm.Dict, dynamic=True, required=False, help='Extra record parts.'
        )
        spec.input('record_metadata', valid_type=orm.Dict, required=False, help='Extra record metadata.')
        spec.outline(cls.make_cells, cls.run_md, cls.describe, cls.results)
        spec.output_namespace('trajectories', valid_type=orm.Data, dynamic=True)
        spec.output_namespace(
            'records', valid_type=orm.Dict, dynamic=True, help='One per temperature x stoichiometry.'
        )
        spec.output_namespace('arrhenius', valid_type=orm.Dict, dynamic=True, required=False)
        spec.exit_code(400, 'ERROR_MD_FAILED', message='MD at {temperature} K ({cell}) failed: {message}')
        spec.exit_code(401, 'ERROR_DESCRIPTORS_FAILED', message='descriptors of {key} failed: {message}')

    @classmethod
    def _fill_step_inputs(cls, builder, settings, *, temperatures=None, label: str | None = None) -> None:
        """``get_builder_from_protocol``'s ``temperatures`` (default: the protocol's ``md.temperatures``)
        as a list, and the records' ``label``."""
        temps = settings['md']['temperatures'] if temperatures is None else temperatures
        builder.temperatures = orm.List([float(t) for t in temps])
        if label is not None:
            builder.label = orm.Str(label)

    def make_cells(self):
        _, settings = engine_settings(self)
        self.ctx.settings = settings
        md = settings['md']
        params = {
            'min_atoms': md['min_atoms'],
            'vacancy_fraction': md.get('vacancy_fraction', 0.0),
            'mobile': self.inputs.mobile.value,
            'seed': settings.get('seed', 0),
        }
        self.ctx.cells = make_md_cells(self.inputs.structure, orm.Dict(params))
        temps = self.inputs.temperatures.get_list() if 'temperatures' in self.inputs else md['temperatures']
        self.ctx.temperatures = [float(t) for t in temps]
        n = {k: len(v.sites) for k, v in self.ctx.cells.items()}
        self.report(f'MD cells: {n}; temperatures {self.ctx.temperatures} K')

    def run_md(self):
        engine, settings = engine_settings(self)
        futures = {}
        for cell_name, cell in sorted(self.ctx.cells.items()):
            for i, temperature in enumerate(self.ctx.temperatures):
                key = f'{cell_name}_T{round(temperature)}'
                builder = engine.get_builder(
                    'md',
                    cell,
                    self.inputs.code,
                    settings,
                    temperature_K=temperature,
                    seed=settings.get('seed', 0) + i,
                    options=engine_options(self),
                )
                builder.metadata.label = f'md {key}'
                futures[key] = submit_once(self, f'md_{key}', builder)
        return ToContext(**{f'md_{k}': v for k, v in futures.items()})

    def describe(self):
        futures = {}
        label = (
            self.inputs.label.value
            if 'label' in self.inputs
            else self.inputs.structure.get_formula(mode='hill_compact')
        )
        extra_meta = self.inputs.record_metadata.get_dict() if 'record_metadata' in self.inputs else {}
        dft = self.inputs.parts.get('dft') if 'parts' in self.inputs else None
        epsilon_inf = dft.get('epsilon_inf') if dft is not None else None
        for key in self._md_keys():
            node = self.ctx[f'md_{key}']
            cell_name, temp = key.rsplit('_T', 1)
            if not node.is_finished_ok:
                return self.exit_codes.ERROR_MD_FAILED.format(
                    temperature=temp, cell=cell_name, message=node.exit_message
                )
            trajectory = node.outputs.trajectory
            self.out(f'trajectories.{key}', trajectory)
            stoich = cell_name == 'stoichiometric'
            structure_parameters = {'stoichiometric': stoich}
            if epsilon_inf is not None:  # α_c by Clausius-Mossotti needs ε∞ (DFT engines)
                structure_parameters['epsilon_inf'] = epsilon_inf
            inputs = {
                'trajectory': trajectory,
                'parameters': orm.Dict({'mobile': self.inputs.mobile.value}),
                'structure': self.inputs.structure,
                'structure_parameters': orm.Dict(structure_parameters),
                'record_metadata': orm.Dict(
                    {
                        **extra_meta,
                        'material': label,
                        'stoichiometric': stoich,
                        'engine': self.inputs.engine.value,
                    }
                ),
            }
            if 'parts' in self.inputs:
                inputs['parts'] = dict(self.inputs.parts)
            futures[f'desc_{key}'] = submit_once(self, f'describe_{key}', MDDescriptorsWorkChain, **inputs)
        return ToContext(**futures)

    def _md_keys(self):
        return sorted(k[3:] for k in self.ctx if k.startswith('md_'))

    def results(self):
        by_cell: dict[str, dict[str, orm.Dict]] = {}
        for key in self._md_keys():
            node = self.ctx[f'desc_{key}']
            if not node.is_finished_ok:
                return self.exit_codes.ERROR_DESCRIPTORS_FAILED.format(key=key, message=node.exit_message)
            self.out(f'records.{key}', node.outputs.record)
            cell_name = key.rsplit('_T', 1)[0]
            by_cell.setdefault(cell_name, {})[key] = node.outputs.diffusion
        for cell_name, diffusions in by_cell.items():
            used, left_out = arrhenius_runs({k: d.get_dict() for k, d in diffusions.items()})
            for reason in left_out.values():
                self.report(f'Arrhenius fit for {cell_name} leaves out a run: {reason}')
            if len(used) >= 2:
                self.out(f'arrhenius.{cell_name}', fit_arrhenius(**diffusions))
            else:
                self.report(f'no Arrhenius fit for {cell_name}: needs D resolved at >= 2 temperatures')
