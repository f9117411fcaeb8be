"""VDOS and vibrational descriptors against analytic models and pymatgen's PhononDos."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import constants as sc
from scipy import integrate

from aiida_superionic.analysis import analyze_trajectory, dos_descriptors, normalise_dos
from aiida_superionic.analysis._common import H_MEV_FS, KB_MEV
from aiida_superionic.exceptions import InputError
from tests.synthetic import brownian, oscillators

MEV_TO_THZ = 1e-3 * sc.e / sc.h / 1e12


def _grid(e_max=100.0, n=20001):
    return np.linspace(0.0, e_max, n)


def _einstein_dos(e, e0, width=0.05):
    g = np.exp(-0.5 * ((e - e0) / width) ** 2)
    return normalise_dos(e, g)


def test_normalisation_is_three_modes_per_atom():
    e = _grid()
    g = normalise_dos(e, e**2 * (e < 40))
    assert np.sum(g[1:]) * (e[1] - e[0]) == pytest.approx(3.0)


def test_einstein_solid_matches_analytic_formulas():
    e0, temperature = 25.0, 300.0
    e = _grid()
    got = dos_descriptors(e, _einstein_dos(e, e0), temperature)
    x = e0 / (KB_MEV * temperature)
    n = 1 / np.expm1(x)
    assert got['mean_frequency_meV'] == pytest.approx(e0, rel=1e-4)
    assert got['mean_frequency_30meV'] == pytest.approx(e0, rel=1e-4)
    assert got['E_vib_meV_atom'] == pytest.approx(3 * e0 * (0.5 + n), rel=1e-4)
    assert got['C_v_kB_atom'] == pytest.approx(3 * x * x * np.exp(x) / np.expm1(x) ** 2, rel=1e-4)
    # F is a small difference of large terms here: compare on the scale of E_vib
    assert got['F_vib_meV_atom'] == pytest.approx(
        3 * KB_MEV * temperature * np.log(2 * np.sinh(x / 2)), abs=5e-3
    )
    assert got['S_vib_kB_atom'] == pytest.approx(
        3 * ((x / 2) / np.tanh(x / 2) - np.log(2 * np.sinh(x / 2))), rel=1e-4
    )
    # F = E - T S
    assert got['F_vib_meV_atom'] == pytest.approx(
        got['E_vib_meV_atom'] - temperature * KB_MEV * got['S_vib_kB_atom'], rel=1e-6
    )


def test_cutoff_30meV_only_sees_low_modes():
    e = _grid()
    g = normalise_dos(e, np.exp(-0.5 * ((e - 10) / 0.2) ** 2) + np.exp(-0.5 * ((e - 60) / 0.2) ** 2))
    got = dos_descriptors(e, g, 300.0)
    assert got['mean_frequency_meV'] == pytest.approx(35.0, rel=1e-3)
    assert got['mean_frequency_30meV'] == pytest.approx(10.0, rel=1e-3)


def test_classical_limit_heat_capacity_is_3kB():
    e = _grid()
    got = dos_descriptors(e, _einstein_dos(e, 30.0, width=3.0), 1e5)
    assert got['C_v_kB_atom'] == pytest.approx(3.0, abs=1e-3)


def test_debye_spectrum_gives_its_debye_temperature_and_heat_capacity():
    theta = 400.0
    e_d = KB_MEV * theta
    e = _grid(60.0, 60001)
    g = normalise_dos(e, np.where(e <= e_d, e * e, 0.0))
    temperature = 150.0
    got = dos_descriptors(e, g, temperature)
    assert got['debye_temperature_K'] == pytest.approx(theta, rel=1e-3)
    debye_integral = integrate.quad(lambda y: y**4 * np.exp(y) / np.expm1(y) ** 2, 0, theta / temperature)[0]
    assert got['C_v_kB_atom'] == pytest.approx(9 * (temperature / theta) ** 3 * debye_integral, rel=1e-3)


def test_thermodynamics_match_pymatgen_phonon_dos():
    """pymatgen's PhononDos (THz, J/mol-c) on the same DOS; one 'cell' = one atom here."""
    from pymatgen.phonon.dos import PhononDos

    e = _grid(80.0, 8001)
    g = normalise_dos(e, e**2 * np.exp(-e / 12.0) + 0.5 * np.exp(-0.5 * ((e - 45) / 3) ** 2))
    freqs_thz = e * MEV_TO_THZ
    dens = g / MEV_TO_THZ  # states per THz
    dos = PhononDos(freqs_thz, dens)
    temperature = 450.0
    ours = dos_descriptors(e, g, temperature)
    r = sc.R
    mev_per_mol = sc.e * 1e-3 * sc.Avogadro
    assert ours['C_v_kB_atom'] == pytest.approx(dos.cv(temperature) / r, rel=2e-3)
    assert ours['S_vib_kB_atom'] == pytest.approx(dos.entropy(temperature) / r, rel=2e-3)
    assert ours['E_vib_meV_atom'] == pytest.approx(dos.internal_energy(temperature) / mev_per_mol, rel=2e-3)
    assert ours['F_vib_meV_atom'] == pytest.approx(
        dos.helmholtz_free_energy(temperature) / mev_per_mol, rel=2e-3
    )


def test_vdos_of_harmonic_framework_peaks_at_its_frequency(rng):
    """Framework atoms oscillating at 20 meV: <ω> of the non-diffusive VDOS is 20 meV."""
    dt, n_frames, box = 1.0, 4000, 10.0
    sites = rng.uniform(0, box, size=(24, 3))
    frame = oscillators(rng, n_frames, sites, 20.0, 0.08, dt)
    mobile = brownian(rng, n_frames, 8, 1e-4, dt, box)
    positions = np.concatenate([mobile, frame], axis=1) % box
    result = analyze_trajectory(positions, np.eye(3) * box, ['Na'] * 8 + ['Cl'] * 24, dt, 300.0)
    nd = result['vibrational']['non_diffusive']
    assert nd['mean_frequency_meV'] == pytest.approx(20.0, rel=0.02)
    assert nd['mean_frequency_30meV'] == pytest.approx(20.0, rel=0.02)
    x = 20.0 / (KB_MEV * 300.0)
    assert nd['C_v_kB_atom'] == pytest.approx(3 * x * x * np.exp(x) / np.expm1(x) ** 2, rel=0.01)
    assert result['mobile_species'] == 'Na'
    # Brownian paths have a white velocity spectrum, wider than any frame spacing resolves: only the
    # groups holding the mobile ions are flagged as folded back, never the harmonic framework
    assert len(result['warnings']) == 1 and 'VDOS of the all, diffusive ions' in result['warnings'][0]


def test_given_velocities_are_used_and_agree_with_finite_differences(rng):
    dt, n_frames, box = 0.5, 4000, 10.0
    sites = rng.uniform(0, box, size=(12, 3))
    energy = 30.0
    f = energy / H_MEV_FS
    t = np.arange(n_frames)[:, None, None] * dt
    phase = rng.uniform(0, 2 * np.pi, size=(1, 12, 3))
    positions = sites[None] + 0.05 * np.sin(2 * np.pi * f * t + phase)
    velocities = 0.05 * 2 * np.pi * f * np.cos(2 * np.pi * f * t + phase)
    symbols = ['Li'] * 4 + ['O'] * 8
    a = analyze_trajectory(positions, np.eye(3) * box, symbols, dt, 300.0, velocities=velocities)
    b = analyze_trajectory(positions, np.eye(3) * box, symbols, dt, 300.0)
    for group in ('all', 'diffusive', 'non_diffusive'):
        assert a['vibrational'][group]['mean_frequency_meV'] == pytest.approx(energy, rel=0.01)
        assert b['vibrational'][group]['mean_frequency_meV'] == pytest.approx(energy, rel=0.02)


def test_mass_weighting_gives_each_atom_three_modes(rng):
    """Two species in equipartition at different frequencies: mass weighting counts atoms equally."""
    dt, n_frames, box = 1.0, 4000, 12.0
    light = oscillators(rng, n_frames, rng.uniform(0, box, (10, 3)), 50.0, 0.1, dt)  # Li, 6.94 amu
    # equipartition: m ω² A² equal -> A_heavy = A_light * sqrt(m_l/m_h) * ω_l/ω_h
    amp = 0.1 * np.sqrt(6.94 / 126.904) * 50.0 / 10.0
    heavy = oscillators(rng, n_frames, rng.uniform(0, box, (30, 3)), 10.0, amp, dt)  # I
    positions = np.concatenate([light, heavy], axis=1)
    symbols = ['Li'] * 10 + ['I'] * 30
    weighted = analyze_trajectory(positions, np.eye(3) * box, symbols, dt, 300.0, vdos_weighting='mass')
    assert weighted['vibrational']['all']['mean_frequency_meV'] == pytest.approx(
        (10 * 50 + 30 * 10) / 40, rel=0.01
    )
    assert weighted['vdos_weighting'] == 'mass'


#: Standard atomic weights (IUPAC), amu, and 1 amu Å²/fs² in meV: independent of the code's mass table.
M_LI, M_I = 6.94, 126.90447
AMU_A2_FS2_MEV = sc.atomic_mass * 1e-20 / 1e-30 / sc.e * 1e3


def _einstein_cv(energy, temperature):
    x = energy / (KB_MEV * temperature)
    return 3 * x * x * np.exp(x) / np.expm1(x) ** 2


def test_eq5_default_is_unweighted_each_species_counts_with_its_velocity_variance(rng):
    """Eq 5 sums <v_i(τ)·v_i(0)> over ions with weight 1: in equilibrium each ion contributes its
    <v²> = 3 k_B T / m, so a light species at 50 meV and a heavy one at 10 meV give
    <ω> = Σ_s N_s ω_s / m_s / Σ_s N_s / m_s (by hand: 44.4 meV), not the mass-weighted mean (20 meV)."""
    dt, n_frames, box, temperature = 1.0, 4000, 12.0, 300.0
    kt = KB_MEV * temperature

    def amplitude(energy, mass):  # classical equipartition per direction: m ω² A² / 2 = k_B T
        omega = 2 * np.pi * energy / H_MEV_FS  # rad/fs
        return np.sqrt(2 * kt / (mass * AMU_A2_FS2_MEV)) / omega

    light = oscillators(rng, n_frames, rng.uniform(0, box, (10, 3)), 50.0, amplitude(50.0, M_LI), dt)
    heavy = oscillators(rng, n_frames, rng.uniform(0, box, (30, 3)), 10.0, amplitude(10.0, M_I), dt)
    positions = np.concatenate([light, heavy], axis=1)
    symbols = ['Li'] * 10 + ['I'] * 30
    result = analyze_trajectory(positions, np.eye(3) * box, symbols, dt, temperature)
    w_li, w_i = 10 / M_LI, 30 / M_I  # share of each species in Σ_i <v_i²>
    p_li = w_li / (w_li + w_i)
    vib = result['vibrational']
    assert vib['all']['mean_frequency_meV'] == pytest.approx(p_li * 50.0 + (1 - p_li) * 10.0, rel=0.01)
    assert vib['all']['C_v_kB_atom'] == pytest.approx(
        p_li * _einstein_cv(50.0, temperature) + (1 - p_li) * _einstein_cv(10.0, temperature), rel=0.01
    )
    # one species per group: the weighting does not matter there
    assert vib['diffusive']['mean_frequency_meV'] == pytest.approx(50.0, rel=0.01)
    assert vib['non_diffusive']['mean_frequency_meV'] == pytest.approx(10.0, rel=0.01)
    mass = analyze_trajectory(positions, np.eye(3) * box, symbols, dt, temperature, vdos_weighting='mass')
    assert mass['vibrational']['all']['mean_frequency_meV'] == pytest.approx(20.0, rel=0.01)
    assert mass['vibrational']['diffusive'] == pytest.approx(vib['diffusive'], rel=1e-5)
    assert result['vdos_weighting'] == 'none' and mass['vdos_weighting'] == 'mass'


@pytest.mark.parametrize('fraction_of_nyquist', [0.1, 0.5, 0.9, 0.99])
def test_difference_transfer_is_the_power_ratio_of_differenced_to_true_velocity(fraction_of_nyquist):
    """For x = sin(ωt) sampled every dt, (x(t+dt) - x(t))/dt has mean square [sin(ωdt/2)/(dt/2)]²/2 and
    the true velocity ω²/2 (measured here on the samples): their ratio is the transfer function."""
    from aiida_superionic.analysis.vibrational import difference_transfer

    dt = 15.0
    energy = fraction_of_nyquist * H_MEV_FS / (2 * dt)
    omega = 2 * np.pi * energy / H_MEV_FS
    t = (np.arange(200001) + 0.3) * dt
    v_fd = np.diff(np.sin(omega * t)) / dt
    ratio = np.mean(v_fd**2) / (omega**2 / 2)
    assert difference_transfer(np.array([energy]), dt)[0] == pytest.approx(ratio, rel=1e-3)
    # at the Nyquist energy itself (where sampling no longer averages over phases): 4/π², no zero
    assert difference_transfer(np.array([H_MEV_FS / (2 * dt)]), dt)[0] == pytest.approx(
        4 / np.pi**2, rel=1e-12
    )


def _two_mode_run(rng, n_frames, dt, n_each=8):
    """Atoms at 10 meV and at 50 meV with equal velocity variance: g is half 10 meV, half 50 meV, so
    <ω> = 30 meV and <ω30> = 10 meV exactly. Returns positions, velocities (analytic)."""
    sites = rng.uniform(0, 10.0, (2 * n_each, 3))
    energy = np.repeat([10.0, 50.0], n_each)[None, :, None]
    amp = 0.1 * 10.0 / energy  # A ω equal for both modes
    omega = 2 * np.pi * energy / H_MEV_FS
    phase = rng.uniform(0, 2 * np.pi, size=(1, 2 * n_each, 3))
    t = np.arange(n_frames)[:, None, None] * dt
    return sites[None] + amp * np.sin(omega * t + phase), amp * omega * np.cos(omega * t + phase)


def test_vdos_from_positions_does_not_depend_on_the_frame_spacing(rng):
    """One harmonic run stored every MD step (1.5 fs) and every 10th (15 fs, VASP NBLOCK = 10): the
    finite-difference velocities see the spectrum through |H|², which the analysis divides out, so
    both give the same descriptors and the exact <ω> = 30 meV of the 10 + 50 meV spectrum.
    (Central differences at 15 fs damp the 50 meV mode by sinc²(ω dt) = 0.64: <ω> = 25.7 meV.)"""
    positions, velocities = _two_mode_run(rng, 20000, 1.5)
    symbols, cell, temperature = ['O'] * positions.shape[1], np.eye(3) * 10.0, 400.0
    fine = analyze_trajectory(positions, cell, symbols, 1.5, temperature, compute=['vibrational'])
    coarse = analyze_trajectory(positions[::10], cell, symbols, 15.0, temperature, compute=['vibrational'])
    given = analyze_trajectory(
        positions[::10],
        cell,
        symbols,
        15.0,
        temperature,
        velocities=velocities[::10],
        compute=['vibrational'],
    )
    a, b, c = (r['vibrational']['all'] for r in (fine, coarse, given))
    for key in ('mean_frequency_meV', 'mean_frequency_30meV', 'C_v_kB_atom', 'S_vib_kB_atom'):
        assert b[key] == pytest.approx(a[key], rel=0.01), key
        assert c[key] == pytest.approx(a[key], rel=0.01), key
    for r in (a, b, c):
        assert r['mean_frequency_meV'] == pytest.approx(30.0, rel=0.01)
        assert r['mean_frequency_30meV'] == pytest.approx(10.0, rel=0.01)
        cv = (_einstein_cv(10.0, temperature) + _einstein_cv(50.0, temperature)) / 2
        assert r['C_v_kB_atom'] == pytest.approx(cv, rel=0.01)
    assert coarse['vdos_velocities'] == 'forward_differences' and given['vdos_velocities'] == 'given'
    assert coarse['warnings'] == [] and fine['warnings'] == []


def test_modes_above_the_nyquist_energy_are_flagged(rng):
    """Frames 15 fs apart resolve up to 138 meV; a 130 meV mode sits at the edge of the spectrum, where
    faster modes fold back: the result warns and says what to do."""
    dt, n_frames = 15.0, 2000
    sites = rng.uniform(0, 10.0, (8, 3))
    slow = oscillators(rng, n_frames, sites, 20.0, 0.1, dt)
    fast = oscillators(rng, n_frames, sites, 130.0, 0.1 * 20.0 / 130.0, dt)
    result = analyze_trajectory(
        np.concatenate([slow, fast], axis=1), np.eye(3) * 10.0, ['O'] * 16, dt, 300.0, compute=['vibrational']
    )
    assert len(result['warnings']) == 1
    assert 'folded back' in result['warnings'][0] and 'store frames more often' in result['warnings'][0]
    assert 'smaller VASP NBLOCK' in result['warnings'][0]
    clean = analyze_trajectory(slow, np.eye(3) * 10.0, ['O'] * 8, dt, 300.0, compute=['vibrational'])
    assert clean['warnings'] == []


def test_static_framework_is_a_clear_error(rng):
    box = 10.0
    mobile = brownian(rng, 200, 4, 1e-4, 1.0, box)
    frame = np.repeat(rng.uniform(0, box, (1, 4, 3)), 200, axis=0)
    with pytest.raises(InputError, match='do not move'):
        analyze_trajectory(
            np.concatenate([mobile, frame], axis=1), np.eye(3) * box, ['Li'] * 4 + ['O'] * 4, 1.0, 300
        )
