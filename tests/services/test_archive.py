"""Sharing a study: group A exports it, group B imports it into a fresh profile; the descriptor table is
identical, re-running the study gives identical numbers, and the archive can be queried read-only
without importing it. Separate processes and AiiDA configuration folders, as two users would have."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.services.test_daemon import BIN, User, small_npz  # noqa: F401  (small_npz is a fixture)

ROOT = Path(__file__).resolve().parents[2]
CLI = BIN / 'aiida-superionic'
STUDY_ARGS = [
    '--group', 'shared', '--all-temperatures', '--target', 'C_v_all', '--n-boot', '100', '--seed', '5',
    '--parameters', '{"ml": {"models": ["kernel_ridge", "mlp"], "max_iter": 100}, "kmeans": {"k_max": 4}}',
]  # fmt: skip

STORE_RECORDS = """
import sys
import numpy as np
from aiida import load_profile, orm
from tests.study.planted import planted_records
load_profile(sys.argv[1])
nodes = [orm.Dict(r).store() for r in planted_records(np.random.default_rng(8), n_per_family=4, temperatures=(500.0, 900.0))]
orm.load_group('shared').add_nodes(nodes)
"""

STUDY_NUMBERS = """
import json, sys
from aiida import load_profile, orm
from aiida_superionic.study.workchain import StudyWorkChain
load_profile(sys.argv[1])
out = []
for (node,) in orm.QueryBuilder().append(StudyWorkChain, project='*').order_by({StudyWorkChain: 'ctime'}).all():
    o = node.outputs
    out.append({
        'pca': o.pca.get_dict(), 'bootstrap': o.bootstrap.get_dict(),
        'kmeans': {k: v.get_dict() for k, v in o.kmeans.items()},
        'ml': {k: v.get_dict() for k, v in o.ml.items()},
        'correlations': {k: v.get_dict() for k, v in o.correlations.items()},
        'records': sorted(n.uuid for n in o.table.creator.base.links.get_incoming().all_nodes() if isinstance(n, orm.Dict)),
    })
imported = orm.QueryBuilder().append(orm.Dict, filters={'attributes.engine': 'imported', 'attributes.schema': 'superionic.record.v1'}, project='*').all()
creators = [r.creator.process_label for (r,) in imported]
print(json.dumps({'studies': out, 'imported_record_creators': creators}))
"""


def _table(user: User, csv: Path, before=(), after=()) -> pd.DataFrame:
    user.run(CLI, *before, 'table', '--group', 'shared', '--all-temperatures', '--csv', csv, *after, cwd=ROOT)
    return pd.read_csv(csv).drop(columns='pk')


@pytest.mark.slow  # two users, two profiles, two studies: about 20 processes
def test_export_import_round_trip(tmp_path, small_npz):  # noqa: F811
    alice = User(tmp_path / 'alice')
    alice.run(BIN / 'verdi', 'presto', '--profile-name', 'a', '--use-zeromq')
    alice.run(BIN / 'verdi', '-p', 'a', 'group', 'create', 'shared')
    alice.run(sys.executable, '-c', STORE_RECORDS, 'a', cwd=ROOT)
    # one record with its full provenance: the real Li6PS5Cl AIMD file -> trajectory -> calcfunctions
    alice.run(
        CLI, '-p', 'a', 'import-md', small_npz, '-T', 500, '-t', 2, '--step-skip', 50, '--group', 'shared'
    )
    alice.run(CLI, '-p', 'a', 'study', '--out', tmp_path / 'figs_a', *STUDY_ARGS)
    archive = tmp_path / 'study.aiida'
    export = alice.run(CLI, '-p', 'a', 'export', 'shared', archive)
    assert '17 records' in export.stdout
    again = alice.run(CLI, '-p', 'a', 'export', 'shared', archive, check=False)
    assert again.returncode != 0 and again.stderr.strip().startswith('Error: ') and '--force' in again.stderr
    table_a = _table(alice, tmp_path / 'a.csv', before=('-p', 'a'))

    # read-only, without importing: the same table
    table_archive = _table(alice, tmp_path / 'archive.csv', after=('--archive', archive))
    pd.testing.assert_frame_equal(table_archive, table_a)

    bob = User(tmp_path / 'bob')
    bob.run(BIN / 'verdi', 'presto', '--profile-name', 'b', '--use-zeromq')
    bob.run(BIN / 'verdi', '-p', 'b', 'archive', 'import', archive)
    table_b = _table(bob, tmp_path / 'b.csv', before=('-p', 'b'))
    pd.testing.assert_frame_equal(table_b, table_a)  # identical, to the last digit
    assert len(table_b) == 17

    bob.run(CLI, '-p', 'b', 'study', '--out', tmp_path / 'figs_b', *STUDY_ARGS)
    facts = json.loads(bob.run(sys.executable, '-c', STUDY_NUMBERS, 'b').stdout.strip().splitlines()[-1])
    imported, rerun = facts['studies']
    assert imported['records'] == rerun['records'] and len(rerun['records']) == 17
    for key in ('pca', 'bootstrap', 'kmeans', 'ml', 'correlations'):
        assert rerun[key] == imported[key], key  # the same seeds on the same table: the same numbers
    # the imported record kept its provenance back to the MD file
    assert facts['imported_record_creators'] == ['assemble_record']
    assert (tmp_path / 'figs_b' / 'report.html').stat().st_size > 10_000


def test_bad_archives_give_one_line(tmp_path):
    user = User(tmp_path / 'u')
    bad = tmp_path / 'bad.aiida'
    bad.write_bytes(b'not a zip file')
    for args, message in (
        (['table', '--archive', tmp_path / 'missing.aiida'], 'no archive file'),
        (['table', '--archive', bad], 'is not a readable AiiDA archive'),
    ):
        proc = user.run(CLI, *args, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode != 0 and len(lines) == 1 and message in lines[0], proc.stderr
