"""Fixtures for plugin tests in the style of aiida-quantumespresso's ``tests/conftest.py``.

``generate_calc_job`` runs a CalcJob's ``prepare_for_submission`` on a sandbox folder (no transport, no
daemon); ``generate_calc_job_node`` makes a stored ``CalcJobNode`` whose ``retrieved`` FolderData holds a
recorded runner folder (``tests/data/mlip-runner/<case>``), to run the parser on, and
``parse_calc_job_node`` finishes such a node as the engine would (the parser's outputs linked to it, its exit
status set), for the work chain's process handlers.

Import the fixtures in a test module: ``from tests.engines.aiida_style import *  # noqa: F403``. They are
kept out of ``tests/conftest.py`` on purpose.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

__all__ = (
    'RECORDED',
    'fixture_code',
    'generate_calc_job',
    'generate_calc_job_node',
    'parse_calc_job_node',
    'recorded_inputs',
)

#: The recorded runner folders, one per case (see its README.md).
RECORDED = Path(__file__).resolve().parent.parent / 'data' / 'mlip-runner'


@pytest.fixture
def fixture_code(aiida_localhost):
    """An ``InstalledCode`` on localhost for ``superionic.mlip`` (never run: the tests do not submit)."""
    from aiida import orm

    def _fixture_code(label: str = 'mlip-style'):
        return orm.InstalledCode(
            label=label,
            computer=aiida_localhost,
            filepath_executable='/bin/true',
            default_calc_job_plugin='superionic.mlip',
        ).store()

    return _fixture_code


@pytest.fixture
def generate_calc_job():
    """``(folder, entry_point, inputs) -> CalcInfo``: ``prepare_for_submission`` of the CalcJob plugin
    ``entry_point`` on ``folder`` (a ``SandboxFolder``), with the inputs validated as on submission."""

    def _generate_calc_job(folder, entry_point: str, inputs: dict, return_process: bool = False):
        from aiida.engine.utils import instantiate_process
        from aiida.manage import get_manager
        from aiida.plugins import CalculationFactory

        process = instantiate_process(get_manager().get_runner(), CalculationFactory(entry_point), **inputs)
        calc_info = process.prepare_for_submission(folder)
        return (calc_info, process) if return_process else calc_info

    return _generate_calc_job


def recorded_inputs(case: str, code) -> dict:
    """The CalcJob inputs of a recorded case: its ``aiida.json`` and ``structure.extxyz`` (md_batch: the
    ``replicas`` namespace from its ``replica_NAME.extxyz``), and for
    ``md_continued`` the checkpoint it continued from (``md_segment/restart.npz``)."""
    import ase.io
    from aiida import orm

    folder = RECORDED / case
    parameters = json.loads((folder / 'aiida.json').read_text())
    inputs = {'code': code}
    if parameters['task'] == 'md_batch':  # the CalcJob names each run's file in aiida.json itself
        specs = parameters['settings']['replicas']
        inputs['replicas'] = {
            spec['name']: orm.StructureData(ase=ase.io.read(folder / spec.pop('structure'), format='extxyz'))
            for spec in specs
        }
    else:
        inputs['structure'] = orm.StructureData(ase=ase.io.read(folder / 'structure.extxyz', format='extxyz'))
    inputs['parameters'] = orm.Dict(parameters)
    if case == 'md_continued':
        inputs['restart'] = orm.SinglefileData(
            RECORDED / 'md_segment' / 'restart.npz', filename='restart.npz'
        )
    return inputs


@pytest.fixture
def generate_calc_job_node(tmp_path):
    """``(entry_point, retrieved_folder, inputs) -> (node, retrieved_temporary_folder)``: a stored
    ``CalcJobNode`` of ``entry_point`` with ``inputs`` linked, and a ``retrieved`` FolderData with the files of
    ``retrieved_folder`` that the CalcJob retrieves; those it retrieves temporarily are copied to a fresh
    folder, the second item, to give the parser as ``retrieved_temporary_folder``."""
    from aiida import orm
    from aiida.common import LinkType
    from aiida.plugins import CalculationFactory

    def flatten(inputs: dict, prefix: str = ''):
        for key, value in inputs.items():
            if isinstance(value, dict):
                yield from flatten(value, f'{prefix}{key}__')
            else:
                yield f'{prefix}{key}', value

    def _generate_calc_job_node(entry_point: str, retrieved_folder, inputs: dict):
        process_class = CalculationFactory(entry_point)
        code = inputs['code']
        node = orm.CalcJobNode(computer=code.computer, process_type=f'aiida.calculations:{entry_point}')
        node.set_process_label(process_class.__name__)
        node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
        node.set_option('parser_name', entry_point)
        for label, value in flatten(inputs):
            value.store()
            node.base.links.add_incoming(value, link_type=LinkType.INPUT_CALC, link_label=label)
        node.store()

        source = Path(retrieved_folder)
        temporary = tmp_path / f'temporary-{node.pk}'
        temporary.mkdir()
        retrieved = orm.FolderData()
        for path in sorted(source.rglob('*')):  # md_batch: also replicas/NAME/FILE, at that path
            name = path.relative_to(source).as_posix()
            if path.name in process_class._RETRIEVE:
                retrieved.base.repository.put_object_from_file(str(path), name)
            elif path.name in process_class._RETRIEVE_TEMPORARY:
                (temporary / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, temporary / name)
        retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
        retrieved.store()
        return node, temporary

    return _generate_calc_job_node


@pytest.fixture
def parse_calc_job_node():
    """``(node, temporary) -> node``: run the node's parser on it and finish it as the engine does: the
    outputs linked (CREATE) to the node, the exit status and message set, the node sealed."""
    from aiida.common import LinkType
    from aiida.plugins import ParserFactory
    from plumpy import ProcessState

    def _parse(node, temporary):
        parser = ParserFactory(node.get_option('parser_name'))(node)
        exit_code = parser.parse(retrieved_temporary_folder=str(temporary))
        for label, output in parser.outputs.items():
            output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
            output.store()
        node.set_process_state(ProcessState.FINISHED)
        node.set_exit_status(exit_code.status)
        node.set_exit_message(exit_code.message)
        node.seal()
        return node

    return _parse
