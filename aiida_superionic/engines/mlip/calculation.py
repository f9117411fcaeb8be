"""``superionic.mlip``: the CalcJob that runs the MLIP runner on any AiiDA computer."""

from __future__ import annotations

import io
import json

from aiida import orm
from aiida.common.datastructures import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from ...data import MDTrajectoryData
from .fileformat import (
    FORCE_CONSTANTS_FILE,
    INPUT_FILE,
    MD_BATCH_TASK,
    RELAXED_FILE,
    REPLICAS_DIR,
    RESTART_FILE,
    RESULTS_FILE,
    STDOUT_FILE,
    STRUCTURE_FILE,
    TASKS,
    TRAJECTORY_FILE,
    TRAJECTORY_META_FILE,
)


def _validate_parameters(value: orm.Dict, _) -> str | None:
    params = value.get_dict()
    if params.get('task') not in (*TASKS, MD_BATCH_TASK):
        return (
            f'parameters.task must be one of {", ".join((*TASKS, MD_BATCH_TASK))}, got {params.get("task")!r}'
        )
    unknown = set(params) - {'task', 'model', 'device', 'seed', 'settings'}
    if unknown:
        return f'unknown keys in parameters: {", ".join(sorted(unknown))}'
    return None


def _validate_inputs(inputs, _) -> str | None:
    """Task ``md_batch`` takes ``replicas`` (one structure per run, named as in ``settings.replicas``)
    and no ``structure``; every other task takes ``structure`` and no ``replicas``."""
    if 'parameters' not in inputs:
        return None
    params = inputs['parameters'].get_dict()
    replicas = dict(inputs.get('replicas') or {})
    if params.get('task') != MD_BATCH_TASK:
        if replicas:
            return f'replicas are for task md_batch only, not {params.get("task")!r}'
        if 'structure' not in inputs:
            return f'task {params.get("task")!r} needs a structure'
        return None
    if 'structure' in inputs:
        return 'task md_batch takes its structures in the replicas namespace, not structure'
    specs = (params.get('settings') or {}).get('replicas')
    if not isinstance(specs, list) or not specs or not all(isinstance(x, dict) for x in specs):
        return 'task md_batch needs parameters.settings.replicas: a list of {name, temperature_K, seed}'
    names = [x.get('name') for x in specs]
    if sorted(map(str, names)) != sorted(replicas) or len(set(names)) != len(names):
        return f'parameters.settings.replicas names {names} must be the replicas inputs {sorted(replicas)}'
    if any('structure' in x for x in specs):
        return 'parameters.settings.replicas: leave out structure (the replicas inputs give it)'
    return None


class MlipCalculation(CalcJob):
    """Run one task of the ``aiida-superionic-mlip`` runner (ASE + a universal ML potential).

    The code is an ``InstalledCode`` pointing to the runner (``aiida-superionic setup`` makes
    ``mlip@localhost``; on a GPU cluster, the runner of the package installed there). Inputs are
    written as ``aiida.json`` + ``structure.extxyz``; an MD continuation also gets ``restart.npz``.
    The (possibly large) MD frames are retrieved temporarily: the parser turns them into a trajectory
    node, so they are stored once.

    Task ``md_batch`` (several MD runs, one batched model call per step) takes its structures in the
    ``replicas`` namespace instead, one per run, named as the runs of ``parameters.settings.replicas``
    (``{name, temperature_K, seed}``); each is written as ``replica_NAME.extxyz``. Its outputs are per run,
    ``replicas.NAME.{trajectory, results, restart}``, as those of task ``md``, plus the batch's ``results``
    and ``restart`` (the batch checkpoint, which the ``restart`` input takes back).
    """

    _DEFAULT_OUTPUT_FILE = STDOUT_FILE
    _RETRIEVE = (RESULTS_FILE, RELAXED_FILE, TRAJECTORY_META_FILE, FORCE_CONSTANTS_FILE, STDOUT_FILE)
    _RETRIEVE_TEMPORARY = (TRAJECTORY_FILE, RESTART_FILE)

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            'structure',
            valid_type=orm.StructureData,
            required=False,
            help='The crystal (or MD cell); every task but md_batch.',
        )
        spec.input_namespace(
            'replicas',
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help='md_batch: the MD cell of each run, by run name (parameters.settings.replicas).',
        )
        spec.inputs.validator = _validate_inputs
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            validator=_validate_parameters,
            help='{task, model, device, seed, settings}: see the runner.',
        )
        spec.input(
            'restart',
            valid_type=orm.SinglefileData,
            required=False,
            help='restart.npz of an MD segment (md_batch: the batch checkpoint).',
        )
        spec.inputs['metadata']['options']['resources'].default = {
            'num_machines': 1,
            'num_mpiprocs_per_machine': 1,
        }
        spec.inputs['metadata']['options']['parser_name'].default = 'superionic.mlip'
        spec.inputs['metadata']['options']['withmpi'].default = False

        spec.output('results', valid_type=orm.Dict, help='Everything the runner reports (units in the keys).')
        spec.output(
            'structure', valid_type=orm.StructureData, required=False, help='relax: the relaxed crystal.'
        )
        spec.output('elastic_tensor', valid_type=orm.ArrayData, required=False, help='elastic: voigt_GPa.')
        spec.output('phonon', valid_type=orm.Dict, required=False, help='phonon_gamma: Γ frequencies (meV).')
        spec.output(
            'force_constants', valid_type=orm.ArrayData, required=False, help='phonon_gamma: phonopy FCs.'
        )
        spec.output(
            'vacancy', valid_type=orm.Dict, required=False, help='vacancy: E_vac_eV and its reference.'
        )
        spec.output(
            'trajectory', valid_type=MDTrajectoryData, required=False, help='md: the frames of this segment.'
        )
        spec.output('restart', valid_type=orm.SinglefileData, required=False, help='md: continue from here.')
        spec.output_namespace(
            'replicas',
            valid_type=orm.Data,
            dynamic=True,
            required=False,
            help="md_batch: per run, task md's outputs: replicas.NAME.{trajectory, results, restart}.",
        )

        spec.exit_code(
            300, 'ERROR_NO_RESULTS', message='the runner wrote no results.json: it crashed or was killed'
        )
        spec.exit_code(301, 'ERROR_RUNNER', message='the runner failed: {message}')
        spec.exit_code(
            302, 'ERROR_OUTPUT_MISSING', message='the runner reported success but {filename} is missing'
        )
        spec.exit_code(
            400, 'ERROR_MD_INCOMPLETE', message='the MD segment stopped early (killed?) at step {step}'
        )
        spec.exit_code(401, 'ERROR_WALLTIME', message='the MD segment reached its wall time at step {step}')
        spec.exit_code(410, 'ERROR_RELAX_NOT_CONVERGED', message='the relaxation did not converge: {message}')
        spec.exit_code(
            411,
            'ERROR_STEP_NOT_CONVERGED',
            message='an ionic relaxation inside the task did not converge: {message}',
        )
        spec.exit_code(420, 'ERROR_MD_UNSTABLE', message='the MD run blew up: {message}')

    def prepare_for_submission(self, folder):
        params = self.inputs.parameters.get_dict()
        if params['task'] == MD_BATCH_TASK:
            structures = {f'replica_{name}.extxyz': s for name, s in self.inputs.replicas.items()}
            for spec in params['settings']['replicas']:
                spec['structure'] = f'replica_{spec["name"]}.extxyz'
        else:
            structures = {STRUCTURE_FILE: self.inputs.structure}
        with folder.open(INPUT_FILE, 'w') as handle:
            json.dump(params, handle, indent=2)
        for filename, structure in structures.items():
            buffer = io.StringIO()
            structure.get_ase().write(buffer, format='extxyz')
            with folder.open(filename, 'w') as handle:
                handle.write(buffer.getvalue())

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.stdout_name = self._DEFAULT_OUTPUT_FILE
        codeinfo.withmpi = self.inputs.metadata.options.withmpi

        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = []
        if 'restart' in self.inputs:
            restart = self.inputs.restart
            calcinfo.local_copy_list.append((restart.uuid, restart.filename, RESTART_FILE))
        calcinfo.retrieve_list = list(self._RETRIEVE)
        calcinfo.retrieve_temporary_list = list(self._RETRIEVE_TEMPORARY)
        if params['task'] == MD_BATCH_TASK:  # replicas/NAME/FILE, kept at that path (depth 3)
            for name in self.inputs.replicas:
                folder_name = f'{REPLICAS_DIR}/{name}'
                calcinfo.retrieve_list += [
                    (f'{folder_name}/{f}', '.', 3) for f in self._RETRIEVE if 'json' in f
                ]
                calcinfo.retrieve_temporary_list += [
                    (f'{folder_name}/{f}', '.', 3) for f in self._RETRIEVE_TEMPORARY
                ]
        return calcinfo
