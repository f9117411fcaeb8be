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

from abc import ABC, abstractmethod
from functools import cache
from importlib import resources
from typing import Any

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


@cache
def load_protocols(package: str) -> dict[str, Any]:
    """The ``protocols.yaml`` of an engine's package: ``default``, ``default_protocol`` and the
    ``protocols`` as deltas on ``default`` (aiida-quantumespresso style)."""
    import yaml

    return yaml.safe_load(resources.files(package).joinpath('protocols.yaml').read_text())


class Engine(ABC):
    """One engine (MLIP, VASP, ...) behind the contract."""

    name: str = ''
    #: The package whose ``protocols.yaml`` holds the engine's protocols.
    protocol_package: str = ''

    def base_protocol(self, name: str | None = None) -> dict[str, Any]:
        """``default`` with the delta of protocol ``name`` (default: the file's ``default_protocol``)."""
        from ..exceptions import InputError

        data = load_protocols(self.protocol_package)
        name = name or data['default_protocol']
        if name not in data['protocols']:
            raise InputError(f'unknown protocol {name!r}: choose one of {", ".join(data["protocols"])}')
        delta = {k: v for k, v in data['protocols'][name].items() if k != 'description'}
        return deep_merge(data['default'], delta)

    def protocol(self, name: str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The engine's settings for a protocol ('fast', 'moderate', 'precise'), with overrides merged."""
        return deep_merge(self.base_protocol(name), overrides or {})

    def protocols(self) -> dict[str, str]:
        """Protocol names and their descriptions."""
        data = load_protocols(self.protocol_package)
        return {name: p.get('description', '') for name, p in data['protocols'].items()}

    @abstractmethod
    def get_builder(self, step: str, structure, code, settings: dict[str, Any], **kwargs: Any):
        """A process builder for ``step`` on ``structure`` whose outputs follow :data:`OUTPUTS`."""

    def unavailable(self) -> dict[str, str]:
        """Steps this engine cannot provide, with the reason shown to the user."""
        return {}


def get_engine(name: str) -> Engine:
    """The engine registered under ``name`` ('mlip' or 'vasp')."""
    from ..exceptions import InputError

    if name == 'mlip':
        from .mlip.engine import MlipEngine

        return MlipEngine()
    if name == 'vasp':
        from .vasp.engine import VaspEngine

        return VaspEngine()
    raise InputError(f'unknown engine {name!r}: available engines are mlip, vasp')


def deep_merge(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (protocol deltas, user overrides); ``delta`` wins."""
    out = dict(base)
    for key, value in (delta or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
