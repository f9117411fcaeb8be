"""The descriptor table: one row per descriptor record (material x temperature x stoichiometry).

:func:`table_from_records` turns record attributes into a pandas table (no AiiDA import);
:func:`descriptor_table` queries the records from the AiiDA graph with one QueryBuilder query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..descriptors import DESCRIPTORS, UNITS, normalise_text, stored_value

SCHEMA = 'superionic.record.v1'

#: The columns before the descriptors.
META_COLUMNS = ('material', 'formula', 'family', 'temperature_K', 'stoichiometric', 'engine', 'uuid', 'pk')


def table_from_records(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A table from record attribute dicts (each with ``values`` and the record metadata, plus ``uuid``
    and ``pk`` of the node when known).

    Columns: the metadata, then the paper's 54 descriptors in Table 1's order, then the extras
    (:data:`aiida_superionic.descriptors.DESCRIPTORS`). Values stored under an older key
    (:data:`~aiida_superionic.descriptors.LEGACY_KEYS`, e.g. ``theta_D_all``) fill the current column.
    Numeric descriptors are floats with NaN where the record has no value (a step that did not run or
    that the engine cannot provide); the text descriptors (Stc, Sym) are strings or None. Rows are
    sorted by family, material, temperature, stoichiometry and UUID, so the same records always give
    the same table, whatever their PKs. ``table.attrs['units']`` maps each column to its unit.
    """
    rows = []
    for rec in records:
        values = rec.get('values') or {}
        row: dict[str, Any] = {
            'material': rec.get('material'),
            'formula': rec.get('formula') or rec.get('material'),
            'family': rec.get('mobile_species'),
            'temperature_K': float(rec['temperature_K']) if rec.get('temperature_K') is not None else np.nan,
            'stoichiometric': bool(rec.get('stoichiometric', True)),
            'engine': rec.get('engine'),
            'uuid': rec.get('uuid'),
            'pk': rec.get('pk'),
        }
        for d in DESCRIPTORS:
            value = stored_value(values, d.key)  # records made before a key changed read too
            row[d.key] = (np.nan if value is None else float(value)) if d.numeric else value
        rows.append(row)
    columns = [*META_COLUMNS, *(d.key for d in DESCRIPTORS)]
    table = pd.DataFrame(rows, columns=columns)
    for d in DESCRIPTORS:
        if d.numeric:
            table[d.key] = table[d.key].astype(float)
    table['pk'] = table['pk'].astype('Int64')
    normalise_text(table)
    table = table.sort_values(
        ['family', 'material', 'temperature_K', 'stoichiometric', 'uuid'],
        ascending=[True, True, True, False, True],
        na_position='last',
    ).reset_index(drop=True)
    table.attrs['units'] = {'temperature_K': 'K', **UNITS}
    return table


def query_records(
    group: str | None = None,
    temperature_window: tuple[float, float] | None = None,
    family: str | None = None,
    engine: str | None = None,
) -> list[tuple[int, str, dict[str, Any]]]:
    """(pk, uuid, attributes) of every descriptor record matching the filters, in one query."""
    from aiida import orm

    from ..exceptions import InputError

    filters: dict[str, Any] = {'attributes.schema': SCHEMA}
    if temperature_window is not None:
        lo, hi = (float(t) for t in temperature_window)
        if lo > hi:
            raise InputError(f'empty temperature window: {lo:g} K > {hi:g} K')
        filters['attributes.temperature_K'] = {'and': [{'>=': lo}, {'<=': hi}]}
    if family is not None:
        filters['attributes.mobile_species'] = family
    if engine is not None:
        filters['attributes.engine'] = engine
    qb = orm.QueryBuilder()
    if group is not None:
        if not orm.QueryBuilder().append(orm.Group, filters={'label': group}).count():
            raise InputError(f'no group {group!r} (`verdi group list` shows the groups)')
        qb.append(orm.Group, filters={'label': group}, tag='group')
        qb.append(orm.Dict, with_group='group', filters=filters, project=['id', 'uuid', 'attributes'])
    else:
        qb.append(orm.Dict, filters=filters, project=['id', 'uuid', 'attributes'])
    return [(pk, uuid, attrs) for pk, uuid, attrs in qb.iterall(batch_size=2000)]


def descriptor_table(
    group: str | None = None,
    temperature_window: tuple[float, float] | None = (400.0, 600.0),
    family: str | None = None,
    engine: str | None = None,
) -> pd.DataFrame:
    """The descriptor table of the records in the loaded AiiDA profile (optionally of one ``group``).

    ``temperature_window`` selects records with ``lo <= T <= hi`` (the paper's T = 500 ± 100 K by
    default; ``None`` for every temperature); ``family`` one mobile species; ``engine`` one engine.
    Columns: ``material, formula, family, temperature_K, stoichiometric, engine, uuid, pk`` and the
    descriptor keys of :data:`aiida_superionic.descriptors.DESCRIPTORS` (units in ``table.attrs``).
    """
    records = query_records(group, temperature_window, family, engine)
    return table_from_records({**attrs, 'pk': pk, 'uuid': uuid} for pk, uuid, attrs in records)
