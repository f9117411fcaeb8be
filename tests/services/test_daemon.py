"""Real daemon submission on both brokers: the embedded profile (SQLite + the ZeroMQ broker inside the
daemon) and the production one (PostgreSQL + RabbitMQ on 127.0.0.1). Everything runs as a user would:
separate processes, a real daemon, a real AiiDA configuration folder."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
INSPECT = Path(__file__).with_name('inspect_profile.py')


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(('127.0.0.1', port)) == 0


class User:
    """Runs commands with its own AiiDA configuration folder."""

    def __init__(self, root: Path):
        self.env = {**os.environ, 'AIIDA_PATH': str(root), 'PATH': f'{BIN}{os.pathsep}{os.environ["PATH"]}'}

    def run(self, *args, check=True, timeout=300, cwd=None):
        proc = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, env=self.env, timeout=timeout, cwd=cwd
        )
        if check and proc.returncode != 0:
            raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}')
        return proc

    def facts(self, profile: str) -> dict:
        return json.loads(self.run(sys.executable, INSPECT, profile).stdout.strip().splitlines()[-1])

    def wait_finished(self, profile: str, count: int, timeout: float = 240.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            facts = self.facts(profile)
            states = [w['state'] for w in facts['workchains']]
            if len(states) >= count and all(s in ('finished', 'excepted', 'killed') for s in states):
                return facts
            time.sleep(2)
        raise AssertionError(f'work chains not finished after {timeout} s: {facts}')


@pytest.fixture(scope='module')
def small_npz(tmp_path_factory, shared_md):
    """60 frames of the real Li6PS5Cl AIMD as .npz (fast to analyse)."""
    from aiida_superionic.io import read_xdatcar

    traj = read_xdatcar(shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz')
    traj.positions = traj.positions[:60]
    return traj.to_npz(tmp_path_factory.mktemp('npz') / 'argyrodite60.npz')


def _import_through_daemon(user: User, profile: str, path: Path):
    user.run(BIN / 'verdi', '-p', profile, 'daemon', 'start', '1')
    try:
        submitted = user.run(
            BIN / 'aiida-superionic', '-p', profile, 'import-md', path, '-T', 500, '-t', 2, '--step-skip', 50,
            '--group', 'argyrodite', '--daemon',
        )  # fmt: skip
        assert 'submitted ImportMDWorkChain<' in submitted.stdout
        facts = user.wait_finished(profile, 1)
    finally:
        user.run(BIN / 'verdi', '-p', profile, 'daemon', 'stop', check=False)
    (chain,) = facts['workchains']
    assert chain['ok'], chain
    assert chain['trajectory_creator'] == 'parse_trajectory_file'
    assert chain['source_type'] == 'SinglefileData'
    assert chain['source_sha256'] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert chain['diffusion_input_is_trajectory']
    assert chain['record_inputs'] == ['diffusion', 'lindemann', 'record_metadata', 'vibrational']
    assert chain['groups'] == ['argyrodite']
    assert chain['D'] > 0
    # importing the same file again is recognised and stores nothing
    again = user.run(
        BIN / 'aiida-superionic', '-p', profile, 'import-md', path, '-T', 500, '-t', 2, '--step-skip', 50
    )
    assert 'already imported' in again.stdout
    assert user.facts(profile)['nodes'] == facts['nodes']
    return facts


@pytest.mark.slow  # a real profile, daemon and broker, every step a process
def test_zeromq_daemon_on_the_embedded_profile(tmp_path, small_npz):
    user = User(tmp_path / 'aiida')
    setup = user.run(BIN / 'aiida-superionic', 'setup')
    assert 'core.sqlite_dos, broker core.zeromq' in setup.stdout
    assert 'ready' in user.run(BIN / 'aiida-superionic', 'setup').stdout  # idempotent
    _import_through_daemon(user, 'superionic', small_npz)


@pytest.mark.slow  # a real profile, daemon and broker, every step a process
def test_rabbitmq_daemon_on_a_postgres_profile(tmp_path, small_npz):
    assert _port_open(5432) and _port_open(5672), (
        'PostgreSQL (5432) and RabbitMQ (5672) must run: .ci/run starts them'
    )
    user = User(tmp_path / 'aiida')
    name = f'ci_{uuid.uuid4().hex[:8]}'
    setup = user.run(BIN / 'aiida-superionic', 'setup', '--production', '--profile-name', name)
    assert 'core.psql_dos, broker core.rabbitmq' in setup.stdout
    try:
        _import_through_daemon(user, name, small_npz)
    finally:
        user.run(BIN / 'verdi', 'profile', 'delete', '--force', '--delete-data', name, check=False)
        import psycopg

        with psycopg.connect(host='127.0.0.1', user='postgres', dbname='postgres', autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "aiida_{name}"')
