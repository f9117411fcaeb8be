"""``superionic.mlip`` in the style of aiida-quantumespresso's plugin tests (fixtures: ``aiida_style``).

The parser runs on runner folders recorded once with the real runner (``tests/data/mlip-runner``, see its
README.md); its outputs are compared with those files read independently (``json``, ``numpy``, ``ase``):
the parser must pass the runner's numbers through unchanged. The CalcJob's ``prepare_for_submission`` runs on
a sandbox folder; the work chain's handlers are called directly on parsed nodes. No runner, no daemon.
"""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from aiida import orm
from aiida.common.folders import SandboxFolder
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from ase.build import bulk

from aiida_superionic.engines.mlip.calculation import MlipCalculation
from aiida_superionic.engines.mlip.workchain import MlipBaseWorkChain
from tests.engines.aiida_style import *  # noqa: F403
from tests.engines.aiida_style import RECORDED, recorded_inputs

ENTRY_POINT = 'superionic.mlip'
EXIT = MlipCalculation.exit_codes

#: case -> (exit status, output link labels)
CASES = {
    'relax': (0, {'results', 'structure'}),
    'relax_unconverged': (EXIT.ERROR_RELAX_NOT_CONVERGED.status, {'results', 'structure'}),
    'relax_killed': (EXIT.ERROR_NO_RESULTS.status, set()),
    'elastic': (0, {'results', 'elastic_tensor'}),
    'elastic_unconverged': (EXIT.ERROR_STEP_NOT_CONVERGED.status, {'results', 'elastic_tensor'}),
    'phonon_gamma': (0, {'results', 'phonon', 'force_constants'}),
    'vacancy': (0, {'results', 'vacancy'}),
    'md': (0, {'results', 'trajectory', 'restart'}),
    'md_segment': (EXIT.ERROR_WALLTIME.status, {'results', 'trajectory', 'restart'}),
    'md_continued': (0, {'results', 'trajectory', 'restart'}),
    'md_killed': (EXIT.ERROR_MD_INCOMPLETE.status, {'results', 'trajectory', 'restart'}),
    'error': (EXIT.ERROR_RUNNER.status, {'results'}),
}
TYPES = {
    'results': orm.Dict,
    'structure': orm.StructureData,
    'elastic_tensor': orm.ArrayData,
    'phonon': orm.Dict,
    'force_constants': orm.ArrayData,
    'vacancy': orm.Dict,
    'restart': orm.SinglefileData,
}


def _results_json(case: str) -> dict | None:
    path = RECORDED / case / 'results.json'
    return json.loads(path.read_text()) if path.is_file() else None


@pytest.fixture
def parse_case(fixture_code, generate_calc_job_node):
    """``case -> (results, calcfunction node)``: the parser on a recorded folder (``Parser.parse_from_node``)."""
    from aiida.plugins import ParserFactory

    code = fixture_code()

    def _parse(case: str):
        node, temporary = generate_calc_job_node(ENTRY_POINT, RECORDED / case, recorded_inputs(case, code))
        return ParserFactory(ENTRY_POINT).parse_from_node(
            node, store_provenance=False, retrieved_temporary_folder=str(temporary)
        )

    return _parse


# -- parser -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('case', sorted(CASES))
def test_parser_exit_status_and_outputs(parse_case, case):
    """Each recorded case: its exit code, exactly its output labels, each of the declared type."""
    from aiida_superionic.data import MDTrajectoryData

    status, labels = CASES[case]
    results, calcfunction = parse_case(case)
    assert calcfunction.exit_status == status, calcfunction.exit_message
    assert set(results) == labels
    for label, node in results.items():
        assert isinstance(node, MDTrajectoryData if label == 'trajectory' else TYPES[label]), label


def test_parser_error_status_reports_the_runner_message(parse_case):
    results, calcfunction = parse_case('error')
    recorded = _results_json('error')
    assert recorded['status'] == 'error' and recorded['message']
    assert recorded['message'] in calcfunction.exit_message
    assert results['results'].get_dict() == recorded


@pytest.mark.parametrize(
    'case',
    ['relax', 'relax_unconverged', 'elastic', 'elastic_unconverged', 'phonon_gamma', 'vacancy', 'error'],
)
def test_parser_results_are_the_runner_results_unchanged(parse_case, case):
    results, _ = parse_case(case)
    assert results['results'].get_dict() == _results_json(case)


@pytest.mark.parametrize('case', ['relax', 'relax_unconverged'])
def test_parser_relaxed_structure_is_the_runner_file(parse_case, case):
    results, _ = parse_case(case)
    relaxed = ase.io.read(RECORDED / case / 'relaxed.extxyz', format='extxyz')
    structure = results['structure'].get_ase()
    assert structure.get_chemical_symbols() == relaxed.get_chemical_symbols()
    np.testing.assert_allclose(structure.cell[:], relaxed.cell[:], rtol=0, atol=1e-10)
    np.testing.assert_allclose(structure.positions, relaxed.positions, rtol=0, atol=1e-10)


def test_parser_elastic_tensor_is_the_symmetric_part(parse_case):
    results, _ = parse_case('elastic')
    voigt = np.array(_results_json('elastic')['voigt_GPa'])
    tensor = results['elastic_tensor']
    np.testing.assert_allclose(tensor.get_array('voigt_GPa'), (voigt + voigt.T) / 2, rtol=0, atol=1e-12)
    assert tensor.base.attributes.get('max_asymmetry_GPa') == pytest.approx(np.abs(voigt - voigt.T).max() / 2)


def test_parser_phonon_and_force_constants(parse_case):
    results, _ = parse_case('phonon_gamma')
    recorded = _results_json('phonon_gamma')
    phonon = results['phonon'].get_dict()
    for key in ('gamma_mode_meV', 'frequencies_meV', 'acoustic_meV', 'supercell_matrix', 'n_atoms_primitive'):
        assert phonon[key] == recorded[key], key
    assert set(phonon) <= set(recorded)
    fc = np.load(RECORDED / 'phonon_gamma' / 'force_constants.npy')
    np.testing.assert_array_equal(results['force_constants'].get_array('force_constants'), fc)


def test_parser_vacancy(parse_case):
    results, _ = parse_case('vacancy')
    recorded = _results_json('vacancy')
    vacancy = results['vacancy'].get_dict()
    for key in ('E_vac_eV', 'mu_eV', 'E_perfect_eV', 'E_defect_eV', 'removed_index', 'mobile'):
        assert vacancy[key] == recorded[key], key
    assert vacancy['E_vac_eV'] == pytest.approx(
        recorded['E_defect_eV'] + recorded['mu_eV'] - recorded['E_perfect_eV']
    )


def _frames(case: str) -> np.ndarray:
    """trajectory.f32 read by its documented layout: per frame, positions (N,3) then velocities (N,3)."""
    meta = json.loads((RECORDED / case / 'trajectory.json').read_text())
    data = np.fromfile(RECORDED / case / 'trajectory.f32', dtype='<f4')
    return data.reshape(-1, 2, meta['n_atoms'], 3), meta


def _checkpoint_step(path) -> int:
    with np.load(path) as restart:
        return int(restart['step'])


@pytest.mark.parametrize('case', ['md', 'md_segment', 'md_continued', 'md_killed'])
def test_parser_md_frames_and_checkpoint_are_the_runner_files(parse_case, case):
    results, _ = parse_case(case)
    frames, meta = _frames(case)
    trajectory = results['trajectory']
    assert trajectory.n_frames == len(frames) > 0
    np.testing.assert_array_equal(trajectory.get_positions(), frames[:, 0])
    np.testing.assert_array_equal(trajectory.get_velocities(), frames[:, 1])
    steps = trajectory.get_array('steps')
    assert np.all(np.diff(steps) == meta['frame_interval'])
    assert trajectory.base.attributes.get('last_checkpoint_step') == _checkpoint_step(
        RECORDED / case / 'restart.npz'
    )
    with results['restart'].open(mode='rb') as handle:
        assert handle.read() == (RECORDED / case / 'restart.npz').read_bytes()
    summary = results['results'].get_dict()
    recorded = _results_json(case)
    if recorded is not None:
        assert {k: summary[k] for k in recorded} == recorded
        assert steps[0] == recorded['first_frame_step'] and len(steps) == recorded['n_frames']
    else:
        assert summary['status'] == 'killed'
    assert summary['n_frames_parsed'] == len(frames)
    assert summary['restart_step'] == _checkpoint_step(RECORDED / case / 'restart.npz')


#: The last lines of a job's stderr: a warning of the runner first, then the scheduler's message.
_TIME_LIMIT = 'slurmstepd-localhost: error: *** JOB 7 ON localhost CANCELLED AT 2026-11-28T01:16:23 DUE TO TIME LIMIT ***'
_SCANCEL = 'slurmstepd-localhost: error: *** JOB 8 ON localhost CANCELLED AT 2026-11-28T01:20:05 ***'


@pytest.mark.parametrize(
    ('scheduler', 'message', 'status'),
    [
        ('core.slurm', _TIME_LIMIT, 'walltime'),
        ('core.slurm', _SCANCEL, 'killed'),
        ('core.direct', _TIME_LIMIT, 'killed'),  # the direct scheduler parses no output: no verdict
    ],
)
def test_parser_md_killed_by_the_scheduler_time_limit_is_walltime(
    generate_calc_job_node, monkeypatch, tmp_path, scheduler, message, status
):
    """A killed MD run (no results.json) whose job stderr holds Slurm's time-limit message after other
    lines (aiida-core's check reads the first line only): ERROR_WALLTIME, status ``walltime``; scancel's
    message, or a scheduler that parses no output, leave it ERROR_MD_INCOMPLETE (``killed``)."""
    import shutil
    import uuid

    from aiida.plugins import ParserFactory

    computer = orm.Computer(
        label=f'{scheduler}-{uuid.uuid4().hex[:8]}',
        hostname='localhost',
        transport_type='core.local',
        scheduler_type=scheduler,
        workdir=str(tmp_path / 'work'),
    ).store()
    code = orm.InstalledCode(
        label='mlip', computer=computer, filepath_executable='/bin/true', default_calc_job_plugin=ENTRY_POINT
    ).store()
    folder = tmp_path / 'md_killed'
    shutil.copytree(RECORDED / 'md_killed', folder)
    (folder / '_scheduler-stderr.txt').write_text(f'UserWarning: a warning of the runner\n{message}\n')
    monkeypatch.setattr(MlipCalculation, '_RETRIEVE', (*MlipCalculation._RETRIEVE, '_scheduler-stderr.txt'))
    node, temporary = generate_calc_job_node(ENTRY_POINT, folder, recorded_inputs('md_killed', code))
    results, calc = ParserFactory(ENTRY_POINT).parse_from_node(
        node, store_provenance=False, retrieved_temporary_folder=str(temporary)
    )
    expected = EXIT.ERROR_WALLTIME if status == 'walltime' else EXIT.ERROR_MD_INCOMPLETE
    assert calc.exit_status == expected.status
    assert results['results']['status'] == status
    assert results['results']['restart_step'] == _checkpoint_step(RECORDED / 'md_killed' / 'restart.npz')


def test_parser_md_continuation_records_where_it_started(parse_case):
    results, _ = parse_case('md_continued')
    started = _checkpoint_step(RECORDED / 'md_segment' / 'restart.npz')
    assert results['results']['restart_from_step'] == started
    assert results['trajectory'].base.attributes.get('restart_from_step') == started
    assert results['trajectory'].get_array('steps')[0] > started
    segment, _ = parse_case('md_segment')
    assert segment['results']['restart_step'] == started
    assert segment['results']['restart_from_step'] is None


def test_parser_md_batch_gives_each_run_its_own_files(parse_case):
    """md_batch: per run, replicas.NAME.{trajectory, results, restart} from replicas/NAME; the batch's results
    and checkpoint at the top."""
    results, calcfunction = parse_case('md_batch')
    assert calcfunction.exit_status == 0, calcfunction.exit_message
    recorded = _results_json('md_batch')
    assert set(results) == {'results', 'restart', 'replicas'}
    assert {k: results['results'][k] for k in recorded} == recorded
    with results['restart'].open(mode='rb') as handle:
        assert handle.read() == (RECORDED / 'md_batch' / 'restart.npz').read_bytes()
    assert set(results['replicas']) == set(recorded['replicas']) == {'warm', 'hot'}
    for name, outputs in results['replicas'].items():
        case = f'md_batch/replicas/{name}'
        frames, _ = _frames(case)
        trajectory = outputs['trajectory']
        assert trajectory.temperature_K == recorded['replicas'][name]['temperature_K']
        np.testing.assert_array_equal(trajectory.get_positions(), frames[:, 0])
        np.testing.assert_array_equal(trajectory.get_velocities(), frames[:, 1])
        summary = outputs['results'].get_dict()
        assert {k: summary[k] for k in recorded['replicas'][name]} == recorded['replicas'][name]
        assert summary['n_frames_parsed'] == len(frames) == recorded['replicas'][name]['n_frames']
        with outputs['restart'].open(mode='rb') as handle:
            assert handle.read() == (RECORDED / case / 'restart.npz').read_bytes()
    # the two runs differ (their own temperature and seed), so a swap of folders would show
    assert not np.array_equal(
        results['replicas']['warm']['trajectory'].get_velocities(),
        results['replicas']['hot']['trajectory'].get_velocities(),
    )


# -- CalcJob ------------------------------------------------------------------------------------------------


def _calc_job(generate_calc_job, inputs: dict):
    with SandboxFolder() as folder:
        calc_info = generate_calc_job(folder, ENTRY_POINT, inputs)
        files = {name: folder.get_abs_path(name) for name in folder.get_content_list()}
        contents = {}
        for name, path in files.items():
            try:
                with open(path) as handle:
                    contents[name] = handle.read()
            except IsADirectoryError:
                contents[name] = None
    return calc_info, contents


def test_calcjob_writes_the_runner_inputs(fixture_code, generate_calc_job):
    import io

    code = fixture_code()
    atoms = bulk('LiF', 'rocksalt', a=4.03) * (1, 2, 1)
    atoms.rattle(0.05, seed=3)
    parameters = {
        'task': 'relax',
        'model': 'chgnet-0.3.0',
        'device': 'cpu',
        'seed': 11,
        'settings': {'fmax': 0.02},
    }
    inputs = {'code': code, 'structure': orm.StructureData(ase=atoms), 'parameters': orm.Dict(parameters)}
    calc_info, contents = _calc_job(generate_calc_job, inputs)
    assert sorted(contents) == ['aiida.json', 'structure.extxyz']
    assert json.loads(contents['aiida.json']) == parameters
    written = ase.io.read(io.StringIO(contents['structure.extxyz']), format='extxyz')
    assert written.get_chemical_symbols() == atoms.get_chemical_symbols()
    assert written.pbc.all()
    # extxyz writes 8 decimals: equal to 5e-9 Å
    np.testing.assert_allclose(written.cell[:], atoms.cell[:], rtol=0, atol=5e-9)
    np.testing.assert_allclose(written.positions, atoms.positions, rtol=0, atol=5e-9)
    assert sorted(calc_info.retrieve_list) == sorted(
        ['results.json', 'relaxed.extxyz', 'trajectory.json', 'force_constants.npy', 'runner.out']
    )
    assert sorted(calc_info.retrieve_temporary_list) == ['restart.npz', 'trajectory.f32']
    assert calc_info.local_copy_list == []
    (codeinfo,) = calc_info.codes_info
    assert codeinfo.code_uuid == code.uuid and codeinfo.stdout_name == 'runner.out'
    assert not codeinfo.withmpi


def test_calcjob_copies_the_restart_of_a_continuation(fixture_code, generate_calc_job):
    inputs = recorded_inputs('md_continued', fixture_code())
    restart = inputs['restart']
    calc_info, contents = _calc_job(generate_calc_job, inputs)
    assert json.loads(contents['aiida.json']) == json.loads(
        (RECORDED / 'md_continued' / 'aiida.json').read_text()
    )
    # uploaded by aiida-core from the node's repository, under the name the runner reads
    assert calc_info.local_copy_list == [(restart.uuid, restart.filename, 'restart.npz')]
    assert 'restart.npz' not in contents


def test_calcjob_md_batch_writes_one_file_per_replica(fixture_code, generate_calc_job):
    import io

    code = fixture_code()
    cells = {
        'hot': bulk('LiF', 'rocksalt', a=4.03, cubic=True),
        'cold': bulk('LiF', 'rocksalt', a=4.10, cubic=True),
    }
    runs = [
        {'name': 'hot', 'temperature_K': 1200.0, 'seed': 1},
        {'name': 'cold', 'temperature_K': 600.0, 'seed': 2},
    ]
    parameters = {'task': 'md_batch', 'model': 'chgnet-0.3.0', 'settings': {'n_steps': 10, 'replicas': runs}}
    inputs = {
        'code': code,
        'parameters': orm.Dict(parameters),
        'replicas': {name: orm.StructureData(ase=atoms) for name, atoms in cells.items()},
    }
    calc_info, contents = _calc_job(generate_calc_job, inputs)
    assert sorted(contents) == ['aiida.json', 'replica_cold.extxyz', 'replica_hot.extxyz']
    written = json.loads(contents['aiida.json'])
    assert written['settings']['replicas'] == [
        {**run, 'structure': f'replica_{run["name"]}.extxyz'} for run in runs
    ]
    assert 'structure' not in inputs['parameters']['settings']['replicas'][0]  # the input node is unchanged
    for name, atoms in cells.items():
        replica = ase.io.read(io.StringIO(contents[f'replica_{name}.extxyz']), format='extxyz')
        np.testing.assert_allclose(replica.cell[:], atoms.cell[:], rtol=0, atol=5e-9)
        np.testing.assert_allclose(replica.positions, atoms.positions, rtol=0, atol=5e-9)
        assert (f'replicas/{name}/results.json', '.', 3) in calc_info.retrieve_list
        assert (f'replicas/{name}/trajectory.json', '.', 3) in calc_info.retrieve_list
        assert (f'replicas/{name}/trajectory.f32', '.', 3) in calc_info.retrieve_temporary_list
        assert (f'replicas/{name}/restart.npz', '.', 3) in calc_info.retrieve_temporary_list
    assert 'results.json' in calc_info.retrieve_list and 'restart.npz' in calc_info.retrieve_temporary_list


# -- handlers -----------------------------------------------------------------------------------------------


@pytest.fixture
def failed_node(fixture_code, generate_calc_job_node, parse_calc_job_node):
    """``case -> (code, finished CalcJobNode)``: a recorded case parsed onto its node."""
    code = fixture_code()

    def _failed(case: str):
        node, temporary = generate_calc_job_node(ENTRY_POINT, RECORDED / case, recorded_inputs(case, code))
        return code, parse_calc_job_node(node, temporary)

    return _failed


def _workchain(code, case: str) -> MlipBaseWorkChain:
    """MlipBaseWorkChain on the inputs of a recorded case, set up as its outline's first step."""
    inputs = recorded_inputs(case, code)
    inputs.pop('restart', None)
    process = instantiate_process(get_manager().get_runner(), MlipBaseWorkChain, mlip=inputs)
    process.setup()
    return process


def test_handler_relax_unconverged_continues_from_the_last_structure(failed_node):
    code, node = failed_node('relax_unconverged')
    assert node.exit_status == EXIT.ERROR_RELAX_NOT_CONVERGED.status
    process = _workchain(code, 'relax_unconverged')
    before = process.ctx.inputs.parameters.get_dict()
    report = process.handle_relax_unconverged(node)
    assert report.do_break and report.exit_code.status == 0
    assert process.ctx.inputs.structure.uuid == node.outputs.structure.uuid
    assert process.ctx.inputs.parameters.get_dict() == before


def test_handler_step_unconverged_doubles_max_steps(failed_node):
    parameters = json.loads((RECORDED / 'elastic_unconverged' / 'aiida.json').read_text())
    code, node = failed_node('elastic_unconverged')
    assert node.exit_status == EXIT.ERROR_STEP_NOT_CONVERGED.status
    process = _workchain(code, 'elastic_unconverged')
    structure = process.ctx.inputs.structure
    report = process.handle_step_unconverged(node)
    assert report.do_break and report.exit_code.status == 0
    settings = process.ctx.inputs.parameters['settings']
    assert settings['max_steps'] == 2 * parameters['settings']['max_steps']
    assert {k: v for k, v in settings.items() if k != 'max_steps'} == {
        k: v for k, v in parameters['settings'].items() if k != 'max_steps'
    }
    assert process.ctx.inputs.structure is structure


def test_handler_md_interrupted_continues_from_the_parsed_checkpoint(failed_node):
    code, node = failed_node('md_segment')
    assert node.exit_status == EXIT.ERROR_WALLTIME.status
    process = _workchain(code, 'md_segment')
    report = process.handle_md_interrupted(node)
    assert report.do_break and report.exit_code.status == 0
    assert process.ctx.inputs.restart.uuid == node.outputs.restart.uuid
    assert [t.uuid for t in process.ctx.segments] == [node.outputs.trajectory.uuid]
    assert not process.ctx.get('md_complete')


def test_handler_md_killed_is_dispatched_by_inspect_process(failed_node):
    """The killed run (400, no results.json, a checkpoint after step 0): inspect_process continues it."""
    code, node = failed_node('md_killed')
    assert node.exit_status == EXIT.ERROR_MD_INCOMPLETE.status
    process = _workchain(code, 'md_killed')
    process.ctx.iteration = 1
    process.ctx.children = [node]
    assert process.inspect_process() is None
    assert process.ctx.inputs.restart.uuid == node.outputs.restart.uuid
    assert process.ctx.continuations == 1
