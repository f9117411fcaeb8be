"""QueryBuilder recipes for the questions users ask of their descriptor records (``verdi shell`` or a
notebook, after ``load_profile()``). Records are ``Dict`` nodes with ``attributes.schema ==
'superionic.record.v1'``; every descriptor is ``attributes.values.<key>`` in the units of
``attributes.units`` (D in cm²/s, B in GPa)."""

from aiida import orm

RECORD = {'attributes.schema': 'superionic.record.v1'}


def fast_and_soft(temperature_K=500.0, min_D_cm2_s=1e-6, max_B_GPa=30.0):
    """Materials with D(T) above ``min_D_cm2_s`` and bulk modulus below ``max_B_GPa``: the records at
    ``temperature_K`` (material, D, B)."""
    qb = orm.QueryBuilder()
    qb.append(
        orm.Dict,
        filters={
            **RECORD,
            'attributes.temperature_K': temperature_K,
            'attributes.values.D': {'>': min_D_cm2_s},
            'attributes.values.B': {'<': max_B_GPa},
        },
        project=['attributes.material', 'attributes.values.D', 'attributes.values.B'],
    )
    return sorted(tuple(row) for row in qb.all())


def records_by_engine_from_structure(engine, structure_uuid):
    """Every record made by ``engine`` from the structure ``structure_uuid``: the records the
    ``MaterialWorkChain`` that took this structure as input returned, tagged with the engine."""
    qb = orm.QueryBuilder()
    qb.append(orm.StructureData, filters={'uuid': structure_uuid}, tag='structure')
    qb.append(
        orm.WorkChainNode,
        with_incoming='structure',
        filters={'attributes.process_label': 'MaterialWorkChain'},
        tag='material',
    )
    qb.append(
        orm.Dict,
        with_incoming='material',
        edge_filters={'label': {'like': 'records__%'}},
        filters={**RECORD, 'attributes.engine': engine},
        project=['*'],
    )
    return [node for (node,) in qb.all()]
