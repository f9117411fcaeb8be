"""``aiida-superionic submit``: one material through the whole paper with an engine."""

from __future__ import annotations

from pathlib import Path

import click

from ..exceptions import InputError
from .root import cmd_root
from .structures import read_structure
from .validation import check_code, check_label, check_settings, check_temperature


def _json_object(text: str | None, option: str) -> dict:
    import json

    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f'{option} is not valid JSON: {exc}') from None
    if not isinstance(value, dict):
        raise InputError(f'{option} must be a JSON object ({{...}}), got {type(value).__name__}')
    return value


@cmd_root.command('submit')
@click.argument('structure_file', metavar='STRUCTURE', type=click.Path(dir_okay=False, path_type=Path))
@click.option('-m', '--mobile', required=True, help='The mobile species (e.g. Li).')
@click.option(
    '-T',
    '--temperatures',
    type=float,
    multiple=True,
    help="MD temperatures in K (repeat, or space-separated after one -T). Default: the protocol's.",
)
@click.option(
    '-e', '--engine', default='mlip', show_default=True, type=click.Choice(['mlip', 'vasp']), help='Engine.'
)
@click.option(
    '-P',
    '--protocol',
    default='moderate',
    show_default=True,
    type=click.Choice(['fast', 'moderate', 'precise']),
    help='Protocol.',
)
@click.option(
    '-c', '--code', 'code_label', default='mlip@localhost', show_default=True, help='The engine code.'
)
@click.option('-l', '--label', help='Material label of the records (default: the formula).')
@click.option(
    '--overrides',
    metavar='JSON',
    help='Deltas on the protocol, e.g. \'{"md": {"n_steps": 2000}, "device": "cuda"}\'.',
)
@click.option(
    '--options',
    'job_options',
    metavar='JSON',
    help='Scheduler options of every engine job, e.g. \'{"queue_name": "gpu", "account": "proj42"}\'.',
)
@click.option(
    '-d', '--daemon', is_flag=True, help='Submit to the daemon and print the PK instead of running here.'
)
@click.option('-g', '--group', 'group_label', help='Add the descriptor records to this group (for `study`).')
@click.pass_context
def cmd_submit(
    ctx: click.Context,
    structure_file: Path,
    mobile: str,
    temperatures: tuple[float, ...],
    engine: str,
    protocol: str,
    code_label: str,
    label: str | None,
    overrides: str | None,
    job_options: str | None,
    daemon: bool,
    group_label: str | None,
) -> None:
    """Run STRUCTURE (CIF, POSCAR, ...) through relax, elastic, Γ phonons, vacancy energy and NVT MD at
    several temperatures (stoichiometric and with mobile-ion vacancies), ending with its descriptor
    records. Runs here with progress by default; --daemon submits instead (see `verdi process list`)."""
    from .profile import load_profile

    structure = read_structure(structure_file)
    overrides_dict = _json_object(overrides, '--overrides')
    options_dict = _json_object(job_options, '--options')
    if mobile not in {el.symbol for el in structure.composition.elements}:
        raise InputError(
            f'mobile species {mobile!r} not in structure {structure.composition.reduced_formula}'
        )
    for t in temperatures:
        check_temperature(t, 'temperatures')
    check_label(label)
    if group_label is not None and (not group_label.strip() or not group_label.isprintable()):
        raise InputError('--group must be one non-empty line of printable text')
    check_settings(engine, protocol, overrides_dict)
    profile = load_profile(ctx)

    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        code = orm.load_code(code_label)
    except (NotExistent, MultipleObjectsError, ValueError):
        raise InputError(
            f'no code {code_label!r}: run `aiida-superionic setup` (creates mlip@localhost) or pass --code'
        ) from None
    check_code(code, code_label, engine)
    from ..workflows.material import MaterialWorkChain
    from .cmd_show import format_records
    from .launch import launch

    builder = MaterialWorkChain.get_builder_from_protocol(
        code,
        orm.StructureData(pymatgen=structure),
        protocol,
        overrides=overrides_dict or None,
        options=options_dict or None,
        mobile=mobile,
        engine=engine,
        temperatures=sorted(temperatures) or None,
        label=label,
        group_label=group_label,
    )
    builder.metadata.label = label or structure.composition.reduced_formula
    if not daemon:
        click.echo(
            f'running {structure.composition.reduced_formula} ({len(structure)} atoms) with the {engine} '
            f'engine, protocol {protocol}, in profile {profile.name}'
        )
    outputs, node = launch(builder, daemon=daemon, profile=profile)
    if outputs is None:
        return
    records = [outputs['records'][k] for k in sorted(outputs['records'])]
    click.echo(format_records(records))
    click.echo(f'done: MaterialWorkChain<{node.pk}>, {len(records)} records')
