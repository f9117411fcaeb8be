"""Task ``md``: one NVT MD segment, continued exactly from ``restart.npz`` when one is given."""

from __future__ import annotations

import json
import os
import time

import numpy as np

from ..common import (
    MD_DEFAULTS,
    THERMOSTATS,
    Context,
    TaskError,
    _log,
    _next_frame_step,
    _settings,
    _write_json_atomic,
    _write_restart,
    initial_momenta,
    normalize_thermostat,
    segment_stop,
    thermostat_parameters,
)
from ..fileformat import RESTART_FILE, TRAJECTORY_FILE, TRAJECTORY_META_FILE


def task_md(atoms, settings: dict, ctx: Context):
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.nose_hoover_chain import NoseHooverChainNVT

    s = _settings(settings, MD_DEFAULTS, required=('temperature_K', 'n_steps'))
    temperature = float(s['temperature_K'])
    timestep = float(s['timestep_fs'])
    n_steps = int(s['n_steps'])
    interval = int(s['frame_interval'])
    checkpoint_every = max(1, int(s['checkpoint_every']))
    thermostat = normalize_thermostat(s['thermostat'])
    if thermostat not in THERMOSTATS:
        raise TaskError(f'unknown thermostat {s["thermostat"]!r}; known: {THERMOSTATS}')
    if interval < 1 or n_steps < 0 or timestep <= 0 or temperature <= 0:
        raise TaskError('md: need frame_interval >= 1, n_steps >= 0, timestep_fs > 0, temperature_K > 0')
    walltime = None if s['walltime_s'] is None else float(s['walltime_s'])
    # segment_steps: run at most this many steps, then stop like a wall-time stop (restart.npz at that
    # step, status 'walltime') -- chunks a long run into queue-sized segments, deterministically
    segment_steps = None if s['segment_steps'] is None else int(s['segment_steps'])
    factor = float(s['max_temperature_factor'])
    masses = atoms.get_masses()
    n_atoms = len(atoms)
    _, seed_langevin = np.random.SeedSequence(ctx.seed).spawn(2)
    rng = np.random.default_rng(seed_langevin)

    restart_path = ctx.workdir / RESTART_FILE
    restart = None
    if restart_path.is_file():
        with np.load(restart_path, allow_pickle=False) as data:
            restart = {key: data[key] for key in data.files}
        if not np.array_equal(restart['numbers'], atoms.numbers):
            raise TaskError('restart.npz does not match structure.extxyz (atomic numbers)')
        if not np.allclose(restart['cell'], np.asarray(atoms.cell), atol=1e-8):
            raise TaskError('restart.npz does not match structure.extxyz (cell)')
        for key, value in (
            ('thermostat', thermostat),
            ('timestep_fs', timestep),
            ('temperature_K', temperature),
            *((key, value) for key, value in thermostat_parameters(thermostat, s).items() if key in restart),
        ):
            if str(restart[key]) != str(value) and not (
                key != 'thermostat' and np.isclose(float(restart[key]), float(value))
            ):
                raise TaskError(f'restart.npz was written with {key} = {restart[key]}, settings say {value}')
        start_step = int(restart['step'])
        atoms.set_positions(restart['positions'])
        atoms.set_momenta(restart['momenta'])
        _log(f'md: restarting from step {start_step} of {n_steps}')
    else:
        start_step = 0
        initial_momenta(atoms, temperature, ctx.seed)
        _log(f'md: fresh start at {temperature:g} K, seed {ctx.seed}')

    # The thermostat objects read positions/momenta when built: set the state first, constrain afterwards.
    if thermostat == 'nose-hoover':
        dyn = NoseHooverChainNVT(
            atoms,
            timestep=timestep * units.fs,
            temperature_K=temperature,
            tdamp=float(s['tdamp_fs']) * units.fs,
        )
        if restart is not None:
            dyn._thermostat._eta[:] = restart['nhc_eta']
            dyn._thermostat._p_eta[:] = restart['nhc_p_eta']
        conserved_name = 'Nose-Hoover-chain conserved energy (ASE get_conserved_energy)'

        def conserved() -> float:
            return dyn.get_conserved_energy()

    else:
        if restart is not None:
            rng.bit_generator.state = json.loads(str(restart['rng_state']))
        dyn = Langevin(
            atoms,
            timestep=timestep * units.fs,
            temperature_K=temperature,
            friction=float(s['friction_per_fs']) / units.fs,
            fixcm=False,
            rng=rng,
        )
        atoms.set_constraint(FixCom())  # centre of mass fixed (ASE's recommended replacement of fixcm)
        conserved_name = 'total energy Epot + Ekin (Langevin has no conserved quantity in ASE)'

        def conserved() -> float:
            return float(atoms.get_potential_energy() + atoms.get_kinetic_energy())

    first_step = 0 if restart is None else _next_frame_step(start_step, interval)
    meta = {
        'n_atoms': n_atoms,
        'symbols': atoms.get_chemical_symbols(),
        'masses': masses,
        'cell': np.asarray(atoms.cell),
        'pbc': atoms.pbc,
        'timestep_fs': timestep,
        'frame_interval': interval,
        'first_step': first_step,
        'restart_step': None if restart is None else start_step,
        'n_steps': n_steps,
        'temperature_K': temperature,
        'thermostat': thermostat,
        **thermostat_parameters(thermostat, s),
        'seed': ctx.seed,
        'model': ctx.model,
        'layout': 'little-endian float32; per frame positions (N,3) in Å (unwrapped) then velocities (N,3) in Å/fs',
    }
    _write_json_atomic(ctx.workdir / TRAJECTORY_META_FILE, meta)

    n_frames = 0
    traj = open(ctx.workdir / TRAJECTORY_FILE, 'wb')  # kept open for the whole run

    def save_frame() -> None:
        nonlocal n_frames
        frame = np.concatenate([atoms.get_positions(), atoms.get_velocities() * units.fs]).astype('<f4')
        traj.write(frame.tobytes())
        traj.flush()
        n_frames += 1

    def checkpoint(step: int) -> None:
        os.fsync(traj.fileno())
        data = {
            'positions': atoms.get_positions(),
            'momenta': atoms.get_momenta(),
            'velocities': atoms.get_velocities() * units.fs,
            'step': np.int64(step),
            'n_frames': np.int64(n_frames),
            'first_step': np.int64(first_step),
            'numbers': atoms.numbers,
            'cell': np.asarray(atoms.cell),
            'thermostat': np.str_(thermostat),
            'timestep_fs': np.float64(timestep),
            'temperature_K': np.float64(temperature),
            'frame_interval': np.int64(interval),
            'seed': np.int64(ctx.seed),
            **{key: np.float64(value) for key, value in thermostat_parameters(thermostat, s).items()},
        }
        if thermostat == 'nose-hoover':
            data['nhc_eta'] = np.array(dyn._thermostat._eta)
            data['nhc_p_eta'] = np.array(dyn._thermostat._p_eta)
        else:
            data['rng_state'] = np.str_(json.dumps(rng.bit_generator.state))
        _write_restart(restart_path, data)

    temperatures, energies, times = [], [], []
    status, message = 'ok', ''
    step = start_step
    step_times: list[float] = []
    try:
        if restart is None and n_steps >= 0:
            save_frame()
        temperatures.append(atoms.get_temperature())
        energies.append(conserved())
        times.append(step * timestep)
        while step < n_steps:
            stop = segment_stop(step, start_step, segment_steps, walltime, ctx.t_start, step_times)
            if stop is not None:
                status, message = stop
                break
            t0 = time.perf_counter()
            dyn.step()
            step_times.append(time.perf_counter() - t0)
            step += 1
            t_inst = atoms.get_temperature()
            finite = np.isfinite(t_inst) and np.isfinite(atoms.get_positions()).all()
            if not finite or t_inst > factor * temperature:
                status = 'unstable'
                message = f'T = {t_inst:.1f} K at step {step} exceeds {factor:g} x {temperature:g} K (or NaN)'
                break
            temperatures.append(t_inst)
            energies.append(conserved())
            times.append(step * timestep)
            if step % interval == 0:
                save_frame()
                if n_frames % checkpoint_every == 0:
                    checkpoint(step)
            if step % int(s['log_interval']) == 0:
                _log(f'md: step {step}/{n_steps}  T = {t_inst:.1f} K  frames = {n_frames}')
        if status != 'unstable':
            checkpoint(step)
    finally:
        traj.close()

    temps = np.asarray(temperatures)
    drift = None
    if len(times) >= 2:
        slope = np.polyfit(np.asarray(times) / 1000.0, np.asarray(energies) / n_atoms, 1)[0]
        drift = float(slope)
    results = {
        'n_steps_done': step - start_step,
        'first_step': start_step,
        'last_step': step,
        'n_frames': n_frames,
        'first_frame_step': first_step,
        'T_mean_K': float(temps.mean()) if len(temps) else None,
        'T_std_K': float(temps.std()) if len(temps) else None,
        'etotal_drift_eV_per_atom_ps': drift,
        'etotal_drift_quantity': conserved_name,
        'seconds_per_step': float(np.mean(step_times)) if step_times else None,
        'restart_written': status != 'unstable',
    }
    if status == 'ok':
        message = f'{step - start_step} steps, {n_frames} frames'
    _log(f'md: {status}: {message}')
    results['status'] = status
    return status, message, results
