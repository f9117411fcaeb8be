"""The MLIP runner's file format is named once (:mod:`aiida_superionic.engines.mlip.fileformat`) and read
from there by the runner, the CalcJob and the parser; loading the CalcJob and the parser loads no ASE and
no torch."""

from __future__ import annotations

import subprocess
import sys

from aiida_superionic.engines.mlip import fileformat


def test_the_runner_dispatches_the_tasks_of_the_file_format():
    from aiida_superionic.engines.mlip import runner

    assert tuple(runner.TASKS) == fileformat.TASKS
    assert fileformat.MD_BATCH_TASK not in fileformat.TASKS
    for name, function in runner.TASKS.items():
        module = function.__module__
        assert module.startswith('aiida_superionic.engines.mlip.tasks.'), (name, module)


def test_the_calcjob_names_the_files_of_the_file_format():
    from aiida_superionic.engines.mlip.calculation import TASKS, MlipCalculation

    assert TASKS is fileformat.TASKS
    assert MlipCalculation._DEFAULT_OUTPUT_FILE == fileformat.STDOUT_FILE
    assert set(MlipCalculation._RETRIEVE) == {
        fileformat.RESULTS_FILE,
        fileformat.RELAXED_FILE,
        fileformat.TRAJECTORY_META_FILE,
        fileformat.FORCE_CONSTANTS_FILE,
        fileformat.STDOUT_FILE,
    }
    assert set(MlipCalculation._RETRIEVE_TEMPORARY) == {fileformat.TRAJECTORY_FILE, fileformat.RESTART_FILE}


def test_loading_the_calcjob_and_parser_loads_no_ase_nor_torch():
    code = (
        'import sys\n'
        'import aiida_superionic.engines.mlip.calculation, aiida_superionic.engines.mlip.parser\n'
        "heavy = {'ase', 'torch', 'chgnet', 'aiida_superionic.engines.mlip.runner'} & set(sys.modules)\n"
        "heavy |= {m for m in sys.modules if m.startswith('aiida_superionic.engines.mlip.tasks')}\n"
        'print(sorted(heavy))\n'
    )
    out = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == '[]', out.stdout
