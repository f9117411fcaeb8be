"""The restart logic of ``superionic.mlip.base`` (MlipBaseWorkChain), handler by handler, in the AiiDA style:
the work chain is instantiated, its context is given the CalcJob nodes a run would have produced (finished
with the exit code and outputs the parser gives), and ``inspect_process`` is called as the outline would."""

from __future__ import annotations

import io

import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from ase.build import bulk
from plumpy import ProcessState

from aiida_superionic.engines.contract import get_engine
from aiida_superionic.engines.mlip.calculation import MlipCalculation
from aiida_superionic.engines.mlip.workchain import MlipBaseWorkChain

EXIT = MlipCalculation.exit_codes


@pytest.fixture
def code(aiida_localhost):
    return orm.InstalledCode(
        label='true',
        computer=aiida_localhost,
        filepath_executable='/bin/true',
        default_calc_job_plugin='superionic.mlip',
    ).store()


def _workchain(code, max_iterations: int, n_steps: int = 100_000) -> MlipBaseWorkChain:
    engine = get_engine('mlip')
    cell = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.08, cubic=True))
    settings = engine.protocol('precise', {'md': {'n_steps': n_steps}})
    builder = engine.get_builder('md', cell, code, settings, temperature_K=900)
    builder.max_iterations = orm.Int(max_iterations)
    process = instantiate_process(get_manager().get_runner(), builder)
    process.setup()
    return process


def _calcjob(code, exit_status: int, results: dict, restart: bool = True, extra=None) -> orm.CalcJobNode:
    """A finished MLIP CalcJob as the parser leaves it: exit status, ``results``, ``restart`` and ``extra``
    outputs (label: node)."""
    node = orm.CalcJobNode(computer=code.computer, process_type='aiida.calculations:superionic.mlip')
    node.set_process_label('MlipCalculation')
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_status)
    node.store()
    outputs = {'results': orm.Dict(results), **(extra or {})}
    if restart:
        outputs['restart'] = orm.SinglefileData(io.BytesIO(b'checkpoint'), filename='restart.npz')
    for label, output in outputs.items():
        output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
        output.store()
    node.seal()
    return node


def _segment(code, start: int | None, stop: int, exit_status: int = EXIT.ERROR_WALLTIME.status):
    status = 'walltime' if exit_status == EXIT.ERROR_WALLTIME.status else 'killed'
    return _calcjob(code, exit_status, {'status': status, 'restart_from_step': start, 'restart_step': stop})


def _restarts(result) -> bool:
    """inspect_process asked for another iteration (aiida-core: None or a zero exit code)."""
    return result is None or result.status == 0


def _inspect(process: MlipBaseWorkChain, node: orm.CalcJobNode):
    """One turn of the outline: run_process has launched ``node``, inspect_process looks at it."""
    process.ctx.iteration += 1
    process.ctx.children = [*process.ctx.get('children', []), node]
    return process.inspect_process()


def test_segments_that_advance_the_run_do_not_use_up_max_iterations(code):
    """A precise-protocol run (100k steps) in 25 queue slots of 4,000 steps each, with max_iterations 10:
    every slot advanced the run, so every one is continued (aiida-core alone stops it at the 10th)."""
    process = _workchain(code, max_iterations=10)
    start = None
    for stop in range(4000, 100_000, 4000):
        result = _inspect(process, _segment(code, start, stop))
        assert _restarts(result), (stop, result)
        assert process.ctx.inputs.restart.uuid == process.ctx.children[-1].outputs.restart.uuid
        start = stop
    assert process.ctx.continuations == 24
    assert not process.ctx.is_finished  # should_run_process: the next slot is launched
    # killed (not out of wall time) with progress is a continuation too
    result = _inspect(process, _segment(code, start, start + 10, EXIT.ERROR_MD_INCOMPLETE.status))
    assert _restarts(result) and process.ctx.continuations == 25


def test_segments_without_progress_are_failures_bounded_by_max_iterations(code):
    """A segment that stops where it started (a wall time too short for one step, a job killed before
    its first new checkpoint) does not advance the run: those count, and the 3rd of 3 ends the loop."""
    process = _workchain(code, max_iterations=3)
    assert _restarts(_inspect(process, _segment(code, None, 400)))  # progress: free
    assert _restarts(_inspect(process, _segment(code, 400, 400)))  # no progress: 1 of 3
    assert _restarts(_inspect(process, _segment(code, 400, 400)))  # 2 of 3
    result = _inspect(process, _segment(code, 400, 400))  # 3 of 3
    assert result == MlipBaseWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED
    # a fresh start stopped at step 0 made no progress either
    fresh = _workchain(code, max_iterations=1)
    assert (
        _inspect(fresh, _segment(code, None, 0))
        == MlipBaseWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED
    )


def test_failures_after_many_continuations_still_have_their_budget(code):
    """After 12 continuations, an MD run that blows up is restarted with half the time step (a failure:
    1 of max_iterations 2), and a second blow-up ends it: the continuations did not use up the budget."""
    process = _workchain(code, max_iterations=2)
    start = None
    for stop in range(1000, 13_000, 1000):
        assert _restarts(_inspect(process, _segment(code, start, stop)))
        start = stop
    unstable = {
        'status': 'unstable',
        'message': 'T = 9000 K',
        'restart_step': None,
        'restart_from_step': start,
    }
    result = _inspect(process, _calcjob(code, EXIT.ERROR_MD_UNSTABLE.status, unstable, restart=False))
    assert _restarts(result)
    settings = process.ctx.inputs.parameters['settings']
    assert settings['timestep_fs'] == 0.75 and settings['n_steps'] == 200_000  # precise: 1.5 fs
    assert 'restart' not in process.ctx.inputs and process.ctx.segments == []
    result = _inspect(process, _calcjob(code, EXIT.ERROR_MD_UNSTABLE.status, unstable, restart=False))
    assert result == MlipBaseWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED
    assert process.ctx.iteration == 14 and len(process.ctx.children) == 14  # the context is left whole


def test_a_disabled_continuation_handler_is_respected(code):
    """``handler_overrides`` switching the continuation off: a stopped segment is an unhandled failure."""
    engine = get_engine('mlip')
    cell = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.08, cubic=True))
    builder = engine.get_builder('md', cell, code, engine.protocol('fast'), temperature_K=900)
    builder.handler_overrides = orm.Dict({'handle_md_interrupted': {'enabled': False}})
    process = instantiate_process(get_manager().get_runner(), builder)
    process.setup()
    assert (
        _inspect(process, _segment(code, None, 200)) == MlipBaseWorkChain.exit_codes.ERROR_UNHANDLED_FAILURE
    )


def test_a_segment_stopped_after_its_last_checkpoint_completes_the_run(code):
    """A segment whose checkpoint is at the run's last step (every step done; only results.json missing,
    e.g. the job ended before the runner wrote it) completes the run. Before, the chain continued it: the
    continuation has no step left, ends 'ok' without a frame, which the parser reports as incomplete at the
    same step, and the chain repeated that until max_iterations ("MD at 1500 K ... maximum number of
    iterations exceeded")."""
    process = _workchain(code, max_iterations=10, n_steps=200)
    killed = _segment(code, None, 200, EXIT.ERROR_MD_INCOMPLETE.status)
    _inspect(process, killed)
    assert process.ctx.is_finished and not process.should_run_process()
    assert process.ctx.md_complete == killed.pk and 'restart' not in process.ctx.inputs
    # a segment stopped before the last step is continued as before
    process = _workchain(code, max_iterations=10, n_steps=200)
    _inspect(process, _segment(code, None, 120, EXIT.ERROR_MD_INCOMPLETE.status))
    assert not process.ctx.is_finished and process.should_run_process()


def _batch_workchain(code, max_iterations: int, n_steps: int = 100_000) -> MlipBaseWorkChain:
    """``superionic.mlip.base`` of a two-run ``md_batch`` (``md.batch``)."""
    engine = get_engine('mlip')
    cell = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.08, cubic=True))
    settings = engine.protocol('precise', {'md': {'n_steps': n_steps}})
    builder = engine.get_md_batch_builder(
        {'a_T600': (cell, 600.0, 0), 'b_T900': (cell, 900.0, 1)}, code, settings
    )
    builder.max_iterations = orm.Int(max_iterations)
    process = instantiate_process(get_manager().get_runner(), builder)
    process.setup()
    return process


def _batch_job(code, exit_status: int, results: dict, runs=('a_T600', 'b_T900')) -> orm.CalcJobNode:
    # stand-ins for the runs' trajectories of this segment
    step = int(results.get('restart_step') or 0)
    extra = {f'replicas__{name}__trajectory': orm.Int(step) for name in runs}
    return _calcjob(code, exit_status, results, restart=results.get('restart_step') is not None, extra=extra)


def test_batch_segments_are_continued_and_collected_per_run(code):
    """A batch in slots of 4,000 steps with max_iterations 2: every slot that advanced is continued from its
    batch checkpoint for free, and each run's trajectories are collected in order, per run; a run that blew
    up in an earlier slot (no frames in the later ones) keeps only its own."""
    process = _batch_workchain(code, max_iterations=2)
    start = None
    for stop in range(4000, 20_000, 4000):
        runs = ('a_T600', 'b_T900') if stop < 12_000 else ('a_T600',)  # b_T900 blew up before 12,000
        node = _batch_job(
            code,
            EXIT.ERROR_WALLTIME.status,
            {'status': 'walltime', 'restart_from_step': start, 'restart_step': stop},
            runs,
        )
        assert _restarts(_inspect(process, node)), stop
        assert process.ctx.inputs.restart.uuid == node.outputs.restart.uuid
        start = stop
    assert process.ctx.continuations == 4 and not process.ctx.is_finished
    segments = process.ctx.batch_segments
    assert [t.value for t in segments['a_T600']] == [4000, 8000, 12_000, 16_000]
    assert [t.value for t in segments['b_T900']] == [4000, 8000]


def test_an_unstable_batch_is_not_restarted_with_a_smaller_time_step(code):
    """A run of the batch blew up: the single-run handler would halve the time step of the whole batch (and
    change the runs that were fine); the batch chain ends with ERROR_BATCH_UNSTABLE instead."""
    process = _batch_workchain(code, max_iterations=5)
    unstable = {
        'status': 'unstable',
        'message': 'b_T900: T = 9000 K',
        'restart_step': 400,
        'restart_from_step': None,
    }
    result = _inspect(process, _batch_job(code, EXIT.ERROR_MD_UNSTABLE.status, unstable))
    assert result.status == MlipBaseWorkChain.exit_codes.ERROR_BATCH_UNSTABLE.status
    assert 'b_T900: T = 9000 K' in result.message
    assert process.ctx.inputs.parameters['settings']['timestep_fs'] == 1.5  # unchanged
