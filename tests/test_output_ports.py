"""Every process behind an engine step, and every step work chain, exposes the contract's outputs of that
step (``contract.OUTPUTS``) under the contract's types (``contract.OUTPUT_PORTS``)."""

from __future__ import annotations

import pytest
from aiida import orm

from aiida_superionic.data import MDTrajectoryData
from aiida_superionic.engines.contract import OUTPUT_PORTS, OUTPUTS, STEPS, get_engine
from aiida_superionic.engines.mlip.workchain import MlipBaseWorkChain
from aiida_superionic.engines.vasp.workchain import VaspStepWorkChain, VaspVacancyWorkChain
from aiida_superionic.workflows import steps

EXPECTED_TYPES = {  # written out here, not read from the table under test
    'results': orm.Dict,
    'structure': orm.StructureData,
    'elastic_tensor': orm.ArrayData,
    'phonon': orm.Dict,
    'force_constants': orm.ArrayData,
    'vacancy': orm.Dict,
    'trajectory': MDTrajectoryData,
    'dielectric': orm.Dict,
    'band_gap': orm.Dict,
}
ENGINE_PROCESSES = {
    'mlip': lambda step: MlipBaseWorkChain,
    'vasp': lambda step: VaspVacancyWorkChain if step == 'vacancy' else VaspStepWorkChain,
}
STEP_CHAINS = {
    'relax': steps.RelaxWorkChain,
    'elastic': steps.ElasticWorkChain,
    'phonon_gamma': steps.PhononGammaWorkChain,
    'vacancy': steps.VacancyWorkChain,
    'dielectric': steps.DielectricWorkChain,
    'band_gap': steps.BandGapWorkChain,
}


def _assert_ports(process, names):
    outputs = process.spec().outputs
    for name in names:
        assert name in outputs, f'{process.__name__} lacks output {name!r}'
        assert outputs[name].valid_type is EXPECTED_TYPES[name], (process.__name__, name)


def test_the_table_covers_every_contract_output():
    assert set(OUTPUT_PORTS) == set(EXPECTED_TYPES)
    assert {name for names in OUTPUTS.values() for name in names} <= set(OUTPUT_PORTS)


@pytest.mark.parametrize('engine', sorted(ENGINE_PROCESSES))
def test_engine_processes_expose_the_contract_outputs(engine):
    unavailable = get_engine(engine).unavailable()
    for step in STEPS:
        if step not in unavailable:
            _assert_ports(ENGINE_PROCESSES[engine](step), OUTPUTS[step])


@pytest.mark.parametrize('step', sorted(STEP_CHAINS))
def test_step_work_chains_expose_their_step_outputs(step):
    chain = STEP_CHAINS[step]
    _assert_ports(chain, (*OUTPUTS[step], 'results'))
    required = {name for name, port in chain.spec().outputs.items() if port.required}
    assert set(OUTPUTS[step]) - {'results'} <= required
    assert 'results' not in required
