"""Generated bad input: every trajectory format, truncated and with flipped bytes, through the commands.

Each small valid file (XDATCAR, XDATCAR.gz, vasprun.xml, .npz, extxyz) is cut at 20 offsets and has a
byte flipped at 20 seeded places. ``analyze`` and ``import-md`` must then either succeed (a flipped
digit can leave a valid file) or print exactly one ``Error:`` line with a non-zero exit; never a
traceback, and ``import-md`` that fails stores no node.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from aiida_superionic.cli import cmd_root
from aiida_superionic.io import Trajectory

N_CUTS = 20
N_FLIPS = 20
FORMATS = ('XDATCAR', 'XDATCAR.gz', 'vasprun.xml', 'run.npz', 'run.extxyz')

#: Outcome of every case, (command, format) -> Counter({'ok': n, 'error': m}); printed at the end.
OUTCOMES: dict[tuple[str, str], Counter] = {}


def _trajectory() -> Trajectory:
    """4 Li on a random walk among 4 fixed-ish O in a 5 Å cube, 30 frames (enough for every descriptor)."""
    rng = np.random.default_rng(7)
    start = rng.uniform(0.5, 4.5, (8, 3))
    steps = rng.normal(scale=0.05, size=(30, 8, 3))
    steps[:, 4:] *= 0.2
    positions = (start + np.cumsum(steps, axis=0)) % 5.0
    return Trajectory(
        positions=positions.astype(np.float32), cell=np.eye(3) * 5.0, symbols=['Li'] * 4 + ['O'] * 4
    )


def _xdatcar(traj: Trajectory) -> bytes:
    lines = ['fuzz', '1.0', *('  '.join(f'{x:.6f}' for x in row) for row in traj.cell), 'Li O', '4 4']
    frac = traj.positions @ np.linalg.inv(traj.cell)
    for k, frame in enumerate(frac):
        lines.append(f'Direct configuration= {k + 1}')
        lines.extend(' '.join(f'{x:.8f}' for x in atom) for atom in frame)
    return ('\n'.join(lines) + '\n').encode()


def _vasprun(traj: Trajectory) -> bytes:
    frac = traj.positions @ np.linalg.inv(traj.cell)
    basis = ''.join(f'<v>{" ".join(f"{x:.6f}" for x in row)}</v>' for row in traj.cell)
    out = ['<?xml version="1.0" encoding="ISO-8859-1"?>\n<modeling>\n<incar>']
    out.append('<i name="POTIM">2.0</i><i name="TEBEG">500</i><i name="NBLOCK">1</i></incar>\n')
    out.append('<atominfo><array name="atoms"><set>')
    out.extend(f'<rc><c>{s}</c><c>{1 + (s == "O")}</c></rc>' for s in traj.symbols)
    out.append('</set></array></atominfo>\n')
    for frame in frac:
        rows = ''.join(f'<v>{" ".join(f"{x:.8f}" for x in atom)}</v>\n' for atom in frame)
        out.append(
            f'<calculation><structure><crystal><varray name="basis">{basis}</varray></crystal>\n'
            f'<varray name="positions">\n{rows}</varray></structure></calculation>\n'
        )
    out.append('</modeling>\n')
    return ''.join(out).encode()


def _base_files(root: Path) -> dict[str, bytes]:
    import ase.io
    from ase import Atoms

    traj = _trajectory()
    files = {'XDATCAR': _xdatcar(traj), 'vasprun.xml': _vasprun(traj)}
    files['XDATCAR.gz'] = gzip.compress(files['XDATCAR'], mtime=0)
    traj.to_npz(root / 'run.npz')
    files['run.npz'] = (root / 'run.npz').read_bytes()
    frames = [Atoms(traj.symbols, positions=p, cell=traj.cell, pbc=True) for p in traj.positions]
    ase.io.write(root / 'run.extxyz', frames, format='extxyz')
    files['run.extxyz'] = (root / 'run.extxyz').read_bytes()
    return files


def _cases() -> list[tuple[str, str, int]]:
    return [
        (name, kind, i)
        for name in FORMATS
        for kind, n in (('cut', N_CUTS), ('flip', N_FLIPS))
        for i in range(n)
    ]


def make_corpus(root: Path) -> dict[tuple[str, str, int], Path]:
    """(format, 'cut'|'flip', i) -> the damaged file, under the base file's name (so the name says the format)."""
    base = _base_files(root)
    out = {}
    for name, data in base.items():
        rng = np.random.default_rng(sum(map(ord, name)))
        cuts = np.unique(np.r_[0, 1, 5, 100, rng.integers(2, len(data) - 1, N_CUTS)])[:N_CUTS]
        places = rng.choice(len(data), N_FLIPS, replace=False)
        for i in range(N_CUTS):
            damaged = data[: int(cuts[i])]
            path = root / f'{name}-cut{i}' / name
            path.parent.mkdir()
            path.write_bytes(damaged)
            out[name, 'cut', i] = path
        for i, at in enumerate(places):
            damaged = bytearray(data)
            damaged[at] ^= int(rng.integers(1, 256))
            path = root / f'{name}-flip{i}' / name
            path.parent.mkdir()
            path.write_bytes(bytes(damaged))
            out[name, 'flip', i] = path
    return out


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp('fuzz'))


@pytest.fixture(scope='module', autouse=True)
def report_outcomes():
    """Print how many cases ended each way (``pytest -s``)."""
    yield
    print('\nfuzz outcomes (command, file): ok / error')
    for (command, name), counts in sorted(OUTCOMES.items()):
        print(f'  {command:10} {name:12} {counts["ok"]:3d} / {counts["error"]:3d}')
    total = sum(OUTCOMES.values(), Counter())
    print(f'  total {total.total()} cases: {total["ok"]} ok, {total["error"]} errors')


def check_outcome(result, command: str, name: str) -> bool:
    """Success, or exactly one ``Error:`` line and a non-zero exit; never a traceback. Returns success."""
    assert isinstance(result.exception, SystemExit | None), (
        f'{command} leaked {type(result.exception).__name__}: {result.exception}'
    )
    assert 'Traceback' not in result.output
    ok = result.exit_code == 0
    OUTCOMES.setdefault((command, name), Counter())['ok' if ok else 'error'] += 1
    if not ok:
        errors = [line for line in result.stderr.splitlines() if line.startswith('Error:')]
        assert len(errors) == 1, result.stderr
        assert 'Error:' not in result.stdout
    return ok


@pytest.mark.parametrize(('name', 'kind', 'i'), _cases())
def test_analyze_damaged_file(corpus, name, kind, i):
    path = corpus[name, kind, i]
    result = CliRunner().invoke(cmd_root, ['analyze', str(path), '-T', '500', '-t', '2', '-q'])
    check_outcome(result, 'analyze', name)


def test_undamaged_files_analyse_and_are_recognised_by_content(tmp_path):
    """The base files are valid (else the fuzzing tests nothing), also under a name that says nothing."""
    for name, data in _base_files(tmp_path).items():
        anonymous = tmp_path / f'{name.replace(".", "_")}-x2'
        if name.endswith('.gz'):
            anonymous = anonymous.with_suffix('.gz')
        anonymous.write_bytes(data)
        for path in (tmp_path / name, anonymous):
            (tmp_path / name).write_bytes(data)
            result = CliRunner().invoke(cmd_root, ['analyze', str(path), '-T', '500', '-t', '2', '-q'])
            assert result.exit_code == 0, (path.name, result.output)


def node_count() -> int:
    from aiida import orm

    return orm.QueryBuilder().append(orm.Node).count()


@pytest.mark.parametrize(('name', 'kind', 'i'), _cases())
def test_import_md_damaged_file_stores_nothing(aiida_profile, corpus, name, kind, i):
    path = corpus[name, kind, i]
    before = node_count()
    args = ['-p', aiida_profile.name, 'import-md', str(path), '-T', '500', '-t', '2']
    result = CliRunner().invoke(cmd_root, args)
    if not check_outcome(result, 'import-md', name):
        assert node_count() == before
    else:
        assert node_count() > before


STRUCTURES = ('Li3N.cif', 'POSCAR')


@pytest.fixture(scope='module')
def structure_corpus(tmp_path_factory, data_dir):
    """Li3N as CIF (tests/data) and as POSCAR, cut and flipped like the trajectories."""
    root = tmp_path_factory.mktemp('fuzz-structures')
    base = {
        'Li3N.cif': (data_dir / 'structures' / 'Li3N.cif').read_bytes(),
        'POSCAR': b'Li3N\n1.0\n3.648 0 0\n-1.824 3.15926 0\n0 0 3.875\nN Li\n1 3\nDirect\n'
        b'0 0 0\n0 0 0.5\n0.33333333 0.66666667 0\n0.66666667 0.33333333 0\n',
    }
    out = {}
    for name, data in base.items():
        rng = np.random.default_rng(sum(map(ord, name)))
        cuts = np.unique(np.r_[0, 1, 5, rng.integers(2, len(data) - 1, N_CUTS)])[:N_CUTS]
        places = rng.choice(len(data), N_FLIPS, replace=False)
        for kind, blobs in (
            ('cut', [data[: int(c)] for c in cuts]),
            (
                'flip',
                [data[:at] + bytes([data[at] ^ int(rng.integers(1, 256))]) + data[at + 1 :] for at in places],
            ),
        ):
            for i, blob in enumerate(blobs):
                path = root / f'{name}-{kind}{i}' / name
                path.parent.mkdir()
                path.write_bytes(blob)
                out[name, kind, i] = path
    return out


@pytest.mark.parametrize(
    ('name', 'kind', 'i'),
    [(n, k, i) for n in STRUCTURES for k, m in (('cut', N_CUTS), ('flip', N_FLIPS)) for i in range(m)],
)
def test_submit_damaged_structure_stores_nothing(aiida_profile, structure_corpus, name, kind, i):
    """``submit`` with a damaged structure file: one Error: line and no node. A structure still
    readable gets as far as the code (none of that name exists): it counts as accepted ('ok')."""
    path = structure_corpus[name, kind, i]
    before = node_count()
    args = ['-p', aiida_profile.name, 'submit', str(path), '-m', 'Li', '-c', 'no-such-code@nowhere']
    result = CliRunner().invoke(cmd_root, args)
    assert isinstance(result.exception, SystemExit), f'submit leaked {type(result.exception).__name__}'
    assert 'Traceback' not in result.output
    assert result.exit_code != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1, result.stderr
    assert node_count() == before
    accepted = "no code 'no-such-code@nowhere'" in errors[0]
    OUTCOMES.setdefault(('submit', name), Counter())['ok' if accepted else 'error'] += 1


def test_cif_cut_after_the_atom_loop_headers_is_truncated(data_dir, tmp_path):
    """pymatgen divides by the number of loop values: a CIF cut after the loop's headers leaked
    'ZeroDivisionError: integer modulo by zero' as the message."""
    from aiida_superionic.cli.structures import read_structure
    from aiida_superionic.exceptions import InputError

    text = (data_dir / 'structures' / 'Li3N.cif').read_text()
    cut = tmp_path / 'cut.cif'
    cut.write_text(text[: text.index('_atom_site_occupancy') + len('_atom_site_occupancy\n')])
    with pytest.raises(
        InputError, match=r'^cannot read the structure cut\.cif: the file ends early \(truncated\?\)$'
    ):
        read_structure(cut)


def test_import_md_reads_every_format_under_an_anonymous_name(aiida_profile, tmp_path):
    """import-md records the format the content says (the work chain reads the file again with it)."""
    from aiida import orm

    from aiida_superionic.data import MDTrajectoryData

    expected = {'XDATCAR': 'xdatcar', 'XDATCAR.gz': 'xdatcar', 'vasprun.xml': 'vasprun', 'run.npz': 'npz'}
    for k, (name, data) in enumerate(_base_files(tmp_path).items()):
        if name not in expected:
            continue  # ase reads extended XYZ by content too, but records the format as 'ase'
        path = tmp_path / f'x{k}.gz'
        path.write_bytes(data)
        args = ['-p', aiida_profile.name, 'import-md', str(path), '-T', '500', '-t', '2']
        result = CliRunner().invoke(cmd_root, args)
        assert result.exit_code == 0, (name, result.output)
        qb = orm.QueryBuilder().append(
            MDTrajectoryData, filters={'attributes.origin.sha256': hashlib.sha256(data).hexdigest()}
        )
        (node,) = qb.all(flat=True)
        assert node.origin['format'] == expected[name], name
