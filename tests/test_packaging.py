"""The built wheel holds every file of the package that is not Python source (protocols, data)."""

from __future__ import annotations

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
