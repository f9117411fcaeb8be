"""``analyze_trajectory``: every MD-derived descriptor of the paper from one trajectory.

Pipeline (one pass over chunks of atoms, float64 only for the chunk in hand):

1. positions are unwrapped across periodic boundaries (fractional jumps > 1/2 removed), so wrapped
   and already-unwrapped input give the same result;
2. the centre-of-mass drift of the non-diffusive framework (mass weighted) is removed from every atom
   (the drift of all atoms when the structure holds only the mobile species);
3. mobile ions -> MSD over all time origins (FFT) -> D by the paper's Einstein fit (eqs 3-4);
4. every atom -> velocity spectrum (given velocities, or forward differences of the unwrapped
   positions with their sinc^2 transfer function divided out) -> g(E) for all / diffusive /
   non-diffusive ions (eq 5: unweighted by default) -> vibrational descriptors;
5. non-diffusive ions -> Lindemann ratio.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..exceptions import InputError
from ._common import A2_PER_FS_TO_CM2_PER_S, ATOM_CHUNK, atomic_masses, default_mobile, iter_chunks
from .diffusion import (
    MIN_FRAMES_FOR_FIT,
    einstein_fit,
    fit_window_lags,
    msd_per_atom_fft_t,
    per_ion_stderr,
    resolve_D,
    slope_weights,
)
from .vibrational import (
    DEFAULT_VDOS_WEIGHTING,
    VDOS_WEIGHTINGS,
    dos_descriptors,
    normalise_dos,
    nyquist_energy_meV,
    position_power_sum_t,
    position_vdos_energies_meV,
    vdos_energies_meV,
    velocity_power_sum_t,
)

#: Below this highest resolved energy (h / 2 dt) the VDOS misses optical modes: warn.
MIN_NYQUIST_MEV = 100.0

#: Aliasing check: warn when more than ALIAS_MAX_FRACTION of a group's modes lie above
#: ALIAS_BAND x the Nyquist energy (a well-sampled spectrum has died out well below it).
ALIAS_BAND = 0.9
ALIAS_MAX_FRACTION = 0.01

#: What :func:`analyze_trajectory` can compute.
PARTS = ('diffusion', 'vibrational', 'lindemann')

Progress = Callable[[float, str], None]


def _unwrap_t(positions: np.ndarray, cell: np.ndarray, inv_cell: np.ndarray) -> np.ndarray:
    """Unwrap (n_frames, k, 3) positions into a time-last float64 array (k, 3, n_frames).

    The time-last layout keeps the differences, the cumulative sum of boundary jumps and every FFT
    after it on contiguous memory (about twice as fast as working along the first axis). Only the
    (atom, direction) rows that cross a boundary pay for the cumulative sum.
    """
    x = np.ascontiguousarray(np.transpose(positions, (1, 2, 0)), dtype=float)
    diagonal = not np.any(cell - np.diag(np.diag(cell)))
    if diagonal:
        x *= np.diag(inv_cell)[:, None]
    else:
        x = np.matmul(inv_cell.T, x)
    jumps = np.empty_like(x)
    jumps[..., 0] = 0.0
    np.subtract(x[..., 1:], x[..., :-1], out=jumps[..., 1:])
    np.rint(jumps, out=jumps)  # whole lattice vectors crossed between consecutive frames
    rows = jumps.reshape(-1, jumps.shape[-1])
    crossing = np.flatnonzero(rows.any(axis=-1))
    if len(crossing):
        x.reshape(rows.shape)[crossing] -= np.cumsum(rows[crossing], axis=-1)
    if diagonal:
        x *= np.diag(cell)[:, None]
        return x
    return np.matmul(cell.T, x)


def unwrap(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Unwrap cartesian positions (n_frames, n_atoms, 3) across periodic boundaries; returns float64.

    A displacement between consecutive frames larger than half a lattice vector is taken as a jump
    through the boundary. Already-unwrapped input is returned unchanged (to rounding).
    """
    cell = np.asarray(cell, dtype=float)
    return np.moveaxis(_unwrap_t(np.asarray(positions), cell, np.linalg.inv(cell)), -1, 0)


def nearest_neighbour_distances(points: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest other point or periodic image (Å), over 27 images."""
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], float) @ cell
    out = np.empty(len(points))
    for rows in iter_chunks(np.arange(len(points)), 64):
        d = points[None, :, None, :] + shifts[None, None, :, :] - points[rows, None, None, :]
        r = np.sqrt(np.einsum('ijkl,ijkl->ijk', d, d))
        r[r < 1e-8] = np.inf  # the point itself
        out[rows] = r.reshape(len(rows), -1).min(axis=1)
    return out


def _validate(positions, cell, symbols, timestep_fs, temperature_K, velocities):
    pos = np.asarray(positions) if not isinstance(positions, np.ndarray) else positions
    if pos.ndim != 3 or pos.shape[2] != 3:
        raise InputError(f'positions must have shape (n_frames, n_atoms, 3), got {pos.shape}')
    n_frames, n_atoms, _ = pos.shape
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3) or not np.all(np.isfinite(cell)) or abs(np.linalg.det(cell)) < 1e-6:
        raise InputError('cell must be a finite 3x3 matrix of lattice vectors (rows, Å) with non-zero volume')
    symbols = [str(s) for s in symbols]
    if len(symbols) != n_atoms:
        raise InputError(f'{len(symbols)} symbols for {n_atoms} atoms')
    if not (np.isfinite(timestep_fs) and timestep_fs > 0):
        raise InputError(f'timestep must be > 0 fs, got {timestep_fs}')
    if not (np.isfinite(temperature_K) and temperature_K > 0):
        raise InputError(f'temperature must be > 0 K, got {temperature_K}')
    if n_frames < MIN_FRAMES_FOR_FIT:
        raise InputError(f'too few frames to fit D: {n_frames} (need at least {MIN_FRAMES_FOR_FIT})')
    if not np.isfinite(np.sum(pos, dtype=np.float64)):
        bad = int(np.argmax(~np.isfinite(pos).all(axis=(1, 2))))
        raise InputError(f'positions contain NaN or infinite values (first at frame {bad + 1})')
    vel = None
    if velocities is not None:
        vel = np.asarray(velocities) if not isinstance(velocities, np.ndarray) else velocities
        if vel.shape != pos.shape:
            raise InputError(f'velocities must have the shape of positions {pos.shape}, got {vel.shape}')
        if not np.isfinite(np.sum(vel, dtype=np.float64)):
            raise InputError('velocities contain NaN or infinite values')
    return pos, cell, symbols, vel


def validate_inputs(
    positions: np.ndarray,
    cell: np.ndarray,
    symbols: Sequence[str],
    timestep_fs: float,
    temperature_K: float,
    mobile: str | None = None,
    velocities: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray | None, str]:
    """Check the inputs of :func:`analyze_trajectory` without analysing anything.

    Raises :class:`InputError` with a one-line message; returns (positions, cell, symbols, velocities,
    mobile species), the last resolved to the paper's default when None.
    """
    pos, cell, symbols, vel = _validate(positions, cell, symbols, timestep_fs, temperature_K, velocities)
    atomic_masses(sorted(set(symbols)))
    mobile = default_mobile(symbols) if mobile is None else mobile
    if mobile not in symbols:
        raise InputError(
            f'mobile species {mobile!r} not in the trajectory (species: {", ".join(sorted(set(symbols)))})'
        )
    moving = np.zeros(pos.shape[1], dtype=bool)
    for start in range(1, pos.shape[0], 1024):  # frame blocks: no full-size temporary
        moving |= np.any(pos[start : start + 1024] != pos[0], axis=(0, 2))
    is_mobile = np.array(symbols) == mobile
    for name, members in (('mobile', is_mobile), ('non-diffusive', ~is_mobile)):
        if members.any() and not moving[members].any():
            raise InputError(f'the {name} ions do not move in any frame: not an MD trajectory')
    return pos, cell, symbols, vel, mobile


def analyze_trajectory(
    positions: np.ndarray,
    cell: np.ndarray,
    symbols: Sequence[str],
    timestep_fs: float,
    temperature_K: float,
    mobile: str | None = None,
    velocities: np.ndarray | None = None,
    *,
    fit_window_ps: tuple[float, float] | None = None,
    vdos_weighting: str = DEFAULT_VDOS_WEIGHTING,
    return_arrays: bool = False,
    compute: Sequence[str] = PARTS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Diffusion, vibrational and Lindemann descriptors of an NVT trajectory.

    :param positions: (n_frames, n_atoms, 3) cartesian positions in Å, wrapped or unwrapped. Any float
        dtype; float32 (or a read-only memmap) keeps memory low, nothing is copied whole.
    :param cell: (3, 3) lattice vectors as rows, Å (fixed cell: the paper's NVT runs).
    :param symbols: chemical symbol of each atom.
    :param timestep_fs: time between consecutive *frames* (MD step x MD steps between stored frames
        x any further stride), fs.
    :param temperature_K: temperature of the run, used for the thermodynamic functions.
    :param mobile: the diffusive species; default: the first of Li, Na, Ag, Cu, Cl, I, Br, F, O present.
    :param velocities: (n_frames, n_atoms, 3) Å/fs, used as given (no drift correction, no transfer
        function); default: forward differences between consecutive frames of the unwrapped,
        drift-corrected positions, whose power spectrum is divided by their exact transfer function
        [sin(omega dt/2) / (omega dt/2)]^2, so the VDOS does not depend on the spacing of the frames up to the Nyquist
        energy h/(2 dt).
    :param fit_window_ps: lag-time window of the Einstein fit; default the paper's
        tau_max/2 <= tau <= tau_max with tau_max = half the run.
    :param vdos_weighting: ``'none'`` (default: eq 5 of the paper, every atom weight 1, so each atom
        counts in proportion to its <v^2> = 3 k_B T / m) or ``'mass'`` (each atom weighted by its mass,
        so every atom carries 3 modes). Either way g is normalised to 3 modes per atom of the group.
    :param return_arrays: also return ``arrays`` with MSD(tau) and g(E) of each group, for plots.
    :param compute: which of ``'diffusion'``, ``'vibrational'``, ``'lindemann'`` to compute (default:
        all); the result holds only those keys (plus the run's metadata), and work for the others is
        skipped.
    :param progress: optional callback ``progress(fraction, message)``.

    Lindemann ratio: ``sqrt(<|u|^2>) / d_nn``, with u the displacement of each non-diffusive ion from its
    time-averaged (drift-corrected) position, averaged over those ions and all frames, and d_nn the
    mean nearest-neighbour distance between non-diffusive ions in their time-averaged positions
    (periodic images included). NaN when every atom is mobile.

    Uncertainty of D (``D_stderr_cm2_s``): the fit is linear in the MSD, so the paper's D (fit of the
    MSD averaged over ions) is exactly the mean of the per-ion D_i (the same fit of each ion's own
    all-origin MSD). Its standard error is ``std(D_i, ddof=1) / sqrt(N_ion)``. This assumes the mobile
    ions move independently (correlated, collective hops make it too small); it assumes nothing
    about the run length or whether the MSD is already linear in the window, so it stays honest for
    short AIMD runs (calibrated on synthetic Brownian ions, 20 ions x 300 frames and 64 ions x 3000
    frames: the spread of D over independent runs matches the mean quoted error). NaN with one
    mobile ion. ``D_resolved`` is ``D > 2 sigma``; when not resolved, ``D_upper_bound_cm2_s`` is
    ``max(D, 0) + 2 sigma`` (see :func:`~aiida_superionic.analysis.diffusion.resolve_D`), and the
    raw fit ``D_cm2_s`` (possibly negative) is kept.
    """
    pos, cell, symbols, vel, mobile = validate_inputs(
        positions, cell, symbols, timestep_fs, temperature_K, mobile, velocities
    )
    unknown = set(compute) - set(PARTS)
    if unknown or not compute:
        raise InputError(f'compute must name some of {", ".join(PARTS)}; got {", ".join(map(str, compute))}')
    if vdos_weighting not in VDOS_WEIGHTINGS:
        raise InputError(
            f'vdos_weighting must be one of {", ".join(VDOS_WEIGHTINGS)}; got {vdos_weighting!r}'
        )
    masses = atomic_masses(symbols)
    is_mobile = np.array(symbols) == mobile
    mobile_idx = np.flatnonzero(is_mobile)
    frame_idx = np.flatnonzero(~is_mobile)
    n_frames = pos.shape[0]
    dt = float(timestep_fs)
    report = progress or (lambda fraction, message: None)

    # Pass 1: unwrap the framework (everything, if there is no framework) once, keep its displacements
    # (float32, time-last) for pass 2, and accumulate its centre-of-mass drift (mass weighted).
    inv_cell = np.linalg.inv(cell)
    ref_is_mobile = not len(frame_idx)
    ref_idx = mobile_idx if ref_is_mobile else frame_idx
    ref_origin = np.empty((len(ref_idx), 3))
    ref_disp = np.empty((len(ref_idx), 3, n_frames), dtype=np.float32)
    com = np.zeros((3, n_frames))
    for start in range(0, len(ref_idx), ATOM_CHUNK):
        chunk = ref_idx[start : start + ATOM_CHUNK]
        u = _unwrap_t(pos[:, chunk], cell, inv_cell)
        com += np.einsum('adt,a->dt', u, masses[chunk])
        ref_origin[start : start + len(chunk)] = u[..., 0]
        np.subtract(u, u[..., :1], out=ref_disp[start : start + len(chunk)], casting='same_kind')
    com /= masses[ref_idx].sum()
    drift = com - com[:, :1]

    def prepared(group: str, start: int, chunk: np.ndarray) -> np.ndarray:
        """Unwrapped, drift-corrected positions of ``chunk``, time-last (k, 3, n_frames), float64.

        Atoms kept from pass 1 come back as displacements from their first frame: a constant offset
        per atom changes neither the MSD, nor the velocities, nor the spread about the mean position.
        """
        if group == 'non_diffusive' or ref_is_mobile:
            return np.subtract(ref_disp[start : start + len(chunk)], drift, dtype=float)
        x = _unwrap_t(pos[:, chunk], cell, inv_cell)
        x -= drift
        return x

    # Fit window; per-ion slopes over it give the uncertainty of D.
    window_fs = None if fit_window_ps is None else (fit_window_ps[0] * 1000.0, fit_window_ps[1] * 1000.0)
    first, last = fit_window_lags(n_frames, dt, window_fs)
    weights_fit = slope_weights(dt, first, last)

    do_msd = 'diffusion' in compute
    do_vdos = 'vibrational' in compute
    do_lind = 'lindemann' in compute
    msd_sum = np.zeros(last + 1)
    d_ion = np.zeros(len(mobile_idx))  # per-ion D (Å²/fs)
    energies = (
        vdos_energies_meV(n_frames, dt) if vel is not None else position_vdos_energies_meV(n_frames, dt)
    )
    power = {'diffusive': np.zeros_like(energies), 'non_diffusive': np.zeros_like(energies)}
    u2_sum = 0.0
    mean_framework = np.empty((len(frame_idx), 3))
    weights = masses if vdos_weighting == 'mass' else np.ones_like(masses)

    passes = []
    if do_msd or do_vdos:
        passes.append(('diffusive', mobile_idx))
    if do_vdos or do_lind:
        passes.append(('non_diffusive', frame_idx))
    total = sum(len(indices) for _, indices in passes)
    done = 0
    for group, indices in passes:
        for start in range(0, len(indices), ATOM_CHUNK):
            chunk = indices[start : start + ATOM_CHUNK]
            x = prepared(group, start, chunk)
            if group == 'diffusive' and do_msd:
                per_ion = msd_per_atom_fft_t(x, last)
                msd_sum += per_ion.sum(axis=0)
                d_ion[start : start + len(chunk)] = per_ion[:, first : last + 1] @ weights_fit / 6.0
            if group == 'non_diffusive' and do_lind:
                mean = x.mean(axis=-1)
                mean_framework[start : start + len(chunk)] = mean + ref_origin[start : start + len(chunk)]
                # sum over frames of |x - <x>|^2 = sum x^2 - n <x>^2 (x are displacements: no cancellation)
                u2_sum += (
                    float(np.einsum('adt,adt->', x, x)) - n_frames * float(np.sum(mean * mean))
                ) / n_frames
            if do_vdos:
                if vel is not None:
                    v = np.transpose(vel[:, chunk], (1, 2, 0))
                    power[group] += velocity_power_sum_t(v, weights[chunk])
                else:
                    power[group] += position_power_sum_t(x, dt, weights[chunk])
            done += len(chunk)
            report(done / total, f'{done}/{total} atoms')

    n_mob = len(mobile_idx)
    result: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    warnings: list[str] = []
    if do_msd:
        msd = msd_sum / n_mob
        fit = einstein_fit(msd, dt, first, last)
        d_err = per_ion_stderr(d_ion) * A2_PER_FS_TO_CM2_PER_S
        resolved, upper = resolve_D(fit.D_cm2_s, d_err)
        if not resolved:
            bound = f'; D < {upper:.2g} cm2/s' if upper is not None else ''
            warnings.append(
                f'D is not resolved from zero (D <= 2 sigma{bound}): the mobile ions may not diffuse in this run'
            )
        elif not np.isfinite(d_err):
            warnings.append('one mobile ion: the uncertainty of D is unknown')
        result['diffusion'] = {
            'D_cm2_s': fit.D_cm2_s,
            'D_stderr_cm2_s': d_err,
            'D_resolved': resolved,
            'D_upper_bound_cm2_s': upper,
            'fit_window_ps': [fit.window_fs[0] / 1000.0, fit.window_fs[1] / 1000.0],
            'n_mobile': int(n_mob),
            'msd_at_window_end_A2': float(msd[last]),
        }
        arrays['msd_time_ps'] = np.arange(last + 1) * dt / 1000.0
        arrays['msd_A2'] = msd

    if do_vdos:
        groups = {'all': power['diffusive'] + power['non_diffusive'], **power}
        counts = {'all': n_mob + len(frame_idx), 'diffusive': n_mob, 'non_diffusive': len(frame_idx)}
        vibrational: dict[str, Any] = {}
        arrays['vdos_energy_meV'] = energies
        for name, p in groups.items():
            if counts[name] == 0:
                vibrational[name] = None
                continue
            try:
                g = normalise_dos(energies, p)
            except ValueError:
                raise InputError(
                    f'the {name.replace("_", "-")} ions do not move: no vibrational spectrum'
                ) from None
            arrays[f'vdos_{name}'] = g
            vibrational[name] = dos_descriptors(energies, g, temperature_K)
        result['vibrational'] = vibrational
        nyquist_meV = nyquist_energy_meV(dt)
        how = '(fewer MD steps between frames, e.g. a smaller VASP NBLOCK, and no --stride)'
        de = energies[1] - energies[0]
        high = energies > ALIAS_BAND * nyquist_meV
        aliased = [
            name.replace('_', '-')
            for name in ('all', 'diffusive', 'non_diffusive')
            if f'vdos_{name}' in arrays
            and np.sum(arrays[f'vdos_{name}'][high]) * de > 3.0 * ALIAS_MAX_FRACTION
        ]
        if nyquist_meV < MIN_NYQUIST_MEV:
            warnings.append(
                f'frames are {dt:g} fs apart, so the VDOS is resolved only up to {nyquist_meV:.3g} meV '
                f'(< {MIN_NYQUIST_MEV:g} meV): faster modes are missing or folded back below it and the '
                'vibrational descriptors are unreliable; store frames at least every '
                f'{nyquist_energy_meV(1.0) / MIN_NYQUIST_MEV:.3g} fs {how}'
            )
        elif aliased:
            warnings.append(
                f'the VDOS of the {", ".join(aliased)} ions has more than {100 * ALIAS_MAX_FRACTION:g} % of its '
                f'modes above {ALIAS_BAND:g} x the highest resolved energy h/(2 dt) = {nyquist_meV:.3g} meV '
                f'(frames {dt:g} fs apart): faster modes are folded back into the spectrum and bias the '
                f'vibrational descriptors; store frames more often {how}'
            )
        result['vdos_weighting'] = vdos_weighting
        result['vdos_velocities'] = 'given' if vel is not None else 'forward_differences'

    if do_lind:
        if len(frame_idx):
            d_nn = float(np.mean(nearest_neighbour_distances(mean_framework, cell)))
            result['lindemann_ratio'] = float(np.sqrt(u2_sum / len(frame_idx)) / d_nn)
        else:
            result['lindemann_ratio'] = float('nan')

    result.update(
        {
            'mobile_species': mobile,
            'temperature_K': float(temperature_K),
            'n_frames': int(n_frames),
            'n_atoms': len(symbols),
            'timestep_fs': dt,
            'warnings': warnings,
        }
    )
    if return_arrays:
        result['arrays'] = arrays
    return result
