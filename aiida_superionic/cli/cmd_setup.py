"""``aiida-superionic setup``: the profile, computer and caching the plugin needs, idempotently."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import click

from ..exceptions import InputError
from .root import cmd_root

#: Process classes whose results are reused when the same inputs come again.
CACHING_IDENTIFIERS = ['aiida.calculations:superionic.*']


def create_postgres_database(host: str, port: int, admin: str, name: str, password: str) -> bool:
    """Create role and database ``name`` (owner ``name``) if missing; returns whether it created them.

    Uses the server's default locale (aiida-core's ``verdi presto --use-postgres`` insists on
    en_US.UTF-8, which many servers, this project's CI included, do not have).
    """
    import psycopg
    from psycopg import sql

    try:
        conn = psycopg.connect(
            host=host, port=port, user=admin, dbname='postgres', autocommit=True, connect_timeout=10
        )
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f'cannot connect to PostgreSQL at {host}:{port} as {admin!r}: {first}') from None
    with conn:
        exists = conn.execute('SELECT 1 FROM pg_database WHERE datname = %s', (name,)).fetchone()
        if exists:
            return False
        role = (
            'ALTER'
            if conn.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (name,)).fetchone()
            else 'CREATE'
        )
        conn.execute(
            sql.SQL(role + ' ROLE {} LOGIN PASSWORD {}').format(sql.Identifier(name), sql.Literal(password))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(name), sql.Identifier(name)
            )
        )
    return True


def create_production_profile(profile_name: str, host: str, port: int, admin: str) -> None:
    """A ``core.psql_dos`` + ``core.rabbitmq`` profile on existing servers (RabbitMQ guest@localhost)."""
    from aiida.manage.configuration import get_config

    if not profile_name.replace('_', '').replace('-', '').isalnum():
        raise InputError(f'profile name {profile_name!r}: use letters, digits, - and _ only')
    database = f'aiida_{profile_name}'.replace('-', '_')
    password = secrets.token_hex(16)
    created = create_postgres_database(host, port, admin, database, password)
    click.echo(f'database: {database!r} {"created" if created else "exists"} on {host}:{port}')
    repository = Path(get_config(create=True).dirpath) / 'repository' / profile_name
    command = [
        _verdi(), 'profile', 'setup', 'core.psql_dos', '--non-interactive',
        '--profile-name', profile_name, '--email', 'aiida@localhost', '--first-name', 'aiida',
        '--last-name', 'superionic', '--institution', 'localhost', '--broker', 'core.rabbitmq',
        '--database-hostname', host, '--database-port', str(port), '--database-username', database,
        '--database-password', password, '--database-name', database, '--repository-uri', repository.as_uri(),
        '--no-set-as-default',
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['unknown error']
        raise InputError(f'verdi profile setup failed: {last[0]}')


#: Label of the MLIP runner code that `setup` creates on the local computer.
MLIP_CODE_LABEL = 'mlip'


def ensure_mlip_code(computer) -> None:
    """``mlip@<computer>``: the ``aiida-superionic-mlip`` runner of this Python environment."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    runner = Path(sys.executable).with_name('aiida-superionic-mlip')
    try:
        code = orm.load_code(f'{MLIP_CODE_LABEL}@{computer.label}')
    except (NotExistent, MultipleObjectsError):
        code = None
    if code is not None:
        click.echo(f'code: {code.full_label!r} exists ({code.get_executable()})')
        return
    if not runner.exists():
        raise InputError(
            f'the MLIP runner {runner} is missing: reinstall aiida-superionic in this environment'
        )
    code = orm.InstalledCode(
        label=MLIP_CODE_LABEL,
        computer=computer,
        filepath_executable=str(runner),
        default_calc_job_plugin='superionic.mlip',
        description='aiida-superionic MLIP runner (ASE + CHGNet 0.3.0 / SevenNet-0)',
        # one thread per job: the material work chain runs several jobs at once, and torch threads
        # oversubscribing the cores made them several times slower (measured on 2 cores)
        prepend_text='export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1',
    ).store()
    click.echo(f'code: {code.full_label!r} created ({runner})')


def _verdi() -> str:
    candidate = Path(sys.executable).with_name('verdi')
    return str(candidate) if candidate.exists() else 'verdi'


@cmd_root.command('setup')
@click.option(
    '--profile-name',
    default='superionic',
    show_default=True,
    help='Name of the profile to create: the embedded one when no profile exists yet, or the production one with --production.',
)
@click.option(
    '--computer',
    'computer_label',
    default='localhost',
    show_default=True,
    help='Label of the local computer.',
)
@click.option(
    '--workdir',
    type=click.Path(file_okay=False, path_type=Path),
    help='Scratch folder of the local computer (default: <AiiDA folder>/scratch/<profile>).',
)
@click.option(
    '--production',
    is_flag=True,
    help='Create the profile on PostgreSQL + RabbitMQ (database and role made on the server) instead of the '
    'embedded SQLite + ZeroMQ one; the profile is then selected with -p PROFILE-NAME.',
)
@click.option('--pg-host', default='127.0.0.1', show_default=True, help='PostgreSQL host (--production).')
@click.option('--pg-port', default=5432, show_default=True, help='PostgreSQL port (--production).')
@click.option(
    '--pg-admin', default='postgres', show_default=True, help='PostgreSQL role that may create databases.'
)
@click.pass_context
def cmd_setup(
    ctx: click.Context,
    profile_name: str,
    computer_label: str,
    workdir: Path | None,
    production: bool,
    pg_host: str,
    pg_port: int,
    pg_admin: str,
) -> None:
    """Make the current AiiDA profile ready for aiida-superionic (safe to run again).

    With no profile at all, first creates the embedded one: `verdi presto --use-zeromq` (SQLite +
    the ZeroMQ broker that runs inside the daemon; no services needed). With --production it creates
    (if missing) a PostgreSQL + RabbitMQ profile named PROFILE-NAME instead. Then makes sure the local
    computer exists and is configured, and enables caching of the descriptor calcfunctions.
    """
    from aiida.manage.configuration import get_config

    from .profile import load_profile

    config = get_config(create=True)
    root_meta = ctx.find_root().meta
    if production:
        if profile_name not in config.profile_names:
            create_production_profile(profile_name, pg_host, pg_port, pg_admin)
            from aiida.manage.configuration import reset_config

            reset_config()
        else:
            click.echo(f'profile {profile_name!r} exists')
        root_meta['superionic.profile'] = profile_name
    elif root_meta.get('superionic.profile') is None and not config.profile_names:
        click.echo(f'creating the embedded profile {profile_name!r} (verdi presto --use-zeromq)')
        proc = subprocess.run(
            [_verdi(), 'presto', '--use-zeromq', '--profile-name', profile_name],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
        )
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['unknown error']
            raise InputError(f'verdi presto failed: {last[0]}')
        from aiida.manage.configuration import reset_config

        reset_config()
    profile = load_profile(ctx)
    click.echo(
        f'profile: {profile.name} ({profile.storage_backend}, broker {profile.process_control_backend})'
    )

    from aiida import orm
    from aiida.common.exceptions import NotExistent
    from aiida.manage.configuration import get_config as reload_config

    try:
        computer = orm.load_computer(computer_label)
        click.echo(f'computer: {computer_label!r} exists')
    except NotExistent:
        root = workdir or Path(reload_config().dirpath) / 'scratch' / profile.name
        root.mkdir(parents=True, exist_ok=True)
        computer = orm.Computer(
            label=computer_label,
            hostname='localhost',
            description='this machine (aiida-superionic)',
            transport_type='core.local',
            scheduler_type='core.direct',
            workdir=str(root),
        ).store()
        computer.set_minimum_job_poll_interval(1.0)
        computer.set_default_mpiprocs_per_machine(1)
        click.echo(f'computer: {computer_label!r} created (work directory {root})')
    if not computer.is_user_configured(orm.User.collection.get_default()):
        computer.configure(safe_interval=0.0)
        click.echo(f'computer: {computer_label!r} configured for the default user')

    ensure_mlip_code(computer)

    cfg = reload_config()
    enabled = list(cfg.get_option('caching.enabled_for', scope=profile.name) or [])
    missing = [ident for ident in CACHING_IDENTIFIERS if ident not in enabled]
    if missing:
        cfg.set_option('caching.enabled_for', enabled + missing, scope=profile.name)
        cfg.store()
        click.echo(f'caching: enabled for {", ".join(missing)}')
    else:
        click.echo('caching: already enabled')
    click.echo('ready')
