"""The VASP engine behind the contract of :mod:`aiida_superionic.engines.contract`, on aiida-vasp 5.1."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from ...exceptions import InputError
from ..contract import Engine, deep_merge

#: Steps run by ``superionic.vasp.step`` (``vacancy`` is ``superionic.vasp.vacancy``).
STEPS = ('relax', 'elastic', 'phonon_gamma', 'dielectric', 'band_gap', 'md', 'vacancy')
#: Files kept after each job besides aiida-vasp's (CONTCAR, OUTCAR, vasprun.xml, vasp_output).
MD_RETRIEVE = ['XDATCAR', 'OSZICAR']


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


#: Free-form dicts of the protocol (INCAR tags, element -> POTCAR, scheduler resources).
FREE_FORM = ('incar', 'perfect_incar', 'potential_mapping', 'resources')


def _check_keys(overrides: dict[str, Any], base: dict[str, Any], where: str) -> None:
    """Refuse an override the protocol does not have (a typo would otherwise be ignored silently)."""
    for key, value in overrides.items():
        if key not in base:
            raise InputError(f'vasp protocol: unknown key {where}{key!r}; known: {", ".join(sorted(base))}')
        if isinstance(base[key], dict) and key not in FREE_FORM:
            if not isinstance(value, dict):
                raise InputError(f'vasp protocol: {where}{key!r} must be a mapping, got {value!r}')
            _check_keys(value, base[key], f'{where}{key}.')


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
    protocol_package = __package__

    def protocol(self, name: str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        base = self.base_protocol(name)
        _check_keys(overrides or {}, base, '')
        return deep_merge(base, overrides or {})

    def get_builder(self, step: str, structure, code, settings: dict[str, Any], **kwargs: Any):
        from aiida import orm

        from .workchain import MD_DISABLED_HANDLERS, VaspStepWorkChain, VaspVacancyWorkChain

        if step in self.unavailable():
            raise InputError(f'step {step!r}: {self.unavailable()[step]}')
        if step == 'vacancy':
            builder = VaspVacancyWorkChain.get_builder()
            builder.code = code
            builder.structure = structure
            builder.mobile = orm.Str(kwargs['mobile'])
            builder.settings = orm.Dict(settings)
            builder.options = orm.Dict(kwargs.get('options') or {})
            builder.metadata.label = step
            return builder
        incar = step_incar(step, settings, **kwargs)
        builder = VaspStepWorkChain.get_builder()
        vasp = builder.vasp
        parser_settings = None if step == 'relax' else {'check_completeness': False}
        step_settings: dict[str, Any] = {}
        if step == 'md':
            md = settings['md']
            # aiida-vasp's parser: no ionic convergence for MD, no output structure (the next segment reads
            # the CONTCAR itself, with the velocities) and no vasprun.xml (SKIP_VASPRUN: not retrieved, the
            # run status comes from the OUTCAR, the trajectory from the XDATCAR)
            parser_settings = {
                'check_ionic_convergence': False,
                'check_completeness': False,
                'critical_objects': ['OUTCAR'],
            }
            fill_vasp_inputs(
                vasp,
                structure,
                code,
                settings,
                incar,
                kwargs.get('options'),
                gamma_only=True,
                parser_settings=parser_settings,
                retrieve=MD_RETRIEVE,
                skip_vasprun=True,
            )
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
            # the output structure is only used by relax: the other steps do not require a CONTCAR
            fill_vasp_inputs(
                vasp, structure, code, settings, incar, kwargs.get('options'), parser_settings=parser_settings
            )
            if step == 'dielectric' and kwargs.get('mobile'):
                step_settings['mobile'] = kwargs['mobile']
        builder.step = orm.Str(step)
        builder.step_settings = orm.Dict(step_settings)
        builder.metadata.label = step
        return builder


def fill_vasp_inputs(
    vasp,
    structure,
    code,
    settings: dict[str, Any],
    incar: dict[str, Any],
    options: dict[str, Any] | None = None,
    *,
    gamma_only: bool = False,
    parser_settings: dict[str, Any] | None = None,
    retrieve: list[str] | None = None,
    skip_vasprun: bool = False,
) -> None:
    """Fill the inputs of one ``vasp.vasp`` run (a builder or its namespace) from the protocol settings."""
    from aiida import orm

    elements = {structure.get_kind(site.kind_name).symbol for site in structure.sites}
    vasp.code = code
    vasp.structure = structure
    vasp.parameters = orm.Dict({'incar': {k.lower(): v for k, v in incar.items()}})  # aiida-vasp: lower case
    vasp.potential_family = orm.Str(settings['potential_family'])
    vasp.potential_mapping = orm.Dict(potential_mapping(elements, settings.get('potential_mapping')))
    job_options = {
        'resources': dict(settings.get('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})),
        'max_wallclock_seconds': int(settings.get('max_wallclock_seconds', 86400)),
    }
    job_options.update(options or {})
    vasp.calc.metadata.options = job_options
    if gamma_only:
        mesh = orm.KpointsData()
        mesh.set_kpoints_mesh([1, 1, 1])
        vasp.kpoints = mesh
    else:
        vasp.kpoints_spacing = orm.Float(float(settings['kpoints_spacing']))
    vasp.max_iterations = orm.Int(int(settings.get('max_iterations', 5)))
    vasp_settings: dict[str, Any] = {}
    if parser_settings:
        vasp_settings['parser_settings'] = parser_settings
    if retrieve:
        vasp_settings['ADDITIONAL_RETRIEVE_LIST'] = list(retrieve)
    if skip_vasprun:
        vasp_settings['SKIP_VASPRUN'] = True
    if vasp_settings:
        vasp.settings = orm.Dict(vasp_settings)
