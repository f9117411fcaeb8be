"""Checks of command-line input that run before anything is stored (one clear ``InputError`` each)."""

from __future__ import annotations

from typing import Any

from ..engines.contract import MAX_TEMPERATURE_K, MAX_TIMESTEP_FS, check_md_settings, check_temperature
from ..exceptions import InputError

__all__ = [
    'LABEL_MAX',
    'MAX_TEMPERATURE_K',
    'MAX_TIMESTEP_FS',
    'check_code',
    'check_label',
    'check_settings',
    'check_temperature',
]


def check_code(code, engine_name: str) -> None:
    """Refuse a code made for another plugin (its jobs would fail only once submitted)."""
    from ..engines.contract import get_engine

    engine = get_engine(engine_name)
    expected = engine.calc_job_plugin
    plugin = getattr(code, 'default_calc_job_plugin', None)
    if expected and plugin and plugin != expected:
        raise InputError(
            f"code {code.full_label!r} runs {plugin}, not {expected}: pass the {engine_name} engine's code "
            '(`aiida-superionic setup` creates mlip@localhost)'
        )


#: aiida-core keeps node and group labels in a ``varchar(255)`` column (PostgreSQL refuses longer ones).
LABEL_MAX = 255


def check_label(label: str | None, option: str = '--label') -> None:
    """A material (or group) label is free text (quotes, ``;``, ``$`` are fine: it never reaches a shell),
    but one non-empty line that the database can store."""
    if label is None:
        return
    if not label.strip():
        raise InputError(f'{option} must not be empty')
    if any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise InputError(f'{option} must be one line of printable text (no newlines or control characters)')
    if len(label) > LABEL_MAX:
        raise InputError(
            f'{option} is {len(label)} characters long; AiiDA stores labels of at most {LABEL_MAX}'
        )


def check_settings(engine_name: str, protocol: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The engine's settings for ``protocol`` with ``overrides``; unknown keys and non-physical MD
    settings are refused here, before any node is stored (the work chains' port validators run the same
    checks for a launch from Python)."""
    from ..engines.contract import get_engine

    engine = get_engine(engine_name)
    try:
        settings = engine.protocol(protocol, overrides)
    except InputError as exc:
        message = str(exc)
        raise InputError(
            f'--overrides: {message}' if message.startswith(('unknown key', "'")) else message
        ) from None
    check_md_settings(settings)
    return settings
