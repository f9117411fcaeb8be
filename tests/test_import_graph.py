"""The package's import graph, read from the source with ``ast`` (every import, at module level or inside
a function): no import circles, the engine contract imports no concrete engine, the VASP engine's
modules import one way (engine -> work chains -> input helpers), and no CLI command module imports
another."""

from __future__ import annotations

import ast
from pathlib import Path

import aiida_superionic

PACKAGE = Path(aiida_superionic.__file__).resolve().parent
NAME = 'aiida_superionic'


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob('*.py'))}


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split('.') if is_package else module.split('.')[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return '.'.join([*base, target] if target else base)


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (``from .x import y`` counts ``x.y`` when that is a
    module, else ``x``; an import of a package's submodule does not count its ``__init__``, which Python
    runs first but which cannot close a circle by itself)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == '__init__.py'
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = (
                    node.module if node.level == 0 else _resolve(name, is_package, node.level, node.module)
                )
                targets = [
                    f'{source}.{alias.name}' for alias in node.names if f'{source}.{alias.name}' in modules
                ]
                if len(targets) < len(node.names):
                    targets.append(source)
            for target in targets:
                if target and target.split('.')[0] == NAME and target in modules and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_reader_sees_a_circle():
    """The checker itself: a planted circle is found, a chain is not."""
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': set()}) == []
    graph = import_graph()
    assert 'aiida_superionic.engines.contract' in graph['aiida_superionic.workflows.steps']
    assert 'aiida_superionic.protocols' in graph['aiida_superionic.study.workchain']


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_the_engine_contract_imports_no_engine():
    """Engines are found through the ``aiida_superionic.engines`` entry-point group."""
    imported = import_graph()['aiida_superionic.engines.contract']
    engines = [
        m
        for m in imported
        if m.startswith(('aiida_superionic.engines.mlip', 'aiida_superionic.engines.vasp'))
    ]
    assert engines == []


def test_vasp_engine_imports_the_work_chains_one_way():
    """engine -> workchain -> calcfunctions / calculation -> inputs (a leaf): nothing imports back up."""
    graph = import_graph()
    vasp = 'aiida_superionic.engines.vasp'
    assert f'{vasp}.workchain' in graph[f'{vasp}.engine']
    assert f'{vasp}.engine' not in graph[f'{vasp}.workchain']
    assert f'{vasp}.inputs' in graph[f'{vasp}.workchain'] and f'{vasp}.inputs' in graph[f'{vasp}.engine']
    assert {f'{vasp}.calcfunctions', f'{vasp}.calculation'} <= graph[f'{vasp}.workchain']
    for lower in ('calcfunctions', 'calculation'):
        above = {f'{vasp}.{m}' for m in ('engine', 'workchain', 'calcfunctions', 'calculation') if m != lower}
        assert not graph[f'{vasp}.{lower}'] & above, lower
    assert not graph[f'{vasp}.inputs'] - {'aiida_superionic.exceptions', 'aiida_superionic.protocols'}


def test_analysis_and_io_import_no_aiida():
    for name, path in _modules().items():
        if (
            name.startswith(('aiida_superionic.analysis', 'aiida_superionic.io'))
            or name == 'aiida_superionic.protocols'
        ):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    assert not any(a.name.split('.')[0] == 'aiida' for a in node.names), name
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    assert (node.module or '').split('.')[0] != 'aiida', name


def test_mlip_runner_modules_import_one_way():
    """runner (the entry point) -> one module per task -> common / fileformat (leaves); the CalcJob and the
    parser read the file format and the MD reader only: no task module, no runner (nothing that loads ASE,
    a model or torch when AiiDA loads the plugin)."""
    graph = import_graph()
    mlip = 'aiida_superionic.engines.mlip'
    tasks = sorted(m for m in graph if m.startswith(f'{mlip}.tasks.'))
    assert {f'{mlip}.tasks.{t}' for t in ('relax', 'elastic', 'phonon_gamma', 'vacancy', 'md')} <= set(tasks)
    assert set(tasks) <= graph[f'{mlip}.runner']
    for leaf in ('fileformat', 'common'):
        assert graph[f'{mlip}.{leaf}'] == set(), leaf
    for task in tasks:
        inside = {m for m in graph[task] if m.startswith(mlip)}
        assert not inside - {f'{mlip}.common', f'{mlip}.fileformat', *tasks}, task
    for aiida_side in ('calculation', 'parser'):
        inside = {m for m in graph[f'{mlip}.{aiida_side}'] if m.startswith(mlip)}
        assert f'{mlip}.fileformat' in inside, aiida_side
        assert not inside - {f'{mlip}.fileformat', f'{mlip}.output'}, aiida_side
    assert {m for m in graph[f'{mlip}.output'] if m.startswith(mlip)} == {f'{mlip}.fileformat'}


def commands_importing_commands(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """``cmd_*`` modules of the CLI that import another ``cmd_*`` module."""
    cli = 'aiida_superionic.cli.cmd_'
    return {
        name: sorted(m for m in imported if m.startswith(cli))
        for name, imported in graph.items()
        if name.startswith(cli) and any(m.startswith(cli) for m in imported)
    }


def test_no_command_module_imports_another():
    """A helper that several commands use lives in a shared module (``cli/records.py``, ``cli/profile.py``,
    ``cli/options.py``, ...), not in one command's module: each ``cmd_*.py`` can change alone."""
    planted = {
        'aiida_superionic.cli.cmd_a': {'aiida_superionic.cli.cmd_b', 'aiida_superionic.cli.records'},
        'aiida_superionic.cli.cmd_b': {'aiida_superionic.cli.records'},
    }
    assert commands_importing_commands(planted) == {
        'aiida_superionic.cli.cmd_a': ['aiida_superionic.cli.cmd_b']
    }
    graph = import_graph()
    assert 'aiida_superionic.cli.records' in graph['aiida_superionic.cli.cmd_import']
    assert commands_importing_commands(graph) == {}


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The import graph of the top-level parts (``aiida_superionic.study``, ``aiida_superionic.data``, ...):
    a part imports another when one of its modules imports one of the other's."""

    def part(module: str) -> str:
        return '.'.join(module.split('.')[:2])

    parts: dict[str, set[str]] = {}
    for name, imported in graph.items():
        parts.setdefault(part(name), set()).update(part(m) for m in imported if part(m) != part(name))
    return parts


def test_the_parts_are_layered():
    """The top-level parts import one way (the layers of the docs' picture: analysis and io at the bottom,
    the CLI at the top): no two parts import each other through any of their modules, e.g. the AiiDA
    data types take the table's text columns from the descriptor registry, not from the study that uses
    them, and the engines' restart work chains and the material workflows both take ``submit_once``
    from the leaf module ``aiida_superionic.resubmit``."""
    planted = {'p.a.x': {'p.b.y'}, 'p.b.y': set(), 'p.b.z': {'p.a.w'}, 'p.a.w': set()}
    assert cycles(package_graph(planted)) == [['p.a', 'p.b']]  # no file circle, but a circle of parts
    parts = package_graph(import_graph())
    assert cycles(parts) == []
    for leaf in ('analysis', 'io', 'protocols', 'resubmit'):  # the bottom: nothing of ours but the exceptions
        assert parts[f'{NAME}.{leaf}'] <= {f'{NAME}.exceptions'}, (leaf, parts[f'{NAME}.{leaf}'])
    # the order of the docs' list of parts (docs/index.rst): each imports only parts before it
    order = [NAME, *(f'{NAME}.{p}' for p in LAYERS)]
    assert sorted(parts) == sorted(order)
    for part, imported in parts.items():
        later = [m for m in imported if order.index(m) > order.index(part)]
        assert later == [], (part, later)


#: The parts from the bottom up: the leaves, then the layers of docs/index.rst in its order.
LAYERS = (
    'exceptions', 'protocols', 'resubmit', 'analysis', 'io', 'descriptors', 'data', 'calculations',
    'engines', 'workflows', 'study', 'reference', 'cli',
)  # fmt: skip
