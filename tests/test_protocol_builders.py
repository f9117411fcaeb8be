"""``get_builder_from_protocol`` of the material, step and engine work chains: every input explicit,
checked against expectations read from the protocol YAML files themselves, and a bad override refused
at launch from Python before any step runs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

import aiida_superionic
from aiida_superionic.exceptions import InputError
from aiida_superionic.workflows.material import MaterialWorkChain
from aiida_superionic.workflows.md import MDWorkChain
from aiida_superionic.workflows.steps import ElasticWorkChain, RelaxWorkChain, VacancyWorkChain

ENGINES = Path(aiida_superionic.__file__).parent / 'engines'


def raw_protocol(engine: str) -> dict:
    return yaml.safe_load((ENGINES / engine / 'protocols.yaml').read_text())


def expected_mlip(protocol: str) -> dict:
    """The MLIP protocol by hand: its sections are one level deep, so a section's delta updates it."""
    raw = raw_protocol('mlip')
    out = copy.deepcopy(raw['default'])
    for key, value in raw['protocols'][protocol].items():
        if key == 'description':
            continue
        if isinstance(value, dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def serialize_builder(builder) -> dict:
    """A builder's inputs as plain Python (nodes by value, the code by label)."""

    def plain(value):
        if isinstance(value, orm.AbstractCode):
            return value.full_label
        if isinstance(value, orm.Dict):
            return value.get_dict()
        if isinstance(value, orm.List):
            return value.get_list()
        if isinstance(value, orm.StructureData):
            return value.get_formula()
        if isinstance(value, orm.BaseType):
            return value.value
        if hasattr(value, 'items'):
            return {k: plain(v) for k, v in value.items() if k != 'metadata' and v is not None}
        return value

    return {k: plain(v) for k, v in builder._inputs(prune=True).items() if k != 'metadata'}


@pytest.fixture(scope='module')
def code():
    import tempfile

    from tests.conftest import local_computer, mlip_runner_code

    try:
        return orm.load_code('mlip-builders@localhost-builders')
    except Exception:
        computer = local_computer('localhost-builders', tempfile.mkdtemp(prefix='superionic-builders-'))
        return mlip_runner_code(computer, 'mlip-builders')


@pytest.fixture(scope='module')
def vasp_code(code, tmp_path_factory):
    """A code of the vasp.vasp plugin and aiida-vasp's dummy test POTCARs as the protocol's family
    (aiida-vasp checks that the family exists when the builder is filled)."""
    import shutil

    from aiida_vasp.data.potcar import PotcarData

    source = tmp_path_factory.mktemp('potcars') / 'potcars'
    shutil.copytree(Path(__file__).parent / 'data' / 'aiida-vasp' / 'potcar_dummy', source)
    PotcarData.upload_potcar_family(str(source), 'PBE.54', 'dummy test POTCARs', stop_if_existing=False)
    computer = code.computer
    return orm.InstalledCode(
        label='vasp-builders',
        computer=computer,
        filepath_executable='/bin/true',
        default_calc_job_plugin='vasp.vasp',
    ).store()


def lif():
    return orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.08))


def test_material_builder_is_the_protocol_made_explicit(code):
    builder = MaterialWorkChain.get_builder_from_protocol(
        code,
        lif(),
        'fast',
        overrides={'md': {'n_steps': 50}, 'device': 'cpu'},
        options={'queue_name': 'debug'},
        mobile='Li',
    )
    settings = expected_mlip('fast')
    settings['md']['n_steps'] = 50
    settings['device'] = 'cpu'
    assert serialize_builder(builder) == {
        'structure': 'FLi',
        'mobile': 'Li',
        'code': code.full_label,
        'engine': 'mlip',
        'protocol': 'fast',
        'settings': settings,
        'options': {'queue_name': 'debug'},
        'temperatures': [900.0, 1500.0],  # fast: md.temperatures
    }
    assert builder.metadata.label == 'FLi'
    labelled = MaterialWorkChain.get_builder_from_protocol(
        code, lif(), 'fast', mobile='Li', label='LiF-1', group_label='g', temperatures=[600]
    )
    assert labelled.metadata.label == labelled.label.value == 'LiF-1' and labelled.group_label.value == 'g'
    assert labelled.temperatures.get_list() == [600.0] and 'options' not in serialize_builder(labelled)
    with pytest.raises(TypeError, match='needs mobile'):
        MaterialWorkChain.get_builder_from_protocol(code, lif(), 'fast')
    with pytest.raises(TypeError, match='unexpected colour'):
        RelaxWorkChain.get_builder_from_protocol(code, lif(), 'fast', colour='red')


def test_default_protocol_and_the_step_builders(code):
    raw = raw_protocol('mlip')
    builder = RelaxWorkChain.get_builder_from_protocol(code, lif())
    assert builder.protocol.value == raw['default_protocol'] == 'moderate'
    assert builder.settings.get_dict() == expected_mlip('moderate')
    assert builder.settings['md']['n_steps'] == raw['default']['md']['n_steps'] == 20000

    elastic = serialize_builder(ElasticWorkChain.get_builder_from_protocol(code, lif(), 'precise'))
    assert elastic['settings'] == expected_mlip('precise') and 'mobile' not in elastic
    vacancy = VacancyWorkChain.get_builder_from_protocol(code, lif(), 'fast', mobile='Li')
    assert vacancy.mobile.value == 'Li' and vacancy.settings['vacancy']['max_steps'] == 60
    with pytest.raises(TypeError, match='needs mobile'):
        VacancyWorkChain.get_builder_from_protocol(code, lif(), 'fast')

    md = MDWorkChain.get_builder_from_protocol(code, lif(), 'precise', mobile='Li', temperatures=[700])
    assert md.temperatures.get_list() == [700.0] and md.settings['md']['timestep_fs'] == 1.5


def test_engine_builders(code, vasp_code):
    from aiida_superionic.engines.mlip.workchain import MlipBaseWorkChain
    from aiida_superionic.engines.vasp.workchain import VaspStepWorkChain, VaspVacancyWorkChain

    mlip = MlipBaseWorkChain.get_builder_from_protocol(
        code, lif(), 'fast', step='md', temperature_K=800, seed=3
    )
    params = mlip.mlip.parameters.get_dict()
    md = raw_protocol('mlip')['protocols']['fast']['md']
    assert params['task'] == 'md' and params['seed'] == 3 and params['settings']['temperature_K'] == 800.0
    assert (
        params['settings']['n_steps'] == md['n_steps']
        and params['settings']['frame_interval'] == md['frame_interval']
    )
    assert (
        mlip.mlip.metadata.options.max_wallclock_seconds
        == raw_protocol('mlip')['protocols']['fast']['max_wallclock_seconds']
    )

    raw = raw_protocol('vasp')
    relax = VaspStepWorkChain.get_builder_from_protocol(vasp_code, lif(), 'fast', step='relax')
    incar = {
        **{k.lower(): v for k, v in raw['default']['incar'].items()},
        **{k.lower(): v for k, v in raw['protocols']['fast']['incar'].items()},
        **{k.lower(): v for k, v in raw['default']['relax']['incar'].items()},
        **{k.lower(): v for k, v in raw['protocols']['fast']['relax']['incar'].items()},
    }
    assert relax.vasp.parameters.get_dict() == {'incar': incar}
    assert relax.vasp.kpoints_spacing.value == raw['protocols']['fast']['kpoints_spacing']
    assert relax.vasp.potential_mapping.get_dict() == {'F': 'F', 'Li': 'Li_sv'}
    vacancy = VaspVacancyWorkChain.get_builder_from_protocol(vasp_code, lif(), 'fast', mobile='Li')
    assert vacancy.settings['vacancy']['min_length_A'] == raw['default']['vacancy']['min_length_A']
    with pytest.raises(TypeError, match='not run by VaspStepWorkChain'):
        VaspStepWorkChain.get_builder_from_protocol(vasp_code, lif(), 'fast', step='vacancy', mobile='Li')


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        ({'md': {'n_stepz': 10}}, 'unknown key md.n_stepz; md has'),
        ({'relaks': {}}, "unknown key 'relaks'; the protocol has"),
        ({'md': {'timestep_fs': 30.0}}, 'md.timestep_fs must be > 0 and at most 10 fs'),
        ({'md': {'friction_per_ps': -5.0}}, r'md.friction_per_ps must be a number > 0 \(Langevin friction'),
    ],
)
def test_a_bad_override_fails_at_launch_before_any_step(code, overrides, message):
    """Old-style inputs (protocol + overrides) launched from Python: the port validator refuses them
    before the relaxation (before, the MLIP runner refused the typo only in its first MD job)."""
    structure = lif()
    before = orm.QueryBuilder().append(orm.WorkChainNode).count()
    with pytest.raises(ValueError, match=message):
        run_get_node(
            MaterialWorkChain,
            structure=structure,
            mobile=orm.Str('Li'),
            code=code,
            protocol=orm.Str('fast'),
            overrides=orm.Dict(overrides),
        )
    assert orm.QueryBuilder().append(orm.WorkChainNode).count() == before  # no step ran, none was stored
    if 'unknown key' in message:
        with pytest.raises(InputError, match=message):
            MaterialWorkChain.get_builder_from_protocol(
                code, structure, 'fast', overrides=overrides, mobile='Li'
            )


def test_hand_edited_settings_are_checked_at_launch(code):
    builder = MDWorkChain.get_builder_from_protocol(code, lif(), 'fast', mobile='Li')
    settings = builder.settings.get_dict()
    settings['md']['frame_intervall'] = 2
    builder.settings = orm.Dict(settings)
    with pytest.raises(ValueError, match=r'unknown key md\.frame_intervall'):
        run_get_node(builder)
    builder = RelaxWorkChain.get_builder_from_protocol(code, lif(), 'fast')
    builder.overrides = orm.Dict({'md': {'n_steps': 2}})
    with pytest.raises(ValueError, match='either `settings`'):
        run_get_node(builder)
    builder = MDWorkChain.get_builder_from_protocol(code, lif(), 'fast', mobile='Li', temperatures=[-5])
    with pytest.raises(ValueError, match='temperatures must be between 0 and 5000 K'):
        run_get_node(builder)


def test_the_cli_launch_helper_checks_the_ports_before_storing(code):
    """``aiida-superionic submit`` launches through :func:`~aiida_superionic.cli.launch.launch`, which
    runs the same port validators first and turns a failure into one ``InputError``."""
    from aiida_superionic.cli.launch import check_inputs

    builder = MaterialWorkChain.get_builder_from_protocol(code, lif(), 'fast', mobile='Li')
    check_inputs(builder)  # a good builder passes
    assert not builder.structure.is_stored and not builder.settings.is_stored
    settings = builder.settings.get_dict()
    settings['relax']['fmaxx'] = 0.1
    builder.settings = orm.Dict(settings)
    with pytest.raises(InputError, match=r'unknown key relax\.fmaxx; relax has'):
        check_inputs(builder)


def test_the_langevin_friction_reaches_md_and_md_batch_in_the_runners_unit(code):
    """``md.friction_per_ps`` (1/ps) is a protocol key: by default 10/ps, the runner's former default of
    0.01/fs (so existing runs keep their numbers); an override reaches task md and task md_batch alike, as
    the runner's ``friction_per_fs`` (1/fs)."""
    from aiida_superionic.engines.contract import get_engine

    engine = get_engine('mlip')
    assert raw_protocol('mlip')['default']['md']['friction_per_ps'] == 10.0
    for overrides, expected in (
        ({}, 0.01),
        ({'md': {'thermostat': 'langevin', 'friction_per_ps': 25.0}}, 0.025),
    ):
        settings = engine.protocol('fast', overrides)
        single = engine.get_builder('md', lif(), code, settings, temperature_K=800, seed=3)
        batch = engine.get_md_batch_builder({'a': (lif(), 800.0, 3)}, code, settings)
        for builder in (single, batch):
            runner_settings = builder.mlip.parameters.get_dict()['settings']
            assert runner_settings['friction_per_fs'] == expected
            assert 'friction_per_ps' not in runner_settings


def test_a_label_the_database_cannot_store_fails_at_launch(code):
    """aiida-core keeps labels in a ``varchar(255)`` column: on PostgreSQL a longer one failed with a
    database traceback when the work chain's node was stored. The port validator refuses it first, in the
    builder and in a launch with the inputs given one by one."""
    message = 'the label is 256 characters long; AiiDA stores labels of at most 255'
    before = orm.QueryBuilder().append(orm.WorkChainNode).count()
    builder = MaterialWorkChain.get_builder_from_protocol(code, lif(), 'fast', mobile='Li')
    for port in ('label', 'group_label'):
        with pytest.raises(ValueError, match=message):
            builder[port] = orm.Str('x' * 256)
        with pytest.raises(ValueError, match=message):
            run_get_node(
                MaterialWorkChain,
                structure=lif(),
                mobile=orm.Str('Li'),
                code=code,
                protocol=orm.Str('fast'),
                **{port: orm.Str('x' * 256)},
            )
        builder[port] = orm.Str('x' * 255)  # the longest that fits passes
    from aiida_superionic.cli.launch import check_inputs

    check_inputs(builder)
    assert orm.QueryBuilder().append(orm.WorkChainNode).count() == before
