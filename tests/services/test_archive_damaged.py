"""A damaged AiiDA archive (truncated at several offsets, bytes flipped at seeded places) given to
``aiida-superionic table --archive`` and to aiida-core's ``verdi archive import``.

The archive is exported (``aiida-superionic export``) from a real small profile: planted descriptor records
and one array node (so that the archive holds repository files besides the database). Every damaged copy
goes, in one process per command (fast), through

* ``aiida-superionic table --archive`` (which reads the archive as a read-only profile and imports
  nothing): a non-zero exit and exactly one ``Error:`` line, no traceback, the user's profile unchanged;
  or, for a flip that no check can see (a byte of a repository file the table never reads), the same
  table as the intact archive;
* ``verdi archive import`` into a fresh profile: what aiida-core does is recorded (the counts are printed,
  and ``docs/bad_input.rst`` quotes them); what is asserted is that a failed import leaves no node behind
  (aiida-core imports in one database transaction).
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from tests.services.test_daemon import BIN, User

ROOT = Path(__file__).resolve().parents[2]
CLI = BIN / 'aiida-superionic'
N_CUTS = 12
SEED = 20260214
N_NODES = 7  # 6 records and the array

STORE = """
import sys
import numpy as np
from aiida import load_profile, orm
from tests.study.planted import planted_records
load_profile(sys.argv[1])
nodes = [orm.Dict(r).store() for r in planted_records(np.random.default_rng(3), n_per_family=3)]
array = orm.ArrayData()
array.set_array('x', np.arange(4000, dtype=float).reshape(1000, 4))
nodes.append(array.store())
orm.load_group('shared').add_nodes(nodes)
"""

#: ``python probe.py MODE PROFILE FILE...``: every FILE through the command, in this one process; prints
#: one JSON line, a list of {file, exit, stderr, exception, nodes_before, nodes_after, stdout}.
PROBE = r'''
import json
import sys
import traceback

from click.testing import CliRunner

mode, profile, files = sys.argv[1], sys.argv[2], sys.argv[3:]


def count(name):
    from aiida import load_profile, orm

    load_profile(name, allow_switch=True)
    return orm.QueryBuilder().append(orm.Node).count()


def arrays_intact():
    """Whether every imported array node holds exactly what was exported (None: there is none)."""
    import numpy as np
    from aiida import orm

    arrays = orm.QueryBuilder().append(orm.ArrayData).all(flat=True)
    if not arrays:
        return None
    expected = np.arange(4000, dtype=float).reshape(1000, 4)
    try:
        return all(np.array_equal(a.get_array('x'), expected) for a in arrays)
    except Exception as exc:
        return f'unreadable: {type(exc).__name__}: {exc}'


results = []
for path in files:
    before = count(profile)
    runner = CliRunner()
    if mode == 'table':
        from aiida_superionic.cli import cmd_root

        result = runner.invoke(cmd_root, ['table', '--archive', path, '--all-temperatures'])
    else:
        from aiida.cmdline.commands.cmd_verdi import verdi

        result = runner.invoke(verdi, ['-p', profile, 'archive', 'import', path])
    exc = result.exception
    unexpected = exc is not None and not isinstance(exc, SystemExit)
    results.append(
        {
            'file': path,
            'exit': result.exit_code,
            'stdout': result.stdout,
            'stderr': result.stderr,
            'exception': ''.join(traceback.format_exception(exc)) if unexpected else None,
            'nodes_before': before,
            'nodes_after': count(profile),
            'arrays_intact': arrays_intact(),
        }
    )
print(json.dumps(results))
'''


def damaged_copies(archive: Path, out: Path) -> dict[str, Path]:
    """The archive truncated at ``N_CUTS`` offsets (from the first byte to the last) and with one byte
    flipped (xor 0xFF) at a seeded place inside each zip member's data, its local header and the
    central directory."""
    data = archive.read_bytes()
    rng = np.random.default_rng(SEED)
    copies = {}
    cuts = sorted(
        {0, 1, 22, len(data) - 1, *np.linspace(100, len(data) - 100, N_CUTS - 4).astype(int).tolist()}
    )
    for cut in cuts:
        copies[f'cut_{cut}'] = data[:cut]
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        central = min(len(data) - 22, zf.start_dir if hasattr(zf, 'start_dir') else len(data) - 22)
    places = {}
    for info in infos:
        name_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], 'little')
        extra_len = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], 'little')
        start = info.header_offset + 30 + name_len + extra_len
        if info.compress_size:
            places[f'data_{info.filename}'] = int(rng.integers(start, start + info.compress_size))
        places[f'header_{info.filename}'] = int(rng.integers(info.header_offset, start))
    places['central_directory'] = int(rng.integers(central, len(data)))
    for where, offset in places.items():
        flipped = bytearray(data)
        flipped[offset] ^= 0xFF
        copies[f'flip_{offset}_{where.replace("/", "_")}'] = bytes(flipped)
    paths = {}
    for name, content in copies.items():
        path = out / f'{name}.aiida'
        path.write_bytes(content)
        paths[name] = path
    return paths


def probe(user: User, tmp: Path, mode: str, profile: str, files) -> list[dict]:
    script = tmp / 'probe.py'
    script.write_text(PROBE)
    proc = user.run(sys.executable, script, mode, profile, *files, cwd=ROOT, timeout=600)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_damaged_archive_table_and_verdi_import(tmp_path):
    user = User(tmp_path / 'aiida')
    user.run(BIN / 'verdi', 'presto', '--profile-name', 'a', '--use-zeromq')
    user.run(BIN / 'verdi', '-p', 'a', 'group', 'create', 'shared')
    user.run(sys.executable, '-c', STORE, 'a', cwd=ROOT)
    archive = tmp_path / 'study.aiida'
    user.run(CLI, '-p', 'a', 'export', 'shared', archive)
    user.run(BIN / 'verdi', 'presto', '--profile-name', 'b', '--use-zeromq')
    damaged = tmp_path / 'damaged'
    damaged.mkdir()
    copies = damaged_copies(archive, damaged)
    files = [archive, *copies.values()]

    # aiida-superionic table --archive: one Error: line, or (an unseen flip) the intact table
    outcomes = Counter()
    table = probe(user, tmp_path, 'table', 'a', files)
    intact = table[0]
    assert intact['exit'] == 0 and intact['exception'] is None, intact
    assert '6 records' in intact['stdout']
    for case in table[1:]:
        assert case['exception'] is None, case['exception']
        assert case['nodes_after'] == case['nodes_before'], case  # the user's profile: nothing imported
        if case['exit'] == 0:
            assert case['stdout'] == intact['stdout'], case
            outcomes['table: same table'] += 1
            continue
        lines = case['stderr'].strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('Error: '), case
        assert 'Traceback' not in case['stderr'] + case['stdout']
        outcomes['table: one Error: line'] += 1
    assert outcomes['table: one Error: line'] >= N_CUTS  # every cut at least

    # verdi archive import (aiida-core): record what it does; never a half import, never a damaged node
    # a damaged repository file first, into the empty profile: once the nodes are in, a later import of
    # the same nodes reads no file
    order = sorted(copies.values(), key=lambda p: ('data_repo' not in p.name, 'repo' not in p.name, p.name))
    imports = probe(user, tmp_path, 'import', 'b', [*order, archive])
    for case in imports[:-1]:
        name = Path(case['file']).stem
        first = (case['exception'] or case['stderr'] or case['stdout']).strip().splitlines() or ['']
        print(f'verdi archive import {name}: exit {case["exit"]}, nodes {case["nodes_before"]} -> '
              f'{case["nodes_after"]}: {first[-1][:150]}')  # fmt: skip
        assert case['arrays_intact'] in (None, True), case  # nothing damaged was imported
        if case['exit'] == 0 and case['exception'] is None:
            outcomes['verdi: imported (the flip was in a byte nothing reads)'] += 1
            assert case['nodes_after'] in (case['nodes_before'], N_NODES), case
            continue
        assert case['nodes_after'] == case['nodes_before'], (name, case)  # rolled back: nothing imported
        outcomes['verdi: traceback' if case['exception'] else 'verdi: error, nothing imported'] += 1
    last = imports[-1]  # the intact archive imports afterwards, whole
    assert last['exit'] == 0 and last['nodes_after'] == N_NODES and last['arrays_intact'] is True, last
    print(f'{len(copies)} damaged copies: {dict(outcomes)}')
