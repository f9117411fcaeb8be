"""The VASP engine behind the contract of :mod:`aiida_superionic.engines.contract`, on aiida-vasp 5.1."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from ...exceptions import InputError
from ..contract import Engine, deep_merge

#: Steps run by ``superionic.vasp.step`` (the vacancy step is not implemented for VASP yet).
STEPS = ('relax', 'elastic', 'phonon_gamma', 'dielectric', 'band_gap', 'md')
#: Files kept after each job besides aiida-vasp's (CONTCAR, OUTCAR, vasprun.xml, vasp_output).
MD_RETRIEVE = ['XDATCAR', 'OSZICAR']


@cache
def _protocols() -> dict[str, Any]:
    return yaml.safe_load(resources.files(__package__).joinpath('protocols.yaml').read_text())


@cache
def _aiida_vasp_mapping() -> dict[str, str]:
    text = resources.files('aiida_vasp.protocols').joinpath('vasp.yaml').read_text()
    return dict(yaml.safe_load(text)['default_potential_mapping'])


def potential_mapping(elements, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """element -> POTCAR symbol for ``elements``: aiida-vasp's recommended set updated with ``overrides``."""
    mapping = {**_aiida_vasp_mapping(), **(overrides or {})}
    missing = sorted(set(elements) - set(mapping))
    if missing:
        raise InputError(f'no POTCAR mapping for {", ".join(missing)}: add them to potential_mapping')
    return {e: mapping[e] for e in sorted(set(elements))}


def step_incar(step: str, settings: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """The INCAR of ``step``: the protocol's common tags, then the step's, then the run's own."""
    if step not in STEPS:
        raise InputError(f'step {step!r}: the vasp engine provides {", ".join(STEPS)}')
    incar = {k.upper(): v for k, v in settings.get('incar', {}).items()}
    incar.update({k.upper(): v for k, v in settings.get(step, {}).get('incar', {}).items()})
    dispersion = settings.get('dispersion')
    if dispersion:
        if str(dispersion).upper() != 'D3':
            raise InputError(f'dispersion {dispersion!r}: only D3 (IVDW = 11) is supported')
        incar['IVDW'] = 11
    if step == 'md':
        md = settings['md']
        temperature = float(kwargs['temperature_K'])
        incar.update(
            {
                'TEBEG': temperature,
                'TEEND': temperature,
                'POTIM': float(md['timestep_fs']),
                'NBLOCK': int(md['frame_interval']),
                'NSW': int(md['segment_steps']),
            }
        )
    return incar


class VaspEngine(Engine):
    """VASP through aiida-vasp's ``vasp.vasp`` work chain; every step is one ``superionic.vasp.step``."""

    name = 'vasp'

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
        return {
            'vacancy': 'not implemented for the vasp engine yet (see docs/vasp.rst); run it with the mlip engine'
        }

    def get_builder(self, step: str, structure, code, settings: dict[str, Any], **kwargs: Any):
        from aiida import orm

        from .workchain import MD_DISABLED_HANDLERS, VaspStepWorkChain

        if step in self.unavailable():
            raise InputError(f'step {step!r}: {self.unavailable()[step]}')
        incar = step_incar(step, settings, **kwargs)
        elements = {structure.get_kind(site.kind_name).symbol for site in structure.sites}
        builder = VaspStepWorkChain.get_builder()
        vasp = builder.vasp
        vasp.code = code
        vasp.structure = structure
        vasp.parameters = orm.Dict(
            {'incar': {k.lower(): v for k, v in incar.items()}}
        )  # aiida-vasp: lower case
        vasp.potential_family = orm.Str(settings['potential_family'])
        vasp.potential_mapping = orm.Dict(potential_mapping(elements, settings.get('potential_mapping')))
        options = {
            'resources': dict(settings.get('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})),
            'max_wallclock_seconds': int(settings.get('max_wallclock_seconds', 86400)),
        }
        options.update(kwargs.get('options') or {})
        vasp.calc.metadata.options = options
        vasp_settings: dict[str, Any] = {}
        step_settings: dict[str, Any] = {}
        if step == 'md':
            md = settings['md']
            mesh = orm.KpointsData()
            mesh.set_kpoints_mesh([1, 1, 1])
            vasp.kpoints = mesh
            vasp_settings['ADDITIONAL_RETRIEVE_LIST'] = list(MD_RETRIEVE)
            # aiida-vasp's parser: no ionic convergence for MD, and no output structure needed (the next
            # segment reads the CONTCAR itself, with the velocities)
            vasp_settings['parser_settings'] = {'check_ionic_convergence': False, 'check_completeness': False}
            vasp.handler_overrides = orm.Dict({name: False for name in MD_DISABLED_HANDLERS})
            vasp.max_iterations = orm.Int(1)
            step_settings = {
                'n_steps': int(md['n_steps']),
                'segment_steps': int(md['segment_steps']),
                'frame_interval': int(md['frame_interval']),
                'timestep_fs': float(md['timestep_fs']),
                'temperature_K': float(kwargs['temperature_K']),
                'max_segments': int(settings.get('max_md_segments', 40)),
            }
            if kwargs.get('mobile'):
                step_settings['mobile'] = kwargs['mobile']
        else:
            if step != 'relax':  # the output structure is not used: do not require a CONTCAR
                vasp_settings['parser_settings'] = {'check_completeness': False}
            vasp.kpoints_spacing = orm.Float(float(settings['kpoints_spacing']))
            vasp.max_iterations = orm.Int(int(settings.get('max_iterations', 5)))
            if step == 'dielectric' and kwargs.get('mobile'):
                step_settings['mobile'] = kwargs['mobile']
        if vasp_settings:
            vasp.settings = orm.Dict(vasp_settings)
        builder.step = orm.Str(step)
        builder.step_settings = orm.Dict(step_settings)
        builder.metadata.label = step
        return builder
