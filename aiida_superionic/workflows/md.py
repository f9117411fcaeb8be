"""``superionic.md``: NVT MD at several temperatures, stoichiometric and with mobile-ion vacancies,
and the descriptor record of every run."""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain

from ..calculations.functions import arrhenius_runs, fit_arrhenius, make_md_cells
from ..engines.builders import EngineInputsBuilder
from ..exceptions import InputError
from ..resubmit import run_once, submit_once
from .md_descriptors import MDDescriptorsWorkChain
from .steps import define_engine_inputs, engine_options, engine_settings


class MDWorkChain(EngineInputsBuilder, WorkChain):
    """Temperatures x stoichiometries of NVT MD through the engine, then ``superionic.md_descriptors``
    on each trajectory and an Arrhenius fit per stoichiometry.

    One engine job per run, or, with ``md.batch: true`` (MLIP engine), one job of task ``md_batch`` for all
    the runs of the material (one batched model call per MD step; a GPU computer is where it pays). Either
    way each run's trajectory is its own node, exposed as ``trajectories.KEY`` and described on its own.
    Both go through ``superionic.mlip.base``: a job stopped by ``md.segment_steps`` / ``md.walltime_s`` or
    killed is continued from its checkpoint (a batch: from the batch checkpoint, all runs together) and
    each run's segments are stitched. A batch in which a run blew up fails the work chain (a batch is not
    restarted with a smaller time step).
    """

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
        spec.exit_code(402, 'ERROR_BATCH_SETTINGS', message='md.batch: {message}')

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
        self.ctx.cells = run_once(self, 'md_cells', make_md_cells, self.inputs.structure, orm.Dict(params))
        temps = self.inputs.temperatures.get_list() if 'temperatures' in self.inputs else md['temperatures']
        self.ctx.temperatures = [float(t) for t in temps]
        n = {k: len(v.sites) for k, v in self.ctx.cells.items()}
        self.report(f'MD cells: {n}; temperatures {self.ctx.temperatures} K')

    def _runs(self, settings):
        """Every MD run: key -> (cell, temperature K, seed); the seed of a run is ``seed`` + the index of
        its temperature, in both paths."""
        runs = {}
        for cell_name, cell in sorted(self.ctx.cells.items()):
            for i, temperature in enumerate(self.ctx.temperatures):
                runs[f'{cell_name}_T{round(temperature)}'] = (cell, temperature, settings.get('seed', 0) + i)
        return runs

    def run_md(self):
        engine, settings = engine_settings(self)
        batch = settings['md'].get('batch', False)
        if batch is not False:
            return self._run_md_batch(engine, settings, batch)
        futures = {}
        for key, (cell, temperature, seed) in self._runs(settings).items():
            builder = engine.get_builder(
                'md',
                cell,
                self.inputs.code,
                settings,
                temperature_K=temperature,
                seed=seed,
                options=engine_options(self),
            )
            builder.metadata.label = f'md {key}'
            futures[f'md_{key}'] = submit_once(self, f'md_{key}', builder)
        return ToContext(**futures)

    def _run_md_batch(self, engine, settings, batch):
        """All runs in one engine job (task ``md_batch``, through the restart work chain: as many queue slots
        as it needs), under context key ``batch``."""
        if batch is not True:
            return self.exit_codes.ERROR_BATCH_SETTINGS.format(
                message=f'must be true or false, got {batch!r}'
            )
        if not hasattr(engine, 'get_md_batch_builder'):
            return self.exit_codes.ERROR_BATCH_SETTINGS.format(
                message=f'engine {engine.name!r} has no batched MD (the mlip engine has)'
            )
        runs = self._runs(settings)
        try:
            builder = engine.get_md_batch_builder(
                runs, self.inputs.code, settings, options=engine_options(self)
            )
        except InputError as exc:
            return self.exit_codes.ERROR_BATCH_SETTINGS.format(message=str(exc))
        builder.metadata.label = f'md_batch {len(runs)} runs'
        self.ctx.batch_keys = sorted(runs)
        self.report(f'MD: one batched job for {len(runs)} runs')
        return ToContext(batch=submit_once(self, 'md_batch', builder))

    def _trajectory(self, key):
        """Run ``key``'s trajectory (one job per run, or its replica of the batch job), or an exit code."""
        cell_name, temp = key.rsplit('_T', 1)
        node = self.ctx.batch if 'batch_keys' in self.ctx else self.ctx[f'md_{key}']
        if not node.is_finished_ok:
            return None, self.exit_codes.ERROR_MD_FAILED.format(
                temperature=temp, cell=cell_name, message=node.exit_message
            )
        if 'batch_keys' in self.ctx:
            return node.outputs.replicas[key]['trajectory'], None
        return node.outputs.trajectory, None

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
            cell_name = key.rsplit('_T', 1)[0]
            trajectory, failed = self._trajectory(key)
            if failed is not None:
                return failed
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
        if 'batch_keys' in self.ctx:
            return list(self.ctx.batch_keys)
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
                self.out(
                    f'arrhenius.{cell_name}',
                    run_once(self, f'arrhenius_{cell_name}', fit_arrhenius, **diffusions),
                )
            else:
                self.report(f'no Arrhenius fit for {cell_name}: needs D resolved at >= 2 temperatures')
