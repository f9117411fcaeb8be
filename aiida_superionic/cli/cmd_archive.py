"""``aiida-superionic export``: a study as one AiiDA archive, to hand to another group."""

from __future__ import annotations

from pathlib import Path

import click

from ..exceptions import InputError
from .root import cmd_root


def load_archive_profile(path: Path):
    """Load an archive file as a read-only profile (aiida-core's ``core.sqlite_zip`` storage): query it
    without importing anything.

    The database is read here, once, before any query: aiida-core only extracts it from the zip (and
    checks its CRC-32) at the first query, so a damaged archive would otherwise fail in the middle of the
    command with a traceback. A damaged repository file is never read by the table, so it is no error."""
    import zipfile

    from aiida import load_profile, orm
    from aiida.common.exceptions import CorruptStorage, IncompatibleStorageSchema, UnreachableStorage
    from aiida.storage.sqlite_zip.backend import SqliteZipBackend
    from sqlalchemy.exc import SQLAlchemyError

    if not path.is_file():
        raise InputError(f'no archive file {path}')
    try:
        profile = SqliteZipBackend.create_profile(path)
        loaded = load_profile(profile, allow_switch=True)
        from aiida.manage import get_manager

        get_manager().get_profile_storage().get_session()  # extracts the database: CRC checked here
        orm.QueryBuilder().append(orm.Node).count()  # and reads it
    except (
        CorruptStorage,
        IncompatibleStorageSchema,
        UnreachableStorage,
        OSError,
        ValueError,
        zipfile.BadZipFile,
        SQLAlchemyError,
    ) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f'{path} is not a readable AiiDA archive: {first}') from None
    return loaded


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
