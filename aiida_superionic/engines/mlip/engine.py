"""The MLIP engine behind the contract of :mod:`aiida_superionic.engines.contract`."""

from __future__ import annotations

from typing import Any, ClassVar

from ...exceptions import InputError
from ..contract import Engine
from .fileformat import BATCHED_MODEL_NAMES


class MlipEngine(Engine):
    """ASE + a universal ML potential; every step is one ``superionic.mlip.base`` work chain."""

    name = 'mlip'
    protocol_package = __package__
    #: Keys an override may add to ``md`` although the protocol does not set them.
    optional_keys: ClassVar[dict[str, tuple[str, ...]]] = {'md': ('segment_steps', 'walltime_s', 'batch')}
    calc_job_plugin = 'superionic.mlip'

    def unavailable(self) -> dict[str, str]:
        reason = 'not available from an ML potential (no electrons): use the vasp engine'
        return {'dielectric': reason, 'band_gap': reason}

    def get_builder(self, step: str, structure, code, settings: dict[str, Any], **kwargs: Any):
        from aiida import orm

        from .workchain import MlipBaseWorkChain

        if step in self.unavailable():
            raise InputError(f'step {step!r}: {self.unavailable()[step]}')
        task_settings: dict[str, Any] = dict(settings.get(step, {}))
        if step == 'md':
            task_settings = _md_task_settings(settings['md'])
            task_settings['temperature_K'] = float(kwargs['temperature_K'])
        elif step == 'vacancy':
            task_settings['mobile'] = kwargs['mobile']
        builder = MlipBaseWorkChain.get_builder()
        builder.mlip.code = code
        builder.mlip.structure = structure
        builder.mlip.parameters = orm.Dict(
            _parameters(step, settings, int(kwargs.get('seed', settings.get('seed', 0))), task_settings)
        )
        _set_options(builder.mlip.metadata.options, settings, kwargs.get('options'))
        builder.max_iterations = orm.Int(int(settings.get('max_iterations', 10)))
        builder.metadata.label = f'{step}'
        return builder

    def get_md_batch_builder(
        self,
        runs: dict[str, tuple[Any, float, int]],
        code,
        settings: dict[str, Any],
        *,
        calcjob: bool = False,
        **kwargs,
    ):
        """All the MD runs of a material as one job of task ``md_batch`` (``md.batch``): ``runs`` maps a run's
        name to its (cell, temperature K, seed); each run gets the md settings of :meth:`get_builder`
        (``md.segment_steps`` and ``md.walltime_s`` included: the batch stops as a whole).

        The builder is that of ``superionic.mlip.base`` (the batch continued from its batch checkpoint over
        as many queue slots as it needs, each run's segments stitched into its own trajectory), or with
        ``calcjob=True`` that of one ``superionic.mlip`` job."""
        from aiida import orm

        from .calculation import MlipCalculation
        from .workchain import MlipBaseWorkChain

        if not runs:
            raise InputError('md.batch: no MD run to batch')
        model = str(settings.get('model') or 'chgnet-0.3.0').strip().lower()
        if (
            model not in BATCHED_MODEL_NAMES
        ):  # the runner's md_batch batches these only: refuse before any job
            batched = ', '.join(BATCHED_MODEL_NAMES)
            raise InputError(f'md.batch: model {model!r} is not batched ({batched}); set md.batch false')
        task_settings = _md_task_settings(settings['md'])
        task_settings['replicas'] = [
            {'name': name, 'temperature_K': float(temperature), 'seed': int(seed)}
            for name, (_, temperature, seed) in runs.items()
        ]
        parameters = orm.Dict(_parameters('md_batch', settings, int(settings.get('seed', 0)), task_settings))
        cells = {name: cell for name, (cell, _, _) in runs.items()}
        if calcjob:
            builder = MlipCalculation.get_builder()
            job = builder
        else:
            builder = MlipBaseWorkChain.get_builder()
            builder.max_iterations = orm.Int(int(settings.get('max_iterations', 10)))
            job = builder.mlip
        job.code = code
        job.replicas = cells
        job.parameters = parameters
        _set_options(job.metadata.options, settings, kwargs.get('options'))
        builder.metadata.label = 'md_batch'
        return builder


_MD_TASK_KEYS = (
    'timestep_fs',
    'n_steps',
    'frame_interval',
    'thermostat',
    'tdamp_fs',
    'checkpoint_every',
    'max_temperature_factor',
    'segment_steps',
    'walltime_s',
)


def _md_task_settings(md: dict[str, Any]) -> dict[str, Any]:
    """The runner settings of task md (and md_batch) from the protocol's ``md`` section; the Langevin
    friction of the protocol, ``friction_per_ps`` (1/ps), becomes the runner's ``friction_per_fs`` (1/fs)."""
    task = {k: md[k] for k in _MD_TASK_KEYS if k in md}
    if md.get('friction_per_ps') is not None:
        task['friction_per_fs'] = float(md['friction_per_ps']) / 1000.0
    return task


def _parameters(task: str, settings: dict[str, Any], seed: int, task_settings: dict[str, Any]) -> dict:
    return {
        'task': task,
        'model': settings['model'],
        'device': settings.get('device', 'auto'),
        'seed': seed,
        'settings': task_settings,
    }


def _set_options(options, settings: dict[str, Any], extra: dict[str, Any] | None) -> None:
    options.max_wallclock_seconds = int(settings.get('max_wallclock_seconds', 86400))
    for key, value in (extra or {}).items():
        options[key] = value
