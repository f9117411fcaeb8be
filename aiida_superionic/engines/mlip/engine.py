"""The MLIP engine behind the contract of :mod:`aiida_superionic.engines.contract`."""

from __future__ import annotations

from typing import Any, ClassVar

from ...exceptions import InputError
from ..contract import Engine


class MlipEngine(Engine):
    """ASE + a universal ML potential; every step is one ``superionic.mlip.base`` work chain."""

    name = 'mlip'
    protocol_package = __package__
    #: Keys an override may add to ``md`` although the protocol does not set them.
    optional_keys: ClassVar[dict[str, tuple[str, ...]]] = {'md': ('segment_steps', 'walltime_s')}
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
            md = settings['md']
            task_settings = {
                k: md[k]
                for k in (
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
                if k in md
            }
            task_settings['temperature_K'] = float(kwargs['temperature_K'])
        elif step == 'vacancy':
            task_settings['mobile'] = kwargs['mobile']
        builder = MlipBaseWorkChain.get_builder()
        builder.mlip.code = code
        builder.mlip.structure = structure
        builder.mlip.parameters = orm.Dict(
            {
                'task': step,
                'model': settings['model'],
                'device': settings.get('device', 'auto'),
                'seed': int(kwargs.get('seed', settings.get('seed', 0))),
                'settings': task_settings,
            }
        )
        builder.mlip.metadata.options.max_wallclock_seconds = int(
            settings.get('max_wallclock_seconds', 86400)
        )
        for key, value in (kwargs.get('options') or {}).items():
            builder.mlip.metadata.options[key] = value
        builder.max_iterations = orm.Int(int(settings.get('max_iterations', 10)))
        builder.metadata.label = f'{step}'
        return builder
