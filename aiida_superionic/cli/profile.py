"""Loading the AiiDA profile for the commands that use the database: the configured one, or an archive file
read as a read-only profile."""

from __future__ import annotations

from pathlib import Path

import click

from ..exceptions import InputError

NO_PROFILE = (
    'no AiiDA profile: create the embedded one with `aiida-superionic setup` '
    '(or `verdi presto --use-zeromq`), or pass -p/--profile'
)


def load_profile(ctx: click.Context | None = None):
    """Load the profile named by the root's ``-p/--profile`` (default: AiiDA's default profile).

    Raises :class:`InputError` with one line when there is no such profile.
    """
    from aiida import load_profile as aiida_load_profile
    from aiida.common.exceptions import MissingConfigurationError, ProfileConfigurationError
    from aiida.manage.configuration import get_config

    ctx = ctx or click.get_current_context()
    name = ctx.find_root().meta.get('superionic.profile')
    try:
        config = get_config(create=True)
    except (MissingConfigurationError, ProfileConfigurationError) as exc:
        raise InputError(f'cannot read the AiiDA configuration: {exc}') from None
    names = config.profile_names
    if name is None:
        if not names or config.default_profile_name is None:
            raise InputError(NO_PROFILE)
        name = config.default_profile_name
    elif name not in names:
        known = ', '.join(names) if names else 'none'
        raise InputError(f'unknown AiiDA profile {name!r} (profiles: {known})')
    return aiida_load_profile(name, allow_switch=True)


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
