"""INCAR and ``vasp.vasp`` input helpers of the VASP engine: a leaf module that both
:mod:`.engine` (builders of the steps) and :mod:`.workchain` (the vacancy work chain's jobs) import, so
that the engine imports the work chains and never the other way round."""

from __future__ import annotations

from typing import Any

from ...exceptions import InputError
from ...protocols import load_yaml

#: Steps run by ``superionic.vasp.step`` (``vacancy`` is ``superionic.vasp.vacancy``).
STEPS = ('relax', 'elastic', 'phonon_gamma', 'dielectric', 'band_gap', 'md', 'vacancy')
#: Files kept after each job besides aiida-vasp's (CONTCAR, OUTCAR, vasprun.xml, vasp_output).
MD_RETRIEVE = ['XDATCAR', 'OSZICAR']


def _aiida_vasp_mapping() -> dict[str, str]:
    return dict(load_yaml('aiida_vasp.protocols', 'vasp.yaml')['default_potential_mapping'])


def potential_mapping(elements, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """element -> POTCAR symbol for ``elements``: aiida-vasp's recommended set updated with ``overrides``."""
    mapping = {**_aiida_vasp_mapping(), **(overrides or {})}
    missing = sorted(set(elements) - set(mapping))
    if missing:
        raise InputError(f'no POTCAR mapping for {", ".join(missing)}: add them to potential_mapping')
    return {e: mapping[e] for e in sorted(set(elements))}


#: Free-form dicts of the protocol (INCAR tags, element -> POTCAR, scheduler resources).
FREE_FORM = ('incar', 'perfect_incar', 'potential_mapping', 'resources')


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
