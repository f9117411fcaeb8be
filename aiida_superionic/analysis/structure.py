"""Structural-compositional (S-C) descriptors of Table 1 that follow from a crystal structure.

Definitions (stated once, used everywhere; lengths in Å, angles in degrees, volumes in Å^3):

* Z_N (``nominal_charge``): oxidation state of the mobile species. If the structure is decorated with
  oxidation states (pymatgen ``Species``) the occupancy-weighted mean over the mobile sites is used;
  otherwise the first (most probable) guess of pymatgen's ``Composition.oxi_state_guesses`` (charge
  balance over ICSD oxidation-state statistics) for the reduced composition; if that fails or returns no
  guess (e.g. a non-integer, non-stoichiometric composition) the first of the element's common oxidation
  states (``Element.common_oxidation_states``), then of all its known oxidation states.
* M (``mobile_mass_amu``): standard atomic mass of the mobile element (pymatgen, amu).
* Stc (``stoichiometry``): 'stoichiometric' or 'non-stoichiometric', as declared by the caller; the
  structure itself cannot tell a vacancy-containing supercell from a new compound.
* Sym (``crystal_system``), ``space_group_number``, ``space_group_symbol``: from spglib through pymatgen's
  ``SpacegroupAnalyzer`` with tolerance ``symprec`` (Å).
* SO (``symmetry_operations``): the order of the crystallographic point group, i.e. the number of
  distinct rotational parts of the space-group operations (48 for m-3m, 24 for 6/mmm). Unlike the number
  of space-group operations of a given cell, it does not depend on the cell used (primitive, conventional
  or supercell of the same crystal).
* Lattice descriptors, all on spglib's **conventional standard cell** (so that they do not depend on the
  cell of the input): a_m (``min_lattice_constant_A``) = min(a, b, c); n (``formula_units``) = number of
  formula units of the reduced formula in that cell; Omega (``volume_per_formula_unit_A3``) = V_conv/n;
  <abc> (``lattice_constants_std_A``) and <alpha beta gamma> (``lattice_angles_std_deg``) = population
  standard deviations (divide by 3) of (a, b, c) and (alpha, beta, gamma).
* d_nn (``nearest_neighbour_distance_A``) and N_nn (``n_nearest_neighbours``): for each mobile site,
  d = distance to the nearest other atom of the periodic crystal (any species, periodic images included)
  and N = number of atoms within d (1 + ``nn_tolerance``); both are averaged over the mobile sites
  (N_nn is therefore a float).
* alpha_c (``crystal_polarizability_A3``): Clausius-Mossotti polarizability per formula unit,
  alpha_c = 3 Omega/(4 pi) (eps_inf - 1)/(eps_inf + 2) in Å^3 (polarizability volume, Gaussian units),
  given only when ``epsilon_inf`` (the ion-clamped, high-frequency dielectric constant; a scalar or a
  3x3 tensor, of which trace/3 is used) is passed; otherwise None.
* alpha_i (``mobile_polarizability_A3``): the electronic in-crystal polarizability (Å^3) of the mobile
  ion with charge Z_N, looked up in Tessman, Kahn & Shockley, Phys. Rev. 92, 890 (1953) (see
  :mod:`.polarizability`); None where that table has no single value (O2-: a spread), with the reason.
  ``mobile_polarizability_reference`` carries the citation, table, kind and the ion looked up.

Not computed here (they need DFT calculations): the Born effective charge Z_B, the dielectric constant
eps, the band gap E_g and the vacancy formation energy E_vac.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import InputError
from .elastic import _as_structure
from .polarizability import mobile_ion_polarizability

#: Absolute slack (Å) added to the neighbour-shell radius against rounding of equal distances.
_NN_ABS_TOL = 1e-6


def _mobile_element(mobile: Any):
    from pymatgen.core import Element

    symbol = str(mobile).strip()
    try:
        return Element(symbol)
    except (ValueError, KeyError):
        raise InputError(f'unknown element symbol {symbol!r} for the mobile species') from None


def _site_has(site, element) -> bool:
    return any(getattr(sp, 'symbol', None) == element.symbol for sp in site.species)


def nominal_charge(structure: Any, mobile: str) -> float:
    """Nominal oxidation state Z_N of ``mobile`` in ``structure`` (see the module docstring)."""
    from pymatgen.core import Species

    struct = _as_structure(structure)
    el = _mobile_element(mobile)
    decorated = []
    for site in struct:
        for sp, occ in site.species.items():
            if isinstance(sp, Species) and sp.symbol == el.symbol and sp.oxi_state is not None:
                decorated.append((float(sp.oxi_state), float(occ)))
    if decorated:
        values, weights = np.array(decorated).T
        return float(np.average(values, weights=weights))

    comp = struct.composition.element_composition.reduced_composition
    try:
        guesses = comp.oxi_state_guesses()
    except (ValueError, TypeError):
        guesses = ()
    if guesses and el.symbol in guesses[0]:
        return float(guesses[0][el.symbol])
    states = tuple(el.common_oxidation_states) or tuple(el.oxidation_states)
    if not states:
        raise InputError(f'cannot assign a nominal charge to {el.symbol}: it has no known oxidation state')
    return float(states[0])


def nearest_neighbours(
    structure: Any, mobile: str, nn_tolerance: float = 0.1
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Nearest-neighbour shell of the mobile sites.

    :returns: (mean N_nn, mean d_nn in Å, per-site N, per-site d) with d = distance from a mobile site to
        the nearest other atom (periodic images included) and N = atoms within d (1 + nn_tolerance).
    """
    struct = _as_structure(structure)
    el = _mobile_element(mobile)
    if not np.isfinite(nn_tolerance) or nn_tolerance < 0:
        raise InputError(f'nn_tolerance must be a finite number >= 0, not {nn_tolerance!r}')
    indices = [i for i, site in enumerate(struct) if _site_has(site, el)]
    if not indices:
        raise InputError(
            f'mobile species {el.symbol!r} not in structure {struct.composition.reduced_formula}'
        )
    counts, dists = [], []
    # Start from a radius that holds a few atoms on average and grow it until every site has a neighbour.
    radius = max(3.0, 1.5 * (struct.volume / len(struct)) ** (1.0 / 3.0))
    for idx in indices:
        site = struct[idx]
        r = radius
        while True:
            neigh = [n.nn_distance for n in struct.get_neighbors(site, r)]
            if neigh:
                d = min(neigh)
                shell = d * (1.0 + nn_tolerance) + _NN_ABS_TOL
                if shell <= r:
                    break
                r = shell * 1.01
                continue
            r *= 2.0
        counts.append(sum(1 for x in neigh if x <= shell))
        dists.append(d)
    counts_arr = np.array(counts, dtype=float)
    dists_arr = np.array(dists, dtype=float)
    return float(counts_arr.mean()), float(dists_arr.mean()), counts_arr, dists_arr


def clausius_mossotti_polarizability(volume_per_fu_A3: float, epsilon_inf: Any) -> float:
    """Crystal polarizability (Å^3 per formula unit) alpha_c = 3 Omega/(4 pi) (eps - 1)/(eps + 2).

    ``epsilon_inf`` is a scalar or a 3x3 tensor (its trace/3 is used); it must be finite and > 1.
    """
    try:
        eps_arr = np.asarray(epsilon_inf, dtype=float)
    except (TypeError, ValueError):
        raise InputError('epsilon_inf must be a number or a 3x3 tensor') from None
    if eps_arr.shape == (3, 3):
        eps = float(np.trace(eps_arr) / 3.0)
    elif eps_arr.shape == ():
        eps = float(eps_arr)
    else:
        raise InputError(f'epsilon_inf must be a number or a 3x3 tensor, not shape {eps_arr.shape}')
    if not np.all(np.isfinite(eps_arr)) or not eps > 1.0:
        raise InputError(f'epsilon_inf must be finite and > 1, got {eps:g}')
    return float(3.0 * volume_per_fu_A3 / (4.0 * np.pi) * (eps - 1.0) / (eps + 2.0))


def structure_descriptors(
    structure: Any,
    mobile: str,
    *,
    epsilon_inf: Any = None,
    stoichiometric: bool = True,
    nn_tolerance: float = 0.1,
    symprec: float = 0.1,
) -> dict[str, Any]:
    """Structural-compositional descriptors of Table 1 (López et al. 2023) that follow from a structure.

    :param structure: pymatgen ``Structure`` or ASE ``Atoms``, any cell of the crystal.
    :param mobile: element symbol of the mobile (diffusing) species, e.g. 'Li'.
    :param epsilon_inf: ion-clamped dielectric constant (scalar or 3x3) for alpha_c, or None.
    :param stoichiometric: whether the compound is stoichiometric (Stc is taken from here).
    :param nn_tolerance: relative width of the nearest-neighbour shell (N_nn counts atoms within
        d_nn (1 + nn_tolerance)).
    :param symprec: spglib symmetry tolerance in Å.
    :returns: dict with keys (definitions in the module docstring)

        * ``mobile_species`` (str), ``formula`` (reduced formula, str), ``stoichiometry`` (str)
        * ``nominal_charge`` Z_N (float, e), ``mobile_mass_amu`` M (float, amu)
        * ``crystal_system`` (str), ``space_group_number`` (int), ``space_group_symbol`` (str)
        * ``symmetry_operations`` SO (int): point-group order
        * ``min_lattice_constant_A`` a_m, ``formula_units`` n (int), ``volume_per_formula_unit_A3`` Omega,
          ``lattice_constants_std_A`` <abc>, ``lattice_angles_std_deg`` <alpha beta gamma>
          (conventional standard cell)
        * ``n_nearest_neighbours`` N_nn (float), ``nearest_neighbour_distance_A`` d_nn (float)
        * ``crystal_polarizability_A3`` alpha_c (float or None)
        * ``mobile_polarizability_A3`` alpha_i (float or None) and ``mobile_polarizability_reference``
          (dict: ``ion``, ``citation``, ``doi``, ``table``, ``kind``, ``reason``)

    :raises InputError: empty structure, unknown element, mobile species absent, bad epsilon_inf.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    struct = _as_structure(structure)
    if len(struct) == 0:
        raise InputError('structure is empty')
    el = _mobile_element(mobile)
    formula = struct.composition.reduced_formula
    if el not in struct.composition.element_composition:
        raise InputError(f'mobile species {el.symbol!r} not in structure {formula}')

    try:
        sga = SpacegroupAnalyzer(struct, symprec=symprec)
        crystal_system = sga.get_crystal_system()
        sg_number = int(sga.get_space_group_number())
        sg_symbol = sga.get_space_group_symbol()
        rotations = {
            tuple(np.rint(op.rotation_matrix).astype(int).ravel()) for op in sga.get_symmetry_operations()
        }
        conv = sga.get_conventional_standard_structure()
    except (TypeError, ValueError) as exc:
        raise InputError(f'symmetry analysis failed (symprec={symprec}): {exc}') from None

    _, n_fu = conv.composition.get_reduced_composition_and_factor()
    a, b, c = conv.lattice.abc
    angles = conv.lattice.angles
    omega = float(conv.volume / n_fu)

    n_nn, d_nn, _, _ = nearest_neighbours(struct, el.symbol, nn_tolerance)
    alpha_c = None if epsilon_inf is None else clausius_mossotti_polarizability(omega, epsilon_inf)
    z_n = nominal_charge(struct, el.symbol)
    alpha_i = mobile_ion_polarizability(el.symbol, z_n)
    alpha_i_value = alpha_i.pop('value_A3')

    return {
        'mobile_species': el.symbol,
        'formula': formula,
        'stoichiometry': 'stoichiometric' if stoichiometric else 'non-stoichiometric',
        'nominal_charge': z_n,
        'mobile_mass_amu': float(el.atomic_mass),
        'crystal_system': crystal_system,
        'space_group_number': sg_number,
        'space_group_symbol': sg_symbol,
        'symmetry_operations': len(rotations),
        'min_lattice_constant_A': float(min(a, b, c)),
        'formula_units': round(float(n_fu)),
        'volume_per_formula_unit_A3': omega,
        'lattice_constants_std_A': float(np.std([a, b, c])),
        'lattice_angles_std_deg': float(np.std(angles)),
        'n_nearest_neighbours': n_nn,
        'nearest_neighbour_distance_A': d_nn,
        'crystal_polarizability_A3': alpha_c,
        'mobile_polarizability_A3': alpha_i_value,
        'mobile_polarizability_reference': alpha_i,
    }
