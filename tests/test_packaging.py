"""The built wheel holds every file of the package that is not Python source (protocols, data), and
installed into a clean venv it loads both engines and all their protocols."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_every_package_data_file(tmp_path):
    """Each non-.py file under aiida_superionic/ that git tracks must be in the wheel: a missing protocols
    file breaks an engine on any non-editable install (the VASP protocols once were)."""
    tracked = subprocess.run(
        ['git', 'ls-files', 'aiida_superionic'], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    data = sorted(f for f in tracked if not f.endswith('.py'))
    assert 'aiida_superionic/engines/vasp/protocols.yaml' in data
    assert 'aiida_superionic/reference/index.yaml' in data  # the reference set (index + CIFs)
    assert 'aiida_superionic/reference/cifs/Li3N.cif' in data
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('pyproject.toml', 'README.md'):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / 'aiida_superionic', src / 'aiida_superionic', ignore=shutil.ignore_patterns('__pycache__')
    )
    subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'wheel',
            '--no-deps',
            '--no-build-isolation',
            '-q',
            '-w',
            str(tmp_path),
            '.',
        ],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob('aiida_superionic-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [f for f in data if f not in names] == []
    # the engines are found through their entry-point group: it must be in the wheel's metadata
    (entry_points,) = [n for n in names if n.endswith('.dist-info/entry_points.txt')]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert '[aiida_superionic.engines]' in text
    assert 'mlip = aiida_superionic.engines.mlip.engine:MlipEngine' in text
    assert 'vasp = aiida_superionic.engines.vasp.engine:VaspEngine' in text

    # installed into a clean venv (no editable finder, the dependencies of this venv reached by a .pth
    # placed after the venv's own site-packages): both engines load through the entry-point group and
    # resolve every one of their protocols from the installed files
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    (site,) = venv.glob('lib/python*/site-packages')
    subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    deps = [p for p in sys.path if p.endswith('site-packages') and Path(p).is_dir()]
    (site / 'zz_deps.pth').write_text('\n'.join(deps) + '\n')
    probe = (
        'import json, aiida_superionic\n'
        'from aiida_superionic.engines.contract import engine_names, get_engine\n'
        'out = {"file": aiida_superionic.__file__, "engines": {}}\n'
        'for name in engine_names():\n'
        '    engine = get_engine(name)\n'
        '    out["engines"][name] = {p: sorted(engine.base_protocol(p)) for p in engine.protocols()}\n'
        'print(json.dumps(out))\n'
    )
    run = subprocess.run(
        [str(venv / 'bin' / 'python'), '-c', probe],
        cwd=tmp_path,
        env={'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr

    out = json.loads(run.stdout.splitlines()[-1])
    assert Path(out['file']).resolve().is_relative_to(site.resolve())  # the wheel's copy, not this tree
    assert set(out['engines']) == {'mlip', 'vasp'}
    for name, protocols in out['engines'].items():
        assert {'fast', 'moderate', 'precise'} <= set(protocols), name
        assert all(keys for keys in protocols.values()), name
