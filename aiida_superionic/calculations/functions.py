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
from ..analysis.vibrational import DEFAULT_VDOS_WEIGHTING
from ..data import MDTrajectoryData
from ..exceptions import InputError
from ..io import read_trajectory

#: Parameters of the trajectory analysis that the calcfunctions accept (all optional; ``vdos_weighting``
#: defaults to ``'none'``, the paper's eq 5, and the ``vibrational`` output records the one used).
ANALYSIS_KEYS = ('mobile', 'fit_window_ps', 'vdos_weighting')


def _analysis_kwargs(parameters: orm.Dict | None) -> dict[str, Any]:
    params = parameters.get_dict() if parameters is not None else {}
    unknown = set(params) - set(ANALYSIS_KEYS)
    if unknown:
        raise ValueError(f'unknown analysis parameters: {", ".join(sorted(unknown))}')
    if params.get('fit_window_ps') is not None:
        params['fit_window_ps'] = tuple(params['fit_window_ps'])
    params.setdefault('vdos_weighting', DEFAULT_VDOS_WEIGHTING)
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
    between stored frames), ``stride`` (keep every stride-th frame of the file), ``allow_truncated``, ``mobile``,
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
        origin={
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
    """D (Einstein fit of the MSD over all time origins, eqs 3-4), its per-ion standard error and whether it
    is resolved from zero (the raw fit, even a negative one, stays here); MSD(τ)."""
    result = _analyze(trajectory, parameters, 'diffusion')
    msd = orm.ArrayData()
    msd.set_array('time_ps', result['arrays']['msd_time_ps'])
    msd.set_array('msd_A2', result['arrays']['msd_A2'])
    return {'diffusion': orm.Dict(_clean({**result['diffusion'], **_meta(result)})), 'msd': msd}


@calcfunction
def compute_vibrational(
    trajectory: MDTrajectoryData, parameters: orm.Dict | None = None
) -> dict[str, orm.Data]:
    """VDOS of all / diffusive / non-diffusive ions (eq 5) and their descriptors (eqs 6-7, E, C_v, F, S, θ_D).

    The output also records ``vdos_weighting`` (``'none'``: eq 5, or ``'mass'``) and ``vdos_velocities``
    (``'given'``, or ``'forward_differences'`` of the positions with their transfer function divided out).
    """
    result = _analyze(trajectory, parameters, 'vibrational')
    vdos = orm.ArrayData()
    for name, array in result['arrays'].items():
        vdos.set_array(name.removeprefix('vdos_'), array)
    how = {k: result[k] for k in ('vdos_weighting', 'vdos_velocities')}
    return {'vibrational': orm.Dict(_clean({**result['vibrational'], **how, **_meta(result)})), 'vdos': vdos}


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


def arrhenius_runs(diffusion: dict[str, dict]) -> tuple[dict[str, dict], dict[str, str]]:
    """Split diffusion results into the runs an Arrhenius fit may use and those it must leave out.

    A run whose D is not resolved from zero (``D_resolved`` false, or for a result from before the
    flag, :func:`~aiida_superionic.analysis.diffusion.resolve_D` on its D and error) has no D to fit: it
    is left out, with the reason.
    """
    used, left_out = {}, {}
    for key, d in diffusion.items():
        status = registry.diffusion_status({'diffusion': d})
        if status.get('D_resolved'):
            used[key] = d
        else:
            bound = status.get('D_upper_bound_cm2_s')
            left_out[key] = f'D not resolved at {d.get("temperature_K")} K' + (
                f' (D < {bound:.3g} cm^2/s)' if bound is not None else ''
            )
    return used, left_out


@calcfunction
def fit_arrhenius(**diffusion: orm.Dict) -> orm.Dict:
    """Arrhenius fit over the ``diffusion`` outputs of runs at several temperatures (weighted by their
    errors). Runs whose D is not resolved from zero are left out (``left_out``: key -> reason); at least
    two resolved temperatures are needed."""
    used, left_out = arrhenius_runs({k: v.get_dict() for k, v in diffusion.items()})
    if len(used) < 2:
        raise InputError(f'an Arrhenius fit needs D resolved at >= 2 temperatures; left out: {left_out}')
    items = sorted((d['temperature_K'], d['D_cm2_s'], d.get('D_stderr_cm2_s')) for d in used.values())
    temperatures = [t for t, _, _ in items]
    values = [v for _, v, _ in items]
    errors = [e for _, _, e in items]
    use_errors = all(e is not None and e > 0 for e in errors)
    out = analysis.arrhenius(temperatures, values, errors if use_errors else None)
    return orm.Dict(
        _clean({**out, 'temperatures_K': temperatures, 'weighted': use_errors, 'left_out': left_out})
    )


@calcfunction
def assemble_record(record_metadata: orm.Dict, **parts: orm.Dict) -> orm.Dict:
    """The material's descriptor record: one per material x temperature x stoichiometry.

    ``parts`` may hold ``diffusion``, ``vibrational``, ``lindemann``, ``structure``, ``elastic``,
    ``dft`` and ``phonon`` Dicts; missing steps give ``None`` values. The record's attributes:
    ``schema``, the ``record_metadata`` (material, formula, mobile species, temperature, stoichiometry, engine),
    ``values`` and ``units`` keyed by :data:`aiida_superionic.descriptors.DESCRIPTORS`, ``errors``,
    ``references``: the published source of a value taken from a table rather than computed (``alpha_i``:
    citation, table, kind of polarizability, the ion looked up and, where there is no value, why), and,
    with a ``diffusion`` part, ``D_resolved`` and ``D_upper_bound_cm2_s``
    (:func:`~aiida_superionic.descriptors.diffusion_status`): an unresolved D is None in ``values``.
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
    references = {}
    if 'structure' in parts and parts['structure'].get('mobile_polarizability_reference') is not None:
        references['alpha_i'] = parts['structure']['mobile_polarizability_reference']
    return orm.Dict(
        _clean(
            {
                'schema': 'superionic.record.v1',
                **record_metadata.get_dict(),
                'values': values,
                'errors': errors,
                'references': references,
                **registry.diffusion_status(md),
                'units': {k: registry.UNITS[k] for k in values},
            }
        )
    )


@calcfunction
def stitch_trajectories(**segments: MDTrajectoryData) -> MDTrajectoryData:
    """One trajectory from the segments of a restarted MD run (keys sort in run order: segment_000, ...).

    Each segment carries the global step of its frames (array ``steps``) and the step it was restarted
    from (attribute ``restart_from_step``); frames that a killed segment wrote after its last checkpoint
    are dropped in favour of its successor's, so no frame appears twice and none is missing.
    """
    from ..io import Trajectory
    from ..io.stitch import stitch_frames

    ordered = [segments[key] for key in sorted(segments)]
    with_velocities = all(seg.get_velocities() is not None for seg in ordered)
    arrays = [
        [seg.get_positions(), seg.get_velocities()] if with_velocities else [seg.get_positions()]
        for seg in ordered
    ]
    steps, stitched = stitch_frames(
        [seg.get_array('steps') for seg in ordered],
        [seg.base.attributes.get('restart_from_step', None) for seg in ordered],
        arrays,
    )
    first = ordered[0]
    traj = Trajectory(
        positions=stitched[0],
        cell=first.cell,
        symbols=first.symbols,
        velocities=stitched[1] if with_velocities else None,
    )
    node = MDTrajectoryData.from_trajectory(
        traj,
        timestep_fs=first.timestep_fs,
        temperature_K=first.temperature_K,
        mobile_species=first.mobile_species,
        origin={**first.origin, 'segments': len(ordered)},
    )
    node.set_array('steps', steps)
    return node


def stitch_segments(segments: list[MDTrajectoryData]) -> MDTrajectoryData:
    """The one trajectory of an MD run from its segments, in run order: the segment itself when there is
    one, else the output of :func:`stitch_trajectories` (which may raise on inconsistent segments)."""
    if len(segments) == 1:
        return segments[0]
    return stitch_trajectories(**{f'segment_{i:03d}': seg for i, seg in enumerate(segments)})


def diagonal_supercell(
    lengths: np.ndarray, n_atoms: int, min_atoms: int, max_repeat: int = 12
) -> tuple[int, int, int]:
    """The smallest diagonal supercell with at least ``min_atoms`` atoms, as close to isotropic as possible
    (ties: the smallest ratio of longest to shortest edge)."""
    best = None
    for n1 in range(1, max_repeat + 1):
        for n2 in range(1, max_repeat + 1):
            for n3 in range(1, max_repeat + 1):
                atoms = n1 * n2 * n3 * n_atoms
                if atoms < min_atoms:
                    continue
                edges = np.array([n1, n2, n3]) * lengths
                key = (atoms, edges.max() / edges.min())
                if best is None or key < best[0]:
                    best = (key, (n1, n2, n3))
    if best is None:
        raise ValueError(f'no supercell up to {max_repeat}^3 reaches {min_atoms} atoms')
    return best[1]


@calcfunction
def make_md_cells(structure: orm.StructureData, parameters: orm.Dict) -> dict[str, orm.StructureData]:
    """MD supercells: ``stoichiometric`` (>= ``min_atoms``) and, when ``vacancy_fraction`` > 0,
    ``non_stoichiometric`` with that fraction of the ``mobile`` ions removed (at least one; chosen with
    ``seed``). The paper's non-stoichiometric runs hold ~1-2 % mobile-ion vacancies."""
    p = parameters.get_dict()
    pmg = structure.get_pymatgen_structure()
    reps = diagonal_supercell(np.array(pmg.lattice.abc), len(pmg), int(p['min_atoms']))
    supercell = pmg * reps
    out = {'stoichiometric': orm.StructureData(pymatgen=supercell)}
    fraction = float(p.get('vacancy_fraction', 0.0))
    if fraction > 0:
        mobile_sites = [i for i, site in enumerate(supercell) if site.specie.symbol == p['mobile']]
        n_remove = max(1, round(fraction * len(mobile_sites)))
        if n_remove >= len(mobile_sites):
            raise ValueError(f'cannot remove {n_remove} of {len(mobile_sites)} {p["mobile"]} ions')
        rng = np.random.default_rng(int(p.get('seed', 0)))
        removed = sorted(rng.choice(mobile_sites, size=n_remove, replace=False).tolist())
        defective = supercell.copy()
        defective.remove_sites(removed)
        node = orm.StructureData(pymatgen=defective)
        node.base.attributes.set('removed_mobile_sites', removed)
        out['non_stoichiometric'] = node
    return out


@calcfunction
def collect_dft_part(
    unavailable: orm.Dict,
    vacancy: orm.Dict | None = None,
    dielectric: orm.Dict | None = None,
    band_gap: orm.Dict | None = None,
) -> orm.Dict:
    """The record's ``dft`` part (Z_B, ε, E_g, E_vac) from the engine's steps.

    Quantities the engine cannot provide stay None and are listed under ``not_available`` with the
    reason, so a record never carries an invented number. (α_i is not an engine result: it comes with
    the structural descriptors, from a published table; see :mod:`aiida_superionic.analysis.polarizability`.)
    """
    part: dict[str, Any] = {
        'born_charge_e': dielectric.get('born_charge_e') if dielectric is not None else None,
        'epsilon_inf': dielectric.get('epsilon_inf') if dielectric is not None else None,
        'band_gap_eV': band_gap.get('band_gap_eV') if band_gap is not None else None,
        'vacancy_energy_eV': vacancy['E_vac_eV'] if vacancy is not None else None,
        'vacancy_reference': vacancy.get('mu_reference') if vacancy is not None else None,
        'not_available': unavailable.get_dict(),
    }
    return orm.Dict(part)
