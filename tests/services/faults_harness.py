"""The daemon-kill harness of the fault tests (``test_faults.py``, ``test_vasp_material_faults.py``,
``benchmarks/kill_windows.py``): a probe script, run against a user's profile in a subprocess, that
SIGKILLs the daemon (circus, its workers and the ZeroMQ broker) when it sees a graph state and audits the
graph afterwards; restarting the daemon as a user would; reaping what is left of it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil

from tests.services.test_daemon import BIN, User

#: The probe, run as ``python probe.py PROFILE wait PK CONDITION TIMEOUT`` (poll the graph until CONDITION
#: holds: ``md_submitted``, an MD job of the work chain is with the scheduler; ``describing``, a
#: ``superionic.md_descriptors`` work chain exists; ``jobs:N``, N CalcJobs of the tree have a job id;
#: ``now``, at once, saying which running process was the newest), and
#: SIGKILL the daemon right then when given the circus PID file as a 6th argument; or
#: ``python probe.py PROFILE audit PK``. It prints one JSON line.
PROBE = r'''
import json
import sys
import time
from collections import Counter

from aiida import load_profile, orm
from aiida.common.links import LinkType
from aiida.manage import get_manager

FINISHED = 'finished'


def _descendants(root):
    """Every process called (directly or not) by ``root``."""
    out, todo = [], [root]
    while todo:
        node = todo.pop()
        for child in node.called:
            out.append(child)
            todo.append(child)
    return out


def _md_jobs(root):
    return [
        n
        for n in _descendants(root)
        if isinstance(n, orm.CalcJobNode) and n.inputs.parameters['task'] == 'md' and n.get_job_id()
    ]


def kill_daemon(pidfile: str) -> list:
    """SIGKILL the daemon: the workers, the ZeroMQ broker and the rest of what circus started, then circus
    itself (stopped first, so that it cannot respawn anything). Returns the command lines of the killed."""
    import os
    import signal

    import psutil

    circus = psutil.Process(int(open(pidfile).read()))
    circus.send_signal(signal.SIGSTOP)
    # what circus started (worker, broker, stats); not their own children: a kill -9 of the daemon leaves
    # a shell the transport is running alone (killing one inside `pyenv rehash` leaves its lock behind)
    children = circus.children(recursive=False)
    names = []
    for proc in [*children, circus]:
        try:
            name = ' '.join(proc.cmdline())
            os.kill(proc.pid, signal.SIGKILL)
        except psutil.NoSuchProcess:  # a short-lived helper that ended by itself
            continue
        except ProcessLookupError:
            if 'daemon worker' in name:
                raise RuntimeError(f'the worker was gone before the kill: {name}')
            continue
        names.append(name)
    _, alive = psutil.wait_procs([*children, circus], timeout=30)
    if alive:
        raise RuntimeError(f'still alive after SIGKILL: {alive}')
    return names


def wait(pk: int, condition: str, timeout: float, pidfile: str = '') -> dict:
    """Poll until ``condition`` holds; then, with ``pidfile``, SIGKILL the daemon at once, from here."""
    storage = get_manager().get_profile_storage()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        storage.get_session().rollback()  # a fresh snapshot of what the daemon wrote
        root = orm.load_node(pk)
        if root.is_terminated:
            return {'met': False, 'reason': f'root terminated ({root.process_state.value})'}
        if condition == 'md_submitted':
            jobs = _md_jobs(root)
            if jobs:
                killed = kill_daemon(pidfile) if pidfile else []
                return {'met': True, 'md_jobs': [n.pk for n in jobs], 'killed': killed}
        elif condition == 'describing':
            chains = [n for n in _descendants(root) if n.process_label == 'MDDescriptorsWorkChain']
            if chains:
                killed = kill_daemon(pidfile) if pidfile else []
                return {'met': True, 'descriptor_chains': [n.pk for n in chains], 'killed': killed}
        elif condition == 'now':  # a kill at a random moment (benchmarks/kill_windows.py): where it landed
            running = [n for n in _descendants(root) if not n.is_terminated]
            chains = [n for n in running if isinstance(n, orm.WorkflowNode)]
            newest = max(running, key=lambda n: n.pk, default=root)
            step = max(chains, key=lambda n: n.pk, default=root)
            where = newest.process_label if newest is step else f'{step.process_label} > {newest.process_label}'
            killed = kill_daemon(pidfile) if pidfile else []
            return {'met': True, 'landed': where, 'killed': killed}
        elif condition.startswith('jobs:'):  # jobs:N, N CalcJobs of the tree are with the scheduler
            jobs = [
                n for n in _descendants(root) if isinstance(n, orm.CalcJobNode) and n.get_job_id()
            ]
            if len(jobs) >= int(condition.removeprefix('jobs:')):
                killed = kill_daemon(pidfile) if pidfile else []
                return {'met': True, 'jobs': [n.pk for n in jobs], 'killed': killed}
        else:
            raise ValueError(condition)
        time.sleep(0.2)
    return {'met': False, 'reason': f'timeout after {timeout} s'}


def _input_key(node) -> tuple:
    """What makes two calls the same call: the process and the hashes of its inputs."""
    links = node.base.links.get_incoming(link_type=(LinkType.INPUT_CALC, LinkType.INPUT_WORK)).all()
    return (
        node.process_label,
        tuple(sorted((link.link_label, link.node.base.caching.get_hash()) for link in links)),
    )


def _content(node) -> str:
    """A digest of what a data node holds: its type, its attributes with every UUID (a provenance
    pointer, e.g. a trajectory's ``origin.retrieved``, different in every run) replaced, its files."""
    import hashlib
    import re

    uuid = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')
    attributes = json.dumps(node.base.attributes.all, sort_keys=True, default=str)
    text = '|'.join([node.node_type, uuid.sub('UUID', attributes), node.base.repository.hash()])
    return hashlib.sha256(text.encode()).hexdigest()


def tree_outputs(root, skip=()) -> list:
    """Every output a process of the tree made (but folders and remote paths, which name the job's
    folder), as [process, link label, content digest], sorted: two runs of the same chain must agree."""
    outputs = []
    for node in [root, *_descendants(root)]:
        if node.pk in skip:
            continue
        for link in node.base.links.get_outgoing(link_type=(LinkType.CREATE, LinkType.RETURN)).all():
            if link.node.node_type.startswith(('data.core.remote', 'data.core.folder', 'data.core.singlefile')):
                continue
            outputs.append([node.process_label, link.link_label, _content(link.node)])
    return sorted(outputs)


def _call_label(node) -> str:
    return node.base.links.get_incoming(link_type=(LinkType.CALL_WORK, LinkType.CALL_CALC)).one().link_label


def _orphan(node) -> dict:
    """What the audit says of a child sealed as an orphan (``resubmit._seal_orphan``): its state, what it
    left behind, who called it under which label, and the call that replaced it (``<label>_retry<n>``)."""
    def split(call_label):  # 'one_retry2' -> ('one', 2), 'one' -> ('one', 0)
        base, _, retry = call_label.rpartition('_retry')
        return (base, int(retry)) if base and retry.isdigit() else (call_label, 0)

    label = _call_label(node)
    base, retry = split(label)
    replacements = [
        n for n in node.caller.called if split(_call_label(n))[0] == base and split(_call_label(n))[1] > retry
    ]
    replacement = max(replacements, key=lambda n: n.pk) if replacements else None
    return {
        'pk': node.pk,
        'label': node.process_label,
        'state': node.process_state.value,
        'sealed': node.is_sealed,
        'checkpoint': node.checkpoint is not None,
        'outputs': len(node.base.links.get_outgoing(link_type=(LinkType.CREATE, LinkType.RETURN)).all()),
        'called': len(node.called),
        'caller': node.caller.pk,
        'call_label': label,
        'replaced_by': None if replacement is None else _call_label(replacement),
        'replacement_ok': replacement is not None and replacement.is_finished_ok,
        'replacement_label': None if replacement is None else replacement.process_label,
    }


def audit(pk: int) -> dict:
    root = orm.load_node(pk)
    every = [n for (n,) in orm.QueryBuilder().append(orm.ProcessNode).all()]
    # a child the daemon died storing, before its checkpoint: it never ran and is replaced (resubmit.py)
    orphans = [n for n in every if n.base.extras.get('superionic_orphan', None)]
    orphan_pks = {n.pk for n in orphans}
    processes = [n for n in every if n.pk not in orphan_pks]
    tree = {n.pk for n in _descendants(root)} | {root.pk}
    facts = {
        'root_state': root.process_state.value if root.process_state else None,
        'root_ok': root.is_finished_ok,
        'root_exit': [root.exit_status, root.exit_message],
        'n_processes': len(processes),
        'process_counts': dict(Counter(n.process_label for n in processes)),
        'not_in_tree': [n.pk for n in processes if n.pk not in tree],
        'unsealed': [n.pk for n in processes if not n.is_sealed],
        'not_finished': [
            n.pk for n in processes if n.process_state is None or n.process_state.value != FINISHED
        ],
        'nodes': orm.QueryBuilder().append(orm.Node).count(),
        'orphans': [_orphan(n) for n in orphans],
    }
    # duplicates: two calls by the same caller of the same process with identical inputs
    duplicates = []
    for node in [root, *_descendants(root)]:
        keys = Counter(_input_key(child) for child in node.called if child.pk not in orphan_pks)
        duplicates += [f'{node.process_label}<{node.pk}> calls {k[0]} x{c}' for k, c in keys.items() if c > 1]
    facts['duplicates'] = duplicates
    # every MLIP job: all but the last of a restart chain failed with a code a handler explains
    chains = {}
    for base in [n for n in _descendants(root) if n.process_label == 'MlipBaseWorkChain']:
        calcs = sorted((c for c in base.called if isinstance(c, orm.CalcJobNode)), key=lambda c: c.ctime)
        chains[f'{base.label}<{base.pk}>'] = {
            'ok': base.is_finished_ok,
            'exit_statuses': [c.exit_status for c in calcs],
            'job_ids': [c.get_job_id() for c in calcs],
        }
    facts['mlip_chains'] = chains
    # the records: every record Dict in the database, and those the root returns
    records = [
        n
        for (n,) in orm.QueryBuilder()
        .append(orm.Dict, filters={'attributes.schema': 'superionic.record.v1'})
        .all()
    ]
    facts['records_in_db'] = len(records)
    facts['records'] = {
        key: {'uuid': rec.uuid, 'material': rec['material'], 'D': rec['values']['D'], 'values': rec['values']}
        for key, rec in (root.outputs.records.items() if root.is_finished_ok else [])
    }
    # data nodes nobody made and nobody used (stored by a step that was replayed)
    data = orm.QueryBuilder().append(orm.Data, project=['id']).all(flat=True)
    linked = set(
        orm.QueryBuilder()
        .append(orm.Data, project=['id'], tag='d')
        .append(orm.ProcessNode, with_incoming='d')
        .all(flat=True)
    ) | set(
        orm.QueryBuilder()
        .append(orm.ProcessNode, tag='p')
        .append(orm.Data, with_incoming='p', project=['id'])
        .all(flat=True)
    )
    unlinked = sorted(set(data) - linked)
    # the kill can fall between storing a child's input and the child itself: that input is left
    # unlinked, and the replayed step stores (and links) a fresh copy. Such a leftover is only
    # acceptable if a copy of it (same content hash) is linked; anything else was lost or half-done.
    linked_hashes = {orm.load_node(pk).base.caching.get_hash() for pk in linked}
    facts['unlinked_data'] = [pk for pk in unlinked if orm.load_node(pk).base.caching.get_hash() not in linked_hashes]
    facts['unlinked_copies'] = [pk for pk in unlinked if pk not in facts['unlinked_data']]
    facts['outputs'] = tree_outputs(root, orphan_pks)
    facts['trajectories'] = (
        orm.QueryBuilder().append(orm.Data, filters={'node_type': {'like': '%trajectory%'}}).count()
    )
    facts['remote_workdirs'] = [
        n.get_remote_workdir()
        for n in _descendants(root)
        if isinstance(n, orm.CalcJobNode) and n.get_remote_workdir()
    ]
    return facts


if __name__ == '__main__':
    load_profile(sys.argv[1], allow_switch=True)
    if sys.argv[2] == 'wait':
        print(json.dumps(wait(int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), *sys.argv[6:])))
    else:
        print(json.dumps(audit(int(sys.argv[3]))))
'''


def check_orphans(orphans: list, kills: int) -> None:
    """The children a replayed step sealed as orphans (``resubmit._seal_orphan``): each never ran or was
    stopped mid-run by a kill (excepted, sealed, no checkpoint, nothing made, nothing called) and was replaced
    by the same process under ``<label>_retry<n>`` that finished ok; a caller has at most one per kill (a
    work chain runs one child at a time in a step). Several work chains can each leave one behind at the
    same kill: the daemon worker runs their steps' calcfunctions interleaved on one event loop."""
    per_caller = {}
    for orphan in orphans:
        assert orphan['state'] == 'excepted' and orphan['sealed'] and not orphan['checkpoint'], orphan
        assert orphan['outputs'] == 0 and orphan['called'] == 0, orphan
        assert orphan['replacement_ok'] and orphan['replacement_label'] == orphan['label'], orphan
        per_caller[orphan['caller']] = per_caller.get(orphan['caller'], 0) + 1
    assert all(n <= kills for n in per_caller.values()), (
        f'more orphans than kills under one caller: {orphans}'
    )


class Probe:
    def __init__(self, user: User, profile: str, root: Path):
        self.user, self.profile = user, profile
        self.script = root / 'probe.py'
        self.script.write_text(PROBE)

    def __call__(self, *args, timeout: float = 300) -> dict:
        proc = self.user.run(sys.executable, self.script, self.profile, *args, timeout=timeout)
        return json.loads(proc.stdout.strip().splitlines()[-1])


def audit_when_done(probe: Probe, pk: int, wait_s: float = 900) -> dict:
    """The audit of work chain ``pk`` once it has ended (or ``wait_s`` has passed): on 2 cores loaded by other
    work the rest of a chain takes minutes. A probe that meets the daemon's SQLite write lock reads again."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            facts = probe('audit', pk, timeout=wait_s)
        except AssertionError as exc:
            if 'database is locked' not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(3)
            continue
        if facts['root_state'] in ('finished', 'excepted', 'killed') or time.monotonic() > deadline:
            return facts
        time.sleep(3)


def start_daemon(user: User, aiida_root: Path, profile: str) -> int:
    """``verdi daemon start 1`` after a crash, as a user would. On the embedded profile the test waits until
    a worker has subscribed to the new ZeroMQ broker; when none has after 30 s (aiida-core 2.9: a worker
    started right after a SIGKILL can read the dead broker's ``broker.sockets`` and wait on it for ever), it
    does what docs/bad_input.rst tells the user: ``verdi daemon stop`` and ``start``. Returns how many
    such restarts it took."""
    user.run(BIN / 'verdi', '-p', profile, 'daemon', 'start', '1')
    broker = next((aiida_root / '.aiida' / 'broker').glob(f'*-{profile}'), None)
    if broker is None:  # RabbitMQ: the broker is a service that was never killed
        return 0
    for restarts in range(3):
        started = time.time()
        while time.time() < started + 30:  # on 2 loaded cores, importing aiida alone can take 20 s
            try:
                status = json.loads((broker / 'broker.status').read_text())
            except (OSError, ValueError):
                status = {}
            if status.get('timestamp', 0) > started and status.get('task_subscribers', 0) >= 1:
                return restarts
            time.sleep(1)
        user.run(BIN / 'verdi', '-p', profile, 'daemon', 'stop', check=False)
        user.run(BIN / 'verdi', '-p', profile, 'daemon', 'start', '1')
    raise AssertionError(f'no daemon worker subscribed to the ZeroMQ broker of {profile} after 3 restarts')


def reap(pidfile: Path) -> None:
    """SIGKILL what is left of this test's daemon (e.g. a circus left stopped by a failed kill)."""
    try:
        circus = psutil.Process(int(pidfile.read_text()))
        if 'start-circus' not in circus.cmdline():  # a stale PID file whose number was reused
            return
        procs = [*circus.children(recursive=False), circus]
    except (OSError, ValueError, psutil.NoSuchProcess):
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def probe_function(name: str):
    """A function of the probe script, to run in this process (e.g. ``tree_outputs`` on a run of the test
    profile, to compare with the probe's audit of a user's profile)."""
    namespace = {'__name__': 'probe'}
    exec(compile(PROBE, 'probe.py', 'exec'), namespace)
    return namespace[name]
