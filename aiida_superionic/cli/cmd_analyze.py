"""``aiida-superionic analyze``: descriptors of one trajectory file, without any AiiDA profile."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..exceptions import InputError
from . import options
from .progress import StderrProgress
from .records import format_D
from .root import cmd_root


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _fmt(value: Any, spec: str = '.4g') -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return 'n/a'
    return format(value, spec)


VIB_ROWS = (
    ('mean_frequency_meV', '<ω>', 'meV'),
    ('mean_frequency_30meV', '<ω30>', 'meV'),
    ('E_vib_meV_atom', 'E_vib', 'meV/atom'),
    ('C_v_kB_atom', 'C_v', 'k_B/atom'),
    ('F_vib_meV_atom', 'F_vib', 'meV/atom'),
    ('S_vib_kB_atom', 'S_vib', 'k_B/atom'),
    ('debye_temperature_K', 'θ_D', 'K'),
)


def format_table(result: dict[str, Any], source: str) -> str:
    """A readable, unit-labelled table of :func:`analyze_trajectory`'s result."""
    d = result['diffusion']
    lines = [
        f'{source}: {result["n_atoms"]} atoms, {result["n_frames"]} frames x {result["timestep_fs"]:g} fs, '
        f'T = {result["temperature_K"]:g} K, mobile {result["mobile_species"]} ({d["n_mobile"]} ions)',
        '',
        f'  D            {format_D(d)}',
        f'  Lindemann γ  {_fmt(result["lindemann_ratio"])}',
        '',
        f'  {"descriptor":<8} {"unit":<9} {"all":>11} {"diffusive":>11} {"non-diff.":>11}',
    ]
    vib = result['vibrational']
    for key, symbol, unit in VIB_ROWS:
        cells = [_fmt(vib[g][key]) if vib.get(g) else 'n/a' for g in ('all', 'diffusive', 'non_diffusive')]
        lines.append(f'  {symbol:<8} {unit:<9} {cells[0]:>11} {cells[1]:>11} {cells[2]:>11}')
    lines.extend(f'\n  warning: {w}' for w in result.get('warnings', []))
    return '\n'.join(lines)


@cmd_root.command('analyze')
@click.argument('trajectory', type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    '-T', '--temperature', type=float, help='Temperature of the run, K (default: TEBEG of a vasprun.xml).'
)
@click.option('-t', '--timestep', type=float, help='MD time step, fs (default: POTIM of a vasprun.xml).')
@options.STEP_SKIP
@click.option(
    '--stride', type=int, default=1, show_default=True, help='Use every STRIDE-th frame of the file.'
)
@options.MOBILE
@options.FORMAT
@options.FIT_WINDOW
@options.VDOS_WEIGHTING
@options.ALLOW_TRUNCATED
@click.option('--json', 'as_json', is_flag=True, help='Print the result as JSON.')
@click.option(
    '--arrays',
    'arrays_out',
    type=click.Path(dir_okay=False, path_type=Path),
    help='Also write MSD(τ) and g(E) to this .npz.',
)
@click.option('-q', '--quiet', is_flag=True, help='No progress on stderr.')
def cmd_analyze(
    trajectory: Path,
    temperature: float | None,
    timestep: float | None,
    step_skip: int,
    stride: int,
    mobile: str | None,
    fmt: str | None,
    fit_window: tuple[float, float] | None,
    vdos_weighting: str,
    allow_truncated: bool,
    as_json: bool,
    arrays_out: Path | None,
    quiet: bool,
) -> None:
    """Diffusion coefficient, VDOS descriptors and Lindemann ratio of an MD TRAJECTORY file.

    TRAJECTORY: VASP XDATCAR (optionally .gz), vasprun.xml, .npz (positions, cell, symbols
    [, velocities]) or any file ase.io reads. No AiiDA profile is needed.
    """
    from ..analysis import analyze_trajectory
    from ..io import read_trajectory

    if step_skip < 1:
        raise InputError(f'--step-skip must be >= 1, got {step_skip}')
    for name, value in (('temperature', temperature), ('timestep', timestep)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f'--{name} must be > 0, got {value:g}')
    reading = StderrProgress(f'reading {trajectory.name}', enabled=not quiet)
    traj = read_trajectory(trajectory, fmt, stride=stride, allow_truncated=allow_truncated, progress=reading)
    reading.close()
    temperature = temperature or traj.metadata.get('tebeg_K')
    timestep = timestep or traj.metadata.get('potim_fs')
    if temperature is None:
        raise InputError('give the temperature of the run with --temperature (K)')
    if timestep is None:
        raise InputError('give the MD time step with --timestep (fs)')
    analysing = StderrProgress('analysing', enabled=not quiet)
    result = analyze_trajectory(
        traj.positions,
        traj.cell,
        traj.symbols,
        timestep_fs=timestep * step_skip * stride,
        temperature_K=temperature,
        mobile=mobile,
        velocities=traj.velocities,
        fit_window_ps=tuple(fit_window) if fit_window else None,
        vdos_weighting=vdos_weighting,
        return_arrays=arrays_out is not None,
        progress=analysing,
    )
    analysing.close()
    if arrays_out is not None:
        np.savez_compressed(arrays_out, **result.pop('arrays'))
    result['source'] = str(trajectory)
    if as_json:
        click.echo(json.dumps(_finite_or_none(result), indent=2))
    else:
        click.echo(format_table(result, trajectory.name))
