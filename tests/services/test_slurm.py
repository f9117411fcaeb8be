"""The cluster path for real: AiiDA on ``core.ssh`` (paramiko to sshd on 127.0.0.1, key auth) and
``core.slurm`` (a one-node Slurm cluster on this machine: munged, slurmctld, slurmd), started for this
test session by ``.ci/slurm-cluster`` and stopped at its end.

The computer and the code are made with the commands and YAML files of the docs' cluster page
(``docs/cluster/*.yml``, included in ``docs/cluster.rst``), with only the site values (host, port, user,
key, work folder, executable) replaced: a key the docs drop or rename fails here. The jobs run the real
MLIP runner (CHGNet 0.3.0 on CPU) and, for VASP, aiida-vasp's ``mock-vasp``.

Slurm and sshd must be installed (``.ci/run`` installs them; ``sudo bash .ci/slurm-cluster install``
otherwise): without them these tests fail with that message. They start their daemons as root.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from tests.conftest import LIF_MD, RUNNER, lif_md_builder, load_mlip_code
from tests.engines.conftest import potcar_family, registry  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = ROOT / '.ci' / 'slurm-cluster'
DOCS = ROOT / 'docs' / 'cluster'

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _cluster(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(['bash', str(CLUSTER_SCRIPT), *args], capture_output=True, text=True, timeout=180)


def _daemon_pids(directory: Path) -> dict[str, int]:
    """The daemons of the cluster in ``directory`` that are alive, by pid file."""
    alive = {}
    for name in ('ssh/sshd.pid', 'slurm/slurmd.pid', 'slurm/slurmctld.pid', 'munge/munged.pid'):
        try:
            pid = int((directory / name).read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            continue
        alive[name] = pid
    return alive


@pytest.fixture(scope='session')
def slurm_cluster():
    """munged + slurmctld + slurmd + sshd for the session, in a folder of their own under /tmp (short: the
    munge socket path has a length limit); stopped, and checked gone, at the end."""
    missing = _cluster('missing').stdout.split()
    if missing:
        pytest.fail(
            f'Slurm/sshd are not installed (missing: {" ".join(missing)}). Install the Debian packages with '
            '`sudo bash .ci/slurm-cluster install` (munge slurmctld slurmd slurm-client openssh-server); '
            '.ci/run does it itself.',
            pytrace=False,
        )
    if os.geteuid() != 0:
        pytest.fail(
            'the Slurm tests start munged, slurmctld, slurmd and sshd as root: run them as root',
            pytrace=False,
        )
    directory = Path(tempfile.mkdtemp(prefix='superionic-slurm-', dir='/tmp'))
    ports = [_free_port() for _ in range(3)]
    started = _cluster('start', str(directory), *map(str, ports))
    if started.returncode != 0:
        _cluster('stop', str(directory))
        logs = ''.join(
            f'\n--- {p.name}\n{p.read_text()[-2000:]}' for p in sorted((directory / 'log').glob('*'))
        )
        pytest.fail(f'the test cluster did not start: {started.stderr}{logs}', pytrace=False)
    conf = directory / 'slurm' / 'slurm.conf'
    previous = os.environ.get('SLURM_CONF')
    os.environ['SLURM_CONF'] = str(conf)  # for scontrol / scancel / squeue run by the tests
    try:
        yield SimpleNamespace(dir=directory, ssh_port=ports[0], key=directory / 'ssh' / 'id_test', conf=conf)
    finally:
        if previous is None:
            os.environ.pop('SLURM_CONF', None)
        else:
            os.environ['SLURM_CONF'] = previous
        stopped = _cluster('stop', str(directory))
        left = _daemon_pids(directory)
        assert stopped.returncode == 0 and not left, (stopped.stderr, left)
        shutil.rmtree(directory, ignore_errors=True)


def _slurm(*args: str) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout


def _docs_config(name: str, tmp_path: Path, **site) -> Path:
    """The docs' YAML file ``docs/cluster/NAME`` with the site values ``site`` replaced (each must be a key
    the docs' file has), written to ``tmp_path``."""
    data = yaml.safe_load((DOCS / name).read_text())
    unknown = set(site) - set(data)
    assert not unknown, f'docs/cluster/{name} has no {sorted(unknown)}: the docs and the tests drifted apart'
    data.update(site)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _verdi(*args) -> str:
    from aiida.cmdline.commands.cmd_verdi import verdi
    from click.testing import CliRunner

    result = CliRunner().invoke(verdi, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope='module')
def slurm_computer(slurm_cluster, tmp_path_factory):
    """The docs' computer (``core.ssh`` + ``core.slurm``), set up and configured with the docs' commands
    and files: ``verdi computer setup --config computer-setup.yml``, ``verdi computer configure core.ssh
    --config computer-configure.yml``. Site values: this machine (127.0.0.1, the test sshd's port, root,
    the test key); AutoAddPolicy since the test host key is not in root's known_hosts; a short
    ``safe_interval`` and job poll interval to keep the tests quick."""
    from aiida import orm

    tmp = tmp_path_factory.mktemp('slurm-config')
    label = f'cluster-{uuid.uuid4().hex[:8]}'
    workdir = tmp_path_factory.mktemp('slurm-work')
    setup = _docs_config('computer-setup.yml', tmp, label=label, hostname='127.0.0.1', work_dir=str(workdir))
    _verdi('computer', 'setup', '--config', setup, '-n')
    configure = _docs_config(
        'computer-configure.yml',
        tmp,
        username='root',
        port=slurm_cluster.ssh_port,
        key_filename=str(slurm_cluster.key),
        key_policy='AutoAddPolicy',
        safe_interval=0.2,
    )
    _verdi('computer', 'configure', 'core.ssh', label, '--config', configure, '-n')
    computer = orm.load_computer(label)
    computer.set_minimum_job_poll_interval(1.0)
    return computer


@pytest.fixture(scope='module')
def slurm_code(slurm_computer, tmp_path_factory):
    """The docs' MLIP code (``verdi code create core.code.installed --config code-mlip.yml``) on the
    cluster computer: the runner of this environment, single-threaded instead of the docs' GPU setup."""
    from aiida import orm

    code = _docs_config(
        'code-mlip.yml',
        tmp_path_factory.mktemp('slurm-code'),
        computer=slurm_computer.label,
        filepath_executable=str(RUNNER),
        prepend_text='export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1\n',
    )
    _verdi('code', 'create', 'core.code.installed', '--config', code, '-n')
    return orm.load_code(f'mlip@{slurm_computer.label}')


class SlurmWatcher(threading.Thread):
    """Waits for a RUNNING Slurm job whose work folder (under ``workdir``) holds an MD checkpoint
    (``restart.npz``), then calls ``action(job_id)`` once."""

    def __init__(self, workdir: Path, action, timeout: float = 300):
        super().__init__(daemon=True)
        self.workdir, self.action, self.timeout = str(workdir), action, timeout
        self.job: dict | None = None
        self.stop = False
        self.error: Exception | None = None

    def run(self):
        deadline = time.monotonic() + self.timeout
        try:
            while not self.stop and time.monotonic() < deadline:
                for line in _slurm('squeue', '-h', '-t', 'RUNNING', '-o', '%i|%Z').splitlines():
                    job_id, workdir = line.split('|', 1)
                    if workdir.startswith(self.workdir) and (Path(workdir) / 'restart.npz').is_file():
                        self.job = {'id': job_id, 'workdir': workdir}
                        self.action(job_id)
                        return
                time.sleep(0.2)
        except Exception as exc:  # reported by the test
            self.error = exc


def _run_watched(builder, workdir, action):
    from aiida.engine import run_get_node

    watcher = SlurmWatcher(Path(workdir), action)
    watcher.start()
    try:
        outputs, node = run_get_node(builder)
    finally:
        watcher.stop = True
        watcher.join()
    assert watcher.error is None, watcher.error
    assert watcher.job is not None, 'no running Slurm job with a checkpoint was seen'
    return outputs, node, watcher.job


def _calcs(node):
    from aiida import orm

    return sorted((c for c in node.called if isinstance(c, orm.CalcJobNode)), key=lambda c: c.ctime)


def _assert_stitched_equals(stitched, expected, n_steps, frame_interval):
    np.testing.assert_array_equal(stitched.get_array('steps'), np.arange(0, n_steps + 1, frame_interval))
    np.testing.assert_allclose(stitched.get_positions(), expected.get_positions(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(stitched.get_velocities(), expected.get_velocities(), atol=1e-6, rtol=0)


def _assert_nothing_half_stored(calc, since):
    """The interrupted job is sealed with an exit code and its outputs are stored nodes linked to it;
    no data node stored since ``since`` (a datetime) is left without a link (a half-stored output)."""
    from aiida import orm

    assert calc.is_sealed and calc.exit_status is not None
    for link in calc.base.links.get_outgoing().all():
        assert link.node.is_stored
    query = orm.QueryBuilder().append(orm.Data, filters={'ctime': {'>=': since}}, project='id')
    orphans = []
    for (pk,) in query.all():
        node = orm.load_node(pk)
        if not node.base.links.get_incoming().all() and not node.base.links.get_outgoing().all():
            orphans.append(node)
    assert not orphans, orphans


# ---------------------------------------------------------------------------------- the docs' recipe


def test_docs_recipe_gives_a_working_ssh_slurm_computer(slurm_computer, slurm_code):
    """The computer and code made from the docs' files are what the docs say, and the transport and the
    scheduler answer through them (``verdi computer test``: SSH login, squeue, the work folder)."""
    assert slurm_computer.transport_type == 'core.ssh'
    assert slurm_computer.scheduler_type == 'core.slurm'
    assert slurm_code.default_calc_job_plugin == 'superionic.mlip'
    _verdi('computer', 'test', slurm_computer.label)  # exits non-zero when a check fails
    with slurm_computer.get_transport() as transport:
        retval, stdout, _ = transport.exec_command_wait('echo $SLURM_CONF; sinfo -h -N -o "%N %t %c"')
    assert retval == 0, stdout
    conf, *nodes = stdout.strip().splitlines()
    assert conf == os.environ['SLURM_CONF']
    assert nodes and all(n.split() == ['localhost', 'idle', str(len(os.sched_getaffinity(0)))] for n in nodes)


# ------------------------------------------------------------------------- the material chain on Slurm


def test_material_chain_through_slurm_equals_direct(slurm_code, li3n_fast):
    """The Li3N material chain (fast protocol) with every engine job submitted over SSH to Slurm, with the
    docs' GPU options (``options-gpu.json``: partition, account, QOS, ``--gres=gpu:1``, wall time; cores
    per process cut to one, this node has two) as ``--options`` gives them: every job's script has them as
    ``#SBATCH`` lines, and the records equal those of the same chain on ``core.direct`` (the session's
    shared run, conftest ``li3n_fast``)."""
    from aiida.engine import run_get_node

    from aiida_superionic.workflows.material import MaterialWorkChain

    options = json.loads((DOCS / 'options-gpu.json').read_text())
    assert options['resources'].keys() == {
        'num_machines',
        'num_mpiprocs_per_machine',
        'num_cores_per_mpiproc',
    }
    options['resources']['num_cores_per_mpiproc'] = 1
    builder = MaterialWorkChain.get_builder_from_protocol(
        slurm_code, li3n_fast.structure, 'fast', mobile='Li', label='Li3N', options=options
    )
    started = time.monotonic()
    outputs, node = run_get_node(builder)
    print(f'Li3N fast chain through Slurm: {time.monotonic() - started:.0f} s')
    assert node.is_finished_ok, node.exit_message
    jobs = [n for n in node.called_descendants if n.process_type == 'aiida.calculations:superionic.mlip']
    assert jobs and all(j.computer.uuid == slurm_code.computer.uuid for j in jobs)
    assert all(j.get_job_id() and j.get_scheduler_state().value == 'done' for j in jobs)
    for job in jobs:
        script = job.base.repository.get_object_content('_aiidasubmit.sh')
        for line in (
            '#SBATCH --partition=gpu',
            '#SBATCH --account=proj42',
            '#SBATCH --qos=normal',
            '#SBATCH --gres=gpu:1',
            '#SBATCH --nodes=1',
            '#SBATCH --ntasks-per-node=1',
            '#SBATCH --cpus-per-task=1',
            '#SBATCH --time=1-00:00:00',
        ):
            assert line in script, script
    expected = li3n_fast.outputs['records']
    assert sorted(outputs['records']) == sorted(expected)
    for key in expected:
        got, want = outputs['records'][key].get_dict(), expected[key].get_dict()
        assert json.dumps(got['values'], sort_keys=True) == json.dumps(want['values'], sort_keys=True), key


# ----------------------------------------------------------------- killed by Slurm: time limit, scancel, down

#: The run that Slurm's time limit kills: LiF as ``LIF_MD`` but long enough to outlast a one-minute limit
#: (Slurm enforces it within 30 s after the minute). Its length is sized from this machine's measured
#: rate (``_long_run_steps``), so a faster or quieter machine does not finish it before the limit.
LIF_MD_LONG = {**LIF_MD, 'n_steps': 800, 'frame_interval': 10, 'checkpoint_every': 5}
#: seconds of MD the long run should last on one core at the measured rate: Slurm kills at 60-90 s, and
#: the rate may double when the machine gets quieter during the run
LONG_RUN_S = 200


def _long_run_steps(reference_uuid: str) -> int:
    """Steps of ``LIF_MD_LONG`` that last about ``LONG_RUN_S`` at the rate the shared ``LIF_MD`` reference
    run measured here (same cell, same model, one thread), at least 800, a whole number of frames."""
    from aiida import orm

    reference = orm.load_node(reference_uuid)
    rates = [
        calc.outputs.results.get_dict().get('seconds_per_step')
        for calc in reference.called_descendants
        if isinstance(calc, orm.CalcJobNode) and 'results' in calc.outputs
    ]
    seconds_per_step = max(r for r in rates if r)
    interval = LIF_MD_LONG['frame_interval']
    steps = max(LIF_MD_LONG['n_steps'], int(LONG_RUN_S / seconds_per_step))
    return -(-steps // interval) * interval


def _lif_long_builder(code, n_steps: int):
    from aiida import orm
    from ase.build import bulk

    from aiida_superionic.engines.contract import get_engine

    engine = get_engine('mlip')
    cell = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.08, cubic=True))
    settings = engine.protocol('fast', {'md': {**LIF_MD_LONG, 'n_steps': n_steps}})
    return engine.get_builder('md', cell, code, settings, temperature_K=800, seed=7)


def _run_together(*builders):
    """Run the processes of ``builders`` side by side in this interpreter's runner (one event loop); returns
    their nodes once all have terminated."""
    import asyncio

    from aiida.manage import get_manager

    runner = get_manager().get_runner()
    nodes = [runner.submit(builder) for builder in builders]
    while not all(node.is_terminated for node in nodes):
        runner.loop.run_until_complete(asyncio.sleep(0.5))
    return nodes


def test_md_job_killed_at_slurm_time_limit_continues_exactly(slurm_code, _lif_md_reference_run):
    """An MD job with ``--time`` of one minute: Slurm kills it (state TIMEOUT, its message in the job's
    stderr); the CalcJob ends with ERROR_WALLTIME at its last checkpoint, the restart work chain continues
    from that checkpoint, and the stitched trajectory equals an uninterrupted run of the same seed (on
    ``core.direct``, run at the same time) frame for frame."""
    from aiida.common import timezone

    since = timezone.now()
    n_steps = _long_run_steps(_lif_md_reference_run)
    builder = _lif_long_builder(slurm_code, n_steps)
    builder.mlip.metadata.options.max_wallclock_seconds = 60
    started = time.monotonic()
    node, reference = _run_together(builder, _lif_long_builder(load_mlip_code(), n_steps))
    elapsed = time.monotonic() - started
    assert node.is_finished_ok, node.exit_message
    first, *rest = _calcs(node)
    assert '#SBATCH --time=00:01:00' in first.base.repository.get_object_content('_aiidasubmit.sh')
    stderr = first.outputs.retrieved.base.repository.get_object_content('_scheduler-stderr.txt')
    assert 'DUE TO TIME LIMIT' in stderr, (
        f'Slurm did not kill the job at its time limit (the run took {elapsed:.0f} s): {stderr[-500:]}'
    )
    assert first.exit_status == first.process_class.exit_codes.ERROR_WALLTIME.status, first.exit_message
    assert first.outputs.results['status'] == 'walltime'
    checkpoint = first.outputs.results['restart_step']
    assert 0 < checkpoint < n_steps
    assert rest and rest[0].inputs.restart.uuid == first.outputs.restart.uuid
    assert rest[0].outputs.results['restart_from_step'] == checkpoint
    assert rest[-1].exit_status == 0
    _assert_nothing_half_stored(first, since)
    assert reference.is_finished_ok and len(_calcs(reference)) == 1
    _assert_stitched_equals(
        node.outputs.trajectory,
        reference.outputs.trajectory,
        n_steps,
        LIF_MD_LONG['frame_interval'],
    )


def test_md_job_cancelled_with_scancel_continues_from_its_checkpoint(slurm_code, lif_md_reference):
    """``scancel`` of a running MD job after its first checkpoint: the CalcJob ends with
    ERROR_MD_INCOMPLETE (status ``killed``) and only whole outputs; the restart work chain (and so the
    material chain) continues from the checkpoint, and the stitched run equals the uninterrupted one."""
    from aiida.common import timezone

    since = timezone.now()
    outputs, node, job = _run_watched(
        lif_md_builder(slurm_code),
        slurm_code.computer.get_workdir(),
        lambda job_id: _slurm('scancel', job_id),
    )
    assert node.is_finished_ok, node.exit_message
    first, *rest = _calcs(node)
    assert first.get_job_id() == job['id']
    assert first.exit_status == first.process_class.exit_codes.ERROR_MD_INCOMPLETE.status
    assert first.outputs.results['status'] == 'killed'
    assert 'CANCELLED' in first.outputs.retrieved.base.repository.get_object_content('_scheduler-stderr.txt')
    _assert_nothing_half_stored(first, since)
    assert rest[0].inputs.restart.uuid == first.outputs.restart.uuid
    _assert_stitched_equals(
        outputs['trajectory'], lif_md_reference, LIF_MD['n_steps'], LIF_MD['frame_interval']
    )


def test_md_job_on_a_node_that_goes_down_continues_when_it_is_back(slurm_code, lif_md_reference):
    """The node of a running MD job is set down (``scontrol update ... state=down``): Slurm ends the job
    (NODE_FAIL; AiiDA's scripts say ``--no-requeue``), the CalcJob ends with ERROR_MD_INCOMPLETE, the
    continuation waits in the queue (PENDING) until the node is resumed, then the run ends equal to the
    uninterrupted one."""
    from aiida.common import timezone

    since = timezone.now()
    seen = {}

    def down_then_resume(job_id):
        _slurm('scontrol', 'update', 'nodename=localhost', 'state=down', 'reason=superionic-test')
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the killed job leaves the queue, its continuation comes
                queue = dict(line.split('|') for line in _slurm('squeue', '-h', '-o', '%i|%T').splitlines())
                if job_id not in queue and queue:
                    seen['continuation'] = sorted(queue.values())
                    break
                time.sleep(0.2)
            seen['job'] = _slurm('scontrol', 'show', 'job', '-o', job_id)
            seen['node'] = _slurm('sinfo', '-h', '-N', '-o', '%t').split()
        finally:
            _slurm('scontrol', 'update', 'nodename=localhost', 'state=resume')

    try:
        outputs, node, job = _run_watched(
            lif_md_builder(slurm_code), slurm_code.computer.get_workdir(), down_then_resume
        )
    finally:
        if _slurm('sinfo', '-h', '-N', '-o', '%t').startswith('down'):
            _slurm('scontrol', 'update', 'nodename=localhost', 'state=resume')
    assert 'JobState=NODE_FAIL' in seen['job'], seen
    assert seen['continuation'] == ['PENDING'] and set(seen['node']) == {'down'}, seen
    assert node.is_finished_ok, node.exit_message
    first, *rest = _calcs(node)
    assert first.get_job_id() == job['id']
    assert first.exit_status == first.process_class.exit_codes.ERROR_MD_INCOMPLETE.status
    assert first.outputs.results['status'] == 'killed'
    assert 'NODE FAILURE' in first.outputs.retrieved.base.repository.get_object_content(
        '_scheduler-stderr.txt'
    )
    _assert_nothing_half_stored(first, since)
    assert rest[0].inputs.restart.uuid == first.outputs.restart.uuid
    _assert_stitched_equals(
        outputs['trajectory'], lif_md_reference, LIF_MD['n_steps'], LIF_MD['frame_interval']
    )


# ------------------------------------------------------------------------- the VASP engine through Slurm


def test_vasp_job_through_slurm_options_reach_sbatch_and_label_does_not(
    slurm_computer,
    registry,  # noqa: F811 (the fixture imported above)
    potcar_family,  # noqa: F811
):
    """The VASP engine's elastic step with the docs' VASP code (``code-vasp.yml``; mock-vasp as the
    executable) and the docs' ``--options`` (``options-cpu.json``, resources cut to this one node): the
    job runs under Slurm through ``srun``, the options are its ``#SBATCH`` lines, and a label full of shell
    metacharacters is nowhere in the script and runs nothing."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_superionic.workflows.steps import ElasticWorkChain
    from tests.engines.conftest import MOCK_VASP, RECORDINGS, _structure_of
    from tests.services.test_faults import _nasty_label

    label = f'vasp-{uuid.uuid4().hex[:6]}'
    code = _docs_config(
        'code-vasp.yml',
        registry.parent,
        label=label,
        computer=slurm_computer.label,
        filepath_executable=str(MOCK_VASP),
        prepend_text=f'export MOCK_VASP_REG_BASE={registry}\n',
    )
    _verdi('code', 'create', 'core.code.installed', '--config', code, '-n')
    options = json.loads((DOCS / 'options-cpu.json').read_text())
    assert set(options) >= {'queue_name', 'account', 'resources', 'max_wallclock_seconds'}
    options['resources'] = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}  # this cluster: one node
    marker = registry.parent / 'PWNED'
    nasty = _nasty_label(marker)
    structure = _structure_of(RECORDINGS / 'vasprun_elastic_ibrion6.xml.gz')
    outputs, node = run_get_node(
        ElasticWorkChain,
        structure=structure,
        code=orm.load_code(f'{label}@{slurm_computer.label}'),
        engine=orm.Str('vasp'),
        protocol=orm.Str('precise'),
        options=orm.Dict(options),
        metadata={'label': nasty, 'description': nasty},
    )
    assert node.is_finished_ok, node.exit_message
    assert 'elastic_tensor' in outputs
    (calc,) = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
    assert calc.computer.uuid == slurm_computer.uuid and calc.get_job_id()
    script = calc.base.repository.get_object_content('_aiidasubmit.sh')
    for line in (
        '#SBATCH --partition=cpu',
        '#SBATCH --account=proj42',
        '#SBATCH --nodes=1',
        '#SBATCH --ntasks-per-node=1',
        '#SBATCH --time=1-00:00:00',
    ):
        assert line in script, script
    assert "'srun' '-n' '1'" in script or 'srun -n 1' in script, script
    assert 'touch' not in script and 'PWNED' not in script, script
    assert not marker.exists()
