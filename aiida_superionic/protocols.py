"""Protocols: YAML files of settings as deltas on a ``default`` (aiida-quantumespresso style), the one
recursive merge used for protocol deltas, user overrides and the study's parameters, and the check that
an override names only keys the protocol has (a typo would otherwise be ignored silently).

No AiiDA imports: the engines, the work chains' port validators, the CLI and the study all use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from .exceptions import InputError


def deep_merge(base: Mapping[str, Any], delta: Mapping[str, Any] | None) -> dict[str, Any]:
    """Recursive dict merge (protocol deltas, user overrides, study parameters); ``delta`` wins."""
    out = dict(base)
    for key, value in (delta or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


@cache
def load_yaml(package: str, filename: str = 'protocols.yaml') -> dict[str, Any]:
    """A YAML file shipped inside ``package`` (read once per process)."""
    import yaml

    return yaml.safe_load(resources.files(package).joinpath(filename).read_text())


def protocol_names(package: str) -> dict[str, str]:
    """The protocols of ``package``'s ``protocols.yaml`` with their descriptions."""
    data = load_yaml(package)
    return {name: p.get('description', '') for name, p in data['protocols'].items()}


def base_protocol(package: str, name: str | None = None) -> dict[str, Any]:
    """``default`` of ``package``'s ``protocols.yaml`` with the delta of protocol ``name`` (default: the
    file's ``default_protocol``)."""
    data = load_yaml(package)
    name = name or data['default_protocol']
    if name not in data['protocols']:
        raise InputError(f'unknown protocol {name!r}: choose one of {", ".join(data["protocols"])}')
    delta = {k: v for k, v in data['protocols'][name].items() if k != 'description'}
    return deep_merge(data['default'], delta)


def check_keys(
    overrides: Mapping[str, Any],
    base: Mapping[str, Any],
    *,
    free_form: Iterable[str] = (),
    optional: Mapping[str, Iterable[str]] | None = None,
    where: str = '',
) -> None:
    """Refuse a key of ``overrides`` that ``base`` does not have, at every depth, except inside the
    ``free_form`` mappings (INCAR tags, element -> POTCAR, ...) and the ``optional`` keys a section may
    add although the protocol does not set them (``{'md': {'walltime_s'}}``)."""
    free_form = set(free_form)
    optional = optional or {}
    for key, value in overrides.items():
        section = where.rstrip('.')
        if key not in base and key not in set(optional.get(section, ())):
            known = ', '.join(sorted(set(base) | set(optional.get(section, ()))))
            if section:
                raise InputError(f'unknown key {where}{key}; {section} has {known}')
            raise InputError(f'unknown key {key!r}; the protocol has {known}')
        if key in base and isinstance(base[key], Mapping) and key not in free_form:
            if not isinstance(value, Mapping):
                raise InputError(f'{where}{key!r} must be a mapping, got {value!r}')
            check_keys(value, base[key], free_form=free_form, optional=optional, where=f'{where}{key}.')
