"""``aiida-superionic import-md`` in process, on the temporary test profile."""

from __future__ import annotations

import re

import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_superionic.analysis import analyze_trajectory
from aiida_superionic.cli import cmd_root
from aiida_superionic.io import read_xdatcar


def test_import_md_records_the_eq5_vdos_by_default(aiida_profile, shared_md):
    """The record made by import-md carries the paper's eq 5 (unweighted) VDOS descriptors and its
    vibrational step says which weighting it used."""
    path = shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz'
    args = [
        '-p',
        aiida_profile.name,
        'import-md',
        str(path),
        '-T',
        '500',
        '-t',
        '2',
        '--step-skip',
        '50',
    ]
    result = CliRunner().invoke(cmd_root, args, standalone_mode=False)
    assert result.exception is None, result.output
    record = orm.load_node(int(re.search(r'record (\d+)', result.output).group(1)))
    traj = read_xdatcar(path)
    eq5 = analyze_trajectory(
        traj.positions, traj.cell, traj.symbols, 100.0, 500.0, compute=['vibrational'], vdos_weighting='none'
    )
    assert record['values']['omega_all'] == pytest.approx(
        eq5['vibrational']['all']['mean_frequency_meV'], rel=1e-9
    )
    qb = orm.QueryBuilder().append(orm.Node, filters={'id': record.pk}, tag='record')
    qb.append(
        orm.CalcFunctionNode,
        with_descendants='record',
        filters={'attributes.function_name': 'compute_vibrational'},
    )
    (step,) = qb.all(flat=True)  # the record's own vibrational step
    assert step.inputs.parameters['vdos_weighting'] == 'none'  # explicit in the provenance graph
    assert step.outputs.vibrational['vdos_weighting'] == 'none'
