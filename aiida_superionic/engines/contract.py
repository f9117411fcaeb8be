"""The engine contract: what every engine provides, under which output names, in which units.

The work chains above (``superionic.relax``, ``.elastic``, ``.phonon_gamma``, ``.vacancy``, ``.md``,
``.material``) only ever talk to an :class:`Engine`; they never branch on which engine it is.

Steps and their outputs (the process an engine returns for a step exposes exactly these):

============== ============================================================================ ==============
step           outputs                                                                      units
============== ============================================================================ ==============
relax          ``structure`` (StructureData), ``results`` (Dict: energy_eV, ...)             eV, Å, GPa
elastic        ``elastic_tensor`` (ArrayData, array ``voigt_GPa`` 6x6), ``results``          GPa
phonon_gamma   ``phonon`` (Dict: gamma_mode_meV, frequencies_meV), ``results``               meV
vacancy        ``vacancy`` (Dict: E_vac_eV, mu_eV, mu_reference, sites), ``results``         eV
md             ``trajectory`` (MDTrajectoryData: frames, timestep_fs, temperature_K)         Å, fs, K
dielectric     ``dielectric`` (Dict: epsilon_inf, born_charge_e)                             -, e
band_gap       ``band_gap`` (Dict: band_gap_eV)                                              eV
============== ============================================================================ ==============

A step an engine cannot provide (ε∞, Born charges and band gap from an ML potential) is reported by
:meth:`Engine.unavailable`, and the records say "not available from this engine" for it — never a
made-up number.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ..exceptions import InputError
from ..protocols import base_protocol, check_keys, deep_merge, load_yaml, protocol_names

#: The entry-point group engines are registered under (``name = "module:EngineClass"``).
ENTRY_POINT_GROUP = 'aiida_superionic.engines'

STEPS = ('relax', 'elastic', 'phonon_gamma', 'vacancy', 'md', 'dielectric', 'band_gap')

#: Output names of each step (see the table above).
OUTPUTS = {
    'relax': ('structure', 'results'),
    'elastic': ('elastic_tensor', 'results'),
    'phonon_gamma': ('phonon', 'results'),
    'vacancy': ('vacancy', 'results'),
    'md': ('trajectory',),
    'dielectric': ('dielectric',),
    'band_gap': ('band_gap',),
}

#: Type (``orm`` class name, or ``MDTrajectoryData``) and help of every step output an engine process
#: may give: the step work chains and each engine's processes declare their ports from this one table.
OUTPUT_PORTS = {
    'results': ('Dict', 'Everything the engine reports for the step (units in the keys).'),
    'structure': ('StructureData', 'relax: the relaxed crystal.'),
    'elastic_tensor': ('ArrayData', 'elastic: array voigt_GPa (6x6, GPa).'),
    'phonon': ('Dict', 'phonon_gamma: gamma_mode_meV, frequencies_meV.'),
    'force_constants': (
        'ArrayData',
        'phonon_gamma: the force constants (phonopy layout), where the engine gives them.',
    ),
    'vacancy': ('Dict', 'vacancy: E_vac_eV (lowest site class), mu_eV, mu_reference, sites, ...'),
    'trajectory': ('MDTrajectoryData', 'md: the frames (stitched over segments).'),
    'dielectric': ('Dict', 'dielectric: epsilon_inf, born_charge_e, ...'),
    'band_gap': ('Dict', 'band_gap: band_gap_eV, ...'),
}


def declare_outputs(spec, names, required: bool = True) -> None:
    """Declare the step outputs ``names`` on ``spec`` with the types and help of :data:`OUTPUT_PORTS`."""
    from aiida import orm

    from ..data import MDTrajectoryData

    for name in names:
        type_name, help_ = OUTPUT_PORTS[name]
        valid_type = MDTrajectoryData if type_name == 'MDTrajectoryData' else getattr(orm, type_name)
        spec.output(name, valid_type=valid_type, required=required, help=help_)


#: Largest MD time step accepted at launch, fs (light ions such as Li need 1-2 fs; 10 fs is unstable).
MAX_TIMESTEP_FS = 10.0
#: Temperatures accepted at launch, K (exclusive bounds).
MAX_TEMPERATURE_K = 5000.0


class Engine(ABC):
    """One engine (MLIP, VASP, ...) behind the contract."""

    name: str = ''
    #: The package whose ``protocols.yaml`` holds the engine's protocols.
    protocol_package: str = ''
    #: Mappings of the protocol whose keys are free (INCAR tags, element -> POTCAR, ...): not checked.
    free_form: ClassVar[tuple[str, ...]] = ()
    #: Keys a section may take although the protocol does not set them (``{'md': ('walltime_s',)}``).
    optional_keys: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: The CalcJob plugin the engine's code must run (checked at launch when set).
    calc_job_plugin: str = ''

    def default_protocol(self) -> str:
        """The name of the protocol used when none is given."""
        return load_yaml(self.protocol_package)['default_protocol']

    def base_protocol(self, name: str | None = None) -> dict[str, Any]:
        """``default`` with the delta of protocol ``name`` (default: the file's ``default_protocol``)."""
        return base_protocol(self.protocol_package, name)

    def check_overrides(self, base: dict[str, Any], overrides: dict[str, Any] | None) -> None:
        """Refuse an override key the protocol does not have (raises :class:`InputError`)."""
        check_keys(overrides or {}, base, free_form=self.free_form, optional=self.optional_keys)

    def protocol(self, name: str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The engine's settings for a protocol ('fast', 'moderate', 'precise'), with overrides merged;
        an unknown override key raises :class:`InputError`."""
        base = self.base_protocol(name)
        self.check_overrides(base, overrides)
        return deep_merge(base, overrides or {})

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Refuse settings (resolved, possibly edited by hand) with keys the engine's protocols do not
        have, or with non-physical MD settings; raises :class:`InputError`."""
        known: dict[str, Any] = {}
        for name in self.protocols():  # keys any protocol of the engine sets
            known = deep_merge(known, self.base_protocol(name))
        self.check_overrides(known, settings)
        check_md_settings(settings)

    def protocols(self) -> dict[str, str]:
        """Protocol names and their descriptions."""
        return protocol_names(self.protocol_package)

    @abstractmethod
    def get_builder(self, step: str, structure, code, settings: dict[str, Any], **kwargs: Any):
        """A process builder for ``step`` on ``structure`` whose outputs follow :data:`OUTPUTS`."""

    def unavailable(self) -> dict[str, str]:
        """Steps this engine cannot provide, with the reason shown to the user."""
        return {}

    def gamma_gives_dielectric(self, settings: dict[str, Any]) -> bool:
        """Whether the engine's ``phonon_gamma`` job also gives the ``dielectric`` output (ε∞ and Born
        charges; a DFPT run with LEPSILON): then the material chain takes it from there and runs no
        separate dielectric step."""
        return False


def check_temperature(value: Any, what: str) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise InputError(f'{what} must be a number of kelvin, got {value!r}') from None
    if not (math.isfinite(t) and 0 < t < MAX_TEMPERATURE_K):
        raise InputError(f'{what} must be between 0 and {MAX_TEMPERATURE_K:g} K, got {t:g}')
    return t


#: Largest Langevin friction x time step: ASE's Langevin step expands its coefficients to second order in
#: friction x time step (one of them, dt/2 - friction dt^2/8, changes sign at 4), so it must stay small.
MAX_FRICTION_TIMESTEP = 0.5


def check_friction(value: Any, timestep_fs: Any = None) -> float:
    """The Langevin friction ``md.friction_per_ps`` (1/ps): a finite number > 0, and with the time step
    (fs) friction x time step at most :data:`MAX_FRICTION_TIMESTEP`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and value > 0):
        raise InputError(
            f'md.friction_per_ps must be a number > 0 (Langevin friction in 1/ps), got {value!r}'
        )
    if isinstance(timestep_fs, (int, float)) and not isinstance(timestep_fs, bool) and timestep_fs > 0:
        product = value * timestep_fs / 1000.0
        if product > MAX_FRICTION_TIMESTEP:
            raise InputError(
                f'md.friction_per_ps = {value!r} with timestep_fs = {timestep_fs!r} gives friction x time step '
                f'= {product:g}, above {MAX_FRICTION_TIMESTEP:g} (the Langevin step needs it small)'
            )
    return float(value)


def check_md_settings(settings: dict[str, Any]) -> None:
    """Non-physical MD settings (time step, counts, temperatures, Langevin friction) raise :class:`InputError`."""
    md = settings.get('md') or {}
    if 'timestep_fs' in md:
        dt = md['timestep_fs']
        ok = isinstance(dt, (int, float)) and not isinstance(dt, bool) and math.isfinite(dt)
        if not (ok and 0 < dt <= MAX_TIMESTEP_FS):
            raise InputError(f'md.timestep_fs must be > 0 and at most {MAX_TIMESTEP_FS:g} fs, got {dt!r}')
    for key in ('n_steps', 'frame_interval', 'checkpoint_every', 'min_atoms', 'segment_steps'):
        if md.get(key) is not None:
            n = md[key]
            if not (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
                raise InputError(f'md.{key} must be a whole number >= 1, got {n!r}')
    for t in md.get('temperatures') or []:
        check_temperature(t, 'md.temperatures')
    if md.get('friction_per_ps') is not None:
        check_friction(md['friction_per_ps'], md.get('timestep_fs'))
    batch = md.get('batch', False)
    if not isinstance(batch, bool):
        raise InputError(f'md.batch must be true or false, got {batch!r}')


def engine_names() -> list[str]:
    """The names of the engines registered under :data:`ENTRY_POINT_GROUP`."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def get_engine(name: str) -> Engine:
    """The engine registered under ``name`` in the entry-point group :data:`ENTRY_POINT_GROUP`."""
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        names = engine_names()
        if not names:
            raise InputError(
                f'no engines registered under the entry-point group {ENTRY_POINT_GROUP}: '
                'reinstall aiida-superionic (pip install -e .)'
            )
        raise InputError(f'unknown engine {name!r}: available engines are {", ".join(names)}')
    engine_class = found[0].load()
    if not (isinstance(engine_class, type) and issubclass(engine_class, Engine)):
        raise InputError(f'entry point {name!r} of {ENTRY_POINT_GROUP} is not an Engine: {engine_class!r}')
    return engine_class()


__all__ = [
    'ENTRY_POINT_GROUP',
    'OUTPUTS',
    'STEPS',
    'Engine',
    'check_md_settings',
    'check_temperature',
    'deep_merge',
    'engine_names',
    'get_engine',
]
