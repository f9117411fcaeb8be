"""The launch examples of docs/launching.rst run: the ``verdi run`` script (a real ``verdi run`` in a
subprocess on the test profile), the notebook cells, and the QueryBuilder recipes on real records."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from aiida import orm

from tests.test_protocol_builders import code  # noqa: F401  (the fixture: a real MLIP runner code)

EXAMPLES = Path(__file__).resolve().parent.parent / 'docs' / 'examples'
VERDI = Path(sys.executable).with_name('verdi')


def _profile_env() -> dict[str, str]:
    from aiida.manage import get_manager
    from aiida.manage.configuration import get_config

    env = os.environ.copy()
    env['AIIDA_PATH'] = str(Path(get_config().dirpath).parent)
    env['PYTHONPATH'] = os.pathsep.join([str(EXAMPLES.parent.parent), env.get('PYTHONPATH', '')])
    env['OMP_NUM_THREADS'] = '1'
    return env, get_manager().get_profile().name


def test_verdi_run_script(code, tmp_path):  # noqa: F811
    from ase.build import bulk
    from ase.io import write

    cif = tmp_path / 'LiF.cif'
    write(cif, bulk('LiF', 'rocksalt', a=4.2))
    env, profile = _profile_env()
    args = [str(VERDI), '-p', profile, 'run', str(EXAMPLES / 'run_material.py'), '--', str(cif)]
    args += ['--mobile', 'Li', '--protocol', 'fast', '--step', 'relax', '--code', code.full_label]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'RelaxWorkChain<' in proc.stdout and 'finished with exit status 0' in proc.stdout
    pk = int(proc.stdout.split('RelaxWorkChain<')[1].split('>')[0])
    node = orm.load_node(pk)
    assert node.is_finished_ok and node.inputs.protocol.value == 'fast'
    assert node.inputs.settings['relax']['fmax'] == 0.05  # the fast protocol's, resolved before launch


def test_notebook_cells(code, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setenv('SUPERIONIC_CODE', code.full_label)
    namespace = runpy.run_path(str(EXAMPLES / 'notebook.py'))
    node = namespace['node']
    assert node.is_finished_ok and node.inputs.settings['relax']['fmax'] == 0.02  # the edit reached it
    assert namespace['builder'].settings['md']['n_steps'] == 600
    assert 'descriptor records in this profile' in capsys.readouterr().out


def _record(material, temperature, D, B, engine='mlip'):
    from aiida_superionic.calculations.functions import assemble_record

    parts = {'diffusion': orm.Dict({'D_cm2_s': D, 'D_stderr_cm2_s': D / 20})}
    if B is not None:
        parts['elastic'] = orm.Dict({'bulk_modulus_GPa': B})
    meta = {'material': material, 'temperature_K': temperature, 'engine': engine, 'mobile_species': 'Li'}
    return assemble_record(orm.Dict(meta), **parts)


def test_query_recipe_fast_and_soft():
    """D(500 K) > 1e-6 cm²/s and B < 30 GPa, on records made by the record calcfunction: only the
    material that passes both at 500 K is found (each other one fails exactly one condition)."""
    recipes = runpy.run_path(str(EXAMPLES / 'queries.py'))
    tag = f'recipe-{os.getpid()}'
    _record(f'{tag}-fast-soft', 500.0, 3e-6, 20.0)
    _record(f'{tag}-slow-soft', 500.0, 5e-7, 20.0)
    _record(f'{tag}-fast-stiff', 500.0, 3e-6, 80.0)
    _record(f'{tag}-fast-soft-hot', 900.0, 3e-5, 20.0)  # D at 900 K, not 500 K
    _record(f'{tag}-no-elastic', 500.0, 3e-6, None)  # B unknown: not claimed soft
    found = [row for row in recipes['fast_and_soft']() if row[0].startswith(tag)]
    assert found == [(f'{tag}-fast-soft', pytest.approx(3e-6), pytest.approx(20.0))]
    loose = {row[0] for row in recipes['fast_and_soft'](max_B_GPa=100.0) if row[0].startswith(tag)}
    assert loose == {f'{tag}-fast-soft', f'{tag}-fast-stiff'}
