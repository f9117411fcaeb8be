"""Options shared by the commands that analyse a trajectory file (``analyze``, ``import-md``)."""

from __future__ import annotations

import click

from ..analysis.vibrational import DEFAULT_VDOS_WEIGHTING, VDOS_WEIGHTINGS

FORMAT = click.option(
    '-f',
    '--format',
    'fmt',
    type=click.Choice(['xdatcar', 'vasprun', 'npz', 'ase']),
    help='File format (default: from the name).',
)
FIT_WINDOW = click.option(
    '--fit-window',
    nargs=2,
    type=float,
    metavar='T0 T1',
    help="Einstein-fit window in ps (default: the paper's τmax/2-τmax).",
)
VDOS_WEIGHTING = click.option(
    '--vdos-weighting',
    type=click.Choice(VDOS_WEIGHTINGS),
    default=DEFAULT_VDOS_WEIGHTING,
    show_default=True,
    help="Atom weights in the VDOS: 'none' is the paper's eq 5, 'mass' gives every atom 3 modes.",
)
ALLOW_TRUNCATED = click.option(
    '--allow-truncated', is_flag=True, help='Drop an incomplete last frame instead of failing.'
)
