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


def _brownian_npz(path, seed: int):
    """A Li/Cl trajectory with Brownian Li: a file no other test imports (its bytes depend on ``seed``)."""
    import numpy as np

    from aiida_superionic.io import Trajectory
    from tests.synthetic import brownian

    rng = np.random.default_rng(seed)
    li = brownian(rng, 200, 8, 1e-4, 10.0, 6.0)
    cl = np.repeat(rng.uniform(0, 6.0, size=(1, 4, 3)), 200, axis=0) + rng.normal(
        scale=0.05, size=(200, 4, 3)
    )
    traj = Trajectory(
        positions=np.concatenate([li, cl], axis=1), cell=6.0 * np.eye(3), symbols=['Li'] * 8 + ['Cl'] * 4
    )
    return traj.to_npz(path)


def _import(profile, path, *options):
    args = ['-p', profile.name, 'import-md', str(path), '-t', '2', *options]
    result = CliRunner().invoke(cmd_root, args, standalone_mode=False)
    assert result.exception is None, result.output
    return result.output


def _n_records(path):
    from aiida_superionic.cli.cmd_import import sha256_of
    from aiida_superionic.data import MDTrajectoryData

    qb = orm.QueryBuilder().append(MDTrajectoryData, filters={'attributes.origin.sha256': sha256_of(path)})
    return qb.count()


def test_a_file_imported_again_with_other_options_is_imported_again(aiida_profile, tmp_path):
    """The same file with the same options is recognised (nothing stored); the same file at another
    temperature or with another VDOS weighting is a new import, not the old record."""
    path = _brownian_npz(
        tmp_path / 'brownian.npz', seed=int.from_bytes(tmp_path.name.encode()[-4:], 'little')
    )
    first = _import(aiida_profile, path, '-T', '500')
    assert 'done: trajectory' in first
    record = int(re.search(r'record (\d+)', first).group(1))
    again = _import(aiida_profile, path, '-T', '500', '--group', 'again')
    assert 'already imported' in again and f'record {record}' in again
    assert _n_records(path) == 1
    assert {n.pk for n in orm.load_group('again').nodes} >= {record}
    hotter = _import(aiida_profile, path, '-T', '600')
    assert 'with other options' in hotter and 'done: trajectory' in hotter
    assert _n_records(path) == 2
    hot_record = orm.load_node(int(re.search(r'record (\d+)', hotter).group(1)))
    assert hot_record.pk != record
    assert hot_record['temperature_K'] == 600
    assert orm.load_node(record)['temperature_K'] == 500
    mass = _import(aiida_profile, path, '-T', '500', '--vdos-weighting', 'mass')
    assert 'done: trajectory' in mass
    assert _n_records(path) == 3
