"""``aiida-superionic submit``: one material through the whole paper with an engine."""

from __future__ import annotations

from pathlib import Path

import click

from ..exceptions import InputError
from ..reference import FAMILIES
from .options import CODE, ENGINE, PROTOCOL, load_code
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
@click.argument(
    'structure_files', nargs=-1, metavar='[STRUCTURE]...', type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    '-m', '--mobile', help='The mobile species (e.g. Li): required for STRUCTURE files; --set takes its own.'
)
@click.option(
    '--set',
    'reference_set',
    type=click.Choice(['reference', 'reference-fast']),
    help='Submit the shipped reference set too (reference-fast: the part that fits 2 h of the fast protocol '
    'on 2 cores); see the docs page "The reference set".',
)
@click.option('--family', type=click.Choice(FAMILIES), help='With --set: only this family of the set.')
@click.option(
    '--dry-run', is_flag=True, help='Read and check every material and build its inputs; launch nothing.'
)
@click.option(
    '-T',
    '--temperatures',
    type=float,
    multiple=True,
    help="MD temperatures in K (repeat, or space-separated after one -T). Default: the protocol's.",
)
@ENGINE
@PROTOCOL
@CODE
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
    structure_files: tuple[Path, ...],
    mobile: str | None,
    reference_set: str | None,
    family: str | None,
    dry_run: bool,
    temperatures: tuple[float, ...],
    engine: str,
    protocol: str | None,
    code_identifier: str,
    label: str | None,
    overrides: str | None,
    job_options: str | None,
    daemon: bool,
    group_label: str | None,
) -> None:
    """Run STRUCTURE (CIF, POSCAR, ...) through relax, elastic, Γ phonons, vacancy energy and NVT MD at
    several temperatures (stoichiometric and with mobile-ion vacancies), ending with its descriptor
    records. Runs here with progress by default; --daemon submits instead (see `verdi process list`).

    Several STRUCTUREs, or --set reference [--family F], go one after the other into one --group, each
    reported as it ends; a material that fails does not stop the others and is named in the summary."""
    from ..engines.contract import get_engine
    from .profile import load_profile

    protocol = protocol or get_engine(engine).default_protocol()
    if reference_set is not None or family is not None or len(structure_files) != 1 or dry_run:
        from .submit_many import collect_materials

        items = collect_materials(structure_files, reference_set, family, mobile)
        if label is not None and len(items) > 1:
            raise InputError('--label names one material: leave it out with several')
        if group_label is None and reference_set is not None:
            group_label = f'superionic-reference-{protocol}'
        if group_label is None and len(items) > 1 and not dry_run:
            raise InputError('several materials go into one group: pass --group')
    else:
        if mobile is None:
            raise InputError("Missing option '-m' / '--mobile' (required for a STRUCTURE file)")
        items = None
        structure = read_structure(structure_files[0])
    overrides_dict = _json_object(overrides, '--overrides')
    options_dict = _json_object(job_options, '--options')
    if items is None and mobile not in {el.symbol for el in structure.composition.elements}:
        raise InputError(
            f'mobile species {mobile!r} not in structure {structure.composition.reduced_formula}'
        )
    for t in temperatures:
        check_temperature(t, 'temperatures')
    check_label(label)
    check_label(group_label, '--group')
    settings = check_settings(engine, protocol, overrides_dict)
    profile = load_profile(ctx)

    code = load_code(code_identifier, ctx)
    check_code(code, engine)
    from .launch import launch
    from .records import format_records
    from .submit_many import material_builder, run_materials

    common = {'code': code, 'engine': engine, 'protocol': protocol, 'temperatures': temperatures}
    common |= {'overrides': overrides_dict, 'options': options_dict, 'group_label': group_label}
    if items is not None:
        if label is not None:
            common['label'] = label
        run_materials(items, common, settings.get('model'), daemon, dry_run, profile)
        return
    builder = material_builder(structure, mobile, common, label)
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
