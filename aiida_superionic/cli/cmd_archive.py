"""``aiida-superionic export``: a study as one AiiDA archive, to hand to another group."""

from __future__ import annotations

from pathlib import Path

import click

from ..exceptions import InputError
from .root import cmd_root


@cmd_root.command('export')
@click.argument('group_label', metavar='GROUP')
@click.argument('archive', type=click.Path(dir_okay=False, path_type=Path))
@click.option('-f', '--force', is_flag=True, help='Overwrite ARCHIVE if it exists.')
@click.pass_context
def cmd_export(ctx, group_label: str, archive: Path, force: bool) -> None:
    """Export GROUP — its descriptor records and studies — with their whole provenance (structures,
    engine runs, trajectories, descriptor calcfunctions, study results) to ARCHIVE. The receiver runs
    `verdi archive import ARCHIVE`, or reads it without importing: `aiida-superionic table --archive ARCHIVE`."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent
    from aiida.tools.archive import create_archive

    from .profile import load_profile

    if archive.exists() and not force:
        raise InputError(f'{archive} exists: pass --force to overwrite it')
    if not archive.parent.is_dir():
        raise InputError(f'no folder {archive.parent} for the archive')
    load_profile(ctx)
    try:
        group = orm.load_group(group_label)
    except NotExistent:
        raise InputError(f'no group {group_label!r} (`verdi group list` shows the groups)') from None
    records = (
        orm.QueryBuilder()
        .append(orm.Group, filters={'id': group.pk}, tag='g')
        .append(orm.Dict, with_group='g', filters={'attributes.schema': 'superionic.record.v1'})
        .count()
    )
    if not records:
        raise InputError(f'group {group_label!r} holds no descriptor record')
    # default traversal rules: every node's creators and inputs back to the structures and source files
    create_archive([group], filename=archive, overwrite=force, include_authinfos=False)
    from aiida.tools.archive.abstract import get_format

    with get_format().open(archive, 'r') as reader:
        nodes = reader.querybuilder().append(orm.Node).count()
    size = archive.stat().st_size / 1e6
    click.echo(
        f'wrote {archive} ({size:.1f} MB): group {group_label!r}, {records} records, {nodes} nodes in all'
    )
