"""Checks of command-line input that run before anything is stored (one clear ``InputError`` each)."""

from __future__ import annotations

import math
from typing import Any

from ..exceptions import InputError

#: Steps whose settings an override may change key by key (their keys are checked against the protocol).
_STEPS = ('relax', 'elastic', 'phonon_gamma', 'vacancy', 'md', 'dielectric', 'band_gap')
#: Keys an override may add to a step although the protocol does not set them.
_OPTIONAL = {'md': {'segment_steps', 'walltime_s'}}
#: Largest MD time step accepted, fs (light ions such as Li need 1-2 fs; 10 fs is already unstable).
MAX_TIMESTEP_FS = 10.0
#: Temperatures accepted, K (exclusive bounds).
MAX_TEMPERATURE_K = 5000.0


def check_temperature(value: Any, what: str) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise InputError(f'{what} must be a number of kelvin, got {value!r}') from None
    if not (math.isfinite(t) and 0 < t < MAX_TEMPERATURE_K):
        raise InputError(f'{what} must be between 0 and {MAX_TEMPERATURE_K:g} K, got {t:g}')
    return t


#: The CalcJob plugin each engine's code must run (an engine without an entry is not checked here).
_CODE_PLUGINS = {'mlip': 'superionic.mlip', 'vasp': 'vasp.vasp'}


def check_code(code, code_label: str, engine_name: str) -> None:
    """Refuse a code made for another plugin (its jobs would fail only once submitted)."""
    expected = _CODE_PLUGINS.get(engine_name)
    plugin = getattr(code, 'default_calc_job_plugin', None)
    if expected and plugin and plugin != expected:
        raise InputError(
            f"code {code_label!r} runs {plugin}, not {expected}: pass the {engine_name} engine's code "
            '(`aiida-superionic setup` creates mlip@localhost)'
        )


def check_label(label: str | None) -> None:
    """A material label is free text (quotes, ``;``, ``$`` are fine: it never reaches a shell), but one
    non-empty line."""
    if label is None:
        return
    if not label.strip():
        raise InputError('--label must not be empty')
    if any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise InputError('--label must be one line of printable text (no newlines or control characters)')


def check_settings(engine_name: str, protocol: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The engine's settings for ``protocol`` with ``overrides``; unknown keys (MLIP engine) and
    non-physical MD settings are refused here, before any node is stored, instead of failing a job later."""
    from ..engines.contract import get_engine

    engine = get_engine(engine_name)
    base = engine.protocol(protocol)
    # the MLIP runner refuses unknown settings, so a typo would fail a job after the relaxation: refuse
    # it here (other engines read optional keys their protocols do not list)
    for key, value in overrides.items() if engine_name == 'mlip' else ():
        if key not in base:
            raise InputError(f'--overrides: unknown key {key!r}; the protocol has {", ".join(sorted(base))}')
        if key in _STEPS and isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise InputError(f'--overrides: {key!r} must be a JSON object, got {value!r}')
            unknown = sorted(set(value) - set(base[key]) - _OPTIONAL.get(key, set()))
            if unknown:
                allowed = sorted(set(base[key]) | _OPTIONAL.get(key, set()))
                raise InputError(
                    f'--overrides: unknown key {key}.{unknown[0]}; {key} has {", ".join(allowed)}'
                )
    settings = engine.protocol(protocol, overrides)
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
    return settings
