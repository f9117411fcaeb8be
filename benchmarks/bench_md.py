"""MD steps per second: the MLIP engine's runner (single and batched) against plain ASE + chgnet's own calculator,
in one run.

(a) ours: the runner of the ``superionic.mlip`` CalcJob (``aiida_superionic.engines.mlip.runner.run``, the
    function behind the ``aiida-superionic-mlip`` console script) in a temporary directory with
    ``aiida.json`` task ``md`` and model ``chgnet-0.3.0``. The runner drives ASE's ``NoseHooverChainNVT``
    with :class:`~aiida_superionic.engines.mlip.models.FastCHGNetCalculator` (energy + forces only in MD).
    Its ``results.json`` gives ``seconds_per_step`` (mean wall time of ``dyn.step()``, i.e. without the
    model load and the other start-up); its ``wall_time_s`` includes start-up, trajectory and checkpoint I/O.
(b) peer: plain ASE ``NoseHooverChainNVT`` with the same settings and initial velocities, driven by
    ``chgnet.model.dynamics.CHGNetCalculator`` (which evaluates energy, forces, stress and magnetic moments
    at every step).

(c) batched: the runner's task ``md_batch`` (:mod:`aiida_superionic.engines.mlip.batch`) with 1, 2, 4, ...
    replicas of the same cell (``--replicas``; replica k at the benchmark temperature + 100 k K, seed + k):
    one ``CHGNet.predict_graph`` call per step for all replicas. Its ``seconds_per_step`` is the mean wall time
    of one batch step (all replicas); the rate printed is replica-steps/s = replicas / seconds_per_step.
    ``--graphs cpu,device`` runs (c) once per graph builder (md_batch's setting ``graph``): CHGNet's
    ``CrystalGraphConverter`` on the CPU, or :func:`~aiida_superionic.engines.mlip.graphs.crystal_graph`
    (torch ops on the model's device).
(d) graphs: the time to build one crystal graph of the benchmark cell with CHGNet's converter (pymatgen
    ``Structure`` + ``CrystalGraphConverter``, as md_batch's ``graph: cpu``) and with ``crystal_graph`` on the
    model's device (as ``graph: device``; CUDA synchronised before the clock stops), best and mean of
    ``--graph-repeats`` calls each after one untimed call (wall time, and the process's CPU time, which
    other jobs on a shared machine disturb less). ``crystal_graph`` is timed twice: with its default
    neighbour search (``auto``: the cell list of ``neighbor_list`` by its size rule,
    :func:`~aiida_superionic.engines.mlip.graphs.choose_neighbor_method`, else all pairs) and forced to the all-pairs search (the only one before the cell list). On
    Linux the peak memory of one call of each builder is measured too: the rise of the peak resident set
    (``VmHWM``, reset through ``/proc/self/clear_refs``) over the resident set before the call (its first
    call; run with ``MALLOC_MMAP_THRESHOLD_=65536`` so that freed tensors go back to the system and no
    builder's peak hides another's); ``--repeat-cell`` sets the cell.

(e) other models: ``--models chgnet-0.3.0,sevennet-0`` adds, for each model other than CHGNet 0.3.0, the runner's
    task ``md`` with that model (same cell, settings, seed and steps as (a); e.g. SevenNet-0 through
    ``sevenn.calculator.SevenNetCalculator``) and its plain-ASE peer (ASE's ``NoseHooverChainNVT`` driven by the
    model's own calculator, as (b)), timed in the same rounds; a model that task ``md_batch`` batches
    (SevenNet-0) also gets its side (c).

All sides use the same loaded CHGNet 0.3.0 model object, the same structure, the same torch thread count and the
same number of timed steps, each after an untimed warm-up of a few steps. The two sides alternate
(``--repeat`` rounds); the best and the mean of the per-round rates are printed.

    .venv/bin/python benchmarks/bench_md.py            # LiF 3x3x3 conventional, 216 atoms, 20 steps
    .venv/bin/python benchmarks/bench_md.py --quick    # LiF 2x2x2 conventional, 64 atoms, 10 steps
    .venv/bin/python benchmarks/bench_md.py --quick --replicas 1,2,4   # (c) with 1, 2 and 4 replicas (default)
    .venv/bin/python benchmarks/bench_md.py --graphs cpu,device --replicas 1,4 --no-single   # (c) + (d) only
    .venv/bin/python benchmarks/bench_md.py --quick --replicas 0 --models chgnet-0.3.0,sevennet-0  # (a) + (e)
    MALLOC_MMAP_THRESHOLD_=65536 .venv/bin/python benchmarks/bench_md.py --replicas 0 --no-single \\
        --graph-repeats 3 --repeat-cell 6   # (d) only, 1728 atoms
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build_structure(repeat: int):
    from ase.build import bulk

    return bulk('LiF', 'rocksalt', a=4.03, cubic=True).repeat((repeat, repeat, repeat))


def md_settings(args, n_steps: int) -> dict:
    return {
        'temperature_K': args.temperature,
        'n_steps': n_steps,
        'timestep_fs': args.timestep,
        'tdamp_fs': args.tdamp,
        'thermostat': 'nose-hoover',
        'frame_interval': 10,
        'checkpoint_every': 10,
        'log_interval': 1_000_000,
    }


def run_ours(atoms, args, n_steps: int, model: str = 'chgnet-0.3.0') -> dict:
    """One runner call (task md) in a fresh temporary directory; returns its results.json plus our wall time."""
    import ase.io

    from aiida_superionic.engines.mlip import runner

    with tempfile.TemporaryDirectory(prefix='bench_md_') as tmp:
        workdir = Path(tmp)
        ase.io.write(workdir / runner.STRUCTURE_FILE, atoms, format='extxyz')
        config = {
            'task': 'md',
            'model': model,
            'device': args.device,
            'seed': args.seed,
            'settings': md_settings(args, n_steps),
        }
        (workdir / runner.INPUT_FILE).write_text(json.dumps(config))
        t0 = time.perf_counter()
        status, results = runner.run(workdir)
        results['outer_wall_s'] = time.perf_counter() - t0
    if status != 'ok':
        raise RuntimeError(f'runner md failed: {status}: {results.get("message")}')
    return results


def run_batch(
    atoms, args, n_steps: int, n_replicas: int, graph: str = 'auto', model: str = 'chgnet-0.3.0'
) -> dict:
    """One runner call (task md_batch, ``n_replicas`` copies of the cell) in a fresh temporary directory."""
    import ase.io

    from aiida_superionic.engines.mlip import runner

    settings = md_settings(args, n_steps)
    settings.pop('temperature_K')
    replicas = []
    with tempfile.TemporaryDirectory(prefix='bench_md_batch_') as tmp:
        workdir = Path(tmp)
        for k in range(n_replicas):
            ase.io.write(workdir / f'r{k}.extxyz', atoms, format='extxyz')
            replicas.append(
                {
                    'name': f'r{k}',
                    'structure': f'r{k}.extxyz',
                    'temperature_K': args.temperature + 100.0 * k,
                    'seed': args.seed + k,
                }
            )
        config = {
            'task': 'md_batch',
            'model': model,
            'device': args.device,
            'seed': args.seed,
            'settings': {**settings, 'replicas': replicas, 'graph': graph},
        }
        (workdir / runner.INPUT_FILE).write_text(json.dumps(config))
        status, results = runner.run(workdir)
    if status != 'ok':
        raise RuntimeError(f'runner md_batch failed: {status}: {results.get("message")}')
    return results


def run_peer(atoms, model, args, n_steps: int, calc=None) -> dict:
    """Plain ASE NoseHooverChainNVT + chgnet's CHGNetCalculator (or ``calc``, another model's own ASE calculator),
    same settings and initial velocities as the runner."""
    from ase import units
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.md.velocitydistribution import Stationary
    from chgnet.model.dynamics import CHGNetCalculator

    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    atoms = atoms.copy()
    atoms.calc = calc if calc is not None else CHGNetCalculator(model=model, use_device=model_device(model))
    seed_mb, _ = np.random.SeedSequence(args.seed).spawn(2)  # the runner's draw of the initial velocities
    thermalize_momenta(atoms, temperature_K=args.temperature, rng=np.random.default_rng(seed_mb))
    Stationary(atoms)
    dyn = NoseHooverChainNVT(
        atoms,
        timestep=args.timestep * units.fs,
        temperature_K=args.temperature,
        tdamp=args.tdamp * units.fs,
    )
    t_start = time.perf_counter()
    atoms.get_potential_energy()  # the initial force call, as the runner's first conserved-energy evaluation
    step_times = []
    for _ in range(n_steps):
        t0 = time.perf_counter()
        dyn.step()
        step_times.append(time.perf_counter() - t0)
        atoms.get_temperature()
    return {
        'seconds_per_step': float(np.mean(step_times)) if step_times else None,
        'outer_wall_s': time.perf_counter() - t_start,
        'T_final_K': float(atoms.get_temperature()),
    }


def time_graphs(atoms, model, repeats: int) -> dict[str, list[float]]:
    """(d) seconds per crystal graph of ``atoms``: CHGNet's converter (CPU) and ``crystal_graph`` (model device)."""
    import torch
    from pymatgen.core import Lattice, Structure

    from aiida_superionic.engines.mlip.graphs import composition_formula, crystal_graph

    device = next(model.parameters()).device
    converter = model.graph_converter
    formula = composition_formula(atoms.numbers)

    def chgnet_graph():
        structure = Structure(
            Lattice(np.asarray(atoms.cell)), atoms.numbers, atoms.positions, coords_are_cartesian=True
        )
        return converter(structure).to(device)

    def device_graph(method='auto'):
        return crystal_graph(
            torch.as_tensor(atoms.positions, dtype=torch.float64).to(device),
            torch.as_tensor(np.asarray(atoms.cell), dtype=torch.float64).to(device),
            torch.as_tensor(atoms.numbers).to(device),
            atom_graph_cutoff=converter.atom_graph_cutoff,
            bond_graph_cutoff=converter.bond_graph_cutoff,
            composition=formula,
            neighbor_method=method,
        )

    out = {}
    builders = (
        ('cpu', chgnet_graph),
        ('device', device_graph),
        ('all_pairs', lambda: device_graph('all_pairs')),
    )
    for name, build in builders:
        out[f'{name}_peak_MiB'] = peak_memory_MiB(build)
        build()  # untimed first call
        times, cpu_times = [], []
        for _ in range(repeats):
            if device.type == 'cuda':
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            graph = build()
            if device.type == 'cuda':
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
        out[name] = times
        out[f'{name}_cpu'] = cpu_times
        out[f'{name}_edges'] = [len(graph.atom_graph), len(graph.bond_graph)]
    return out


def _rss_kib(field: str) -> int:
    with open('/proc/self/status') as handle:
        for line in handle:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise OSError(f'no {field} in /proc/self/status')


def peak_memory_MiB(build) -> float | None:
    """The rise of the peak resident set over the resident set before one call of ``build``, in MiB (Linux:
    ``VmHWM`` reset through ``/proc/self/clear_refs``); ``None`` elsewhere. Memory that the C allocator keeps
    after an earlier call is not counted again: run with ``MALLOC_MMAP_THRESHOLD_=65536`` so that large
    tensors are mapped and unmapped on their own (given back when freed)."""
    if not os.path.exists('/proc/self/clear_refs'):
        return None
    try:
        with open('/proc/self/clear_refs', 'w') as handle:
            handle.write('5')
        before = _rss_kib('VmRSS')
        build()
        return (_rss_kib('VmHWM') - before) / 1024
    except OSError:
        return None


def load_average() -> str:
    try:
        return ' '.join(f'{x:.2f}' for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return 'n/a'


def model_version(name: str) -> str:
    """The package behind a runner model, with its version."""
    if name == 'sevennet-0':
        import sevenn

        return f'SevenNet-0 11Jul2024 checkpoint, sevenn {sevenn.__version__}'
    return name


def model_device(model) -> str:
    try:
        return str(next(model.parameters()).device).split(':')[0]
    except StopIteration:  # pragma: no cover
        return 'cpu'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='64-atom cell, 10 timed steps, 3 warm-up steps')
    parser.add_argument('--repeat-cell', type=int, default=None, help='LiF conventional cell repeated NxNxN')
    parser.add_argument('--steps', type=int, default=None, help='timed MD steps per side and round')
    parser.add_argument('--warmup', type=int, default=3, help='untimed warm-up steps per side and round')
    parser.add_argument('--repeat', type=int, default=2, help='rounds (sides alternate)')
    parser.add_argument('--temperature', type=float, default=600.0, help='K')
    parser.add_argument('--timestep', type=float, default=1.5, help='fs (runner default)')
    parser.add_argument('--tdamp', type=float, default=100.0, help='fs (runner default)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu', help="'cpu' (default), 'cuda' or 'auto'")
    parser.add_argument(
        '--replicas',
        default='1,2,4',
        help="replica counts of the batched task md_batch, comma-separated ('' or 0: leave it out)",
    )
    parser.add_argument(
        '--graphs',
        default='auto',
        help="md_batch graph builders for (c), comma-separated: auto (default), cpu (CHGNet's converter), "
        'device (torch ops on the model device)',
    )
    parser.add_argument('--graph-repeats', type=int, default=5, help='timed graph builds per builder in (d)')
    parser.add_argument('--no-single', action='store_true', help='leave out (a) and (b): only (c) and (d)')
    parser.add_argument(
        '--models',
        default='chgnet-0.3.0',
        help='runner models, comma-separated: each one other than chgnet-0.3.0 adds a side (e) (e.g. sevennet-0)',
    )
    parser.add_argument(
        '--threads', type=int, default=None, help='torch.set_num_threads (default: torch default)'
    )
    args = parser.parse_args(argv)
    replica_counts = [int(x) for x in str(args.replicas).split(',') if x.strip() and int(x) > 0]
    graph_modes = [x.strip() for x in str(args.graphs).split(',') if x.strip()]
    if any(mode not in ('auto', 'cpu', 'device') for mode in graph_modes):
        parser.error(f'--graphs: auto, cpu or device (got {args.graphs!r})')
    from aiida_superionic.engines.mlip.models import MODELS

    other_models = [x.strip().lower() for x in str(args.models).split(',') if x.strip()]
    if any(m not in MODELS for m in other_models):
        parser.error(f'--models: one or more of {", ".join(MODELS)} (got {args.models!r})')
    other_models = [m for m in dict.fromkeys(other_models) if m != 'chgnet-0.3.0']
    from aiida_superionic.engines.mlip.fileformat import BATCHED_MODEL_NAMES

    batch_models = ['chgnet-0.3.0', *(m for m in other_models if m in BATCHED_MODEL_NAMES)]
    if other_models and args.no_single:
        parser.error('--models needs the single-run sides: leave out --no-single')
    repeat_cell = args.repeat_cell or (2 if args.quick else 3)
    n_steps = args.steps or (10 if args.quick else 20)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import ase
    import chgnet

    from aiida_superionic.engines.mlip.models import _load_chgnet, load_calculator, resolve_device

    device = resolve_device(args.device)
    atoms = build_structure(repeat_cell)
    t0 = time.perf_counter()
    load_calculator('chgnet-0.3.0', device)  # loads the weights once (cached per process)
    t_load = time.perf_counter() - t0
    model = _load_chgnet('0.3.0', device)  # the same model object the runner's calculator uses

    print('MD engine benchmark: aiida-superionic MLIP runner vs plain ASE + CHGNetCalculator')
    print(
        f'  structure     : LiF rocksalt conventional x({repeat_cell},{repeat_cell},{repeat_cell}) = '
        f'{len(atoms)} atoms, a = 4.03 Å'
    )
    print(f'  model         : CHGNet 0.3.0 (chgnet {chgnet.__version__}), loaded in {t_load:.1f} s')
    for name in other_models:
        t0 = time.perf_counter()
        load_calculator(name, device)  # loads the weights once (cached per process), outside the timings
        print(f'  model (e)     : {name} ({model_version(name)}), loaded in {time.perf_counter() - t0:.1f} s')
    print(
        f'  MD            : NoseHooverChainNVT, {args.temperature:g} K, dt = {args.timestep:g} fs, '
        f'tdamp = {args.tdamp:g} fs; {args.warmup} warm-up + {n_steps} timed steps per side and round, '
        f'{args.repeat} rounds'
    )
    print(
        f'  device        : {device}; torch {torch.__version__}, torch.get_num_threads() = '
        f'{torch.get_num_threads()}, os.cpu_count() = {os.cpu_count()}'
    )
    print(
        f'  software      : Python {platform.python_version()}, ase {ase.__version__}, {platform.machine()}'
    )
    print(f'  load average  : {load_average()} (other processes on the machine distort the timings)')
    sys.stdout.flush()

    graph_times = time_graphs(atoms, model, args.graph_repeats)
    for name, label in (
        ('cpu', "CHGNet's CrystalGraphConverter (CPU)"),
        ('device', f'crystal_graph ({device}, neighbour search auto)'),
        ('all_pairs', f'crystal_graph ({device}, all-pairs search)'),
    ):
        times = graph_times[name]
        n_edges, n_angles = graph_times[f'{name}_edges']
        peak = graph_times[f'{name}_peak_MiB']
        print(
            f'  (d) graph     : {label}: best {1000 * min(times):.1f} ms, mean {1000 * statistics.mean(times):.1f} '
            f'ms per {len(atoms)}-atom graph ({n_edges} edges, {n_angles} angles); process CPU time best '
            f'{1000 * min(graph_times[name + "_cpu"]):.1f} ms; peak memory '
            + ('n/a' if peak is None else f'+{peak:.0f} MiB')
        )
    sys.stdout.flush()

    ours_rates, peer_rates, ours_wall, peer_wall = [], [], [], []
    other_rates: dict[str, list[float]] = {name: [] for name in other_models}
    other_peer_rates: dict[str, list[float]] = {name: [] for name in other_models}
    batch_rates: dict[tuple[str, int, str], list[float]] = {
        (m, n, g): [] for m in batch_models for g in graph_modes for n in replica_counts
    }
    devnull = open(os.devnull, 'w')
    for round_ in range(args.repeat):
        stdout = sys.stdout
        line = f'  round {round_ + 1}:'
        if not args.no_single:
            # (a) runner: an untimed warm-up call, then a timed call from the same fresh start
            sys.stdout = devnull  # the runner logs to stdout
            try:
                if args.warmup:
                    run_ours(atoms, args, args.warmup)
                ours = run_ours(atoms, args, n_steps)
            finally:
                sys.stdout = stdout
            ours_rates.append(1.0 / ours['seconds_per_step'])
            ours_wall.append(ours['wall_time_s'])
            # (b) peer: the same
            if args.warmup:
                run_peer(atoms, model, args, args.warmup)
            peer = run_peer(atoms, model, args, n_steps)
            peer_rates.append(1.0 / peer['seconds_per_step'])
            peer_wall.append(peer['outer_wall_s'])
            line += (
                f' ours {ours_rates[-1]:.3f} steps/s (runner wall {ours["wall_time_s"]:.2f} s, '
                f'T_mean {ours["T_mean_K"]:.0f} K), peer {peer_rates[-1]:.3f} steps/s '
                f'(wall {peer["outer_wall_s"]:.2f} s)' + (',' if batch_rates or other_rates else '')
            )
            # (e) the runner with the other models: the same
            for name, rates in other_rates.items():
                sys.stdout = devnull
                try:
                    if args.warmup:
                        run_ours(atoms, args, args.warmup, name)
                    other = run_ours(atoms, args, n_steps, name)
                finally:
                    sys.stdout = stdout
                rates.append(1.0 / other['seconds_per_step'])
                line += f' {name} {rates[-1]:.3f} steps/s (T_mean {other["T_mean_K"]:.0f} K),'
                # and its plain-ASE peer: the model's own calculator (sevenn's SevenNetCalculator)
                own = load_calculator(name, device)
                if args.warmup:
                    run_peer(atoms, None, args, args.warmup, calc=own)
                other_peer_rates[name].append(
                    1.0 / run_peer(atoms, None, args, n_steps, calc=own)['seconds_per_step']
                )
                line += f' {name} plain ASE {other_peer_rates[name][-1]:.3f} steps/s,'
        # (c) batched task md_batch: warm-up, then timed, for each graph builder and replica count
        for m, n, graph in batch_rates:
            sys.stdout = devnull
            try:
                if args.warmup:
                    run_batch(atoms, args, args.warmup, n, graph, m)
                batch = run_batch(atoms, args, n_steps, n, graph, m)
            finally:
                sys.stdout = stdout
            batch_rates[m, n, graph].append(batch['replica_steps_per_s'])
        line += ','.join(
            f' batch {m} x{n} graph {g} {rates[-1]:.3f} replica-steps/s'
            for (m, n, g), rates in batch_rates.items()
        )
        print(line)
        sys.stdout.flush()

    print()
    print(f'{"side":58s} {"best steps/s":>12s} {"mean steps/s":>12s} {"ms/step":>9s}')
    for (m, n, g), rates in batch_rates.items():
        label = f'(c) batched {m}: md_batch, {n} replica(s), graph {g}'
        print(f'{label:58s} {max(rates):12.3f} {statistics.mean(rates):12.3f} {1000 / max(rates):9.1f}')
    print('    (c) rates are replica-steps/s')
    print(f'load average at the end: {load_average()}')
    if args.no_single:
        return 0
    best_ours, best_peer = max(ours_rates), max(peer_rates)
    mean_ours, mean_peer = statistics.mean(ours_rates), statistics.mean(peer_rates)
    print(
        f'{"(a) ours: runner task md, FastCHGNetCalculator (ef)":58s} {best_ours:12.3f} {mean_ours:12.3f} '
        f'{1000 / best_ours:9.1f}'
    )
    print(
        f'{"(b) peer: ASE NoseHooverChainNVT + CHGNetCalculator (efsm)":58s} {best_peer:12.3f} {mean_peer:12.3f} '
        f'{1000 / best_peer:9.1f}'
    )
    for name, rates in other_rates.items():
        label = f'(e) runner task md, model {name}'
        print(f'{label:58s} {max(rates):12.3f} {statistics.mean(rates):12.3f} {1000 / max(rates):9.1f}')
        rates = other_peer_rates[name]
        label = f'(e) peer: ASE NoseHooverChainNVT + {name} own calculator'
        print(f'{label:58s} {max(rates):12.3f} {statistics.mean(rates):12.3f} {1000 / max(rates):9.1f}')
    print(f'ratio ours/peer: {best_ours / best_peer:.2f}x (best), {mean_ours / mean_peer:.2f}x (mean)')
    for name, rates in other_rates.items():
        print(f'ratio {name} / chgnet-0.3.0 (runner task md): {max(rates) / best_ours:.2f}x (best)')
    for (m, n, g), rates in batch_rates.items():
        single = best_ours if m == 'chgnet-0.3.0' else max(other_rates[m])
        peer = best_peer if m == 'chgnet-0.3.0' else max(other_peer_rates[m])
        print(
            f'ratio batched {m} x{n} (graph {g}) / its runner task md: {max(rates) / single:.2f}x, / its plain '
            f'ASE: {max(rates) / peer:.2f}x (best, replica-steps/s over steps/s)'
        )
    print(
        f'atoms: {len(atoms)}; device: {device}; torch threads: {torch.get_num_threads()}; '
        f'per force call (ours): {1000 / best_ours:.0f} ms = {1e6 / best_ours / len(atoms):.0f} µs/atom'
    )
    print(
        f'runner wall per timed call (start-up with cached model, I/O, {n_steps} steps): '
        f'{min(ours_wall):.2f} s; peer loop: {min(peer_wall):.2f} s'
    )
    print('note: steps/s is 1 / mean wall time of dyn.step() (one force call per step).')
    print(
        'note: (c) is one predict_graph call per step for all replicas; graph cpu builds each graph with '
        "CHGNet's converter on the CPU, graph device with torch ops on the model's device. A GPU figure needs "
        '--device cuda on a GPU machine.'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
