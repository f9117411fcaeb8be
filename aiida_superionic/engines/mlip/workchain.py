"""``superionic.mlip.base``: the MLIP CalcJob with restarts (BaseRestartWorkChain style).

Handlers: an MD segment that was killed or reached its wall time continues from its last checkpoint
(positions + velocities + thermostat state) and the segments are stitched into one trajectory; an MD
run that blew up restarts from scratch with half the time step; a relaxation that did not converge
continues from its last structure.

``max_iterations`` is a budget for failures, not for queue slots: an MD segment that stopped *after
advancing the run* (its checkpoint is at a later step than the one it started from) is continued
without using up an iteration, so a long run may take as many segments as it needs. A segment that
stopped without advancing counts like any other failure, which bounds a loop that makes no progress.

Task ``md_batch`` (several MD runs in one job, ``md.batch``) goes through the same loop: a batch stopped by
its wall time / ``segment_steps`` or killed continues from its batch checkpoint, and each run's segments are
stitched into its own trajectory (outputs ``replicas.NAME.{trajectory, results, restart}``). A run that
blew up stays stopped in the batch (the others go on); a batch that ends with a blown-up run is not
restarted with a smaller time step (that would change every run): it fails with ``ERROR_BATCH_UNSTABLE``.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_

from ...calculations.functions import stitch_segments
from ...resubmit import submit_once
from ..builders import EngineStepBuilder
from ..contract import declare_outputs
from .calculation import MlipCalculation
from .fileformat import MD_BATCH_TASK

#: Smallest MD time step the unstable-run handler will go down to, fs.
MIN_TIMESTEP_FS = 0.25


def _advanced_md_segment(node) -> bool:
    """Whether ``node`` is an MD segment that stopped (killed, wall time, ``segment_steps``) with a
    checkpoint at a later step than the one it started from: continuing it is progress, not a retry."""
    if node.exit_status not in (
        MlipCalculation.exit_codes.ERROR_MD_INCOMPLETE.status,
        MlipCalculation.exit_codes.ERROR_WALLTIME.status,
    ):
        return False
    if 'results' not in node.outputs or 'restart' not in node.outputs:
        return False
    results = node.outputs.results
    reached, started = results.get('restart_step'), results.get('restart_from_step')
    return reached is not None and int(reached) > int(started or 0)


class MlipBaseWorkChain(EngineStepBuilder, BaseRestartWorkChain):
    """Run ``superionic.mlip`` until it succeeds or the handlers give up."""

    _process_class = MlipCalculation
    _protocol_engine = 'mlip'  # get_builder_from_protocol: see ..builders

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(MlipCalculation, namespace='mlip')
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(cls.run_process, cls.inspect_process),
            cls.results,
        )
        declare_outputs(spec, ('results',))
        declare_outputs(
            spec,
            ('structure', 'elastic_tensor', 'phonon', 'force_constants', 'vacancy', 'trajectory'),
            required=False,
        )
        spec.exit_code(
            350, 'ERROR_MD_GAVE_UP', message='the MD run stays unstable down to a {timestep} fs time step'
        )
        spec.output_namespace(
            'replicas',
            valid_type=orm.Data,
            dynamic=True,
            required=False,
            help='md_batch: per run, replicas.NAME.{trajectory (all segments stitched), results, restart}.',
        )
        spec.exit_code(351, 'ERROR_STITCHING', message='the MD segments could not be stitched: {message}')
        spec.exit_code(
            352,
            'ERROR_BATCH_UNSTABLE',
            message='an MD run of the batch blew up ({message}); a batch is not restarted with a smaller time '
            'step: run the material with md.batch false',
        )

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(MlipCalculation, 'mlip'))
        self.ctx.segments = []
        #: md_batch: each run's trajectories of the finished segments, by run name
        self.ctx.batch_segments = {}
        #: MD continuations that advanced the run: not failures, not counted against ``max_iterations``
        self.ctx.continuations = 0

    def submit(self, process, inputs=None, **kwargs):
        """aiida-core's ``run_process`` submits each job under call-link ``iteration_NN``; through
        :func:`~aiida_superionic.resubmit.submit_once`, so that the step replayed after a daemon
        kill between the submission and the checkpoint reuses the job instead of submitting a second one."""
        inputs = {**(inputs or {}), **kwargs}
        label = inputs.get('metadata', {}).get('call_link_label')
        if label is None:
            return super().submit(process, **inputs)
        return submit_once(self, label, process, **inputs)

    def inspect_process(self):
        """As aiida-core's, except that an MD segment which advanced the run is continued without using up
        the failure budget (``max_iterations``): aiida-core counts every iteration, queue slots included."""
        node = self.ctx.children[self.ctx.iteration - 1]
        enabled = {handler.__name__ for _, handler in self.get_process_handlers_by_priority()}
        if 'handle_md_interrupted' in enabled and _advanced_md_segment(node):
            self.handle_md_interrupted(node)
            self.ctx.continuations += 1
            self.ctx.unhandled_failure = False
            return None
        free = self.ctx.get('continuations', 0)
        if not free:
            return super().inspect_process()
        # aiida-core compares ctx.iteration with max_iterations and reads the node as
        # ctx.children[ctx.iteration - 1]: show it only the iterations that count (within this step; the
        # context is restored before the next checkpoint)
        iteration, children = self.ctx.iteration, self.ctx.children
        self.ctx.iteration, self.ctx.children = iteration - free, children[free:]
        try:
            return super().inspect_process()
        finally:
            self.ctx.iteration, self.ctx.children = iteration, children

    def _task(self) -> str:
        return self.ctx.inputs.parameters['task']

    def results(self):
        node = self.ctx.children[self.ctx.iteration - 1]
        complete = self._task() in ('md', MD_BATCH_TASK) and self.ctx.get('md_complete') == node.pk
        if not node.is_finished_ok and not complete:
            return super().results()  # reports the failure and returns the right exit code
        if self._task() == MD_BATCH_TASK:
            return self._batch_results(node, complete)
        if self._task() != 'md':
            for name in ('results', 'structure', 'elastic_tensor', 'phonon', 'force_constants', 'vacancy'):
                if name in node.outputs:
                    self.out(name, node.outputs[name])
            return None
        # a run completed by a stopped segment: that segment's trajectory is already the last one
        segments = [*self.ctx.segments] if complete else [*self.ctx.segments, node.outputs.trajectory]
        try:
            trajectory = stitch_segments(segments)
        except Exception as exc:  # the calcfunction raised: report it as an exit code
            return self.exit_codes.ERROR_STITCHING.format(message=str(exc))
        self.out('trajectory', trajectory)
        self.out('results', node.outputs.results)
        self.report(f'MD finished: {trajectory.n_frames} frames from {len(segments)} segment(s)')
        return None

    def _batch_results(self, node, complete: bool):
        """Each run of the batch: its segments stitched into one trajectory, its last results and restart."""
        segments = {name: list(trajs) for name, trajs in self.ctx.batch_segments.items()}
        if not complete:
            _add_batch_segments(segments, node, _batch_names(self.ctx.inputs.parameters))
        stitched = {}
        for name in _batch_names(self.ctx.inputs.parameters):
            if not segments.get(name):
                return self.exit_codes.ERROR_STITCHING.format(message=f'run {name} has no frame')
            try:
                stitched[name] = stitch_segments(segments[name])
            except Exception as exc:  # the calcfunction raised: report it as an exit code
                return self.exit_codes.ERROR_STITCHING.format(message=f'run {name}: {exc}')
        replicas = node.outputs.replicas if 'replicas' in node.outputs else {}
        for name, trajectory in stitched.items():
            self.out(f'replicas.{name}.trajectory', trajectory)
            for port, output in (replicas.get(name) or {}).items():
                if port in ('results', 'restart'):
                    self.out(f'replicas.{name}.{port}', output)
        self.out('results', node.outputs.results)
        n_segments = max(len(s) for s in segments.values())
        self.report(f'MD batch finished: {len(stitched)} runs from {n_segments} segment(s)')
        return None

    @process_handler(
        priority=600,
        exit_codes=[
            MlipCalculation.exit_codes.ERROR_MD_INCOMPLETE,
            MlipCalculation.exit_codes.ERROR_WALLTIME,
        ],
    )
    def handle_md_interrupted(self, node):
        """Continue an interrupted MD segment from its last checkpoint; if that checkpoint is the run's
        last step, the run is complete (only its results file is missing) and ends with its frames."""
        if self._task() == MD_BATCH_TASK:
            segments = {name: list(trajs) for name, trajs in self.ctx.batch_segments.items()}
            _add_batch_segments(segments, node, _batch_names(self.ctx.inputs.parameters))
            self.ctx.batch_segments = segments
        elif 'trajectory' in node.outputs:
            self.ctx.segments.append(node.outputs.trajectory)
        step = node.outputs.results['restart_step']
        n_steps = int(self.ctx.inputs.parameters['settings']['n_steps'])
        if step is not None and int(step) >= n_steps:
            # A continuation from here has no step left to run: it would end 'ok' with no frame, which the
            # parser reports as incomplete at the same step, and the chain would repeat it until
            # max_iterations. Every step and frame of the run is in the segments: finish with them.
            self.ctx.md_complete = node.pk
            self.ctx.is_finished = True
            self.report(
                f'{node.process_label}<{node.pk}> stopped after writing its checkpoint at the last step '
                f'({step} of {n_steps}): the run is complete'
            )
            return ProcessHandlerReport(do_break=True)
        self.ctx.inputs.restart = node.outputs.restart
        self.report(
            f'{node.process_label}<{node.pk}> stopped at step {node.outputs.results["restart_step"]}: continuing'
        )
        return ProcessHandlerReport(do_break=True)

    @process_handler(priority=590, exit_codes=MlipCalculation.exit_codes.ERROR_MD_UNSTABLE)
    def handle_md_unstable(self, node):
        """Start the MD again with half the time step (and the same number of picoseconds). Not for a batch:
        its other runs did not blow up, and their trajectories would change."""
        if self._task() == MD_BATCH_TASK:
            message = node.outputs.results.get('message', '') if 'results' in node.outputs else ''
            return ProcessHandlerReport(True, self.exit_codes.ERROR_BATCH_UNSTABLE.format(message=message))
        params = self.ctx.inputs.parameters.get_dict()
        settings = params['settings']
        dt = float(settings.get('timestep_fs', 2.0))
        if dt / 2 < MIN_TIMESTEP_FS:
            return ProcessHandlerReport(True, self.exit_codes.ERROR_MD_GAVE_UP.format(timestep=dt))
        settings['timestep_fs'] = dt / 2
        settings['n_steps'] = int(settings['n_steps']) * 2
        settings['frame_interval'] = int(settings.get('frame_interval', 1)) * 2
        self.ctx.inputs.parameters = orm.Dict(params)
        self.ctx.inputs.pop('restart', None)
        self.ctx.segments = []
        self.report(f'{node.process_label}<{node.pk}> blew up: restarting with a {dt / 2:g} fs time step')
        return ProcessHandlerReport(do_break=True)

    @process_handler(priority=570, exit_codes=MlipCalculation.exit_codes.ERROR_STEP_NOT_CONVERGED)
    def handle_step_unconverged(self, node):
        """Elastic or vacancy relaxations that ran out of steps: try again with twice the steps."""
        params = self.ctx.inputs.parameters.get_dict()
        settings = params['settings']
        settings['max_steps'] = int(settings.get('max_steps', 200)) * 2
        self.ctx.inputs.parameters = orm.Dict(params)
        self.report(
            f'{node.process_label}<{node.pk}> did not converge: retrying with max_steps {settings["max_steps"]}'
        )
        return ProcessHandlerReport(do_break=True)

    @process_handler(priority=580, exit_codes=MlipCalculation.exit_codes.ERROR_RELAX_NOT_CONVERGED)
    def handle_relax_unconverged(self, node):
        """Continue the relaxation from its last structure."""
        self.ctx.inputs.structure = node.outputs.structure
        self.report(f'{node.process_label}<{node.pk}> did not converge: continuing from its last structure')
        return ProcessHandlerReport(do_break=True)


def _batch_names(parameters) -> list[str]:
    """The run names of an ``md_batch`` job's ``parameters``, in the batch's order."""
    return [spec['name'] for spec in parameters['settings']['replicas']]


def _add_batch_segments(segments: dict, node, names: list[str]) -> None:
    """Append each run's trajectory of the ``md_batch`` job ``node`` to ``segments`` (run name -> list); a
    run without frames in this job (it blew up in an earlier segment) gets none."""
    replicas = node.outputs.replicas if 'replicas' in node.outputs else {}
    for name in names:
        outputs = replicas.get(name)  # an AttributeDict of the run's outputs
        if outputs is not None and 'trajectory' in outputs:
            segments.setdefault(name, []).append(outputs['trajectory'])
