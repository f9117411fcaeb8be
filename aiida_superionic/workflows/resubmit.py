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
"""

from __future__ import annotations

from typing import Any

from aiida import orm
from aiida.common.links import LinkType
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
        return workchain.submit(process, **inputs)
    inputs['metadata'] = {**inputs.get('metadata', {}), 'call_link_label': link_label}
    return workchain.submit(process, **inputs)


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
            node.set_exception(reason)
            node.set_process_state(ProcessState.EXCEPTED)
            node.base.extras.set(ORPHAN_EXTRA, reason)
            node.seal()
            workchain.report(f'{link_label}: {node.process_label}<{node.pk}> {reason}; submitting it again')
            return _submit(workchain, f'{link_label}_retry{retry + 1}', process, inputs)
        if workchain.runner.controller is not None:
            workchain.runner.controller.continue_process(node.pk, nowait=False, no_reply=True)
    workchain.report(f'{link_label}: reusing {node.process_label}<{node.pk}> submitted before a restart')
    return node
