"""Helpers shared by the MLIP runner's restart tests (tasks md and md_batch)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = shutil.which('aiida-superionic-mlip') or str(Path(sys.executable).with_name('aiida-superionic-mlip'))


def kill_at_first_checkpoint(workdir: Path, timeout_s: float = 240) -> None:
    """Run the real console script in ``workdir`` and SIGKILL it as soon as it has written restart.npz;
    the run must not have finished (no results.json)."""
    log = open(workdir / 'stdout.txt', 'w')
    proc = subprocess.Popen([SCRIPT], cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    try:
        while not (workdir / 'restart.npz').exists():
            assert proc.poll() is None, (workdir / 'stdout.txt').read_text()
            assert time.monotonic() < deadline, 'no checkpoint written'
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert not (workdir / 'results.json').exists()
