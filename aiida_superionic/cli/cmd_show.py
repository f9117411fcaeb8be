"""``aiida-superionic show``: a material's descriptor records as a table."""

from __future__ import annotations

import click

from .records import find_records, format_records
from .root import cmd_root


@cmd_root.command('show')
@click.argument('identifier')
@click.pass_context
def cmd_show(ctx: click.Context, identifier: str) -> None:
    """Print the descriptor records of IDENTIFIER: a record, trajectory or work-chain PK/UUID, or a
    material label (all its records, one column per temperature). '-' marks descriptors not computed;
    a D not resolved from zero shows its upper bound, '<bound' (row D_resolved: no)."""
    from .profile import load_profile

    load_profile(ctx)
    click.echo(format_records(find_records(identifier)))
