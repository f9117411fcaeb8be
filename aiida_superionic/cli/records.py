"""The descriptor records as the commands find and print them (``show``, ``import-md``, ``submit``,
``study``, ``analyze``): the record of a node, the records a PK/UUID/label names, the table of records, and
the D line of a diffusion result. The helpers that more than one command uses live here or in
:mod:`.profile`: no ``cmd_*`` module imports another (tests/test_import_graph.py)."""

from __future__ import annotations

import math
from typing import Any

from ..exceptions import InputError

SCHEMA = 'superionic.record.v1'


def _looks_like_uuid(text: str) -> bool:
    return len(text) >= 8 and all(c in '0123456789abcdef-' for c in text.lower()) and '-' in text


def find_records(identifier: str) -> list:
    """Records for a PK/UUID (of a record, a trajectory or a work chain) or a material label."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    node = None
    if identifier.isdigit() or _looks_like_uuid(identifier):
        try:
            node = orm.load_node(int(identifier) if identifier.isdigit() else identifier)
        except (NotExistent, MultipleObjectsError, ValueError):
            raise InputError(f'no node with PK/UUID {identifier}') from None
    if node is not None:
        if isinstance(node, orm.Dict) and node.base.attributes.get('schema', None) == SCHEMA:
            return [node]
        record = record_of(node)
        if record is None:
            raise InputError(f'node {node.pk} ({type(node).__name__}) has no descriptor record')
        return [record]
    qb = orm.QueryBuilder().append(
        orm.Dict, filters={'attributes.schema': SCHEMA, 'attributes.material': identifier}, project='*'
    )
    records = [row[0] for row in qb.all()]
    if not records:
        raise InputError(f'no descriptor record for {identifier!r} (give a PK, a UUID or a material label)')
    return sorted(records, key=lambda r: (r.base.attributes.get('temperature_K', 0), r.pk))


def _fmt(value: Any) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return 'nan' if math.isnan(value) else f'{value:.4g}'
    return str(value)


def format_records(records: list) -> str:
    from ..descriptors import DESCRIPTORS, stored_value

    heads = [f'{r["material"]} {r.get("temperature_K", 0):g} K' for r in records]
    width = max(12, *(len(h) for h in heads))
    lines = [
        '  '.join([f'{"descriptor":<14}', f'{"unit":<9}', *(f'{h:>{width}}' for h in heads)]),
        '  '.join([f'{"PK":<14}', f'{"":<9}', *(f'{r.pk:>{width}}' for r in records)]),
        '  '.join(
            [f'{"mobile":<14}', f'{"":<9}', *(f'{r.get("mobile_species", "-"):>{width}}' for r in records)]
        ),
        '  '.join(
            [
                f'{"stoichiometric":<14}',
                f'{"":<9}',
                *(f'{"yes" if r.get("stoichiometric", True) else "no":>{width}}' for r in records),
            ]
        ),
    ]
    category = None
    for d in DESCRIPTORS:  # the paper's 54 in Table 1's order, then the extras
        heading = d.category if d.paper else "extras (not among the paper's 54)"
        if heading != category:
            category = heading
            lines.append(f'-- {category}')
        cells = []
        for r in records:
            value = stored_value(r['values'], d.key)
            err = stored_value(r.get('errors', {}), d.key)
            bound = r.get('D_upper_bound_cm2_s') if d.key == 'D' and r.get('D_resolved') is False else None
            if bound is not None:  # not resolved from zero: the upper bound, never a negative D
                cells.append(f'<{bound:.2g}')
                continue
            cells.append(_fmt(value) + (f' ±{err:.2g}' if err is not None and value is not None else ''))
        unit = d.unit if d.unit not in ('', 'text') else ''
        lines.append('  '.join([f'{d.key:<14}', f'{unit:<9}', *(f'{c:>{width}}' for c in cells)]))
        if d.key == 'D':
            flags = [{True: 'yes', False: 'no'}.get(r.get('D_resolved'), '-') for r in records]
            lines.append('  '.join([f'{"D_resolved":<14}', f'{"":<9}', *(f'{c:>{width}}' for c in flags)]))
    return '\n'.join(lines)


def record_of(node):
    """The descriptor record that descends from ``node`` (a trajectory or a work chain), if any."""
    from aiida import orm

    if isinstance(node, orm.WorkflowNode):  # a work chain returns its record (not a provenance descendant)
        record = node.outputs['record'] if 'record' in node.outputs else None
        if record is not None:
            return record
    qb = orm.QueryBuilder().append(type(node), filters={'id': node.pk}, tag='start')
    qb.append(
        orm.Dict, with_ancestors='start', filters={'attributes.schema': 'superionic.record.v1'}, project='*'
    )
    qb.order_by({orm.Dict: {'id': 'desc'}})
    found = qb.first()
    return found[0] if found else None


def _number(value: Any, spec: str = '.4g') -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return 'n/a'
    return format(value, spec)


def format_D(d: dict[str, Any], short: bool = False) -> str:
    """The D line of the table: value ± standard error, or the upper bound of a D not resolved from zero.

    ``short``: only the value (or the bound), without the fit details and the raw fit of an unresolved D.
    """
    fit = (
        f'Einstein fit {d["fit_window_ps"][0]:.4g}-{d["fit_window_ps"][1]:.4g} ps, '
        f'error from {d["n_mobile"]} per-ion slopes'
    )
    raw = f'{_number(d["D_cm2_s"])} ± {_number(d["D_stderr_cm2_s"], ".2g")}'
    if d.get('D_resolved', True):
        return f'{raw} cm²/s' if short else f'{raw} cm²/s   ({fit})'
    bound = d.get('D_upper_bound_cm2_s')
    head = 'not resolved from zero' + (f': D < {bound:.2g} cm²/s' if bound is not None else '')
    return head if short else f'{head} (max(D,0) + 2σ)   (raw fit {raw} cm²/s; {fit})'
