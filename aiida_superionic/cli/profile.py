"""Loading the AiiDA profile for the commands that use the database."""

from __future__ import annotations

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
