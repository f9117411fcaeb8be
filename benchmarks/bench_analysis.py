"""Benchmark ``analyze_trajectory`` and ``read_xdatcar`` against pymatgen(-analysis-diffusion).

One run prints both sides and the ratios:

1. a synthetic trajectory (default 300 atoms x 100,000 frames, float32, wrapped into a cubic cell):
   ``--mobile`` Li ions doing Brownian motion with a known D, the rest 'S' atoms oscillating
   harmonically about lattice sites; generated in chunks of frames so the generator never holds more
   than the float32 result plus one chunk;
2. wall time of the *full* ``analyze_trajectory`` (D, D error, VDOS descriptors, Lindemann ratio) vs
   pymatgen-analysis-diffusion's ``DiffusionAnalyzer`` computing D alone on the same frames, and both
   D values next to the true D;
3. peak memory of ``analyze_trajectory`` over the float32 size of the trajectory, in a fresh
   subprocess (peak-RSS increase, and numpy's own peak through tracemalloc);
4. ``read_xdatcar`` vs ``pymatgen.io.vasp.outputs.Xdatcar`` on a synthetic VASP-5 XDATCAR written to
   ``benchmarks/_data/`` (git-ignored): MB/s of both and the largest position difference.

Each measured side runs in its own fresh subprocess (``--_worker``), so neither the generator's nor the
other side's memory pollutes a peak, and the timings are taken under the same conditions.

Usage::

    .venv/bin/python benchmarks/bench_analysis.py            # full default run (several minutes)
    .venv/bin/python benchmarks/bench_analysis.py --quick    # 20k frames, 1k XDATCAR frames
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / '_data'

#: 1 Å^2/fs in cm^2/s.
A2_FS_TO_CM2_S = 0.1


# --------------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------------


def make_trajectory(
    n_frames: int,
    n_atoms: int,
    n_mobile: int,
    box: float,
    dt_fs: float,
    d_true_a2_fs: float,
    seed: int = 0,
    chunk_frames: int = 4096,
):
    """Wrapped float32 cartesian positions (n_frames, n_atoms, 3), cell and symbols.

    Mobile ions: 3D Brownian motion, per-frame step N(0, 2 D dt) per direction (MSD = 6 D t exactly in
    expectation). Framework ions: harmonic oscillators about simple-cubic lattice sites, each direction
    an undamped oscillation with its own frequency (3-15 THz, i.e. 12-62 meV) and phase, amplitude
    0.1 Å. Generated ``chunk_frames`` frames at a time (float64 only for the chunk in hand).
    """
    rng = np.random.default_rng(seed)
    n_frame_atoms = n_atoms - n_mobile
    cell = np.eye(3) * box
    symbols = ['Li'] * n_mobile + ['S'] * n_frame_atoms
    # Framework sites on the smallest simple-cubic grid that holds them.
    m = int(np.ceil(n_frame_atoms ** (1.0 / 3.0) - 1e-9))
    grid = np.stack(np.meshgrid(*[np.arange(m)] * 3, indexing='ij'), axis=-1).reshape(-1, 3)
    sites = (grid[:n_frame_atoms] + 0.5) * (box / m)
    freq = rng.uniform(3e-3, 15e-3, size=(n_frame_atoms, 3))  # 1/fs (3-15 THz)
    omega = 2 * np.pi * freq
    phase = rng.uniform(0, 2 * np.pi, size=(n_frame_atoms, 3))
    amp = 0.1
    sigma = np.sqrt(2.0 * d_true_a2_fs * dt_fs)
    li = rng.uniform(0, box, size=(n_mobile, 3))  # unwrapped position at the last generated frame

    out = np.empty((n_frames, n_atoms, 3), dtype=np.float32)
    for start in range(0, n_frames, chunk_frames):
        stop = min(n_frames, start + chunk_frames)
        n = stop - start
        steps = rng.normal(0.0, sigma, size=(n, n_mobile, 3))
        if start == 0:
            steps[0] = 0.0
        pos_li = li + np.cumsum(steps, axis=0)
        li = pos_li[-1]
        t = np.arange(start, stop, dtype=float)[:, None, None] * dt_fs
        pos_fw = sites + amp * np.cos(omega * t + phase)
        block = np.concatenate([pos_li, pos_fw], axis=1)
        block -= box * np.floor(block / box)  # wrap into [0, box)
        out[start:stop] = block
    return out, cell, symbols


def write_xdatcar(path: Path, positions: np.ndarray, cell: np.ndarray, symbols: list[str]) -> None:
    """A VASP-5 XDATCAR (fixed cell, 'Direct configuration=' blocks, %.8f fractions as VASP writes)."""
    species = list(dict.fromkeys(symbols))
    counts = [symbols.count(s) for s in species]
    n_atoms = len(symbols)
    inv = np.linalg.inv(cell)
    line = '  %.8f  %.8f  %.8f\n'
    with open(path, 'w') as fh:
        fh.write('Li100S200 synthetic benchmark run\n')
        fh.write('           1\n')
        for row in cell:
            fh.write('    ' + ' '.join(f'{v:12.6f}' for v in row) + '\n')
        fh.write(''.join(f'   {s:>2s}' for s in species) + '\n')
        fh.write(''.join(f' {c:5d}' for c in counts) + '\n')
        fmt = line * n_atoms
        for start in range(0, len(positions), 256):
            frac = positions[start : start + 256].astype(float) @ inv
            frac -= np.floor(frac)
            parts = []
            for k, f in enumerate(frac):
                parts.append(f'Direct configuration= {start + k + 1:5d}\n')
                parts.append(fmt % tuple(f.ravel()))
            fh.write(''.join(parts))


# --------------------------------------------------------------------------------------------------
# Memory helpers
# --------------------------------------------------------------------------------------------------


def rss_bytes() -> int:
    """Current resident set size (Linux /proc)."""
    with open('/proc/self/statm') as fh:
        return int(fh.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def maxrss_bytes() -> int:
    """Peak resident set size of this process so far (ru_maxrss is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --------------------------------------------------------------------------------------------------
# Workers (run in fresh subprocesses)
# --------------------------------------------------------------------------------------------------


def worker_ours(spec: dict) -> dict:
    from aiida_superionic.analysis.trajectory import analyze_trajectory

    data = np.load(spec['npy'])  # fully in memory (not a memmap): the baseline holds the trajectory
    meta = spec['meta']
    cell = np.array(meta['cell'])
    symbols = meta['symbols']
    out: dict = {'runs': []}
    # Warm-up on 2,000 frames, not timed: first-call imports (ase.data, scipy.fft backends) and FFT
    # plan caches would otherwise land in the timing and in the peak-RSS increase.
    analyze_trajectory(data[:2000], cell, symbols, meta['dt_fs'], meta['temperature_K'], mobile='Li')
    for n_frames in spec['frame_counts']:
        pos = data[:n_frames]  # leading-axis slice of a C-contiguous array: a view, no copy
        rss0, peak0 = rss_bytes(), maxrss_bytes()
        times = []
        for _ in range(spec['repeat']):
            t0 = time.perf_counter()
            res = analyze_trajectory(pos, cell, symbols, meta['dt_fs'], meta['temperature_K'], mobile='Li')
            times.append(time.perf_counter() - t0)
        wall = min(times)
        peak1 = maxrss_bytes()
        run = {
            'frames': n_frames,
            'time_s': wall,
            'times_s': times,
            'D_cm2_s': res['diffusion']['D_cm2_s'],
            'D_err_cm2_s': res['diffusion']['D_stderr_cm2_s'],
            'lindemann': res['lindemann_ratio'],
            'mean_freq_meV': res['vibrational']['all']['mean_frequency_meV'],
            'traj_bytes': int(pos.nbytes),
            'rss_before': rss0,
            'peak_before': peak0,
            'peak_after': peak1,
            # increase of the process's peak RSS over its RSS right before the call
            'peak_rss_increase': max(0, peak1 - rss0),
        }
        out['runs'].append(run)
    if spec.get('tracemalloc'):
        import tracemalloc

        n_frames = spec['frame_counts'][-1]
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        analyze_trajectory(data[:n_frames], cell, symbols, meta['dt_fs'], meta['temperature_K'], mobile='Li')
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out['tracemalloc_peak_increase'] = peak - base
    return out


def peer_inputs(positions: np.ndarray, cell: np.ndarray, symbols: list[str]):
    """pymatgen inputs: the initial Structure and the unwrapped displacements (n_atoms, n_frames, 3).

    In this DiffusionAnalyzer the ``displacements`` are *cartesian* (Å), measured from the initial
    structure: ``from_structures`` builds them as cumulative minimum-image fractional steps multiplied
    by the lattice, and ``get_drift_corrected_structures`` adds them to ``cart_coords``. We build them
    exactly that way (frame 0 gives zero displacement), one chunk of atoms at a time.
    """
    from pymatgen.core import Lattice, Structure

    n_frames, n_atoms, _ = positions.shape
    structure = Structure(Lattice(cell), symbols, positions[0].astype(float), coords_are_cartesian=True)
    inv = np.linalg.inv(cell)
    disp = np.empty((n_atoms, n_frames, 3))
    for a0 in range(0, n_atoms, 16):
        frac = positions[:, a0 : a0 + 16].astype(float) @ inv
        step = np.diff(frac, axis=0)
        step -= np.round(step)
        cum = np.zeros_like(frac)
        np.cumsum(step, axis=0, out=cum[1:])
        disp[a0 : a0 + 16] = (cum @ cell).transpose(1, 0, 2)
    return structure, disp


def worker_peer(spec: dict) -> dict:
    from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer

    meta = spec['meta']
    n_frames = spec['frames']
    pos = np.load(spec['npy'], mmap_mode='r')[:n_frames]
    structure, disp = peer_inputs(pos, np.array(meta['cell']), meta['symbols'])
    del pos
    kwargs = {'temperature': meta['temperature_K'], 'time_step': meta['dt_fs'], 'step_skip': 1}
    # Warm-up on 2,000 frames, not timed (same as ours).
    DiffusionAnalyzer(structure, np.ascontiguousarray(disp[:, :2000]), 'Li', smoothed='max', **kwargs)
    # smoothed='max' is the setting closest to "all time origins": for every lag it averages the
    # squared displacement over *every* time origin (an FFT autocorrelation in this version,
    # _msd_from_positions_fft), then fits ~200 lags from 1 ps to the end of the run, weighted by
    # 1/sqrt(dt). smoothed=False uses a single time origin (frame 0) and smoothed='constant' only
    # avg_nsteps origins. step_skip=1 because time_step is already the time between stored frames.
    rss0 = rss_bytes()
    times = []
    for _ in range(spec['repeat']):
        da = None  # free the previous repeat's arrays first
        t0 = time.perf_counter()
        da = DiffusionAnalyzer(structure, disp, 'Li', smoothed='max', **kwargs)
        times.append(time.perf_counter() - t0)
    peak1 = maxrss_bytes()
    return {
        'frames': n_frames,
        'time_s': min(times),
        'times_s': times,
        'D_cm2_s': float(da.diffusivity),
        'D_err_cm2_s': float(da.diffusivity_std_dev),
        'input_bytes': int(disp.nbytes),
        'peak_rss_increase': max(0, peak1 - rss0),
    }


def worker_xdatcar(spec: dict) -> dict:
    path = spec['path']
    if spec['side'] == 'ours':
        from aiida_superionic.io.xdatcar import read_xdatcar

        t0 = time.perf_counter()
        traj = read_xdatcar(path)
        wall = time.perf_counter() - t0
        np.save(spec['out'], traj.positions)
        return {'time_s': wall, 'frames': traj.n_frames}
    from pymatgen.io.vasp.outputs import Xdatcar

    t0 = time.perf_counter()
    xd = Xdatcar(path)
    wall = time.perf_counter() - t0
    np.save(spec['out'], np.array([s.cart_coords for s in xd.structures]))
    return {'time_s': wall, 'frames': len(xd.structures)}


WORKERS = {'ours': worker_ours, 'peer': worker_peer, 'xdatcar': worker_xdatcar}


def run_worker(kind: str, spec: dict, timeout: float | None = None) -> dict:
    """Run a worker in a fresh interpreter; its JSON result is the last line of its stdout."""
    cmd = [sys.executable, str(Path(__file__).resolve()), '--_worker', kind, json.dumps(spec)]
    env = dict(os.environ)
    env['PYTHONPATH'] = str(HERE.parent) + os.pathsep + env.get('PYTHONPATH', '')
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {'error': f'timed out after {timeout:.0f} s'}
    if proc.returncode != 0:
        tail = (proc.stderr or '').strip().splitlines()[-3:]
        what = 'killed (out of memory?)' if proc.returncode < 0 else f'exit {proc.returncode}'
        return {'error': f'{what}: ' + ' | '.join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------


def _fmt_times(run: dict) -> str:
    return ', '.join(f'{t:.2f}' for t in run['times_s'])


def fmt_d(d: float, err: float | None = None) -> str:
    return f'{d:.3e}' + (f' ± {err:.1e}' if err is not None and np.isfinite(err) else '')


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--frames', type=int, default=None, help='frames of the synthetic run (default 100000)')
    p.add_argument('--atoms', type=int, default=300, help='atoms (default 300)')
    p.add_argument('--mobile', type=int, default=100, help='mobile Li among them (default 100)')
    p.add_argument('--xdatcar-frames', type=int, default=None, help='frames of the XDATCAR (default 5000)')
    p.add_argument('--peer-frames', type=int, default=None, help='cap the frames given to DiffusionAnalyzer')
    p.add_argument('--box', type=float, default=15.0, help='cubic cell edge, Å (default 15)')
    p.add_argument('--dt', type=float, default=2.0, help='time between frames, fs (default 2)')
    p.add_argument('--D', type=float, default=1e-5, help='true D of the mobile ions, cm^2/s (default 1e-5)')
    p.add_argument('--temperature', type=float, default=600.0)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--quick', action='store_true', help='20k frames and a 1k-frame XDATCAR')
    p.add_argument('--skip-xdatcar', action='store_true')
    p.add_argument('--repeat', type=int, default=3, help='timed calls per side; the fastest is reported')
    p.add_argument('--no-tracemalloc', action='store_true', help='skip the second, tracemalloc-traced run')
    p.add_argument('--peer-timeout', type=float, default=900.0, help='seconds before giving up on the peer')
    p.add_argument('--_worker', nargs=2, metavar=('KIND', 'SPEC'), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._worker:
        kind, spec = args._worker
        print(json.dumps(WORKERS[kind](json.loads(spec))))
        return 0

    n_frames = args.frames or (20_000 if args.quick else 100_000)
    n_xdat = args.xdatcar_frames or (1_000 if args.quick else 5_000)
    peer_frames = min(args.peer_frames or n_frames, n_frames)
    d_true = args.D / A2_FS_TO_CM2_S  # Å^2/fs
    DATA.mkdir(exist_ok=True)

    print(
        f'machine: {platform.node()}, {os.cpu_count()} cores, '
        f'python {platform.python_version()}, numpy {np.__version__}'
    )
    print(f'command: {" ".join([Path(sys.executable).name, *sys.argv])}')
    print()

    # 1. Synthetic trajectory -------------------------------------------------------------------
    t0 = time.perf_counter()
    positions, cell, symbols = make_trajectory(
        n_frames, args.atoms, args.mobile, args.box, args.dt, d_true, seed=args.seed
    )
    t_gen = time.perf_counter() - t0
    npy = DATA / f'traj_{n_frames}x{args.atoms}_{args.mobile}_s{args.seed}.npy'
    np.save(npy, positions)
    meta = {'cell': cell.tolist(), 'symbols': symbols, 'dt_fs': args.dt, 'temperature_K': args.temperature}
    mb = positions.nbytes / 1e6
    print(
        f'[1] synthetic trajectory: {n_frames} frames x {args.atoms} atoms ({args.mobile} Li Brownian, '
        f'{args.atoms - args.mobile} S harmonic), cubic {args.box:g} Å, dt {args.dt:g} fs, '
        f'float32 {mb:.0f} MB, generated in {t_gen:.1f} s; true D = {args.D:.3e} cm^2/s'
    )

    # 2 + 3. analyze_trajectory (fresh subprocess) vs DiffusionAnalyzer (fresh subprocess) --------
    # Smaller size first: ru_maxrss only grows, so each run's peak is measured before a larger one.
    counts = sorted({n_frames, peer_frames})
    spec = {
        'npy': str(npy),
        'meta': meta,
        'frame_counts': counts,
        'tracemalloc': not args.no_tracemalloc,
        'repeat': args.repeat,
    }
    ours = run_worker('ours', spec)
    if 'error' in ours:
        print(f'analyze_trajectory failed: {ours["error"]}')
        return 1
    spec = {'npy': str(npy), 'meta': meta, 'frames': peer_frames, 'repeat': args.repeat}
    peer = run_worker('peer', spec, timeout=args.peer_timeout)
    ours_same = ours['runs'][0]
    ours_full = ours['runs'][-1]

    print()
    print(
        f'[2] full analyze_trajectory vs DiffusionAnalyzer(smoothed="max") D alone, {peer_frames} frames '
        f'(fastest of {args.repeat} calls each, after an untimed warm-up):'
    )
    print(f'    {"":38s}{"time (s)":>10s}  {"D (cm^2/s)":>20s}  {"D/D_true":>8s}  {"peak RSS +":>10s}')
    print(
        f'    {"analyze_trajectory (all descriptors)":38s}{ours_same["time_s"]:10.2f}  '
        f'{fmt_d(ours_same["D_cm2_s"], ours_same["D_err_cm2_s"]):>20s}  '
        f'{ours_same["D_cm2_s"] / args.D:8.3f}  '
        f'{ours_same["peak_rss_increase"] / 1e6:8.0f}MB'
    )
    if 'error' in peer:
        print(f'    {"DiffusionAnalyzer (D only)":38s}  FAILED: {peer["error"]}')
        print('    -> rerun with --peer-frames N to time the peer on fewer frames')
    else:
        print(
            f'    {"DiffusionAnalyzer (D only)":38s}{peer["time_s"]:10.2f}  '
            f'{fmt_d(peer["D_cm2_s"], peer["D_err_cm2_s"]):>20s}  {peer["D_cm2_s"] / args.D:8.3f}  '
            f'{peer["peak_rss_increase"] / 1e6:8.0f}MB'
        )
        ratio = peer['time_s'] / ours_same['time_s']
        print(f'    all calls (s): ours {_fmt_times(ours_same)}; peer {_fmt_times(peer)}')
        verdict = 'meets' if ratio >= 2.0 else 'MISSES'
        print(f'    true D = {args.D:.3e} cm^2/s')
        ratio_first = peer['times_s'][0] / ours_same['times_s'][0]
        print(
            f'    speed-up (peer time / our time) = {ratio:.2f}x fastest call vs fastest call '
            f'({verdict} the >= 2x target); {ratio_first:.2f}x first call vs first call'
        )
        print(
            '    (peer inputs -- Structure + unwrapped cartesian displacements, '
            f'{peer["input_bytes"] / 1e6:.0f} MB float64 -- built outside its timing)'
        )
    if peer_frames != n_frames:
        print(
            f'    analyze_trajectory on all {n_frames} frames: {ours_full["time_s"]:.2f} s, '
            f'D = {fmt_d(ours_full["D_cm2_s"], ours_full["D_err_cm2_s"])} '
            f'(D/D_true {ours_full["D_cm2_s"] / args.D:.3f})'
        )

    print()
    inc = ours_full['peak_rss_increase']
    traj_b = ours_full['traj_bytes']
    print(
        f'[3] peak memory of analyze_trajectory, {n_frames} frames '
        '(fresh subprocess, trajectory loaded and imports warmed up first):'
    )
    print(f'    trajectory float32: {traj_b / 1e6:.0f} MB')
    print(
        f'    peak RSS increase (ru_maxrss after - RSS before): {inc / 1e6:.0f} MB = {inc / traj_b:.2f}x the '
        f'trajectory  ({"meets" if inc <= 3 * traj_b else "MISSES"} the <= 3x target)'
    )
    print(
        f'    process peak RSS incl. trajectory + interpreter: {ours_full["peak_after"] / 1e6:.0f} MB '
        f'(RSS before call {ours_full["rss_before"] / 1e6:.0f} MB)'
    )
    if 'tracemalloc_peak_increase' in ours:
        tm = ours['tracemalloc_peak_increase']
        print(
            f'    tracemalloc peak increase (numpy allocations, 2nd run): {tm / 1e6:.0f} MB '
            f'= {tm / traj_b:.2f}x'
        )

    # 4. XDATCAR ---------------------------------------------------------------------------------
    if not args.skip_xdatcar:
        print()
        n_x = min(n_xdat, n_frames)
        xpath = DATA / f'XDATCAR_{n_x}x{args.atoms}_s{args.seed}'
        t0 = time.perf_counter()
        write_xdatcar(xpath, positions[:n_x], cell, symbols)
        t_w = time.perf_counter() - t0
        size = xpath.stat().st_size
        print(f'[4] XDATCAR {n_x} frames x {args.atoms} atoms, {size / 1e6:.1f} MB (written in {t_w:.1f} s)')
        res = {}
        for side in ('ours', 'pymatgen'):
            out = DATA / f'_xdat_{side}.npy'
            res[side] = run_worker('xdatcar', {'path': str(xpath), 'side': side, 'out': str(out)})
            if 'error' in res[side]:
                print(f'    {side}: FAILED {res[side]["error"]}')
                return 1
            res[side]['pos'] = np.load(out)
            out.unlink()
        a, b = res['ours']['pos'], res['pymatgen']['pos']
        same_shape = a.shape == b.shape
        diff = float(np.max(np.abs(a.astype(float) - b))) if same_shape else float('nan')
        for label, side in (('read_xdatcar', 'ours'), ('pymatgen Xdatcar', 'pymatgen')):
            r = res[side]
            rate = size / 1e6 / r['time_s']
            print(f'    {label:18s}{r["time_s"]:9.2f} s  {rate:8.1f} MB/s  {r["frames"]} frames')
        speedup = res['pymatgen']['time_s'] / res['ours']['time_s']
        print(f'    speed-up (pymatgen time / our time) = {speedup:.1f}x')
        ok = same_shape and diff <= 1e-5
        print(
            f'    max |position difference| = {diff:.2e} Å  ({"OK" if ok else "MISMATCH"}, tolerance 1e-5 Å; '
            'ours is float32 cartesian, pymatgen float64)'
        )
    npy.unlink()
    return 0


if __name__ == '__main__':
    sys.exit(main())
