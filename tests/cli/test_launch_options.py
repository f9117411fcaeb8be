"""``submit``'s launch options on the plugin's registries and aiida-core's parameter types, in process on
the test profile: the engines come from the entry-point group ``aiida_superionic.engines`` and the
protocols from the engines' ``protocols.yaml`` (an engine installed later is offered without editing the
CLI), the code is loaded as ``verdi`` loads it (label, PK or UUID), and a bad engine, protocol or code is
one ``Error:`` line with a non-zero exit and no traceback."""

from __future__ import annotations

import textwrap

import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_superionic.cli import cmd_root
from aiida_superionic.reference import materials


@pytest.fixture
def toy_engine(tmp_path, monkeypatch):
    """A third engine installed the way a plugin package installs one: a distribution on ``sys.path``
    whose ``entry_points.txt`` names its Engine class under ``aiida_superionic.engines``, with its own
    ``protocols.yaml`` (protocols ``quick``, the default, and ``thorough``). It drives the MLIP engine's
    processes, so a builder of it is a real one."""
    package = tmp_path / 'toy_superionic_engine'
    package.mkdir()
    (package / '__init__.py').write_text(
        textwrap.dedent(
            """
            from aiida_superionic.engines.contract import Engine, get_engine


            class ToyEngine(Engine):
                name = 'toy'
                protocol_package = 'toy_superionic_engine'

                def get_builder(self, step, structure, code, settings, **kwargs):
                    return get_engine('mlip').get_builder(step, structure, code, settings, **kwargs)
            """
        )
    )
    (package / 'protocols.yaml').write_text(
        textwrap.dedent(
            """
            default_protocol: quick
            default:
              md: {temperatures: [700.0], n_steps: 10, timestep_fs: 1.0}
            protocols:
              quick: {description: ten steps}
              thorough: {description: more steps, md: {n_steps: 100}}
            """
        )
    )
    info = tmp_path / 'toy_superionic_engine-0.1.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: toy-superionic-engine\nVersion: 0.1\n')
    (info / 'entry_points.txt').write_text(
        '[aiida_superionic.engines]\ntoy = toy_superionic_engine:ToyEngine\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return 'toy'


@pytest.fixture(scope='module')
def li3n():
    (path,) = [m['path'] for m in materials('Li') if m['name'] == 'Li3N']
    return str(path)


def submit(profile, *args):
    return CliRunner().invoke(cmd_root, ['-p', profile.name, 'submit', *map(str, args)])


def one_error(result) -> str:
    """The command failed with exactly one ``Error:`` line and no traceback; returns that line."""
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code != 0
    assert 'Traceback' not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('Error: '), result.stderr
    return lines[0]


def node_count() -> int:
    return orm.QueryBuilder().append(orm.Node).count()


def test_help_offers_the_registered_engines_and_their_protocols(toy_engine):
    text = CliRunner().invoke(cmd_root, ['submit', '--help'], terminal_width=200).output
    assert '-e, --engine [mlip|toy|vasp]' in text
    assert '-P, --protocol [fast|moderate|precise|quick|thorough]' in text


def test_a_registered_engine_runs_with_its_default_protocol(aiida_profile, mlip_code, toy_engine, li3n):
    """``-e toy`` without ``-P``: the engine's own default protocol (``quick``; no ``moderate`` in its
    file), the inputs built and checked by the work chain's ports; nothing stored."""
    before = node_count()
    result = submit(aiida_profile, li3n, '-m', 'Li', '-e', 'toy', '-c', mlip_code.full_label, '--dry-run')
    assert result.exit_code == 0, result.output
    assert 'Li3N: ok: inputs built' in result.stdout
    result = submit(aiida_profile, li3n, '-m', 'Li', '-e', 'toy', '-P', 'fast', '--dry-run')
    assert one_error(result) == "Error: unknown protocol 'fast': choose one of quick, thorough"
    assert node_count() == before


def test_the_code_by_label_pk_or_uuid(aiida_profile, mlip_code, li3n):
    for identifier in (mlip_code.full_label, mlip_code.pk, mlip_code.uuid):
        result = submit(aiida_profile, li3n, '-m', 'Li', '-P', 'fast', '-c', identifier, '--dry-run')
        assert result.exit_code == 0, result.output
        assert 'Li3N: ok: inputs built' in result.stdout


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['-e', 'nope'], "Error: Invalid value for '-e' / '--engine': 'nope' is not one of 'mlip', 'vasp'"),
        (['-P', 'sloppy'], "Error: Invalid value for '-P' / '--protocol': 'sloppy' is not one of 'fast'"),
        (
            ['-c', 'no-such-code@nowhere'],
            "Error: no code 'no-such-code@nowhere': run `aiida-superionic setup`",
        ),
        (['-c', '987654321'], "Error: no code '987654321': run"),
        (['-c', '0b4d2c1e-0000-4000-8000-000000000000'], "Error: no code '0b4d2c1e-0000-4000-8000-0000"),
    ],
)
def test_bad_engine_protocol_or_code_is_one_error_line(aiida_profile, li3n, args, message):
    before = node_count()
    assert one_error(submit(aiida_profile, li3n, '-m', 'Li', *args)).startswith(message)
    assert node_count() == before


def test_an_ambiguous_code_label_asks_for_a_pk(aiida_profile, mlip_code, li3n):
    """Two codes of one label on two computers: the bare label names neither, the PK names one."""
    label = f'twin-{mlip_code.pk}'
    twins = []
    for i in (1, 2):
        computer = orm.Computer(
            label=f'{label}-{i}',
            hostname='localhost',
            transport_type='core.local',
            scheduler_type='core.direct',
        ).store()
        code = orm.InstalledCode(
            label=label,
            computer=computer,
            filepath_executable='/bin/true',
            default_calc_job_plugin='superionic.mlip',
        )
        twins.append(code.store())
    message = one_error(submit(aiida_profile, li3n, '-m', 'Li', '-c', label, '--dry-run'))
    assert message.startswith(f"Error: code '{label}' is ambiguous (multiple Code entries found with LABEL")
    assert message.endswith('pass its PK or UUID')
    result = submit(aiida_profile, li3n, '-m', 'Li', '-P', 'fast', '-c', twins[1].pk, '--dry-run')
    assert result.exit_code == 0, result.output


def test_a_protocol_of_another_engine_is_refused_by_the_chosen_one(aiida_profile, toy_engine, li3n):
    result = submit(aiida_profile, li3n, '-m', 'Li', '-e', 'mlip', '-P', 'thorough')
    assert one_error(result) == "Error: unknown protocol 'thorough': choose one of fast, moderate, precise"


def test_one_material_or_several_launch_the_same_explicit_inputs(aiida_profile, mlip_code, li3n):
    """``submit`` with several materials builds each one as the single-material path and a ``verdi run``
    script do (``get_builder_from_protocol``): the overrides resolved into ``settings``, not passed on
    for the work chain to merge (before, the several-materials path launched ``overrides``)."""
    from pymatgen.core import Structure

    from aiida_superionic.cli.submit_many import material_builder
    from aiida_superionic.engines.contract import get_engine
    from aiida_superionic.workflows.material import MaterialWorkChain
    from tests.test_protocol_builders import serialize_builder

    structure = Structure.from_file(li3n)
    overrides = {'md': {'n_steps': 40}}
    common = {'code': mlip_code, 'engine': 'mlip', 'protocol': 'fast', 'temperatures': (900.0, 600.0)}
    common |= {'overrides': overrides, 'options': {}, 'group_label': 'g'}
    built = material_builder(structure, 'Li', common, 'Li3N-x')
    by_hand = MaterialWorkChain.get_builder_from_protocol(
        mlip_code,
        orm.StructureData(pymatgen=structure),
        'fast',
        overrides=overrides,
        mobile='Li',
        temperatures=[600, 900],
        label='Li3N-x',
        group_label='g',
    )
    assert serialize_builder(built) == serialize_builder(by_hand)
    assert 'overrides' not in serialize_builder(built) and built.metadata.label == 'Li3N-x'
    assert built.settings.get_dict() == get_engine('mlip').protocol('fast', overrides)
    assert built.temperatures.get_list() == [600.0, 900.0]
