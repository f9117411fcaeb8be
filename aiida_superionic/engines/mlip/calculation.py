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
    RELAXED_FILE,
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
    if params.get('task') not in TASKS:
        return f'parameters.task must be one of {", ".join(TASKS)}, got {params.get("task")!r}'
    unknown = set(params) - {'task', 'model', 'device', 'seed', 'settings'}
    if unknown:
        return f'unknown keys in parameters: {", ".join(sorted(unknown))}'
    return None


class MlipCalculation(CalcJob):
    """Run one task of the ``aiida-superionic-mlip`` runner (ASE + a universal ML potential).

    The code is an ``InstalledCode`` pointing to the runner (``aiida-superionic setup`` makes
    ``mlip@localhost``; on a GPU cluster, the runner of the package installed there). Inputs are
    written as ``aiida.json`` + ``structure.extxyz``; an MD continuation also gets ``restart.npz``.
    The (possibly large) MD frames are retrieved temporarily: the parser turns them into a trajectory
    node, so they are stored once.
    """

    _DEFAULT_OUTPUT_FILE = STDOUT_FILE
    _RETRIEVE = (RESULTS_FILE, RELAXED_FILE, TRAJECTORY_META_FILE, FORCE_CONSTANTS_FILE, STDOUT_FILE)
    _RETRIEVE_TEMPORARY = (TRAJECTORY_FILE, RESTART_FILE)

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The crystal (or MD cell).')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            validator=_validate_parameters,
            help='{task, model, device, seed, settings}: see the runner.',
        )
        spec.input(
            'restart', valid_type=orm.SinglefileData, required=False, help='restart.npz of an MD segment.'
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
        with folder.open(INPUT_FILE, 'w') as handle:
            json.dump(params, handle, indent=2)
        buffer = io.StringIO()
        self.inputs.structure.get_ase().write(buffer, format='extxyz')
        with folder.open(STRUCTURE_FILE, 'w') as handle:
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
        return calcinfo
