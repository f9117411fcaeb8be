"""``aiida-superionic analyze``: as a user runs it (a real process, no AiiDA profile) for the JSON output and
`--help`/`--version`, in process (click's CliRunner) for the other outputs and the bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from aiida_superionic.analysis import analyze_trajectory
from aiida_superionic.cli import cmd_root
from aiida_superionic.io import read_xdatcar


def run_cli(*args, tmp_path):
    """Run the installed console script with an empty AiiDA configuration folder (no profile)."""
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path / 'no-aiida')}
    exe = os.path.join(os.path.dirname(sys.executable), 'aiida-superionic')
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def invoke(*args):
    """The same command in this process (no profile needed: ``analyze`` never loads one)."""
    result = CliRunner().invoke(cmd_root, [str(a) for a in args])
    assert isinstance(result.exception, SystemExit | None), result.exception  # never a traceback
    return result


def test_json_output_equals_the_library_call(shared_md, tmp_path):
    path = shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz'
    proc = run_cli(
        'analyze', path, '-T', 500, '--timestep', 2, '--step-skip', 50, '--json', tmp_path=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    traj = read_xdatcar(path)
    ref = analyze_trajectory(traj.positions, traj.cell, traj.symbols, 100.0, 500.0)
    assert out['diffusion']['D_cm2_s'] == pytest.approx(ref['diffusion']['D_cm2_s'], rel=1e-12)
    assert out['vibrational']['non_diffusive']['C_v_kB_atom'] == pytest.approx(
        ref['vibrational']['non_diffusive']['C_v_kB_atom'], rel=1e-12
    )
    assert out['timestep_fs'] == 100.0
    assert out['mobile_species'] == 'Li'
    assert out['vdos_weighting'] == 'none'  # the paper's eq 5 by default
    assert any('resolved only up to' in w for w in out['warnings'])  # 100 fs between frames
    config = tmp_path / 'no-aiida' / '.aiida' / 'config.json'
    assert not config.exists() or not json.loads(config.read_text()).get('profiles')  # none was made or used


def test_table_output_and_arrays(shared_md, tmp_path):
    arrays = tmp_path / 'arrays.npz'
    proc = invoke(
        'analyze',
        shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz',
        '-T',
        500,
        '-t',
        2,
        '--step-skip',
        50,
        '--mobile',
        'Li',
        '--arrays',
        arrays,
    )
    assert proc.exit_code == 0, proc.stderr
    assert 'cm²/s' in proc.stdout and 'Lindemann' in proc.stdout and '<ω30>' in proc.stdout
    assert 'error from 192 per-ion slopes' in proc.stdout
    with np.load(arrays) as data:
        assert data['msd_A2'].shape == data['msd_time_ps'].shape == (71,)
        assert data['vdos_energy_meV'].shape == data['vdos_all'].shape


def test_non_diffusing_run_shows_an_upper_bound_not_a_negative_D(rng, tmp_path):
    """Mobile ions that only vibrate: the table says "not resolved" and gives max(D, 0) + 2 sigma."""
    box = 9.0
    sites = rng.uniform(0, box, size=(16, 3))
    positions = sites[None] + rng.normal(scale=0.15, size=(400, 16, 3))
    path = tmp_path / 'vib.npz'
    np.savez(path, positions=positions % box, cell=np.eye(3) * box, symbols=np.array(['Li'] * 8 + ['S'] * 8))
    proc = invoke('analyze', path, '-T', 300, '-t', 2, '--json', '-q')
    assert proc.exit_code == 0, proc.stderr
    d = json.loads(proc.stdout)['diffusion']
    assert d['D_resolved'] is False
    bound = max(d['D_cm2_s'], 0.0) + 2 * d['D_stderr_cm2_s']
    assert d['D_upper_bound_cm2_s'] == pytest.approx(bound, rel=1e-12)
    proc = invoke('analyze', path, '-T', 300, '-t', 2, '-q')
    assert proc.exit_code == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.strip().startswith('D '))
    assert line.split()[1:5] == ['not', 'resolved', 'from', 'zero:']
    assert f'D < {bound:.2g} cm²/s' in line


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['missing.XDATCAR', '-T', 500, '-t', 2], 'Error: no such trajectory file'),
        (['{llzo}', '-T', 500, '-t', 2], 'Error: too few frames to fit D: 2'),
        (['{argyrodite}', '-T', 0, '-t', 2], 'Error: --temperature must be > 0'),
        (['{argyrodite}', '-T', 500, '-t', -1], 'Error: --timestep must be > 0'),
        (['{argyrodite}', '-T', 500], 'Error: give the MD time step with --timestep'),
        (
            ['{argyrodite}', '-T', 500, '-t', 2, '--mobile', 'Na'],
            "Error: mobile species 'Na' not in the trajectory",
        ),
        (['{argyrodite}', '-T', 'hot', '-t', 2], "Error: Invalid value for '-T' / '--temperature'"),
        (['{truncated}', '-T', 500, '-t', 2], 'Error: XDATCAR: truncated frame 3'),
        (['{nan}', '-T', 500, '-t', 2], 'Error: XDATCAR: NaN or infinite coordinate in frame 2'),
    ],
)
def test_bad_input_gives_one_error_line(shared_md, tmp_path, args, message):
    llzo = shared_md / 'LLZO_IonDiff' / 'XDATCAR'
    lines = [line.rstrip(b'\n') + b'\n' for line in llzo.read_bytes().splitlines()]
    truncated = tmp_path / 'trunc' / 'XDATCAR'
    truncated.parent.mkdir()
    truncated.write_bytes(b''.join(lines + lines[7 : 7 + 100]))
    nan = tmp_path / 'nan' / 'XDATCAR'
    nan.parent.mkdir()
    nan.write_bytes(b''.join([*lines[:-1], b'  NaN 0.5 0.5\n']))
    paths = {
        '{llzo}': llzo,
        '{argyrodite}': shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz',
        '{truncated}': truncated,
        '{nan}': nan,
    }
    result = invoke('analyze', *[paths.get(str(a), a) for a in args])
    assert result.exit_code != 0
    assert result.stdout == ''
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(message), result.stderr


def test_help_and_version(tmp_path):
    proc = run_cli('--help', tmp_path=tmp_path)
    assert proc.returncode == 0 and 'analyze' in proc.stdout
    proc = run_cli('--version', tmp_path=tmp_path)
    assert proc.returncode == 0 and 'aiida-superionic' in proc.stdout
