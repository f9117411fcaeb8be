"""The descriptor registry: every descriptor of the paper's Table 1, its key, unit and where it comes from.

One place defines the names that the material's descriptor record (provenance layer), the study's
table and the docs use. Keys follow the paper's symbols; the six vibrational descriptors that the paper
computes per group of ions carry the group suffix used in its figures: ``_all`` (every ion), ``_nd``
(non-diffusive ions), ``_d`` (diffusive ions). The Debye temperature is one descriptor of the paper
(all ions, key ``theta_D``); its group values ``theta_D_nd`` and ``theta_D_d`` are extras.

:data:`PAPER_DESCRIPTORS` is the paper's 54 (13 M-E + 23 D-V + 18 S-C) in Table 1's order, the study's
default columns; :data:`DESCRIPTORS` is those 54 followed by the extras (``paper=False``).
Importing this module never imports AiiDA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Groups of ions of the vibrational descriptors, from record suffix to the key in ``analyze_trajectory``'s result.
VIB_GROUPS = {'all': 'all', 'nd': 'non_diffusive', 'd': 'diffusive'}


@dataclass(frozen=True)
class Descriptor:
    """One column of the descriptor table."""

    key: str
    symbol: str
    name: str
    category: str  # 'M-E', 'D-V' or 'S-C' (Table 1)
    unit: str  # '' for dimensionless, 'text' for non-numeric
    source: str  # the step that provides it: 'elastic', 'md', 'structure', 'dft' (an engine), 'phonon'
    result_key: str | None = None  # key in the analysis function's result
    paper: bool = True  # one of the paper's 54 (False: an extra column, after them)

    @property
    def numeric(self) -> bool:
        return self.unit != 'text'


_ME = [
    ('lambda', 'λ', '1st Lamé parameter', 'GPa', 'lame_lambda_GPa'),
    ('B', 'B', 'Bulk modulus', 'GPa', 'bulk_modulus_GPa'),
    ('E', 'E', 'Young modulus', 'GPa', 'young_modulus_GPa'),
    ('G', 'G', 'Shear modulus', 'GPa', 'shear_modulus_GPa'),
    ('nu', 'ν', "Poisson's ratio", '', 'poisson_ratio'),
    ('sigma', 'σ', 'P-wave modulus', 'GPa', 'p_wave_modulus_GPa'),
    ('H_V', 'H_V', "Vickers' hardness", 'GPa', 'vickers_hardness_GPa'),
    ('kappa', 'κ', "Pugh's modulus ratio", '', 'pugh_ratio'),
    ('P_c', 'P_c', "Cauchy's pressure", 'GPa', 'cauchy_pressure_GPa'),
    ('v_l', 'v_l', 'Longitudinal wave velocity', 'm/s', 'v_longitudinal_m_s'),
    ('v_t', 'v_t', 'Transverse wave velocity', 'm/s', 'v_transverse_m_s'),
    ('v_r', 'v_r', 'Velocity ratio', '', 'velocity_ratio'),
    ('v_mean', '⟨v⟩', 'Average wave velocity', 'm/s', 'v_average_m_s'),
]

_VIB = [
    ('omega', '⟨ω⟩', 'Mean frequency', 'meV', 'mean_frequency_meV'),
    ('omega_30', '⟨ω30⟩', 'Mean frequency (cut-off at 30 meV)', 'meV', 'mean_frequency_30meV'),
    ('E_vib', 'E_vib', 'Vibrational phonon energy', 'meV/atom', 'E_vib_meV_atom'),
    ('C_v', 'C_v', 'Constant volume heat capacity', 'k_B/atom', 'C_v_kB_atom'),
    ('theta_D', 'θ_d', 'Debye temperature', 'K', 'debye_temperature_K'),
    ('F_vib', 'F_vib', 'Vibrational Helmholtz free energy', 'meV/atom', 'F_vib_meV_atom'),
    ('S_vib', 'S_vib', 'Vibrational entropy', 'k_B/atom', 'S_vib_kB_atom'),
]

_SC = [
    ('Z_N', 'Z_N', 'Nominal charge', 'e', 'structure', 'nominal_charge'),
    ('Z_B', 'Z_B', 'Born effective charge', 'e', 'dft', 'born_charge_e'),
    ('epsilon', 'ϵ', 'Ion-clamped macroscopic dielectric constant', '', 'dft', 'epsilon_inf'),
    ('M', 'M', 'Mobile ion atomic mass', 'amu', 'structure', 'mobile_mass_amu'),
    ('alpha_i', 'α_i', 'Mobile ion polarizability', 'Å^3', 'structure', 'mobile_polarizability_A3'),
    ('alpha_c', 'α_c', 'Crystal polarizability', 'Å^3', 'structure', 'crystal_polarizability_A3'),
    ('Stc', 'Stc', 'Stoichiometry', 'text', 'structure', 'stoichiometry'),
    ('Sym', 'Sym', 'Crystal symmetry', 'text', 'structure', 'crystal_system'),
    ('a_m', 'a_m', 'Minimal lattice constant', 'Å', 'structure', 'min_lattice_constant_A'),
    ('n', 'n', 'Number of formula units', '', 'structure', 'formula_units'),
    ('Omega', 'Ω', 'Volume per formula unit', 'Å^3', 'structure', 'volume_per_formula_unit_A3'),
    (
        'sigma_abc',
        '⟨abc⟩',
        'Standard deviation of lattice constants',
        'Å',
        'structure',
        'lattice_constants_std_A',
    ),
    (
        'sigma_angles',
        '⟨αβγ⟩',
        'Standard deviation of lattice angles',
        'deg',
        'structure',
        'lattice_angles_std_deg',
    ),
    ('SO', 'SO', 'Number of crystal symmetry operations', '', 'structure', 'symmetry_operations'),
    ('N_nn', 'N_nn', 'Number of nearest neighbors', '', 'structure', 'n_nearest_neighbours'),
    ('d_nn', 'd_nn', 'Nearest neighbors distance', 'Å', 'structure', 'nearest_neighbour_distance_A'),
    ('E_g', 'E_g', 'Band gap', 'eV', 'dft', 'band_gap_eV'),
    ('E_vac', 'E_vac', 'Vacancy energy of the mobile ion', 'eV', 'dft', 'vacancy_energy_eV'),
]


def _build() -> tuple[Descriptor, ...]:
    out = [Descriptor(k, s, n, 'M-E', u, 'elastic', r) for k, s, n, u, r in _ME]
    out.append(Descriptor('gamma', 'γ', 'Lindemann ratio', 'D-V', '', 'md', 'lindemann_ratio'))
    out.append(
        Descriptor(
            'Gamma', 'Γ', 'Lowest-energy optical phonon mode', 'D-V', 'meV', 'phonon', 'gamma_mode_meV'
        )
    )
    extras = []
    for key, symbol, name, unit, result_key in _VIB:
        for suffix, group in VIB_GROUPS.items():
            label = {'all': 'all ions', 'nd': 'non-diffusive ions', 'd': 'diffusive ions'}[suffix]
            # theta_D is one descriptor of the paper (all ions, no suffix); its other groups are extras
            single = key in SINGLE_GROUP and suffix == 'all'
            paper = key not in SINGLE_GROUP or single
            d = Descriptor(
                key if single else f'{key}_{suffix}',
                symbol if single else f'{symbol} ({suffix})',
                f'{name}, {label}',
                'D-V',
                unit,
                'md',
                f'{group}.{result_key}',
                paper=paper,
            )
            (out if paper else extras).append(d)
    out.append(Descriptor('D', 'D', 'Diffusion coefficient', 'D-V', 'cm^2/s', 'md', 'D_cm2_s'))
    out.append(
        Descriptor(
            'msd',
            'msd',
            'Mean-squared displacement (at the end of the fit window)',
            'D-V',
            'Å^2',
            'md',
            'msd_at_window_end_A2',
        )
    )
    out.extend(Descriptor(k, s, n, 'S-C', u, src, r) for k, s, n, u, src, r in _SC)
    return (*out, *extras)


#: Vibrational descriptors that the paper gives for all ions only (Table 1's θ_d); the record also
#: holds their non-diffusive and diffusive values as extras.
SINGLE_GROUP = ('theta_D',)

#: Every descriptor: the paper's 54 in Table 1's order (M-E, D-V, S-C), then the extras.
DESCRIPTORS: tuple[Descriptor, ...] = _build()
#: The paper's 54 descriptors in Table 1's order: the study's default columns.
PAPER_DESCRIPTORS: tuple[Descriptor, ...] = tuple(d for d in DESCRIPTORS if d.paper)
PAPER_KEYS: tuple[str, ...] = tuple(d.key for d in PAPER_DESCRIPTORS)
#: Columns beyond the paper's (theta_D_nd, theta_D_d).
EXTRA_KEYS: tuple[str, ...] = tuple(d.key for d in DESCRIPTORS if not d.paper)
BY_KEY: dict[str, Descriptor] = {d.key: d for d in DESCRIPTORS}
UNITS: dict[str, str] = {d.key: d.unit for d in DESCRIPTORS}
#: The AIMD vibrational descriptors (every group, extras included): what the "harmonic" ML inputs drop.
VIBRATIONAL_KEYS: tuple[str, ...] = tuple(
    d.key for d in DESCRIPTORS if any(d.key == v[0] or d.key.startswith(f'{v[0]}_') for v in _VIB)
)
#: Keys of older records -> the key now: records stored before θ_D became one descriptor.
LEGACY_KEYS: dict[str, str] = {'theta_D_all': 'theta_D'}
_LEGACY_OF = {new: old for old, new in LEGACY_KEYS.items()}


def stored_value(values: dict[str, Any], key: str) -> Any:
    """The value of ``key`` in a record's ``values`` (or ``errors``), read under its older key
    (:data:`LEGACY_KEYS`) when the record predates the current one."""
    if key in values or key not in _LEGACY_OF:
        return values.get(key)
    return values.get(_LEGACY_OF[key])


def record_values(
    *,
    elastic: dict[str, Any] | None = None,
    structure: dict[str, Any] | None = None,
    md: dict[str, Any] | None = None,
    dft: dict[str, Any] | None = None,
    phonon: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Map the analysis functions' results onto the registry's keys.

    ``md`` is the result of :func:`~aiida_superionic.analysis.analyze_trajectory` (or a subset). Every
    registry key is present in the returned ``values``; a descriptor whose step did not run (or that an
    engine cannot provide) is ``None`` — never an invented number. ``errors`` holds one-sigma
    uncertainties where they are known (D). A D not resolved from zero (see :func:`diffusion_status`)
    is ``None`` too, with no error: the record carries its upper bound instead, never a negative D.
    """
    sources = {'elastic': elastic, 'structure': structure, 'dft': dft, 'phonon': phonon}
    values: dict[str, Any] = {}
    errors: dict[str, float] = {}
    for d in DESCRIPTORS:
        value = None
        if d.source == 'md' and md is not None:
            if d.key in ('D', 'msd'):
                value = (md.get('diffusion') or {}).get(d.result_key)
            elif d.key == 'gamma':
                value = md.get('lindemann_ratio')
            else:
                group, name = d.result_key.split('.')
                value = ((md.get('vibrational') or {}).get(group) or {}).get(name)
        elif d.source != 'md' and sources.get(d.source) is not None:
            value = sources[d.source].get(d.result_key)
        if isinstance(value, float) and value != value:  # NaN -> missing
            value = None
        values[d.key] = value
    status = diffusion_status(md)
    if status.get('D_resolved') is False:
        values['D'] = None
    if values['D'] is not None:
        err = md['diffusion'].get('D_stderr_cm2_s')
        if err is not None and err == err:
            errors['D'] = float(err)
    return values, errors


def diffusion_status(md: dict[str, Any] | None) -> dict[str, Any]:
    """The record's ``D_resolved`` and ``D_upper_bound_cm2_s`` (cm²/s) from ``md['diffusion']``; {} without it.

    Rule (:func:`aiida_superionic.analysis.diffusion.resolve_D`): D is resolved when D > 2 sigma; else
    the record's D is None and the bound is max(D, 0) + 2 sigma. The raw fit stays in the diffusion node.
    """
    from .analysis.diffusion import resolve_D

    diffusion = (md or {}).get('diffusion')
    if not diffusion or diffusion.get('D_cm2_s') is None:
        return {}
    if 'D_resolved' in diffusion:  # computed with the analysis
        resolved, upper = diffusion['D_resolved'], diffusion.get('D_upper_bound_cm2_s')
    else:  # a diffusion result from before the flag existed
        err = diffusion.get('D_stderr_cm2_s')
        resolved, upper = resolve_D(diffusion['D_cm2_s'], float('nan') if err is None else err)
    return {'D_resolved': bool(resolved), 'D_upper_bound_cm2_s': None if resolved else upper}


#: The columns of a descriptor table (the study's, and its stored CSV) read back as text; every other is a
#: float, except ``stoichiometric`` and ``pk``.
TEXT_COLUMNS = ('material', 'formula', 'family', 'engine', 'uuid', 'Stc', 'Sym')


def normalise_text(table):
    """The text columns of a descriptor table (a pandas DataFrame, changed in place and returned) as Python
    objects with None for missing: the same under pandas 2 and 3."""
    for c in TEXT_COLUMNS:
        if c in table.columns:
            col = table[c].astype(object)
            table[c] = col.where(col.notna(), None)
    return table
