"""Submitting children so that a replayed work-chain step does not submit them twice.

When the daemon dies while a step is submitting children, the step is replayed from the last
checkpoint on restart, and a plain ``self.submit`` would create a second set of children (duplicate
jobs and duplicate descriptor records). :func:`submit_once` gives each child a fixed call-link label;
if the step already called a child with that label, that child is reused instead:

* a child that is running or done is simply awaited;
* a child that never started but has its checkpoint (the daemon died before its task reached the
  broker) gets its task sent again — aiida-core's workers drop a task for a process they already run,
  which is what ``verdi process repair`` relies on too;
* a child stored without a checkpoint (the daemon died between the two) can never run: it is sealed
  as excepted with the reason, marked with the extra ``superionic_orphan``, and replaced by a new child
  under ``<label>_retry<n>``.

:func:`run_once` does the same for a calcfunction that a step runs in the worker itself: a replayed step
takes the outputs of the call it already finished under that label instead of running it again (a killed
or failed earlier call is sealed as an orphan if it was left unsealed, and the function runs again under
``<label>_retry<n>``). ``superionic.mlip.base`` routes the submissions of aiida-core's
``BaseRestartWorkChain`` (labels ``iteration_NN``) through :func:`submit_once` too.
"""

from __future__ import annotations

from typing import Any

from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import Process
from plumpy import ProcessState

ORPHAN_EXTRA = 'superionic_orphan'


def _called(workchain, link_label: str) -> list[tuple[int, orm.ProcessNode]]:
    out = []
    for link in workchain.node.base.links.get_outgoing(
        link_type=(LinkType.CALL_WORK, LinkType.CALL_CALC)
    ).all():
        label = link.link_label
        if label == link_label:
            out.append((0, link.node))
        elif label.startswith(f'{link_label}_retry') and label.removeprefix(f'{link_label}_retry').isdigit():
            out.append((int(label.removeprefix(f'{link_label}_retry')), link.node))
    return sorted(out, key=lambda item: item[0])


def _submit(workchain, link_label: str, process: Any, inputs: dict[str, Any]) -> orm.ProcessNode:
    from aiida.engine.processes.builder import ProcessBuilderNamespace

    # a builder (not a process class: aiida-vasp's VaspWorkChain has a `_process_class` attribute too)
    if isinstance(process, ProcessBuilderNamespace):
        process.metadata.call_link_label = link_label
        return Process.submit(workchain, process, **inputs)
    inputs['metadata'] = {**inputs.get('metadata', {}), 'call_link_label': link_label}
    # Process.submit, not workchain.submit: a work chain may route its own submit through submit_once
    return Process.submit(workchain, process, **inputs)


def _seal_orphan(node: orm.ProcessNode, reason: str) -> None:
    node.set_exception(reason)
    node.set_process_state(ProcessState.EXCEPTED)
    node.base.extras.set(ORPHAN_EXTRA, reason)
    node.seal()


def submit_once(workchain, link_label: str, process: Any, /, **inputs: Any) -> orm.ProcessNode:
    """``workchain.submit(process, **inputs)`` under call-link ``link_label``, unless already called
    (positional-only arguments: a process may well have an input called ``label``)."""
    called = _called(workchain, link_label)
    if not called:
        return _submit(workchain, link_label, process, inputs)
    retry, node = called[-1]
    if node.process_state in (None, ProcessState.CREATED):
        if node.checkpoint is None:
            reason = 'never started: the daemon stopped before its checkpoint was saved'
            _seal_orphan(node, reason)
            workchain.report(f'{link_label}: {node.process_label}<{node.pk}> {reason}; submitting it again')
            return _submit(workchain, f'{link_label}_retry{retry + 1}', process, inputs)
        if workchain.runner.controller is not None:
            workchain.runner.controller.continue_process(node.pk, nowait=False, no_reply=True)
    workchain.report(f'{link_label}: reusing {node.process_label}<{node.pk}> submitted before a restart')
    return node


def run_once(workchain, link_label: str, function: Any, /, *args: Any, **inputs: Any) -> Any:
    """``function(*args, **inputs)`` (a calcfunction) under call-link ``link_label``, unless the step already
    ran it to the end under that label: then its outputs, as the call returns them (the one ``result`` node,
    or a dict by output label)."""
    called = _called(workchain, link_label)
    if called:
        retry, node = called[-1]
        if node.is_finished_ok:
            outputs = {
                link.link_label: link.node
                for link in node.base.links.get_outgoing(link_type=LinkType.CREATE).all()
            }
            workchain.report(f'{link_label}: reusing {node.process_label}<{node.pk}> run before a restart')
            return outputs['result'] if set(outputs) == {'result'} else outputs
        if not node.is_sealed:  # the daemon died while it ran
            _seal_orphan(node, 'stopped while running: the daemon stopped')
        link_label = f'{link_label}_retry{retry + 1}'
    return function(*args, **inputs, metadata={'call_link_label': link_label})
