"""Mechanical-elastic (M-E) descriptors of Table 1 from a single-crystal elastic tensor.

Conventions (stated once, used everywhere):

* Input: the 6x6 stiffness matrix C in Voigt notation (order xx, yy, zz, yz, xz, xy; no factors of 2 on
  a stiffness matrix) in **GPa**, or the full 3x3x3x3 stiffness tensor C_ijkl in GPa, which is mapped
  onto Voigt notation with (11->1, 22->2, 33->3, 23->4, 13->5, 12->6). C_ij below uses 1-based Voigt
  indices, e.g. C12 = C[0, 1], C66 = C[5, 5].
* Polycrystalline (isotropic) moduli are Voigt-Reuss-Hill (VRH) averages computed by pymatgen
  (:class:`pymatgen.analysis.elasticity.ElasticTensor`): K = (K_V + K_R)/2 and G = (G_V + G_R)/2 with
  the Voigt bounds from C and the Reuss bounds from the compliance S = C^-1.
* Isotropic identities (K, G in GPa): lambda = K - 2G/3, E = 9KG/(3K + G),
  nu = (3K - 2G)/(2(3K + G)), P-wave modulus M = K + 4G/3, Pugh's modulus ratio kappa = G/K (shear over
  bulk, Pugh's original G/B; the paper's signs fix it: for Li-based SSEs it reports c_S(D, nu) = +55 %,
  c_S(D, v_r) = +56 % and c_S(D, kappa) = -56 %, and nu and v_r rise with K/G, so kappa falls with it).
* Vickers hardness: the empirical model of Chen, Niu, Li and Li, Intermetallics 19, 1275 (2011),
  H_V = 2 (k^2 G)^0.585 - 3 in GPa with k = G/K (the Pugh ratio kappa) and G in GPa. The model is a fit
  to hard, brittle solids; for ductile materials (small k) it can return small or negative values, which
  are reported as they are.
* Cauchy pressure P_C = [(C12 - C66) + (C13 - C55) + (C23 - C44)]/3 in GPa, which equals C12 - C44 for
  a cubic crystal.
* Sound velocities (m/s) of the isotropic (VRH) aggregate: v_l = sqrt((K + 4G/3)/rho), v_t = sqrt(G/rho),
  with rho the mass density of the structure in kg/m^3 (pymatgen's ``long_v``/``trans_v``, which take
  the tensor in GPa and return SI units). Velocity ratio v_r = v_l/v_t. Average (Debye/Anderson) velocity
  <v> = [(1/3)(2/v_t^3 + 1/v_l^3)]^(-1/3).
* Validation: the matrix must be finite and symmetric within ``symmetry_tol`` (relative to ``max|C|``); it
  is then symmetrised as (C + C^T)/2. A matrix with any eigenvalue <= 0 is not positive definite (the
  generalised Born stability criterion fails) and raises :class:`MechanicalInstabilityError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import InputError, MechanicalInstabilityError

#: Voigt index of each (i, j) pair of Cartesian indices.
_VOIGT = ((0, 5, 4), (5, 1, 3), (4, 3, 2))

#: Default relative tolerance on the asymmetry of the Voigt matrix: ``max|C - C^T| <= tol * max|C|``.
SYMMETRY_TOL = 1e-2

#: kg/m^3 per g/cm^3.
_G_CM3_TO_KG_M3 = 1e3


def _as_structure(structure: Any):
    """Return a pymatgen Structure for a pymatgen Structure or an ASE Atoms object."""
    from ase import Atoms
    from pymatgen.core import Structure

    if isinstance(structure, Structure):
        return structure
    if isinstance(structure, Atoms):
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_structure(structure)
    raise InputError(
        f'structure must be a pymatgen Structure or an ASE Atoms object, not {type(structure).__name__}'
    )


def full_to_voigt(c_ijkl: np.ndarray, symmetry_tol: float = SYMMETRY_TOL) -> np.ndarray:
    """Map a 3x3x3x3 stiffness tensor C_ijkl onto the 6x6 Voigt matrix C_IJ (same units).

    The minor symmetries C_ijkl = C_jikl = C_ijlk must hold within ``symmetry_tol`` * ``max|C|``, else
    :class:`InputError`.
    """
    c = np.asarray(c_ijkl, dtype=float)
    if c.shape != (3, 3, 3, 3):
        raise InputError(f'full elastic tensor must have shape (3, 3, 3, 3), not {c.shape}')
    if not np.all(np.isfinite(c)):
        raise InputError('elastic tensor contains NaN or infinite values')
    scale = max(float(np.max(np.abs(c))), 1e-12)
    asym = max(
        float(np.max(np.abs(c - c.transpose(1, 0, 2, 3)))),
        float(np.max(np.abs(c - c.transpose(0, 1, 3, 2)))),
    )
    if asym > symmetry_tol * scale:
        raise InputError(
            f'full elastic tensor lacks the minor symmetries C_ijkl = C_jikl = C_ijlk '
            f'(largest violation {asym:.3g} GPa)'
        )
    voigt = np.zeros((6, 6))
    counts = np.zeros((6, 6))
    for i in range(3):
        for j in range(3):
            for k in range(3):
                for m in range(3):
                    a, b = _VOIGT[i][j], _VOIGT[k][m]
                    voigt[a, b] += c[i, j, k, m]
                    counts[a, b] += 1
    return voigt / counts


def validate_voigt(c_voigt_GPa: Any, symmetry_tol: float = SYMMETRY_TOL) -> np.ndarray:
    """Return the validated, symmetrised 6x6 Voigt stiffness matrix in GPa.

    Accepts a 6x6 Voigt matrix or a 3x3x3x3 tensor. Raises :class:`InputError` (wrong shape, NaN/inf,
    asymmetry above ``symmetry_tol`` * ``max|C|``) and :class:`MechanicalInstabilityError` (an eigenvalue of
    the symmetrised matrix <= 0, i.e. the Born stability criteria fail).
    """
    try:
        c = np.asarray(c_voigt_GPa, dtype=float)
    except (TypeError, ValueError):
        raise InputError('elastic tensor must be a numeric 6x6 (Voigt) or 3x3x3x3 array') from None
    if c.shape == (3, 3, 3, 3):
        c = full_to_voigt(c, symmetry_tol)
    elif c.shape != (6, 6):
        raise InputError(
            f'elastic tensor must be a 6x6 Voigt matrix or a 3x3x3x3 tensor, not shape {c.shape}'
        )
    if not np.all(np.isfinite(c)):
        raise InputError('elastic tensor contains NaN or infinite values')
    scale = float(np.max(np.abs(c)))
    if scale == 0.0:
        raise MechanicalInstabilityError(
            'elastic tensor is not positive definite (it is zero): the structure is mechanically unstable'
        )
    asym = float(np.max(np.abs(c - c.T)))
    if asym > symmetry_tol * scale:
        raise InputError(
            f'elastic tensor is not symmetric (max |C_ij - C_ji| = {asym:.3g} GPa, '
            f'above {symmetry_tol:g} x max|C| = {symmetry_tol * scale:.3g} GPa)'
        )
    c = 0.5 * (c + c.T)
    smallest = float(np.linalg.eigvalsh(c)[0])
    if smallest <= 0.0:
        raise MechanicalInstabilityError(
            f'elastic tensor is not positive definite (smallest eigenvalue {smallest:.4g} GPa): '
            'the structure is mechanically unstable'
        )
    return c


def vickers_hardness_chen(bulk_GPa: float, shear_GPa: float) -> float:
    """Vickers hardness (GPa) from Chen et al., Intermetallics 19, 1275 (2011):
    H_V = 2 (k^2 G)^0.585 - 3 with k = G/K, K and G in GPa."""
    k = shear_GPa / bulk_GPa
    return float(2.0 * (k * k * shear_GPa) ** 0.585 - 3.0)


def cauchy_pressure(c_voigt_GPa: np.ndarray) -> float:
    """Cauchy pressure (GPa): mean of C12 - C66, C13 - C55 and C23 - C44 (C12 - C44 for cubic)."""
    c = np.asarray(c_voigt_GPa, dtype=float)
    return float(((c[0, 1] - c[5, 5]) + (c[0, 2] - c[4, 4]) + (c[1, 2] - c[3, 3])) / 3.0)


def elastic_descriptors(
    C_voigt_GPa: Any,
    structure: Any,
    *,
    symmetry_tol: float = SYMMETRY_TOL,
) -> dict[str, float]:
    """Mechanical-elastic descriptors of Table 1 (López et al. 2023) from an elastic tensor.

    :param C_voigt_GPa: 6x6 Voigt stiffness matrix (or 3x3x3x3 tensor) in GPa.
    :param structure: pymatgen ``Structure`` (or ASE ``Atoms``) the tensor belongs to; only its mass
        density rho (kg/m^3) is used, for the sound velocities.
    :param symmetry_tol: relative tolerance on ``max|C - C^T| / max|C|``.
    :returns: a dict of floats (K and G are the VRH averages, all moduli in GPa, velocities in m/s):

        * ``lame_lambda_GPa``: first Lamé parameter lambda = K - 2G/3
        * ``bulk_modulus_GPa``: K_VRH
        * ``young_modulus_GPa``: E = 9KG/(3K + G)
        * ``shear_modulus_GPa``: G_VRH
        * ``poisson_ratio``: nu = (3K - 2G)/(2(3K + G)) (dimensionless)
        * ``p_wave_modulus_GPa``: M = K + 4G/3
        * ``vickers_hardness_GPa``: Chen et al. (2011) model H_V = 2(k^2 G)^0.585 - 3, k = G/K
        * ``pugh_ratio``: Pugh's modulus ratio kappa = G/K (dimensionless)
        * ``cauchy_pressure_GPa``: [(C12 - C66) + (C13 - C55) + (C23 - C44)]/3
        * ``v_longitudinal_m_s``: v_l = sqrt((K + 4G/3)/rho)
        * ``v_transverse_m_s``: v_t = sqrt(G/rho)
        * ``velocity_ratio``: v_r = v_l/v_t (dimensionless)
        * ``v_average_m_s``: <v> = [(1/3)(2/v_t^3 + 1/v_l^3)]^(-1/3)

    :raises InputError: bad shape, NaN/inf, asymmetric tensor, bad structure.
    :raises MechanicalInstabilityError: the tensor is not positive definite.
    """
    from pymatgen.analysis.elasticity import ElasticTensor

    c = validate_voigt(C_voigt_GPa, symmetry_tol)
    struct = _as_structure(structure)
    if len(struct) == 0:
        raise InputError('structure is empty')

    tensor = ElasticTensor.from_voigt(c)
    k = float(tensor.k_vrh)
    g = float(tensor.g_vrh)

    # pymatgen's long_v/trans_v assume the tensor in GPa and return m/s; cross-checked against rho below.
    v_l = float(tensor.long_v(struct))
    v_t = float(tensor.trans_v(struct))
    rho = float(struct.density) * _G_CM3_TO_KG_M3
    if not np.isclose(v_t, np.sqrt(g * 1e9 / rho), rtol=1e-3):  # pragma: no cover - guards pymatgen units
        raise RuntimeError('pymatgen transverse velocity disagrees with sqrt(G/rho)')

    return {
        'lame_lambda_GPa': k - 2.0 * g / 3.0,
        'bulk_modulus_GPa': k,
        'young_modulus_GPa': 9.0 * k * g / (3.0 * k + g),
        'shear_modulus_GPa': g,
        'poisson_ratio': (3.0 * k - 2.0 * g) / (2.0 * (3.0 * k + g)),
        'p_wave_modulus_GPa': k + 4.0 * g / 3.0,
        'vickers_hardness_GPa': vickers_hardness_chen(k, g),
        'pugh_ratio': g / k,
        'cauchy_pressure_GPa': cauchy_pressure(c),
        'v_longitudinal_m_s': v_l,
        'v_transverse_m_s': v_t,
        'velocity_ratio': v_l / v_t,
        'v_average_m_s': float((((2.0 / v_t**3) + (1.0 / v_l**3)) / 3.0) ** (-1.0 / 3.0)),
    }
