"""Bad input to the database commands: one `Error:` line, non-zero exit, and no node stored.

Each bad input runs in process (click's CliRunner) on the test profile; one case per command, and the
profile and path handling, run as a user would: a real process with its own AiiDA configuration folder
and the embedded profile made by ``aiida-superionic setup``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_superionic.cli import cmd_root
from tests.conftest import load_mlip_code
from tests.services.test_daemon import BIN, User


@pytest.fixture(scope='module')
def user(tmp_path_factory):
    user = User(tmp_path_factory.mktemp('aiida'))
    user.run(BIN / 'aiida-superionic', 'setup')
    return user


@pytest.fixture(scope='module')
def files(tmp_path_factory, shared_md):
    root = tmp_path_factory.mktemp('bad')
    llzo = shared_md / 'LLZO_IonDiff' / 'XDATCAR'
    lines = [line.rstrip(b'\n') + b'\n' for line in llzo.read_bytes().splitlines()]
    frame = lines[7 : 7 + 383]  # the first of the file's two frames
    second = lines[7 + 383 : 7 + 2 * 383]
    long_run = root / 'long' / 'XDATCAR'  # the two real frames alternating, 20 frames: enough to analyse
    long_run.parent.mkdir()
    long_run.write_bytes(b''.join(lines[:7] + (frame + second) * 10))
    static = root / 'static' / 'XDATCAR'
    static.parent.mkdir()
    static.write_bytes(b''.join(lines[:7] + frame * 20))
    truncated = root / 'truncated' / 'XDATCAR'
    truncated.parent.mkdir()
    truncated.write_bytes(b''.join(lines[:7] + frame * 19 + frame[:50]))
    nan = root / 'nan' / 'XDATCAR'
    nan.parent.mkdir()
    broken = frame * 20
    broken[5 * len(frame) + 3] = b'  0.5 nan 0.5\n'
    nan.write_bytes(b''.join(lines[:7] + broken))
    poscar = root / 'POSCAR'
    poscar.write_text('NaCl\n1.0\n5.64 0 0\n0 5.64 0\n0 0 5.64\nNa Cl\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n')
    garbage = root / 'garbage.cif'
    garbage.write_text('this is not a crystal\n')
    overlap = root / 'overlap.vasp'
    overlap.write_text('LiCl\n1.0\n5.64 0 0\n0 5.64 0\n0 0 5.64\nLi Cl\n1 1\nDirect\n0 0 0\n0.01 0 0\n')
    npz = root / 'nan.npz'
    positions = np.random.default_rng(0).uniform(0, 5, (30, 4, 3))
    positions[3, 1, 2] = np.nan
    np.savez(npz, positions=positions, cell=np.eye(3) * 5, symbols=np.array(['Li', 'Li', 'O', 'O']))
    (root / 'empty.cif').write_text('')
    (root / 'junk.cif').write_bytes(np.random.default_rng(1).bytes(3000))
    truncated_poscar = root / 'truncated.vasp'  # four atoms announced, one given
    truncated_poscar.write_text('Li3N\n1.0\n3.6 0 0\n0 3.6 0\n0 0 3.8\nLi N\n3 1\nDirect\n0 0 0\n')
    flat = root / 'flat.vasp'  # a cell of zero volume
    flat.write_text('Li\n1.0\n3.6 0 0\n0 3.6 0\n0 0 0\nLi\n1\nDirect\n0 0 0\n')
    partial = root / 'partial.cif'
    partial.write_text(
        'data_x\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n_cell_angle_alpha 90\n'
        '_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n_atom_site_label\n_atom_site_type_symbol\n'
        '_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n_atom_site_occupancy\n'
        'Li1 Li 0 0 0 0.5\nNa1 Na 0 0 0 0.5\nCl1 Cl 0.5 0.5 0.5 1\n'
    )
    junk_xdatcar = root / 'junk' / 'XDATCAR'
    junk_xdatcar.parent.mkdir()
    junk_xdatcar.write_text('this is not an MD run\n')
    empty_xdatcar = root / 'empty' / 'XDATCAR'
    empty_xdatcar.parent.mkdir()
    empty_xdatcar.write_text('')
    return {
        'empty_cif': root / 'empty.cif',
        'junk_cif': root / 'junk.cif',
        'truncated_poscar': truncated_poscar,
        'flat': flat,
        'partial': partial,
        'junk_xdatcar': junk_xdatcar,
        'empty_xdatcar': empty_xdatcar,
        'missing_structure': root / 'missing.cif',
        'long': long_run,
        'static': static,
        'truncated': truncated,
        'nan': nan,
        'llzo': llzo,
        'poscar': poscar,
        'garbage': garbage,
        'npz': npz,
        'overlap': overlap,
        'li3n': Path(__file__).parents[1] / 'data' / 'structures' / 'Li3N.cif',
        'missing': root / 'missing' / 'XDATCAR',
    }


CASES = [
    (['{missing}', '-T', 600, '-t', 1.5], 'Error: no such trajectory file'),
    (
        ['{truncated}', '-T', 600, '-t', 1.5],
        'Error: XDATCAR: truncated frame 20: expected 382 coordinate lines, found 49',
    ),
    (['{nan}', '-T', 600, '-t', 1.5], 'Error: XDATCAR: NaN or infinite coordinate in frame 6'),
    (['{npz}', '-T', 600, '-t', 1.5], 'Error: nan.npz: NaN or infinite position in frame 4'),
    (['{llzo}', '-T', 600, '-t', 1.5], 'Error: too few frames to fit D: 2 (need at least 12)'),
    (['{static}', '-T', 600, '-t', 1.5], 'Error: the mobile ions do not move in any frame'),
    (['{long}', '-T', 0, '-t', 1.5], 'Error: --temperature must be a finite number > 0, got 0'),
    (['{long}', '-T', 600, '-t', -2], 'Error: --timestep must be a finite number > 0, got -2'),
    (['{long}', '-T', 600, '-t', 1.5, '--mobile', 'Ag'], "Error: mobile species 'Ag' not in the trajectory"),
    (
        ['{long}', '-T', 600, '-t', 1.5, '--structure', '{poscar}'],
        "Error: mobile species 'Li' not in structure NaCl",
    ),
    (
        ['{long}', '-T', 600, '-t', 1.5, '--structure', '{garbage}'],
        'Error: cannot read the structure garbage.cif',
    ),
    (['{long}', '-T', 600, '-t', 1.5, '--daemon'], 'Error: the daemon of profile {profile} is not running'),
    (['{long}', '-T', 600, '-t', 1.5, '--group', ' '], 'Error: --group must not be empty'),
    # issue 7: every kind of bad input, each with its one line
    (['{junk_xdatcar}', '-T', 600, '-t', 1.5], 'Error: XDATCAR: '),
    (['{empty_xdatcar}', '-T', 600, '-t', 1.5], 'Error: XDATCAR: '),
    (['{long}', '-T', 600, '-t', 1.5, '-f', 'npz'], 'Error: XDATCAR: not a readable .npz file'),
    (['{long}', '-T', 600, '-t', 1.5, '-f', 'pdb'], "Error: Invalid value for '-f' / '--format'"),
    (['{long}', '-T', 'nan', '-t', 1.5], 'Error: --temperature must be a finite number > 0, got nan'),
    (['{long}', '-T', -300, '-t', 1.5], 'Error: --temperature must be a finite number > 0, got -300'),
    (['{long}', '-T', 600, '-t', 0], 'Error: --timestep must be a finite number > 0, got 0'),
    (['{long}', '-T', 600, '-t', 'inf'], 'Error: --timestep must be a finite number > 0, got inf'),
    (['{long}', '-T', 600, '-t', 1.5, '--step-skip', 0], 'Error: --step-skip must be >= 1, got 0'),
    (['{long}', '-T', 600, '-t', 1.5, '--structure', '{missing_structure}'], 'Error: no such structure file'),
    (
        ['{long}', '-T', 600, '-t', 1.5, '--structure', '{overlap}'],
        'Error: the structure overlap.vasp has overlapping atoms (0.06 Å apart)',
    ),
    (['{long}', '-T', 600, '-t', 1.5, '--label', ' '], 'Error: --label must not be empty'),
    # a label longer than the database's varchar(255) (PostgreSQL refused it with a traceback)
    (
        ['{long}', '-T', 600, '-t', 1.5, '--group', 'g' * 256],
        'Error: --group is 256 characters long; AiiDA stores labels of at most 255',
    ),
]


def node_count(user) -> int:
    """Nodes in the embedded profile, read from its SQLite file directly (no AiiDA start-up per count)."""
    import json
    import sqlite3

    config = json.loads((Path(user.env['AIIDA_PATH']) / '.aiida' / 'config.json').read_text())
    storage = config['profiles']['superionic']['storage']
    assert storage['backend'] == 'core.sqlite_dos', storage
    database = Path(storage['config']['filepath']) / 'database.sqlite'
    with sqlite3.connect(f'file:{database}?mode=ro', uri=True) as conn:
        return conn.execute('SELECT count(*) FROM db_dbnode').fetchone()[0]


def test_node_count_agrees_with_aiida(user):
    assert node_count(user) == user.facts('superionic')['nodes'] > 0  # the computer's code at least


def assert_rejected_storing_nothing(user, files, command, args, message):
    """`aiida-superionic COMMAND ARGS`, a real process on the user's embedded profile, fails with the one
    error line ``message`` and stores no node. Arguments written ``{name}`` (a key of ``files``) are
    replaced by the path of ``files[name]``."""
    before = node_count(user)
    argv = [files[a[1:-1]] if isinstance(a, str) and a[1:-1] in files else a for a in args]
    proc = user.run(BIN / 'aiida-superionic', command, *argv, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(message.format(profile='superionic')), proc.stderr
    assert node_count(user) == before


def assert_rejected_in_process(profile, files, command, args, message):
    """The same, in process (CliRunner) on the test profile: no exception but click's exit, no traceback,
    no ``Error:`` on stdout, one ``Error:`` line on stderr, no node stored. ``{code}``: the test MLIP code."""
    names = {**files, 'code': load_mlip_code().full_label}
    before = orm.QueryBuilder().append(orm.Node).count()
    argv = [str(names[a[1:-1]]) if isinstance(a, str) and a[1:-1] in names else str(a) for a in args]
    result = CliRunner().invoke(cmd_root, ['-p', profile.name, command, *argv])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code != 0
    assert 'Traceback' not in result.output and 'Error:' not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message.format(profile=profile.name)), result.stderr
    assert orm.QueryBuilder().append(orm.Node).count() == before


@pytest.mark.parametrize(('args', 'message'), CASES)
def test_import_md_bad_input_stores_nothing(aiida_profile, files, args, message):
    assert_rejected_in_process(aiida_profile, files, 'import-md', args, message)


def test_unknown_profile_and_missing_profile(user, files, tmp_path):
    proc = user.run(BIN / 'aiida-superionic', '-p', 'nope', 'show', '1', check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "Error: unknown AiiDA profile 'nope' (profiles: superionic)"
    empty = User(tmp_path / 'empty')
    proc = empty.run(BIN / 'aiida-superionic', 'import-md', files['long'], '-T', 600, '-t', 1.5, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(
        'Error: no AiiDA profile: create the embedded one with `aiida-superionic setup`'
    )


def test_good_import_then_show(user, files):
    before = user.facts('superionic')['nodes']
    # a relative path, as users type it
    args = ['import-md', 'XDATCAR', '-T', 600, '-t', 1.5, '--step-skip', 10, '--label', 'LLZO-test']
    proc = user.run(BIN / 'aiida-superionic', *args, cwd=files['long'].parent)
    assert 'done: trajectory' in proc.stdout
    assert user.facts('superionic')['nodes'] > before
    shown = user.run(BIN / 'aiida-superionic', 'show', 'LLZO-test').stdout
    assert 'LLZO-test 600 K' in shown and 'cm^2/s' in shown
    missing = user.run(BIN / 'aiida-superionic', 'show', 'no-such-material', check=False)
    assert missing.returncode == 1 and missing.stderr.startswith(
        "Error: no descriptor record for 'no-such-material'"
    )


def test_inspect_helper_runs_with_this_interpreter():
    assert sys.executable.startswith(str(BIN.parent))


SUBMIT_CASES = [
    (['{missing}', '--mobile', 'Li'], 'Error: no such structure file'),
    (['{garbage}', '--mobile', 'Li'], 'Error: cannot read the structure garbage.cif'),
    (['{poscar}', '--mobile', 'Li'], "Error: mobile species 'Li' not in structure NaCl"),
    (
        ['{overlap}', '--mobile', 'Li'],
        'Error: the structure overlap.vasp has overlapping atoms (0.06 Å apart)',
    ),
    (['{li3n}', '--mobile', 'Li', '-T', 0], 'Error: temperatures must be between 0 and 5000 K, got 0'),
    (['{li3n}', '--mobile', 'Li', '-T', 'hot'], "Error: Invalid value for '-T' / '--temperatures'"),
    (['{li3n}', '--mobile', 'Li', '--code', 'nope@localhost'], "Error: no code 'nope@localhost'"),
    (['{li3n}', '--mobile', 'Li', '--protocol', 'sloppy'], "Error: Invalid value for '-P' / '--protocol'"),
    (
        ['{li3n}', '--mobile', 'Li', '--daemon', '--code', '{code}'],
        'Error: the daemon of profile {profile} is not running',
    ),
    (['{li3n}'], "Error: Missing option '-m' / '--mobile'"),
    (['{li3n}', '--mobile', 'Li', '--overrides', 'md=1'], 'Error: --overrides is not valid JSON'),
    (['{li3n}', '--mobile', 'Li', '--options', '[1, 2]'], 'Error: --options must be a JSON object'),
    # issue 7: every kind of bad input, each with its one line
    (['{empty_cif}', '--mobile', 'Li'], 'Error: cannot read the structure empty.cif'),
    (['{junk_cif}', '--mobile', 'Li'], 'Error: cannot read the structure junk.cif'),
    (
        ['{truncated_poscar}', '--mobile', 'Li'],
        'Error: cannot read the structure truncated.vasp: the file ends early (truncated?)',
    ),
    (['{flat}', '--mobile', 'Li'], 'Error: the structure flat.vasp has a degenerate cell (volume 0 Å³)'),
    (['{partial}', '--mobile', 'Li'], 'Error: the structure partial.cif has partial occupancies'),
    (['{li3n}', '--mobile', 'Li', '-T', 6000], 'Error: temperatures must be between 0 and 5000 K, got 6000'),
    (['{li3n}', '--mobile', 'Li', '-T', -100], 'Error: temperatures must be between 0 and 5000 K, got -100'),
    (['{li3n}', '--mobile', 'Li', '-T', 'nan'], 'Error: temperatures must be between 0 and 5000 K, got nan'),
    (
        ['{li3n}', '--mobile', 'Li', '--overrides', '{"md": {"timestep_fs": -1}}'],
        'Error: md.timestep_fs must be > 0 and at most 10 fs, got -1',
    ),
    (
        ['{li3n}', '--mobile', 'Li', '--overrides', '{"md": {"timestep_fs": 50}}'],
        'Error: md.timestep_fs must be > 0 and at most 10 fs, got 50',
    ),
    (
        ['{li3n}', '--mobile', 'Li', '--overrides', '{"md": {"n_steps": 0}}'],
        'Error: md.n_steps must be a whole number >= 1, got 0',
    ),
    (
        ['{li3n}', '--mobile', 'Li', '--overrides', '{"md": {"temperatures": [900, -5]}}'],
        'Error: md.temperatures must be between 0 and 5000 K, got -5',
    ),
    (
        ['{li3n}', '--mobile', 'Li', '--overrides', '{"md": {"n_step": 10}}'],
        'Error: --overrides: unknown key md.n_step; md has batch, checkpoint_every',
    ),
    (['{li3n}', '--mobile', 'Li', '--overrides', '{"mdd": {}}'], "Error: --overrides: unknown key 'mdd'"),
    (['{li3n}', '--mobile', 'Li', '--engine', 'nope'], "Error: Invalid value for '-e' / '--engine'"),
    (['{li3n}', '--mobile', 'Xx'], "Error: mobile species 'Xx' not in structure Li3N"),
    (['{li3n}', '--mobile', 'Li', '--label', ''], 'Error: --label must not be empty'),
    (
        ['{li3n}', '--mobile', 'Li', '--label', 'Li3N\nrm -rf /'],
        'Error: --label must be one line of printable text',
    ),
    # issue 12: the Langevin friction (1/ps) of the protocol
    (
        ['{li3n}', '--mobile', 'Li', '--overrides', '{"md": {"friction_per_ps": -1}}'],
        'Error: md.friction_per_ps must be a number > 0 (Langevin friction in 1/ps), got -1',
    ),
    (
        ['{li3n}', '--mobile', 'Li', '--overrides', '{"md": {"friction_per_ps": 0}}'],
        'Error: md.friction_per_ps must be a number > 0 (Langevin friction in 1/ps), got 0',
    ),
    (
        ['{li3n}', '--mobile', 'Li', '--overrides', '{"md": {"friction_per_ps": "strong"}}'],
        "Error: md.friction_per_ps must be a number > 0 (Langevin friction in 1/ps), got 'strong'",
    ),
    (
        ['{li3n}', '--mobile', 'Li', '--overrides', '{"md": {"friction_per_ps": 1000}}'],
        'Error: md.friction_per_ps = 1000 with timestep_fs = 2.0 gives friction x time step = 2, above 0.5',
    ),
    # a label longer than the database's varchar(255) (PostgreSQL refused it with a traceback)
    (
        ['{li3n}', '--mobile', 'Li', '--label', 'L' * 300],
        'Error: --label is 300 characters long; AiiDA stores labels of at most 255',
    ),
]


@pytest.mark.parametrize(('args', 'message'), SUBMIT_CASES)
def test_submit_bad_input_stores_nothing(aiida_profile, files, args, message):
    assert_rejected_in_process(aiida_profile, files, 'submit', args, message)


def test_submit_with_a_code_of_another_plugin_stores_nothing(aiida_profile, files):
    computer = load_mlip_code().computer
    label = f'add@{computer.label}'
    try:
        orm.load_code(label)
    except Exception:
        orm.InstalledCode(
            label='add',
            computer=computer,
            filepath_executable='/bin/bash',
            default_calc_job_plugin='core.arithmetic.add',
        ).store()
    args = ['{li3n}', '--mobile', 'Li', '--code', label]
    message = f"Error: code '{label}' runs core.arithmetic.add, not superionic.mlip"
    assert_rejected_in_process(aiida_profile, files, 'submit', args, message)


@pytest.mark.parametrize(('command', 'case'), [('import-md', CASES[1]), ('submit', SUBMIT_CASES[4])])
def test_bad_input_in_a_real_process(user, files, command, case):
    """One case per command as a user meets it: the console script, the embedded profile."""
    assert_rejected_storing_nothing(user, files, command, *case)


def test_unknown_profile_for_submit_and_import(user, files):
    before = user.facts('superionic')['nodes']
    for command, args in (
        ('submit', [files['li3n'], '-m', 'Li']),
        ('import-md', [files['long'], '-T', 600, '-t', 1]),
    ):
        proc = user.run(BIN / 'aiida-superionic', '-p', 'nope', command, *args, check=False)
        assert proc.returncode == 1
        assert proc.stderr.strip() == "Error: unknown AiiDA profile 'nope' (profiles: superionic)"
    assert user.facts('superionic')['nodes'] == before
