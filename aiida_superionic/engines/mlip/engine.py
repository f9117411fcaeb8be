"""The MLIP engine behind the contract of :mod:`aiida_superionic.engines.contract`."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from ...exceptions import InputError
from ..contract import Engine, deep_merge


@cache
def _protocols() -> dict[str, Any]:
    return yaml.safe_load(resources.files(__package__).joinpath('protocols.yaml').read_text())


class MlipEngine(Engine):
    """ASE + a universal ML potential; every step is one ``superionic.mlip.base`` work chain."""

    name = 'mlip'

    def protocol(self, name: str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        data = _protocols()
        name = name or data['default_protocol']
        if name not in data['protocols']:
            raise InputError(f'unknown protocol {name!r}: choose one of {", ".join(data["protocols"])}')
        delta = {k: v for k, v in data['protocols'][name].items() if k != 'description'}
        return deep_merge(deep_merge(data['default'], delta), overrides or {})

    @staticmethod
    def protocols() -> dict[str, str]:
        return {name: p.get('description', '') for name, p in _protocols()['protocols'].items()}

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
