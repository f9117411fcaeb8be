"""The descriptor table of a real database: `descriptor_table` (one QueryBuilder query) against the
obvious peer, loading every record of the group node by node (`group.nodes` + `get_dict()`).

Creates a throw-away profile in a temporary AIIDA_PATH (PostgreSQL on 127.0.0.1 by default, as a
group's production server; `--backend sqlite` for the embedded one), stores N materials x 4 records
(two temperatures, stoichiometric and with vacancies) with every descriptor filled, times both ways of
building the table, checks they hold the same numbers, and drops the database afterwards.

    .venv/bin/python benchmarks/bench_table.py                 # 1,000 materials on PostgreSQL
    .venv/bin/python benchmarks/bench_table.py --materials 200 --backend sqlite
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--materials', type=int, default=1000)
    parser.add_argument('--backend', choices=['psql', 'sqlite'], default='psql')
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix='bench-table-'))
    os.environ['AIIDA_PATH'] = str(root)
    bindir = Path(sys.executable).parent
    name = f'bench_{uuid.uuid4().hex[:8]}'
    if args.backend == 'psql':
        cmd = [str(bindir / 'aiida-superionic'), 'setup', '--production', '--profile-name', name]
    else:
        cmd = [str(bindir / 'verdi'), 'presto', '--profile-name', name, '--use-zeromq']
    env = {**os.environ, 'PATH': f'{bindir}:{os.environ["PATH"]}'}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(f'profile setup failed: {(proc.stderr or proc.stdout).strip()[-500:]}')
    try:
        run(name, args)
    finally:
        if args.backend == 'psql':
            import psycopg
            from aiida.manage import get_manager

            get_manager().reset_profile()
            with psycopg.connect(
                host='127.0.0.1', user='postgres', dbname='postgres', autocommit=True
            ) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "aiida_{name}"')
                conn.execute(f'DROP ROLE IF EXISTS "aiida_{name}"')
        shutil.rmtree(root, ignore_errors=True)


def run(name: str, args) -> None:
    import numpy as np
    import pandas as pd
    from aiida import load_profile, orm

    from aiida_superionic.descriptors import DESCRIPTORS
    from aiida_superionic.study import descriptor_table, table_from_records

    load_profile(name)
    rng = np.random.default_rng(0)
    group = orm.Group(label='bench').store()
    t0 = time.perf_counter()
    nodes = []
    for i in range(args.materials):
        base = {d.key: float(rng.normal()) for d in DESCRIPTORS if d.numeric}
        for temperature in (500.0, 1000.0):
            for stoich in (True, False):
                values = {**base, 'D': float(rng.lognormal(-11, 1)), 'Stc': 'stoichiometric', 'Sym': 'cubic'}
                nodes.append(
                    orm.Dict(
                        {
                            'schema': 'superionic.record.v1',
                            'material': f'M{i:05d}',
                            'formula': f'M{i:05d}',
                            'mobile_species': ['Li', 'Na', 'Ag', 'Cu', 'O', 'F'][i % 6],
                            'temperature_K': temperature,
                            'stoichiometric': stoich,
                            'engine': 'bench',
                            'values': values,
                            'errors': {'D': 1e-7},
                            'units': {},
                        }
                    ).store()
                )
    group.add_nodes(nodes)
    print(
        f'{args.backend}: stored {len(nodes)} records of {args.materials} materials in {time.perf_counter() - t0:.1f} s'
    )

    def ours():
        return descriptor_table(group='bench', temperature_window=None)

    def peer():
        grp = orm.load_group('bench')
        return table_from_records({**n.get_dict(), 'uuid': n.uuid, 'pk': n.pk} for n in grp.nodes)

    timings = {}
    tables = {}
    for label, func in (('descriptor_table', ours), ('node by node', peer)):
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            tables[label] = func()
            runs.append(time.perf_counter() - t0)
        timings[label] = min(runs)
        print(f'  {label:<17} {", ".join(f"{r:.2f}" for r in runs)} s (fastest {min(runs):.2f} s)')
    pd.testing.assert_frame_equal(tables['descriptor_table'], tables['node by node'])
    window = descriptor_table(group='bench')  # the paper's 400-600 K window, filtered in the database
    assert len(window) == len(nodes) // 2
    ratio = timings['node by node'] / timings['descriptor_table']
    print(
        f'  same table ({len(tables["node by node"])} rows x {tables["node by node"].shape[1]} columns); '
        f'descriptor_table is {ratio:.1f}x faster than loading node by node'
    )


if __name__ == '__main__':
    main()
