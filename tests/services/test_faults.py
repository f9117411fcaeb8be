"""Faults: the daemon SIGKILLed while a material work chain runs (on both brokers), and an MD job
SIGKILLed mid-run through its CalcJob. Real daemon, real brokers, the real CHGNet potential on CPU.

The daemon tests run as a user would (separate processes, the user's own AiiDA configuration folder); a
probe script, run in a subprocess against the same profile, watches the graph to time the kills and then
audits it: every process finished and sealed and in the work chain's call tree, no process called twice
with the same inputs by the same caller, every extra MLIP job explained by a restart handler, every
expected record exactly once, no stored data node that nothing made or used.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.conftest import LIF_MD, lif_md_builder, local_computer, mlip_runner_code
from tests.services.test_daemon import BIN, User, _port_open

LI3N = Path(__file__).parents[1] / 'data' / 'structures' / 'Li3N.cif'
RUNNER = BIN / 'aiida-superionic-mlip'

#: The probe, run as ``python probe.py PROFILE wait PK CONDITION TIMEOUT`` (poll the graph until CONDITION
#: holds: ``md_submitted``, an MD job of the work chain is with the scheduler; ``describing``, a
#: ``superionic.md_descriptors`` work chain exists), and SIGKILL the daemon right then when given the circus
#: PID file as a 6th argument; or ``python probe.py PROFILE audit PK``. It prints one JSON line.
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
        'orphans': [
            {
                'pk': n.pk,
                'label': n.process_label,
                'state': n.process_state.value,
                'sealed': n.is_sealed,
                'checkpoint': n.checkpoint is not None,
                'outputs': len(n.base.links.get_outgoing(link_type=(LinkType.CREATE, LinkType.RETURN)).all()),
                'called': len(n.called),
            }
            for n in orphans
        ],
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
        key: {'uuid': rec.uuid, 'material': rec['material'], 'D': rec['values']['D']}
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


class Probe:
    def __init__(self, user: User, profile: str, root: Path):
        self.user, self.profile = user, profile
        self.script = root / 'probe.py'
        self.script.write_text(PROBE)

    def __call__(self, *args, timeout: float = 300) -> dict:
        proc = self.user.run(sys.executable, self.script, self.profile, *args, timeout=timeout)
        return json.loads(proc.stdout.strip().splitlines()[-1])


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


def _reap(pidfile: Path) -> None:
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


def _nasty_label(marker: Path) -> str:
    return f"Li3N'\"; touch {marker}; $(touch {marker}) `touch {marker}` echo '"


#: When the daemon is killed: ``md_submitted``, while the MD jobs run (the runner processes live on: they are
#: the "cluster"); ``describing``, as soon as ``superionic.md`` has submitted its first
#: ``superionic.md_descriptors`` work chain, i.e. while the step may still be submitting the others.
def _material_with_daemon_kills(user: User, aiida_root: Path, profile: str, tmp_path: Path, kills) -> None:
    probe = Probe(user, profile, tmp_path)
    marker = tmp_path / 'PWNED'
    label = _nasty_label(marker)
    user.run(BIN / 'verdi', '-p', profile, 'daemon', 'start', '1')
    try:
        submitted = user.run(
            BIN / 'aiida-superionic', '-p', profile, 'submit', LI3N, '--mobile', 'Li', '--protocol', 'fast',
            '--label', label, '--overrides', '{"md": {"n_steps": 200}}', '--daemon',
        )  # fmt: skip
        pk = int(submitted.stdout.split('MaterialWorkChain<')[1].split('>')[0])
        pidfile = aiida_root / '.aiida' / 'daemon' / f'circus-{profile}.pid'
        restarts = 0
        for moment in kills:
            # the probe kills from inside its polling loop, within 0.2 s of the moment
            seen = probe('wait', pk, moment, 480, pidfile, timeout=600)
            assert seen['met'], seen
            assert any('daemon worker' in k for k in seen['killed']), seen
            time.sleep(3)  # the scheduler jobs keep running with nobody watching
            restarts += start_daemon(user, aiida_root, profile)
        # generous: on 2 cores loaded by other work the rest of the chain takes minutes, not seconds
        deadline = time.monotonic() + 900
        while True:
            try:
                facts = probe('audit', pk, timeout=900)  # minutes when the cores are shared
            except AssertionError as exc:  # SQLite: the probe's read met the daemon's write lock; read again
                if 'database is locked' not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(3)
                continue
            if facts['root_state'] in ('finished', 'excepted', 'killed') or time.monotonic() > deadline:
                break
            time.sleep(3)
    finally:
        user.run(BIN / 'verdi', '-p', profile, 'daemon', 'stop', check=False, timeout=120)
        _reap(aiida_root / '.aiida' / 'daemon' / f'circus-{profile}.pid')

    assert facts['root_ok'], facts['root_exit']
    # nothing lost: every expected record exactly once, with the user's label, and nothing else
    assert sorted(facts['records']) == [
        'non_stoichiometric_T1500',
        'non_stoichiometric_T900',
        'stoichiometric_T1500',
        'stoichiometric_T900',
    ]
    assert facts['records_in_db'] == 4
    assert {r['material'] for r in facts['records'].values()} == {label}
    # nothing duplicated or half-done
    assert facts['duplicates'] == []
    assert facts['not_in_tree'] == [] and facts['unsealed'] == [] and facts['not_finished'] == []
    assert facts['unlinked_data'] == []
    # at most the one child being stored at each kill never ran: sealed, excepted, with nothing behind it
    assert len(facts['orphans']) <= len(kills), facts['orphans']
    for orphan in facts['orphans']:
        assert orphan['state'] == 'excepted' and orphan['sealed'] and not orphan['checkpoint'], orphan
        assert orphan['outputs'] == 0 and orphan['called'] == 0, orphan
    counts = facts['process_counts']
    for name in (
        'MaterialWorkChain', 'RelaxWorkChain', 'ElasticWorkChain', 'PhononGammaWorkChain', 'VacancyWorkChain',
        'MDWorkChain', 'make_md_cells', 'collect_dft_part', 'compute_elastic_descriptors',
    ):  # fmt: skip
        assert counts[name] == 1, (name, counts)
    for name in (
        'MDDescriptorsWorkChain', 'compute_diffusion', 'compute_vibrational', 'compute_lindemann',
        'compute_structure_descriptors', 'assemble_record',
    ):  # fmt: skip
        assert counts[name] == 4, (name, counts)
    chains = facts['mlip_chains']
    assert counts['MlipBaseWorkChain'] == len(chains) == 8  # relax, elastic, phonon, vacancy, 4 MD runs
    job_restarts = 0
    for name, chain in chains.items():
        assert chain['ok'], (name, chain)
        *earlier, last = chain['exit_statuses']
        assert last == 0, (name, chain)
        # a job retried only for a reason a restart handler names (400/401: MD killed or out of time)
        assert all(status in (400, 401, 410, 411, 420) for status in earlier), (name, chain)
        assert len(set(chain['job_ids'])) == len(chain['job_ids']), (name, chain)  # no job submitted twice
        job_restarts += len(earlier)
    assert counts['MlipCalculation'] == 8 + job_restarts
    assert facts['trajectories'] == 4 + sum(
        len(c['exit_statuses'])
        for n, c in chains.items()
        if n.startswith('md ') and len(c['exit_statuses']) > 1
    )
    # the label never reached a job script unquoted: no script contains it, and nothing ran it
    scripts = [Path(w) / '_aiidasubmit.sh' for w in facts['remote_workdirs']]
    assert len(scripts) == counts['MlipCalculation'] and all(s.is_file() for s in scripts)
    for script in scripts:
        assert 'touch' not in script.read_text(), script.read_text()
    assert not marker.exists()
    print(
        f'{profile}: {facts["nodes"]} nodes, {facts["n_processes"]} processes, '
        f'{restarts} extra daemon restarts, {job_restarts} job restarts: {counts}'
    )


@pytest.mark.slow  # the whole Li3N chain through a real daemon, killed and restarted
def test_daemon_sigkill_while_jobs_run_zeromq(tmp_path):
    """Embedded profile (SQLite + the ZeroMQ broker inside the daemon): the daemon is SIGKILLed while the
    MD jobs run, restarted, and the material finishes with nothing lost or duplicated."""
    aiida_root = tmp_path / 'aiida'
    user = User(aiida_root)
    user.run(BIN / 'aiida-superionic', 'setup')
    _material_with_daemon_kills(user, aiida_root, 'superionic', tmp_path, ['md_submitted'])


@contextmanager
def production_profile(user: User):
    assert _port_open(5432) and _port_open(5672), (
        'PostgreSQL (5432) and RabbitMQ (5672) must run: .ci/run starts them'
    )
    name = f'ci_{uuid.uuid4().hex[:8]}'
    user.run(BIN / 'aiida-superionic', 'setup', '--production', '--profile-name', name)
    try:
        yield name
    finally:
        user.run(BIN / 'verdi', 'profile', 'delete', '--force', '--delete-data', name, check=False)
        import psycopg

        with psycopg.connect(host='127.0.0.1', user='postgres', dbname='postgres', autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "aiida_{name}" WITH (FORCE)')  # if a worker lingered
            conn.execute(f'DROP ROLE IF EXISTS "aiida_{name}"')


@pytest.mark.slow  # the whole Li3N chain through a real daemon, killed and restarted twice
def test_daemon_sigkill_while_jobs_run_then_while_a_step_submits_rabbitmq(tmp_path):
    """Production profile (PostgreSQL + RabbitMQ), one material, two kills: while the MD jobs run (as on
    the embedded profile), and, after the restart, while ``superionic.md`` submits its
    ``superionic.md_descriptors`` work chains: the replayed step must not leave a second set of children
    (duplicate records) behind. One profile and one material chain for both moments: the audit of the
    whole graph at the end covers both kills."""
    user = User(tmp_path / 'aiida')
    with production_profile(user) as name:
        _material_with_daemon_kills(user, tmp_path / 'aiida', name, tmp_path, ['md_submitted', 'describing'])


# ------------------------------------------------------------------ an MD job killed through its CalcJob


@pytest.fixture(scope='module')
def local_code(tmp_path_factory):
    computer = local_computer(f'faults-{uuid.uuid4().hex[:8]}', tmp_path_factory.mktemp('faults-work'))
    return mlip_runner_code(computer)


class RunnerKiller(threading.Thread):
    """SIGKILLs the first MLIP runner under ``workdir`` as soon as it has written an MD checkpoint."""

    def __init__(self, workdir: Path, timeout: float = 240):
        super().__init__(daemon=True)
        self.workdir, self.timeout = str(workdir), timeout
        self.killed: dict | None = None
        self.stop = False

    def run(self):
        deadline = time.monotonic() + self.timeout
        while not self.stop and time.monotonic() < deadline:
            for proc in psutil.process_iter(['pid', 'cmdline', 'cwd']):
                cmd, cwd = proc.info['cmdline'] or [], proc.info['cwd'] or ''
                if any(str(RUNNER) in c for c in cmd) and cwd.startswith(self.workdir):
                    if (Path(cwd) / 'restart.npz').is_file():
                        os.kill(proc.info['pid'], signal.SIGKILL)
                        self.killed = {'pid': proc.info['pid'], 'cwd': cwd}
                        return
            time.sleep(0.01)


def test_md_job_sigkilled_mid_run_continues_exactly(local_code, lif_md_reference):
    """The runner of an MD job is SIGKILLed after its first checkpoint: the CalcJob fails with
    ERROR_MD_INCOMPLETE, the restart work chain continues from the checkpoint, and the stitched
    trajectory equals an uninterrupted run of the same seed (conftest ``lif_md_reference``) frame for
    frame."""
    from aiida import orm
    from aiida.engine import run_get_node

    killer = RunnerKiller(Path(local_code.computer.get_workdir()))
    killer.start()
    try:
        builder = lif_md_builder(local_code)
        outputs, node = run_get_node(builder)
    finally:
        killer.stop = True
        killer.join()
    assert killer.killed is not None, 'no MLIP runner with a checkpoint was found to kill'
    assert node.is_finished_ok, node.exit_message
    calcs = sorted((c for c in node.called if isinstance(c, orm.CalcJobNode)), key=lambda c: c.ctime)
    assert [c.exit_status for c in calcs] == [400, 0]  # ERROR_MD_INCOMPLETE, then the continuation
    assert not any(c.base.caching.is_created_from_cache for c in calcs)
    first, second = calcs
    assert first.get_remote_workdir() == killer.killed['cwd']
    assert first.outputs.results['status'] == 'killed'
    checkpoint = first.outputs.results['restart_step']
    assert 0 < checkpoint < LIF_MD['n_steps']
    assert second.inputs.restart.uuid == first.outputs.restart.uuid  # continued, not started again
    assert second.outputs.results['first_step'] == checkpoint
    stitched, expected = outputs['trajectory'], lif_md_reference
    assert stitched.creator.process_label == 'stitch_trajectories'
    np.testing.assert_array_equal(stitched.get_array('steps'), np.arange(0, LIF_MD['n_steps'] + 1, 4))
    np.testing.assert_allclose(stitched.get_positions(), expected.get_positions(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(stitched.get_velocities(), expected.get_velocities(), atol=1e-6, rtol=0)


# ------------------------------------------------- a label with shell metacharacters and a cluster script


def test_label_with_shell_metacharacters_never_reaches_a_slurm_script(tmp_path, monkeypatch):
    """The job script of an MLIP job on a Slurm computer (dry run: written, not submitted) does not contain
    the label or description; executed with bash, it runs nothing but the code."""
    from aiida import orm
    from aiida.engine import run_get_node
    from ase.build import bulk

    from aiida_superionic.engines.contract import get_engine
    from aiida_superionic.engines.mlip.calculation import MlipCalculation

    computer = orm.Computer(
        label=f'slurm-{uuid.uuid4().hex[:8]}',
        hostname='localhost',
        transport_type='core.local',
        scheduler_type='core.slurm',
        workdir=str(tmp_path / 'work'),
    ).store()
    computer.configure()
    code = orm.InstalledCode(
        label='true',
        computer=computer,
        filepath_executable='/bin/true',
        default_calc_job_plugin='superionic.mlip',
    ).store()
    marker = tmp_path / 'PWNED'
    label = _nasty_label(marker)
    engine = get_engine('mlip')
    cell = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.08, cubic=True))
    base = engine.get_builder(
        'md', cell, code, engine.protocol('fast'), temperature_K=800, options={'account': 'proj42'}
    )
    builder = MlipCalculation.get_builder()
    builder.code, builder.structure, builder.parameters = code, cell, base.mlip.parameters
    builder.metadata.options.account = base.mlip.metadata.options.account  # what --options gives every job
    builder.metadata.options.max_wallclock_seconds = base.mlip.metadata.options.max_wallclock_seconds
    builder.metadata.options.resources = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
    builder.metadata.label = label
    builder.metadata.description = label
    builder.metadata.dry_run = True
    builder.metadata.store_provenance = False
    monkeypatch.chdir(tmp_path)  # a dry run writes its folder under ./submit_test
    _, node = run_get_node(builder)
    folder = Path(node.dry_run_info['folder'])
    script = (folder / '_aiidasubmit.sh').read_text()
    assert '#SBATCH --account=proj42' in script and "'/bin/true'" in script
    assert 'touch' not in script and 'PWNED' not in script, script
    assert 'touch' not in (folder / 'aiida.json').read_text()
    proc = subprocess.run(['bash', '_aiidasubmit.sh'], cwd=folder, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
