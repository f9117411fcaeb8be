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
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.conftest import LIF_MD, lif_md_builder, local_computer, mlip_runner_code
from tests.services.faults_harness import Probe, audit_when_done, check_orphans, reap, start_daemon
from tests.services.test_daemon import BIN, User, _port_open

LI3N = Path(__file__).parents[1] / 'data' / 'structures' / 'Li3N.cif'
RUNNER = BIN / 'aiida-superionic-mlip'


def _short_marker() -> Path:
    """A marker file whose path is short: the label below holds it three times and must stay within the
    database's 255 characters (pytest-xdist's ``tmp_path`` alone can be 90)."""
    return Path(tempfile.mkdtemp(prefix='pw')) / 'PWNED'


def _nasty_label(marker: Path) -> str:
    return f"Li3N'\"; touch {marker}; $(touch {marker}) `touch {marker}` echo '"


#: When the daemon is killed: ``md_submitted``, while the MD jobs run (the runner processes live on: they are
#: the "cluster"); ``describing``, as soon as ``superionic.md`` has submitted its first
#: ``superionic.md_descriptors`` work chain, i.e. while the step may still be submitting the others.
def _material_with_daemon_kills(user: User, aiida_root: Path, profile: str, tmp_path: Path, kills) -> None:
    probe = Probe(user, profile, tmp_path)
    marker = _short_marker()
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
        facts = audit_when_done(probe, pk)
        (tmp_path / 'audit.json').write_text(json.dumps(facts, indent=1, default=str))  # for a post-mortem
    finally:
        user.run(BIN / 'verdi', '-p', profile, 'daemon', 'stop', check=False, timeout=120)
        reap(aiida_root / '.aiida' / 'daemon' / f'circus-{profile}.pid')

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
    # a child a kill stopped before or while it ran: sealed, excepted, nothing behind it, run again
    check_orphans(facts['orphans'], len(kills))
    counts = facts['process_counts']
    for name in (
        'MaterialWorkChain', 'RelaxWorkChain', 'ElasticWorkChain', 'PhononGammaWorkChain', 'VacancyWorkChain',
        'MDWorkChain', 'make_md_cells', 'collect_dft_part', 'compute_elastic_descriptors',
    ):  # fmt: skip
        assert counts[name] == 1, f'{name}: {counts}'
    for name in (
        'MDDescriptorsWorkChain', 'compute_diffusion', 'compute_vibrational', 'compute_lindemann',
        'compute_structure_descriptors', 'assemble_record',
    ):  # fmt: skip
        assert counts[name] == 4, f'{name}: {counts}; orphans {facts["orphans"]}'
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
    marker = _short_marker()
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
