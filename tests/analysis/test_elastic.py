"""Tests of the mechanical-elastic descriptors against analytic formulas and textbook data.

Reference values are computed here from closed-form expressions (not from the module under test) or
taken from the literature cited next to them.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from aiida_superionic.analysis.elastic import elastic_descriptors, full_to_voigt
from aiida_superionic.exceptions import InputError, MechanicalInstabilityError

AMU_KG = 1.66053906660e-27  # CODATA 2018

# Cu single-crystal stiffness at 300 K, GPa: C11 = 1.684, C12 = 1.214, C44 = 0.754 (10^12 dyn/cm^2)
# (Kittel, Introduction to Solid State Physics, 8th ed., ch. 3, table 3). Cu: fcc, a = 3.615 Å.
CU_C11, CU_C12, CU_C44 = 168.4, 121.4, 75.4
CU_A = 3.615
CU_MASS_AMU = 63.546
# Isothermal bulk modulus of Cu: 1.37 x 10^11 N/m^2 (Kittel, ch. 3, table 3 of bulk moduli) -> 137 GPa.
CU_BULK_TEXTBOOK_GPA = 137.0
# Polycrystalline Poisson ratio of copper, ~0.34 (standard engineering tables).
CU_POISSON_TEXTBOOK = 0.34


def cubic_voigt(c11: float, c12: float, c44: float) -> np.ndarray:
    c = np.zeros((6, 6))
    c[:3, :3] = c12
    np.fill_diagonal(c[:3, :3], c11)
    c[3, 3] = c[4, 4] = c[5, 5] = c44
    return c


def isotropic_voigt(bulk: float, shear: float) -> np.ndarray:
    """Isotropic stiffness: C11 = K + 4G/3, C12 = K - 2G/3, C44 = G (VRH bounds coincide)."""
    return cubic_voigt(bulk + 4 * shear / 3, bulk - 2 * shear / 3, shear)


@pytest.fixture
def copper() -> Structure:
    return Structure(
        Lattice.cubic(CU_A), ['Cu'] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    )


@pytest.fixture
def li3n() -> Structure:
    return Structure(
        Lattice.hexagonal(3.648, 3.875),
        ['N', 'Li', 'Li', 'Li'],
        [[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0]],
    )


def cubic_vrh(c11: float, c12: float, c44: float) -> tuple[float, float]:
    bulk = (c11 + 2 * c12) / 3
    g_v = (c11 - c12 + 3 * c44) / 5
    g_r = 5 * (c11 - c12) * c44 / (4 * c44 + 3 * (c11 - c12))
    return bulk, (g_v + g_r) / 2


def test_cubic_vrh_moduli_match_analytic_formulas(copper):
    out = elastic_descriptors(cubic_voigt(CU_C11, CU_C12, CU_C44), copper)
    bulk, shear = cubic_vrh(CU_C11, CU_C12, CU_C44)
    assert out['bulk_modulus_GPa'] == pytest.approx(bulk, rel=1e-10)
    assert out['shear_modulus_GPa'] == pytest.approx(shear, rel=1e-10)
    assert out['pugh_ratio'] == pytest.approx(shear / bulk, rel=1e-10)  # Pugh's kappa = G/B


def test_cu_bulk_modulus_and_poisson_ratio_match_textbook(copper):
    out = elastic_descriptors(cubic_voigt(CU_C11, CU_C12, CU_C44), copper)
    assert out['bulk_modulus_GPa'] == pytest.approx(CU_BULK_TEXTBOOK_GPA, rel=0.01)
    assert out['poisson_ratio'] == pytest.approx(CU_POISSON_TEXTBOOK, abs=0.01)


def test_sound_velocities_match_density_from_mass_and_volume(copper):
    out = elastic_descriptors(cubic_voigt(CU_C11, CU_C12, CU_C44), copper)
    bulk, shear = cubic_vrh(CU_C11, CU_C12, CU_C44)
    rho = 4 * CU_MASS_AMU * AMU_KG / (CU_A * 1e-10) ** 3  # kg/m^3, ~8.93e3 for Cu
    assert rho == pytest.approx(8.93e3, rel=0.01)
    v_l = np.sqrt((bulk + 4 * shear / 3) * 1e9 / rho)
    v_t = np.sqrt(shear * 1e9 / rho)
    assert out['v_longitudinal_m_s'] == pytest.approx(v_l, rel=2e-4)
    assert out['v_transverse_m_s'] == pytest.approx(v_t, rel=2e-4)
    assert out['velocity_ratio'] == pytest.approx(v_l / v_t, rel=2e-4)
    v_avg = (((2 / v_t**3) + (1 / v_l**3)) / 3) ** (-1 / 3)
    assert out['v_average_m_s'] == pytest.approx(v_avg, rel=2e-4)
    # Debye mean lies between v_t and v_l, closer to v_t
    assert v_t < out['v_average_m_s'] < (v_t + v_l) / 2


def test_isotropic_identities(copper):
    out = elastic_descriptors(cubic_voigt(CU_C11, CU_C12, CU_C44), copper)
    g, nu = out['shear_modulus_GPa'], out['poisson_ratio']
    assert out['young_modulus_GPa'] == pytest.approx(2 * g * (1 + nu), rel=1e-10)
    assert out['young_modulus_GPa'] == pytest.approx(3 * out['bulk_modulus_GPa'] * (1 - 2 * nu), rel=1e-10)
    assert out['lame_lambda_GPa'] + 2 * g == pytest.approx(out['p_wave_modulus_GPa'], rel=1e-10)
    assert out['lame_lambda_GPa'] == pytest.approx(2 * g * nu / (1 - 2 * nu), rel=1e-10)
    # rho v_l^2 = P-wave modulus, rho v_t^2 = G
    assert out['velocity_ratio'] ** 2 == pytest.approx(out['p_wave_modulus_GPa'] / g, rel=1e-3)


def test_isotropic_tensor_returns_its_own_moduli(copper):
    bulk, shear = 80.0, 30.0
    out = elastic_descriptors(isotropic_voigt(bulk, shear), copper)
    assert out['bulk_modulus_GPa'] == pytest.approx(bulk, rel=1e-10)
    assert out['shear_modulus_GPa'] == pytest.approx(shear, rel=1e-10)
    # for an isotropic solid C12 = lambda and C44 = G, so P_C = lambda - G
    assert out['lame_lambda_GPa'] == pytest.approx(bulk - 2 * shear / 3, rel=1e-10)
    assert out['cauchy_pressure_GPa'] == pytest.approx(bulk - 2 * shear / 3 - shear, rel=1e-10)


def test_vickers_hardness_chen_model_for_diamond(copper):
    # Chen et al., Intermetallics 19, 1275 (2011): diamond with K = 442 GPa, G = 535 GPa; the model gives
    # ~95.7 GPa against an experimental Vickers hardness of ~96 GPa.
    bulk, shear = 442.0, 535.0
    out = elastic_descriptors(isotropic_voigt(bulk, shear), copper)
    k = shear / bulk
    assert out['vickers_hardness_GPa'] == pytest.approx(2 * (k**2 * shear) ** 0.585 - 3, rel=1e-10)
    assert out['vickers_hardness_GPa'] == pytest.approx(96.0, abs=3.0)


def test_pugh_ratio_is_g_over_b_as_pymatgen_computes_it(li3n):
    """kappa = G_VRH/K_VRH of pymatgen's ElasticTensor on the same (anisotropic) tensor."""
    from pymatgen.analysis.elasticity import ElasticTensor

    ref = ElasticTensor.from_voigt(ORTHO)
    out = elastic_descriptors(ORTHO, li3n)
    assert out['pugh_ratio'] == pytest.approx(ref.g_vrh / ref.k_vrh, rel=1e-12)
    assert out['pugh_ratio'] < 1  # G < K for this tensor: K/G would be above 1


def test_pugh_ratio_falls_where_poisson_and_velocity_ratios_rise(copper):
    """The paper's signs (Li-based SSEs: c_S(D, nu) = +55 %, c_S(D, v_r) = +56 %, c_S(D, kappa) = -56 %)
    need kappa to be anti-monotonic in nu and v_r: over isotropic solids with K/G from 0.9 to 10,
    Spearman(kappa, nu) = Spearman(kappa, v_r) = -1."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(7)
    bulk = rng.uniform(20.0, 200.0, 12)
    shear = bulk / rng.uniform(0.9, 10.0, 12)
    rows = [elastic_descriptors(isotropic_voigt(k, g), copper) for k, g in zip(bulk, shear, strict=True)]
    kappa = [r['pugh_ratio'] for r in rows]
    np.testing.assert_allclose(kappa, shear / bulk, rtol=1e-10)
    assert spearmanr(kappa, [r['poisson_ratio'] for r in rows]).statistic == pytest.approx(-1.0)
    assert spearmanr(kappa, [r['velocity_ratio'] for r in rows]).statistic == pytest.approx(-1.0)
    # the Vickers model keeps k = G/K = kappa: H_V = 2 (kappa^2 G)^0.585 - 3
    for r in rows:
        expected = 2 * (r['pugh_ratio'] ** 2 * r['shear_modulus_GPa']) ** 0.585 - 3
        assert r['vickers_hardness_GPa'] == pytest.approx(expected, rel=1e-10)


def test_cauchy_pressure_cubic(copper):
    out = elastic_descriptors(cubic_voigt(CU_C11, CU_C12, CU_C44), copper)
    assert out['cauchy_pressure_GPa'] == pytest.approx(CU_C12 - CU_C44)


# An orthorhombic, positive-definite stiffness matrix (GPa) with all nine independent constants distinct.
ORTHO = np.array(
    [
        [120.0, 40.0, 30.0, 0, 0, 0],
        [40.0, 100.0, 35.0, 0, 0, 0],
        [30.0, 35.0, 80.0, 0, 0, 0],
        [0, 0, 0, 25.0, 0, 0],
        [0, 0, 0, 0, 30.0, 0],
        [0, 0, 0, 0, 0, 45.0],
    ]
)


def voigt_reuss_from_compliance(c: np.ndarray) -> tuple[float, float]:
    """VRH K and G from the Voigt bounds (C) and the Reuss bounds (S = C^-1), written out explicitly."""
    s = np.linalg.inv(c)
    k_v = (c[0, 0] + c[1, 1] + c[2, 2] + 2 * (c[0, 1] + c[0, 2] + c[1, 2])) / 9
    g_v = (
        c[0, 0] + c[1, 1] + c[2, 2] - (c[0, 1] + c[0, 2] + c[1, 2]) + 3 * (c[3, 3] + c[4, 4] + c[5, 5])
    ) / 15
    k_r = 1 / (s[0, 0] + s[1, 1] + s[2, 2] + 2 * (s[0, 1] + s[0, 2] + s[1, 2]))
    g_r = 15 / (
        4 * (s[0, 0] + s[1, 1] + s[2, 2])
        - 4 * (s[0, 1] + s[0, 2] + s[1, 2])
        + 3 * (s[3, 3] + s[4, 4] + s[5, 5])
    )
    return (k_v + k_r) / 2, (g_v + g_r) / 2


def test_orthorhombic_vrh_against_compliance_formulas(li3n):
    out = elastic_descriptors(ORTHO, li3n)
    bulk, shear = voigt_reuss_from_compliance(ORTHO)
    assert out['bulk_modulus_GPa'] == pytest.approx(bulk, rel=1e-10)
    assert out['shear_modulus_GPa'] == pytest.approx(shear, rel=1e-10)
    expected_pc = ((40.0 - 45.0) + (30.0 - 30.0) + (35.0 - 25.0)) / 3
    assert out['cauchy_pressure_GPa'] == pytest.approx(expected_pc)


def test_hexagonal_vrh_against_compliance_formulas(li3n):
    c11, c12, c13, c33, c44 = 110.0, 30.0, 20.0, 140.0, 35.0
    c = np.zeros((6, 6))
    c[0, 0] = c[1, 1] = c11
    c[2, 2] = c33
    c[0, 1] = c[1, 0] = c12
    c[0, 2] = c[2, 0] = c[1, 2] = c[2, 1] = c13
    c[3, 3] = c[4, 4] = c44
    c[5, 5] = (c11 - c12) / 2
    out = elastic_descriptors(c, li3n)
    bulk, shear = voigt_reuss_from_compliance(c)
    assert out['bulk_modulus_GPa'] == pytest.approx(bulk, rel=1e-10)
    assert out['shear_modulus_GPa'] == pytest.approx(shear, rel=1e-10)
    # Voigt bound of K for hexagonal symmetry in closed form
    k_v = (2 * c11 + c33 + 2 * c12 + 4 * c13) / 9
    assert bulk < k_v  # Reuss < Voigt for an anisotropic crystal, so the Hill mean lies below K_V
    rho = (3 * 6.941 + 14.0067) * AMU_KG / (li3n.volume * 1e-30)
    assert out['v_transverse_m_s'] == pytest.approx(np.sqrt(shear * 1e9 / rho), rel=2e-4)


def test_full_tensor_input_equals_voigt_input(copper):
    c = cubic_voigt(CU_C11, CU_C12, CU_C44)
    voigt = {
        (0, 0): 0,
        (1, 1): 1,
        (2, 2): 2,
        (1, 2): 3,
        (2, 1): 3,
        (0, 2): 4,
        (2, 0): 4,
        (0, 1): 5,
        (1, 0): 5,
    }
    full = np.zeros((3, 3, 3, 3))
    for (i, j), a in voigt.items():
        for (k, m), b in voigt.items():
            full[i, j, k, m] = c[a, b]
    np.testing.assert_allclose(full_to_voigt(full), c)
    assert elastic_descriptors(full, copper) == pytest.approx(elastic_descriptors(c, copper))


def test_ase_atoms_input(copper):
    from pymatgen.io.ase import AseAtomsAdaptor

    c = cubic_voigt(CU_C11, CU_C12, CU_C44)
    atoms = AseAtomsAdaptor.get_atoms(copper)
    assert elastic_descriptors(c, atoms) == pytest.approx(elastic_descriptors(c, copper))


def test_not_positive_definite_raises(copper):
    # cubic eigenvalues: C11 + 2 C12 = 170, C11 - C12 = -10 (twice), C44 = 20 (three times)
    with pytest.raises(
        MechanicalInstabilityError, match=r'not positive definite \(smallest eigenvalue -10 GPa\)'
    ):
        elastic_descriptors(cubic_voigt(50.0, 60.0, 20.0), copper)
    with pytest.raises(MechanicalInstabilityError, match='smallest eigenvalue -5'):
        elastic_descriptors(cubic_voigt(CU_C11, CU_C12, -5.0), copper)


@pytest.mark.parametrize(
    ('matrix', 'message'),
    [
        (np.ones((5, 5)), 'shape'),
        (np.ones((3, 3)), 'shape'),
        ('abc', 'numeric'),
    ],
)
def test_bad_shape_raises(copper, matrix, message):
    with pytest.raises(InputError, match=message):
        elastic_descriptors(matrix, copper)


def test_nan_and_asymmetric_raise(copper):
    c = cubic_voigt(CU_C11, CU_C12, CU_C44)
    bad = c.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match='NaN'):
        elastic_descriptors(bad, copper)
    bad = c.copy()
    bad[0, 1] += 20.0
    with pytest.raises(InputError, match='not symmetric'):
        elastic_descriptors(bad, copper)
    with pytest.raises(MechanicalInstabilityError):  # also an InputError subclass
        elastic_descriptors(np.zeros((6, 6)), copper)


def test_small_asymmetry_is_tolerated_and_symmetrised(copper):
    c = cubic_voigt(CU_C11, CU_C12, CU_C44)
    noisy = c.copy()
    noisy[0, 1] += 0.2
    noisy[1, 0] -= 0.2
    assert elastic_descriptors(noisy, copper) == pytest.approx(elastic_descriptors(c, copper))


def test_bad_structure_raises():
    with pytest.raises(InputError, match='pymatgen Structure'):
        elastic_descriptors(cubic_voigt(CU_C11, CU_C12, CU_C44), 'Cu')


def test_returns_exactly_the_documented_keys(copper):
    out = elastic_descriptors(cubic_voigt(CU_C11, CU_C12, CU_C44), copper)
    assert set(out) == {
        'lame_lambda_GPa',
        'bulk_modulus_GPa',
        'young_modulus_GPa',
        'shear_modulus_GPa',
        'poisson_ratio',
        'p_wave_modulus_GPa',
        'vickers_hardness_GPa',
        'pugh_ratio',
        'cauchy_pressure_GPa',
        'v_longitudinal_m_s',
        'v_transverse_m_s',
        'velocity_ratio',
        'v_average_m_s',
    }
    assert all(isinstance(v, float) for v in out.values())
