"""Every process of the package is registered under ``aiida.workflows`` / ``aiida.calculations`` (so
``verdi plugin list`` shows it and its nodes get a ``process_type`` that loads), and the engines under
``aiida_superionic.engines``."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import pytest

import aiida_superionic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip('tomli')

PACKAGE = Path(aiida_superionic.__file__).resolve().parent
PYPROJECT = PACKAGE.parent / 'pyproject.toml'
#: Modules that are not imported here: the compute-node runner imports no AiiDA and defines no process.
SKIP = {'aiida_superionic.engines.mlip.runner'}


def declared_entry_points() -> dict[str, dict[str, str]]:
    return tomllib.loads(PYPROJECT.read_text())['project']['entry-points']


def package_processes() -> dict[str, object]:
    """``module:name`` -> every Process subclass and process function defined in the package, less the
    bases that other process classes of the package extend (they are not launched themselves)."""
    from aiida.engine import Process

    found: dict[str, object] = {}
    for path in sorted(PACKAGE.rglob('*.py')):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts.pop()
        name = '.'.join(parts)
        if name in SKIP:
            continue
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if getattr(value, '__module__', None) != name:
                continue
            if (inspect.isclass(value) and issubclass(value, Process)) or getattr(
                value, 'is_process_function', False
            ):
                found[f'{name}:{attr}'] = value
    classes = [v for v in found.values() if inspect.isclass(v)]
    bases = {c for c in classes if any(d is not c and issubclass(d, c) for d in classes)}
    return {k: v for k, v in found.items() if v not in bases}


def test_every_process_is_registered():
    declared = declared_entry_points()
    registered = {
        target for group in ('aiida.workflows', 'aiida.calculations') for target in declared[group].values()
    }
    processes = package_processes()
    assert 'aiida_superionic.workflows.material:MaterialWorkChain' in processes  # the walk sees processes
    missing = sorted(set(processes) - registered)
    assert missing == [], f'processes without an entry point: {missing}'


def test_work_chains_are_workflows_and_calculations_are_calculations():
    from aiida.engine import CalcJob, WorkChain

    declared = declared_entry_points()
    for group, kinds in (('aiida.workflows', (WorkChain,)), ('aiida.calculations', (CalcJob,))):
        for entry, target in declared[group].items():
            module, attr = target.split(':')
            value = getattr(importlib.import_module(module), attr)
            if inspect.isclass(value):
                assert issubclass(value, kinds), (group, entry)
            else:
                assert value.node_class.__name__ == (
                    'CalcFunctionNode' if group == 'aiida.calculations' else 'WorkFunctionNode'
                ), entry


def test_engines_are_registered():
    from aiida_superionic.engines.contract import ENTRY_POINT_GROUP, Engine

    declared = declared_entry_points()[ENTRY_POINT_GROUP]
    assert sorted(declared) == ['mlip', 'vasp']
    for target in declared.values():
        module, attr = target.split(':')
        assert issubclass(getattr(importlib.import_module(module), attr), Engine)
