"""``run_once`` and the MLIP base work chain's ``submit``: a step replayed after a daemon kill reuses what it
already ran or submitted under a call-link label instead of doing it twice.

The replay is made real inside one step: the step calls the same label twice, exactly what the replayed
step does after the checkpoint before it is reloaded (the links of the first call are in the database, the
context is not). The daemon-kill tests in ``tests/services/test_faults.py`` and
``benchmarks/kill_windows.py`` kill real daemons; these tests pin the rule itself, fast.
"""

from __future__ import annotations

from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import WorkChain, calcfunction, run_get_node
from plumpy import ProcessState

from aiida_superionic.resubmit import ORPHAN_EXTRA, run_once


@calcfunction
def add_one(x: orm.Int) -> orm.Int:
    return orm.Int(x.value + 1)


@calcfunction
def split(x: orm.Int) -> dict[str, orm.Int]:
    return {'low': orm.Int(x.value - 1), 'high': orm.Int(x.value + 1)}


def _calls(node: orm.WorkflowNode) -> dict[str, orm.ProcessNode]:
    return {
        link.link_label: link.node
        for link in node.base.links.get_outgoing(link_type=LinkType.CALL_CALC).all()
    }


class ReplayedStep(WorkChain):
    """One step that runs each calcfunction twice under one label, as a replayed step does."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('x', valid_type=orm.Int)
        spec.input('orphan_first', valid_type=orm.Bool, default=lambda: orm.Bool(False))
        spec.outline(cls.run_calls)
        spec.output_namespace('out', dynamic=True, valid_type=orm.Int)

    def run_calls(self):
        if self.inputs.orphan_first.value:  # a call the daemon died in: stored, linked, never sealed
            stale = orm.CalcFunctionNode()
            stale.set_process_state(ProcessState.RUNNING)
            stale.set_process_label('add_one')
            stale.base.links.add_incoming(self.node, LinkType.CALL_CALC, 'one')
            stale.store()
        first = run_once(self, 'one', add_one, self.inputs.x)
        again = run_once(self, 'one', add_one, self.inputs.x)
        pair = run_once(self, 'pair', split, self.inputs.x)
        pair_again = run_once(self, 'pair', split, self.inputs.x)
        assert again.pk == first.pk, (first.pk, again.pk)
        assert {k: v.pk for k, v in pair_again.items()} == {k: v.pk for k, v in pair.items()}
        self.out('out.one', first)
        self.out('out.low', pair['low'])
        self.out('out.high', pair['high'])


def test_a_replayed_step_runs_each_calcfunction_once():
    results, node = run_get_node(ReplayedStep, x=orm.Int(4))
    assert node.is_finished_ok, node.exit_message
    calls = _calls(node)
    assert sorted(calls) == ['one', 'pair']  # not four calls
    assert results['out']['one'].value == 5
    assert (results['out']['low'].value, results['out']['high'].value) == (3, 5)
    assert results['out']['one'].creator.pk == calls['one'].pk


def test_a_call_the_daemon_died_in_is_sealed_and_run_again():
    _, node = run_get_node(ReplayedStep, x=orm.Int(7), orphan_first=orm.Bool(True))
    assert node.is_finished_ok, node.exit_message
    calls = _calls(node)
    assert sorted(calls) == ['one', 'one_retry1', 'pair']
    stale = calls['one']
    assert stale.is_sealed and stale.process_state == ProcessState.EXCEPTED
    assert 'daemon stopped' in stale.base.extras.get(ORPHAN_EXTRA)
    assert calls['one_retry1'].is_finished_ok
    assert calls['one_retry1'].outputs.result.value == 8


def test_the_fault_audit_names_an_orphans_caller_and_replacement():
    """The daemon-kill tests' audit (tests/services/faults_harness.py, run in the probe) on a sealed orphan:
    its caller, call label and the ``_retry1`` call that replaced it; ``check_orphans`` accepts it and
    refuses two orphans under one caller for one kill, an orphan left unreplaced, or one that made outputs."""
    import pytest

    from tests.services.faults_harness import check_orphans, probe_function

    _, node = run_get_node(ReplayedStep, x=orm.Int(9), orphan_first=orm.Bool(True))
    stale = _calls(node)['one']
    orphan = probe_function('_orphan')(stale)
    assert orphan['caller'] == node.pk and orphan['call_label'] == 'one'
    assert orphan['replaced_by'] == 'one_retry1' and orphan['replacement_ok']
    assert orphan['label'] == orphan['replacement_label'] == 'add_one'
    assert orphan['state'] == 'excepted' and orphan['sealed'] and orphan['outputs'] == 0
    check_orphans([orphan], kills=1)
    with pytest.raises(AssertionError, match='more orphans than kills'):
        check_orphans([orphan, {**orphan, 'pk': -1}], kills=1)
    check_orphans([orphan, {**orphan, 'pk': -1}], kills=2)
    for broken in (
        {'replacement_ok': False},
        {'replaced_by': None, 'replacement_label': None},
        {'outputs': 1},
    ):
        with pytest.raises(AssertionError):
            check_orphans([{**orphan, **broken}], kills=1)


def test_mlip_base_routes_its_iterations_through_submit_once(monkeypatch):
    """aiida-core's BaseRestartWorkChain submits each job as ``iteration_NN``: the MLIP base work chain sends
    those submissions through ``submit_once`` (which reuses a job already linked under that label), and any
    other submission to aiida-core's own."""
    from aiida.engine import BaseRestartWorkChain

    from aiida_superionic.engines.mlip import workchain as mlip_workchain

    seen = []

    def fake_submit_once(workchain, label, process, **inputs):
        seen.append(('once', label, process, inputs['x']))
        return 'reused-or-new'

    def fake_base_submit(self, process, inputs=None, **kwargs):
        seen.append(('plain', process, (inputs or kwargs)['x']))
        return 'plain'

    monkeypatch.setattr(mlip_workchain, 'submit_once', fake_submit_once)
    monkeypatch.setattr(BaseRestartWorkChain, 'submit', fake_base_submit)
    chain = object.__new__(mlip_workchain.MlipBaseWorkChain)  # submit() needs no process state
    assert chain.submit('Calc', {'x': 1, 'metadata': {'call_link_label': 'iteration_02'}}) == 'reused-or-new'
    assert chain.submit('Calc', x=2) == 'plain'
    assert seen == [('once', 'iteration_02', 'Calc', 1), ('plain', 'Calc', 2)]
