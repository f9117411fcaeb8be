"""The ``aiida-superionic`` command group, built on aiida-core's ``VerdiCommandGroup``."""

from __future__ import annotations

import sys

import click
from aiida.cmdline.groups import VerdiCommandGroup

from .. import __version__
from ..exceptions import SuperionicError


class SuperionicCommandGroup(VerdiCommandGroup):
    """``VerdiCommandGroup`` (verbosity option on every command) whose errors are one line.

    Any usage error or :class:`~aiida_superionic.exceptions.SuperionicError` is printed as a single
    ``Error: ...`` line on stderr with a non-zero exit status, instead of click's usage block.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f'Error: {exc.format_message()}', err=True)
            sys.exit(exc.exit_code)
        except SuperionicError as exc:
            click.echo(f'Error: {exc}', err=True)
            sys.exit(1)
        except (click.Abort, KeyboardInterrupt):
            click.echo('Aborted!', err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(
    'aiida-superionic',
    cls=SuperionicCommandGroup,
    context_settings={'help_option_names': ['-h', '--help']},
)
@click.option(
    '-p',
    '--profile',
    'profile_name',
    default=None,
    metavar='PROFILE',
    help='AiiDA profile for commands that use the database (default: the default profile). '
    'Commands that only read files, like `analyze`, never load a profile.',
)
@click.version_option(__version__, prog_name='aiida-superionic')
@click.pass_context
def cmd_root(ctx: click.Context, profile_name: str | None) -> None:
    """aiida-superionic: superionic descriptors (López et al., Mater. Horiz. 2023) from MD and DFT."""
    ctx.meta['superionic.profile'] = profile_name
