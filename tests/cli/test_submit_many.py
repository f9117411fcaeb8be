"""``aiida-superionic submit`` with several materials / the reference set, in process on the test profile.

No MD runs: ``--dry-run`` does every per-material step but the launch (read, checks, work-chain inputs
validated by the MaterialWorkChain spec), and the non-dry runs here hold only materials that fail their
checks, so nothing is launched either."""

from __future__ import annotations

import re

import pytest
from aiida import orm
from click.testing import CliRunner
from pymatgen.core import Lattice, Structure

from aiida_superionic.cli import cmd_root
from aiida_superionic.reference import materials


def node_count() -> int:
    return orm.QueryBuilder().append(orm.Node).count()


def invoke(profile, *args):
    return CliRunner().invoke(cmd_root, ['-p', profile.name, 'submit', *map(str, args)])


@pytest.fixture
def files(tmp_path):
    """A good Li CIF (from the set), an unreadable file, a Li compound with curium (Z = 96, beyond the
    model), and NaCl (no Li)."""
    (li3n,) = [m['path'] for m in materials('Li') if m['name'] == 'Li3N']
    garbage = tmp_path / 'garbage.cif'
    garbage.write_text('this is not a crystal\n')
    licm = tmp_path / 'LiCm.cif'
    Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.0), ['Li', 'Cm'], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(licm)
    )
    (nacl,) = [m['path'] for m in materials('Na') if m['name'] == 'NaCl']
    return {'li3n': li3n, 'garbage': garbage, 'licm': licm, 'nacl': nacl}


def test_one_failed_material_never_stops_the_others(aiida_profile, mlip_code, files):
    """Bad file first, good one after it: the good one is still checked; the summary names each failure
    with its reason and the command exits 1 with one Error: line; nothing is stored."""
    before = node_count()
    order = ('garbage', 'li3n', 'licm', 'nacl')
    result = invoke(
        aiida_profile, *(files[k] for k in order), '-m', 'Li', '-c', mlip_code.full_label, '--dry-run'
    )
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert '[1/4] garbage.cif: FAILED: cannot read the structure garbage.cif' in out
    assert re.search(r'\[2/4\] Li3N: Li3N, 4 atoms, mobile Li\n\[2/4\] Li3N: ok: inputs built', out)
    assert '[3/4] LiCm: FAILED: element(s) Cm not supported by the chgnet-0.3.0 model (Z <= 94)' in out
    assert "[4/4] NaCl: FAILED: mobile species 'Li' not in structure NaCl" in out
    assert 'summary: 1 of 4 materials checked; 3 failed' in out
    errors = [line for line in result.stderr.splitlines() if line.startswith('Error:')]
    assert errors == ['Error: 3 of 4 materials failed: garbage.cif, LiCm, NaCl']
    assert 'Traceback' not in result.output
    assert node_count() == before


def test_failures_without_dry_run_are_summarised_and_store_nothing(aiida_profile, mlip_code, files):
    before = node_count()
    args = (files['garbage'], files['nacl'], '-m', 'Li', '-c', mlip_code.full_label, '-g', 'never-made')
    result = invoke(aiida_profile, *args)
    assert result.exit_code == 1
    assert "summary: 0 of 2 materials submitted into group 'never-made'; 2 failed" in result.stdout
    assert 'Error: 2 of 2 materials failed: garbage.cif, NaCl' in result.stderr
    assert node_count() == before
    assert not orm.QueryBuilder().append(orm.Group, filters={'label': 'never-made'}).count()


def test_reference_set_family_dry_run(aiida_profile, mlip_code):
    """``--set reference --family O``: each material with its own mobile species from the index."""
    before = node_count()
    result = invoke(
        aiida_profile, '--set', 'reference', '--family', 'O', '-c', mlip_code.full_label, '--dry-run'
    )
    assert result.exit_code == 0, result.output
    names = [m['name'] for m in materials('O')]
    assert names == ['CeO2', 'ThO2']
    for i, name in enumerate(names, 1):
        assert f'[{i}/2] {name}: {name}, 12 atoms, mobile O\n' in result.stdout
        assert f'[{i}/2] {name}: ok: inputs built (dry run: nothing launched)' in result.stdout
    assert 'summary: 2 of 2 materials checked; 0 failed' in result.stdout
    assert node_count() == before


def test_whole_reference_set_is_accepted(aiida_profile, mlip_code):
    """Every shipped CIF passes the checks submit makes (readable, ordered, mobile present, model elements)."""
    result = invoke(aiida_profile, '--set', 'reference', '-c', mlip_code.full_label, '--dry-run')
    n = len(materials())
    assert result.exit_code == 0, result.output
    assert f'summary: {n} of {n} materials checked; 0 failed' in result.stdout


def test_reference_fast_is_the_stored_plan(aiida_profile, mlip_code):
    from aiida_superionic.reference import stored_fast_plan

    result = invoke(aiida_profile, '--set', 'reference-fast', '-c', mlip_code.full_label, '--dry-run')
    assert result.exit_code == 0, result.output
    done = re.findall(r'\] (\S+): ok: inputs built', result.stdout)
    assert sorted(done) == sorted(stored_fast_plan()['included'])


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['--family', 'Li', '--dry-run'], 'Error: --family selects from a set: give --set reference too'),
        (['{li3n}', '{nacl}', '-m', 'Li'], 'Error: several materials go into one group: pass --group'),
        (['{li3n}'], "Error: Missing option '-m' / '--mobile'"),
        (['--set', 'reference', '-l', 'x'], 'Error: --label names one material: leave it out with several'),
    ],
)
def test_usage_errors(aiida_profile, files, args, message):
    before = node_count()
    result = invoke(aiida_profile, *(a.format(**files) for a in args))
    assert result.exit_code != 0
    assert message in result.stderr
    assert node_count() == before
