"""How often a daemon SIGKILL at a random moment leaves a duplicate behind: counts, not a timed test.

The fault tests (``tests/services/test_faults.py``) kill the daemon at two chosen moments. The windows
they cannot close by construction are aiida-core's own: a ``BaseRestartWorkChain`` step that submits its
CalcJob, and a calcfunction run again by a replayed work chain step, can each run twice when a kill lands
between the call and the step's checkpoint. This script measures how often that happens with kills at
random times.

Each round, as a user would (separate processes, the round's own AiiDA configuration folder, the embedded
profile: SQLite + the ZeroMQ broker inside the daemon): ``aiida-superionic setup``, ``verdi daemon start``,
``aiida-superionic submit Li3N.cif --protocol fast --overrides '{"md": {"n_steps": 200}}' --daemon``
(the fast protocol's relax, elastic, Γ, vacancy and 4 MD runs on the real CHGNet potential), then
``--kills`` SIGKILLs of the daemon (circus, worker, broker), each after a delay drawn uniformly from
``--delay`` seconds after the last restart, and each followed by ``verdi daemon start``; then the
graph is audited with the fault tests' probe (``tests/services/faults_harness.py``): calls repeated by the
same caller with the same inputs, children left behind by a replayed step (sealed "orphans"), data nodes
nobody made or used, records in the database, MLIP jobs restarted.

    .venv/bin/python benchmarks/kill_windows.py --rounds 5 --kills 4 --seed 1 --out /tmp/kill_windows.md

About 5-8 minutes per round on 2 idle cores. Prints one line per kill and a table (Markdown) at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.services.faults_harness import Probe, audit_when_done, reap, start_daemon
from tests.services.test_daemon import BIN, User

LI3N = Path(__file__).resolve().parents[1] / 'tests' / 'data' / 'structures' / 'Li3N.cif'
PROFILE = 'superionic'
EXPECTED_RECORDS = 4


def one_round(root: Path, kills: int, delay: tuple[float, float], rng: random.Random, say) -> dict:
    aiida_root = root / 'aiida'
    user = User(aiida_root)
    user.run(BIN / 'aiida-superionic', 'setup')
    probe = Probe(user, PROFILE, root)
    pidfile = aiida_root / '.aiida' / 'daemon' / f'circus-{PROFILE}.pid'
    user.run(BIN / 'verdi', '-p', PROFILE, 'daemon', 'start', '1')
    landed, extra_restarts = [], 0
    started = time.monotonic()
    try:
        out = user.run(
            BIN / 'aiida-superionic', '-p', PROFILE, 'submit', LI3N, '--mobile', 'Li', '--protocol', 'fast',
            '--overrides', '{"md": {"n_steps": 200}}', '--daemon',
        )  # fmt: skip
        pk = int(out.stdout.split('MaterialWorkChain<')[1].split('>')[0])
        for _ in range(kills):
            wait = rng.uniform(*delay)
            time.sleep(wait)
            seen = probe('wait', pk, 'now', 60, pidfile, timeout=600)
            if not seen['met']:  # the chain ended before this kill
                say(f'  chain ended before kill {len(landed) + 1} ({seen["reason"]})')
                break
            landed.append(seen['landed'])
            say(
                f'  kill {len(landed)} after {wait:.1f} s, {time.monotonic() - started:.0f} s in: {seen["landed"]}'
            )
            time.sleep(3)
            extra_restarts += start_daemon(user, aiida_root, PROFILE)
        facts = audit_when_done(probe, pk, wait_s=1800)
    finally:
        user.run(BIN / 'verdi', '-p', PROFILE, 'daemon', 'stop', check=False, timeout=120)
        reap(pidfile)
    chains = facts['mlip_chains'].values()
    return {
        'kills': len(landed),
        'landed': landed,
        'ok': facts['root_ok'],
        'exit': facts['root_exit'],
        'duplicates': facts['duplicates'],
        'orphans': [f'{o["label"]} ({o["state"]})' for o in facts['orphans']],
        'unlinked': len(facts['unlinked_data']),
        'records': facts['records_in_db'],
        'job_restarts': sum(max(len(c['exit_statuses']) - 1, 0) for c in chains),
        'processes': facts['n_processes'],
        'daemon_restarts': extra_restarts,
        'wall_s': time.monotonic() - started,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--kills', type=int, default=4, help='kills per round (default 4)')
    parser.add_argument('--delay', type=float, nargs=2, default=(5.0, 75.0), metavar=('MIN', 'MAX'))
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--out', type=Path, help='also write the Markdown table here')
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix='kw'))

    def say(line: str) -> None:
        print(line, flush=True)

    rows = []
    for n in range(args.rounds):
        say(f'round {n + 1}/{args.rounds}')
        rows.append(one_round(work / f'r{n}', args.kills, tuple(args.delay), rng, say))
        r = rows[-1]
        say(
            f'  ok={r["ok"]} records={r["records"]} duplicates={len(r["duplicates"])} orphans={len(r["orphans"])} '
            f'unlinked={r["unlinked"]} job restarts={r["job_restarts"]} ({r["wall_s"]:.0f} s)'
        )
        for orphan in r['orphans']:
            say(f'  orphan (sealed, replaced): {orphan}')
    lines = [
        f'Random daemon kills: {args.rounds} rounds x up to {args.kills} kills, delays U{tuple(args.delay)} s, '
        f'seed {args.seed}; {platform.machine()}, {os.cpu_count()} cores, load average at the end '
        f'{" ".join(f"{v:.1f}" for v in os.getloadavg())}',
        '',
        '| round | kills | finished ok | records | duplicate calls | orphans | unlinked data | job restarts | s |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for n, r in enumerate(rows, 1):
        lines.append(
            f'| {n} | {r["kills"]} | {r["ok"]} | {r["records"]} | {len(r["duplicates"])} | {len(r["orphans"])} | '
            f'{r["unlinked"]} | {r["job_restarts"]} | {r["wall_s"]:.0f} |'
        )
    total = sum(r['kills'] for r in rows)
    dups = [d for r in rows for d in r['duplicates']]
    lines += [
        '',
        f'{total} kills; {len(dups)} duplicate calls; '
        f'{sum(len(r["orphans"]) for r in rows)} orphans; '
        f'{sum(r["records"] != EXPECTED_RECORDS for r in rows)} rounds with a record count other than '
        f'{EXPECTED_RECORDS}; {sum(not r["ok"] for r in rows)} rounds not finished ok.',
        '',
        'Where the kills landed (newest running process): '
        + '; '.join(
            sorted(
                {f'{x} x{sum(y == x for r in rows for y in r["landed"])}' for r in rows for x in r['landed']}
            )
        ),
    ]
    if dups:
        lines += ['', 'Duplicates:', *[f'- {d}' for d in dups]]
    for n, r in enumerate(rows, 1):
        if not r['ok']:
            lines.append(f'- round {n}: {r["exit"]}')
    text = '\n'.join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
