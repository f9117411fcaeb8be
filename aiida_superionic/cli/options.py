"""Options and parameter types shared by several commands: the trajectory options (``analyze``,
``import-md``) and the launch options (``submit``: the engine and the protocol from the plugin's
registries, the code through aiida-core's ``CodeParamType``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import click

from ..analysis.vibrational import DEFAULT_VDOS_WEIGHTING, VDOS_WEIGHTINGS
from ..exceptions import InputError

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
STEP_SKIP = click.option(
    '--step-skip',
    type=int,
    default=1,
    show_default=True,
    help='MD steps between frames in the file (VASP NBLOCK).',
)
MOBILE = click.option(
    '-m', '--mobile', help='Mobile species (default: first of Li, Na, Ag, Cu, Cl, I, Br, F, O present).'
)
ALLOW_TRUNCATED = click.option(
    '--allow-truncated', is_flag=True, help='Drop an incomplete last frame instead of failing.'
)


class RegistryChoice(click.Choice):
    """A :class:`click.Choice` whose choices are read when first needed, from the plugin's registries
    (the engines' entry-point group, the engines' ``protocols.yaml``), never listed by hand: a newly
    installed engine shows in ``--help``, in shell completion and in what parsing accepts."""

    def __init__(self, read: Callable[[], Iterable[str]]):
        self._read = read
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._read())

    @choices.setter
    def choices(self, _value) -> None:  # click.Choice.__init__ assigns; the registry is the source
        pass


def engine_choices() -> list[str]:
    """The engines registered under the entry-point group ``aiida_superionic.engines``."""
    from ..engines.contract import engine_names

    return engine_names()


def protocol_choices() -> list[str]:
    """Every protocol of a registered engine (whether the chosen engine has it is checked with the
    engine: ``unknown protocol ...``)."""
    from ..engines.contract import get_engine

    names: dict[str, None] = {}
    for engine in engine_choices():
        names.update(dict.fromkeys(get_engine(engine).protocols()))
    return list(names)


def _complete_code(ctx: click.Context, param: click.Parameter, incomplete: str):
    from aiida.cmdline.params.types import CodeParamType

    return CodeParamType().shell_complete(ctx, param, incomplete)


def load_code(identifier: str, ctx: click.Context | None = None):
    """The code named by ``identifier`` (label, PK or UUID), loaded by aiida-core's
    :class:`~aiida.cmdline.params.types.CodeParamType` as ``verdi`` loads it. The commands call it after
    their cheaper checks (a damaged structure file is reported as such, not as a missing code) and after
    the profile is loaded; a code that does not exist or is ambiguous is one :class:`InputError`."""
    from aiida.cmdline.params.types import CodeParamType
    from aiida.common.exceptions import MultipleObjectsError

    try:
        return CodeParamType().convert(identifier, None, ctx or click.get_current_context())
    except click.BadParameter as exc:
        if isinstance(exc.__context__, MultipleObjectsError):  # aiida-core raises it from the loader's
            raise InputError(
                f'code {identifier!r} is ambiguous ({exc.message}): pass its PK or UUID'
            ) from None
        raise InputError(
            f'no code {identifier!r}: run `aiida-superionic setup` (creates mlip@localhost) or pass --code '
            'with a label, PK or UUID'
        ) from None


ENGINE = click.option(
    '-e',
    '--engine',
    default='mlip',
    show_default=True,
    type=RegistryChoice(engine_choices),
    help='Engine (those registered under the entry-point group aiida_superionic.engines).',
)
PROTOCOL = click.option(
    '-P',
    '--protocol',
    type=RegistryChoice(protocol_choices),
    help="Protocol, from the engine's protocols.yaml (default: the engine's default protocol).",
)
CODE = click.option(
    '-c',
    '--code',
    'code_identifier',
    default='mlip@localhost',
    show_default=True,
    metavar='CODE',
    shell_complete=_complete_code,
    help="The engine's AiiDA code: label, PK or UUID (as verdi takes it).",
)
