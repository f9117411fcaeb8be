"""Calcfunctions: thin provenance wrappers over :mod:`aiida_superionic.analysis`.

Each takes nodes, calls one analysis function and returns nodes, so every descriptor has a path back
to the trajectory or structure it came from. Large arrays (MSD curve, VDOS) go to ``ArrayData`` in the
file repository; the numbers go to ``Dict`` attributes. All are cacheable (``aiida-superionic setup``
enables caching for ``aiida.calculations:superionic.*``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from .. import analysis
from .. import descriptors as registry
from ..data import MDTrajectoryData
from ..io import read_trajectory

#: Parameters of the trajectory analysis that the calcfunctions accept (all optional).
ANALYSIS_KEYS = ('mobile', 'fit_window_ps', 'n_blocks', 'vdos_weighting')


def _analysis_kwargs(parameters: orm.Dict | None) -> dict[str, Any]:
    params = parameters.get_dict() if parameters is not None else {}
    unknown = set(params) - set(ANALYSIS_KEYS)
    if unknown:
        raise ValueError(f'unknown analysis parameters: {", ".join(sorted(unknown))}')
    if params.get('fit_window_ps') is not None:
        params['fit_window_ps'] = tuple(params['fit_window_ps'])
    return params


def _analyze(trajectory: MDTrajectoryData, parameters: orm.Dict | None, part: str) -> dict[str, Any]:
    kwargs = _analysis_kwargs(parameters)
    kwargs.setdefault('mobile', trajectory.mobile_species)
    return analysis.analyze_trajectory(
        trajectory.get_positions(),
        trajectory.cell,
        trajectory.symbols,
        trajectory.timestep_fs,
        trajectory.temperature_K,
        velocities=trajectory.get_velocities(),
        compute=[part],
        return_arrays=True,
        **kwargs,
    )


def _clean(value: Any) -> Any:
    """JSON-safe copy for Dict attributes: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _meta(result: dict[str, Any]) -> dict[str, Any]:
    keys = ('mobile_species', 'temperature_K', 'n_frames', 'n_atoms', 'timestep_fs', 'warnings')
    return {k: result[k] for k in keys}


@calcfunction
def parse_trajectory_file(source: orm.SinglefileData, parameters: orm.Dict) -> MDTrajectoryData:
    """Read an MD file (XDATCAR, vasprun.xml, .npz, ase.io formats) into a trajectory node.

    ``parameters``: ``format``, ``temperature_K``, ``timestep_fs`` (MD step), ``step_skip`` (MD steps
    between stored frames), ``stride`` (frames of the file to skip), ``allow_truncated``, ``mobile``,
    ``sha256`` (of the file, recorded for de-duplication).
    """
    p = parameters.get_dict()
    stride = int(p.get('stride', 1))
    with source.as_path() as path:
        traj = read_trajectory(
            path, p.get('format'), stride=stride, allow_truncated=p.get('allow_truncated', False)
        )
    frame_dt = float(p['timestep_fs']) * int(p.get('step_skip', 1)) * stride
    return MDTrajectoryData.from_trajectory(
        traj,
        timestep_fs=frame_dt,
        temperature_K=float(p['temperature_K']),
        mobile_species=p.get('mobile'),
        source={
            'kind': 'file',
            'filename': source.filename,
            'format': p.get('format'),
            'sha256': p.get('sha256'),
            'md_timestep_fs': float(p['timestep_fs']),
            'step_skip': int(p.get('step_skip', 1)),
            'stride': stride,
            'frames_in_file': traj.metadata.get('frames_in_file', traj.n_frames * stride),
        },
    )


@calcfunction
def compute_diffusion(
    trajectory: MDTrajectoryData, parameters: orm.Dict | None = None
) -> dict[str, orm.Data]:
    """D (Einstein fit of the MSD over all time origins, eqs 3-4) with its block uncertainty; MSD(τ)."""
    result = _analyze(trajectory, parameters, 'diffusion')
    msd = orm.ArrayData()
    msd.set_array('time_ps', result['arrays']['msd_time_ps'])
    msd.set_array('msd_A2', result['arrays']['msd_A2'])
    return {'diffusion': orm.Dict(_clean({**result['diffusion'], **_meta(result)})), 'msd': msd}


@calcfunction
def compute_vibrational(
    trajectory: MDTrajectoryData, parameters: orm.Dict | None = None
) -> dict[str, orm.Data]:
    """VDOS of all / diffusive / non-diffusive ions (eq 5) and their descriptors (eqs 6-7, E, C_v, F, S, θ_D)."""
    result = _analyze(trajectory, parameters, 'vibrational')
    vdos = orm.ArrayData()
    for name, array in result['arrays'].items():
        vdos.set_array(name.removeprefix('vdos_'), array)
    return {'vibrational': orm.Dict(_clean({**result['vibrational'], **_meta(result)})), 'vdos': vdos}


@calcfunction
def compute_lindemann(trajectory: MDTrajectoryData, parameters: orm.Dict | None = None) -> orm.Dict:
    """Lindemann ratio of the non-diffusive ions."""
    result = _analyze(trajectory, parameters, 'lindemann')
    return orm.Dict(_clean({'lindemann_ratio': result['lindemann_ratio'], **_meta(result)}))


@calcfunction
def compute_structure_descriptors(structure: orm.StructureData, parameters: orm.Dict) -> orm.Dict:
    """Structural-compositional descriptors (``mobile``, optional ``stoichiometric``, ``epsilon_inf``)."""
    p = parameters.get_dict()
    mobile = p.pop('mobile')
    return orm.Dict(_clean(analysis.structure_descriptors(structure.get_pymatgen_structure(), mobile, **p)))


@calcfunction
def compute_elastic_descriptors(elastic_tensor: orm.ArrayData, structure: orm.StructureData) -> orm.Dict:
    """The 13 mechanical-elastic descriptors from a Voigt tensor (array ``voigt_GPa``, 6x6, GPa)."""
    voigt = elastic_tensor.get_array('voigt_GPa')
    return orm.Dict(_clean(analysis.elastic_descriptors(voigt, structure.get_pymatgen_structure())))


@calcfunction
def fit_arrhenius(**diffusion: orm.Dict) -> orm.Dict:
    """Arrhenius fit over the ``diffusion`` outputs of runs at several temperatures (weighted by their errors)."""
    items = sorted((d['temperature_K'], d['D_cm2_s'], d.get('D_stderr_cm2_s')) for d in diffusion.values())
    temperatures = [t for t, _, _ in items]
    values = [v for _, v, _ in items]
    errors = [e for _, _, e in items]
    use_errors = all(e is not None and e > 0 for e in errors)
    out = analysis.arrhenius(temperatures, values, errors if use_errors else None)
    return orm.Dict(_clean({**out, 'temperatures_K': temperatures, 'weighted': use_errors}))


@calcfunction
def assemble_record(record_metadata: orm.Dict, **parts: orm.Dict) -> orm.Dict:
    """The material's descriptor record: one per material x temperature x stoichiometry.

    ``parts`` may hold ``diffusion``, ``vibrational``, ``lindemann``, ``structure``, ``elastic``,
    ``dft`` and ``phonon`` Dicts; missing steps give ``None`` values. The record's attributes:
    ``schema``, the ``record_metadata`` (material, formula, mobile species, temperature, stoichiometry, engine),
    ``values`` and ``units`` keyed by :data:`aiida_superionic.descriptors.DESCRIPTORS`, and ``errors``.
    """
    unknown = set(parts) - {'diffusion', 'vibrational', 'lindemann', 'structure', 'elastic', 'dft', 'phonon'}
    if unknown:
        raise ValueError(f'unknown record parts: {", ".join(sorted(unknown))}')
    md: dict[str, Any] | None = None
    if {'diffusion', 'vibrational', 'lindemann'} & set(parts):
        md = {}
        if 'diffusion' in parts:
            md['diffusion'] = parts['diffusion'].get_dict()
        if 'vibrational' in parts:
            md['vibrational'] = parts['vibrational'].get_dict()
        if 'lindemann' in parts:
            md['lindemann_ratio'] = parts['lindemann']['lindemann_ratio']
    values, errors = registry.record_values(
        md=md,
        elastic=parts['elastic'].get_dict() if 'elastic' in parts else None,
        structure=parts['structure'].get_dict() if 'structure' in parts else None,
        dft=parts['dft'].get_dict() if 'dft' in parts else None,
        phonon=parts['phonon'].get_dict() if 'phonon' in parts else None,
    )
    return orm.Dict(
        _clean(
            {
                'schema': 'superionic.record.v1',
                **record_metadata.get_dict(),
                'values': values,
                'errors': errors,
                'units': {k: registry.UNITS[k] for k in values},
            }
        )
    )
