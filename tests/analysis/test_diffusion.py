"""MSD and D: exact algebra, synthetic Brownian ions with known D, and pymatgen-analysis-diffusion."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_superionic.analysis import analyze_trajectory, msd_sum_fft, unwrap
from aiida_superionic.analysis.diffusion import msd_per_atom_fft_t, resolve_D
from aiida_superionic.exceptions import InputError
from tests.synthetic import brownian

DT = 2.0  # fs between frames
D_TRUE_A2_FS = 1e-4  # = 1e-5 cm^2/s


def msd_direct(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Reference O(N^2) evaluation of eq 3 (mean over atoms and all time origins): the independent check of the FFT evaluation."""
    out = np.zeros(max_lag + 1)
    for m in range(1, max_lag + 1):
        d = x[m:] - x[:-m]
        out[m] = np.mean(np.sum(d * d, axis=-1))
    return out


def _brownian_system(rng, n_frames=3000, n_mobile=64, n_frame=16, box=12.0):
    mobile = brownian(rng, n_frames, n_mobile, D_TRUE_A2_FS, DT, box)
    sites = rng.uniform(0, box, size=(n_frame, 3))
    framework = sites[None] + rng.normal(scale=0.05, size=(n_frames, n_frame, 3))
    positions = np.concatenate([mobile, framework], axis=1)
    symbols = ['Li'] * n_mobile + ['O'] * n_frame
    return positions, np.eye(3) * box, symbols


def test_fft_msd_equals_direct_sum(rng):
    x = np.cumsum(rng.normal(size=(257, 5, 3)), axis=0)
    max_lag = 128
    fast = msd_sum_fft(x, max_lag) / x.shape[1]
    np.testing.assert_allclose(fast, msd_direct(x, max_lag), rtol=1e-10, atol=1e-10)


def test_unwrap_recovers_continuous_path(rng):
    box = 5.0
    path = brownian(rng, 500, 4, 0.05, 1.0, box)  # crosses the box many times
    assert np.ptp(path) > 3 * box
    wrapped = path % box
    recovered = unwrap(wrapped, np.eye(3) * box)
    np.testing.assert_allclose(recovered - recovered[0], path - path[0], atol=1e-9)
    # an already-unwrapped input comes back unchanged
    np.testing.assert_allclose(unwrap(path, np.eye(3) * box), path, atol=1e-9)


def test_unwrap_triclinic_cell(rng):
    cell = np.array([[6.0, 0.0, 0.0], [2.0, 5.5, 0.0], [1.0, 1.5, 7.0]])
    path = brownian(rng, 400, 3, 0.05, 1.0, 1.0)
    frac = path @ np.linalg.inv(cell)
    wrapped = (frac % 1.0) @ cell
    recovered = unwrap(wrapped, cell)
    np.testing.assert_allclose(recovered - recovered[0], path - path[0], atol=1e-9)


def test_brownian_D_is_recovered_within_its_uncertainty(rng):
    positions, cell, symbols = _brownian_system(rng, n_mobile=200)
    result = analyze_trajectory(positions % 12.0, cell, symbols, DT, 600.0)
    d = result['diffusion']
    assert d['n_mobile'] == 200
    assert d['fit_window_ps'] == pytest.approx([750 * DT / 1000, 1500 * DT / 1000])
    assert abs(d['D_cm2_s'] - 1e-5) < 3 * d['D_stderr_cm2_s']
    assert d['D_cm2_s'] == pytest.approx(1e-5, rel=0.12)
    assert 0 < d['D_stderr_cm2_s'] < 0.2e-5


def _spread_over_quoted(rng, runs, n_frames, n_mobile, rattle=0.0):
    """Spread of D over independent synthetic runs / the mean quoted error, and the mean D (cm²/s)."""
    values, errors = [], []
    for _ in range(runs):
        positions, cell, symbols = _brownian_system(rng, n_frames=n_frames, n_mobile=n_mobile, n_frame=8)
        # rattling in the cage: every frame adds an uncorrelated displacement of a few tenths of an Å,
        # so the MSD is not yet linear at short lags (like a short AIMD run)
        positions[:, :n_mobile] += rng.normal(scale=rattle, size=(n_frames, n_mobile, 3))
        d = analyze_trajectory(positions, cell, symbols, DT, 600.0, compute=['diffusion'])['diffusion']
        values.append(d['D_cm2_s'])
        errors.append(d['D_stderr_cm2_s'])
    return np.std(values, ddof=1) / np.mean(errors), np.mean(values)


def test_uncertainty_is_calibrated_on_a_short_run_with_few_rattling_ions(rng):
    """20 ions x 300 frames (a short AIMD run): the quoted error describes the scatter of D between
    independent runs. Consecutive blocks (the former estimator) quoted 3x the true scatter here."""
    ratio, mean = _spread_over_quoted(rng, runs=200, n_frames=300, n_mobile=20, rattle=0.3)
    assert 0.7 < ratio < 1.5, ratio
    assert mean == pytest.approx(1e-5, rel=0.05)


def test_uncertainty_is_calibrated_on_a_long_run(rng):
    ratio, mean = _spread_over_quoted(rng, runs=50, n_frames=3000, n_mobile=64)
    assert 0.7 < ratio < 1.5, ratio
    assert mean == pytest.approx(1e-5, rel=0.05)


def test_per_atom_msd_matches_direct_sum(rng):
    x = np.cumsum(rng.normal(size=(301, 4, 3)), axis=0)
    per_atom = msd_per_atom_fft_t(np.ascontiguousarray(np.moveaxis(x, 0, -1)), 150)
    for i in range(4):
        np.testing.assert_allclose(per_atom[i], msd_direct(x[:, i : i + 1], 150), rtol=1e-10, atol=1e-9)


def test_non_diffusing_ions_give_an_unresolved_D_with_an_upper_bound(rng):
    """Ions that only vibrate: the fitted D scatters about 0, is flagged as not resolved and bounded."""
    n_frames, n_mobile, box = 600, 20, 12.0
    sites = rng.uniform(0, box, size=(n_mobile, 3))
    mobile = sites[None] + rng.normal(scale=0.3, size=(n_frames, n_mobile, 3))
    framework = rng.uniform(0, box, size=(8, 3))[None] + rng.normal(scale=0.05, size=(n_frames, 8, 3))
    positions = np.concatenate([mobile, framework], axis=1)
    symbols = ['Li'] * n_mobile + ['O'] * 8
    result = analyze_trajectory(positions, np.eye(3) * box, symbols, DT, 600.0, compute=['diffusion'])
    d = result['diffusion']
    assert d['D_resolved'] is False
    sigma = d['D_stderr_cm2_s']
    assert abs(d['D_cm2_s']) < 3 * sigma  # consistent with zero
    assert d['D_upper_bound_cm2_s'] == pytest.approx(max(d['D_cm2_s'], 0.0) + 2 * sigma, rel=1e-12)
    assert any('not resolved' in w for w in result['warnings'])
    # a diffusing run is resolved and carries no bound
    positions, cell, symbols = _brownian_system(rng, n_frames=600, n_mobile=20, n_frame=8)
    d = analyze_trajectory(positions, cell, symbols, DT, 600.0, compute=['diffusion'])['diffusion']
    assert d['D_resolved'] is True and d['D_upper_bound_cm2_s'] is None


def test_resolve_rule():
    assert resolve_D(3.0, 1.0) == (True, None)
    assert resolve_D(1.5, 1.0) == (False, 3.5)
    assert resolve_D(-1.75, 3.4) == (False, pytest.approx(6.8))
    assert resolve_D(1.0, float('nan')) == (True, None)
    assert resolve_D(-1.0, float('nan')) == (False, None)


def test_wrapped_unwrapped_and_drifting_inputs_agree(rng):
    positions, cell, symbols = _brownian_system(rng, n_frames=800)
    reference = analyze_trajectory(positions, cell, symbols, DT, 600.0)['diffusion']['D_cm2_s']
    wrapped = analyze_trajectory(positions % 12.0, cell, symbols, DT, 600.0)['diffusion']['D_cm2_s']
    drift = np.arange(len(positions))[:, None, None] * np.array([0.01, -0.02, 0.005])  # whole cell drifts
    drifting = analyze_trajectory(positions + drift, cell, symbols, DT, 600.0)['diffusion']['D_cm2_s']
    assert wrapped == pytest.approx(reference, rel=1e-9)
    assert drifting == pytest.approx(reference, rel=1e-9)


def test_fit_window_override_and_errors(rng):
    positions, cell, symbols = _brownian_system(rng, n_frames=1000)
    d = analyze_trajectory(positions, cell, symbols, DT, 600.0, fit_window_ps=(0.2, 0.6))['diffusion']
    assert d['fit_window_ps'] == pytest.approx([0.2, 0.6])
    with pytest.raises(InputError, match='only spans'):
        analyze_trajectory(positions, cell, symbols, DT, 600.0, fit_window_ps=(0.2, 60.0))
    with pytest.raises(InputError, match='0 <= t0 < t1'):
        analyze_trajectory(positions, cell, symbols, DT, 600.0, fit_window_ps=(0.6, 0.2))


def _pymatgen_msd(positions, cell, symbols, mobile, dt=DT):
    from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer
    from pymatgen.core import Lattice, Structure

    unwrapped = unwrap(positions, cell)
    structure = Structure(Lattice(cell), symbols, positions[0], coords_are_cartesian=True)
    disp = np.transpose(unwrapped - unwrapped[0], (1, 0, 2))
    return DiffusionAnalyzer(structure, disp, mobile, 600, dt, 1, smoothed='max', min_obs=1)


def test_msd_and_D_match_pymatgen_diffusion_analyzer(rng):
    """Same trajectory, same window: our MSD(τ) and D equal pymatgen-analysis-diffusion's.

    Frames 20 fs apart, so that pymatgen's lag grid (from 1 ps on, every few frames) covers the
    paper's window (lags 300-600 of 1200 frames).
    """
    dt = 20.0
    positions, cell, symbols = _brownian_system(rng, n_frames=1200)
    ours = analyze_trajectory(positions % 12.0, cell, symbols, dt, 600.0, return_arrays=True)
    da = _pymatgen_msd(positions % 12.0, cell, symbols, 'Li', dt)
    lags = np.rint(da.dt / dt).astype(int)
    keep = lags < len(ours['arrays']['msd_A2'])
    np.testing.assert_allclose(ours['arrays']['msd_A2'][lags[keep]], da.msd[keep], rtol=1e-6)
    # D from pymatgen's MSD points inside the paper's window, fitted independently here
    sel = (lags >= 300) & (lags <= 600)
    assert sel.sum() > 30
    slope = np.polyfit(da.dt[sel], da.msd[sel], 1)[0]
    assert ours['diffusion']['D_cm2_s'] == pytest.approx(slope / 6 * 0.1, rel=0.02)


def test_real_argyrodite_xdatcar_matches_pymatgen(shared_md):
    """Real Li6PS5Cl AIMD (kinisi test file): our MSD against pymatgen on the same frames.

    The framework holds P, S and Cl: we remove the mass-weighted drift, pymatgen the plain average, so
    the curves agree to within that (small) difference.
    """
    from aiida_superionic.io import read_xdatcar

    dt = 100.0  # kinisi's example: 2 fs steps, 50 steps between frames (assumed; both sides use it)
    traj = read_xdatcar(shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz')
    ours = analyze_trajectory(traj.positions, traj.cell, traj.symbols, dt, 500.0, return_arrays=True)
    da = _pymatgen_msd(traj.positions.astype(float), traj.cell, traj.symbols, 'Li', dt)
    lags = np.rint(da.dt / dt).astype(int)
    keep = (lags > 0) & (lags < len(ours['arrays']['msd_A2']))
    np.testing.assert_allclose(ours['arrays']['msd_A2'][lags[keep]], da.msd[keep], rtol=0.03)
    assert ours['diffusion']['n_mobile'] == 192
    assert ours['diffusion']['D_cm2_s'] > 0


def test_real_argyrodite_error_equals_a_bootstrap_over_ions(shared_md):
    """Real Li6PS5Cl AIMD: D and its error against plain numpy (direct per-ion MSD over all origins,
    np.polyfit in the paper's window, drift of the framework removed) and a bootstrap over the Li ions."""
    from aiida_superionic.analysis._common import atomic_masses
    from aiida_superionic.io import read_xdatcar

    dt = 100.0
    traj = read_xdatcar(shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz')
    d = analyze_trajectory(traj.positions, traj.cell, traj.symbols, dt, 500.0, compute=['diffusion'])[
        'diffusion'
    ]
    x = unwrap(traj.positions.astype(float), traj.cell)
    symbols = np.array(traj.symbols)
    framework = x[:, symbols != 'Li']
    masses = atomic_masses(list(symbols[symbols != 'Li']))
    com = np.einsum('tad,a->td', framework, masses) / masses.sum()
    li = x[:, symbols == 'Li'] - (com - com[0])[:, None, :]
    n = len(li)
    lags = np.arange(n // 4, n // 2 + 1)
    msd_i = np.array(
        [[np.mean(np.sum((li[m:, i] - li[:-m, i]) ** 2, axis=-1)) for m in lags] for i in range(192)]
    )
    d_i = np.polyfit(lags * dt, msd_i.T, 1)[0] / 6 * 0.1  # Å²/fs -> cm²/s
    rng = np.random.default_rng(7)
    boot = [d_i[rng.integers(0, 192, 192)].mean() for _ in range(4000)]
    assert d['D_cm2_s'] == pytest.approx(d_i.mean(), rel=1e-9)
    assert d['D_stderr_cm2_s'] == pytest.approx(np.std(boot), rel=0.05)
    assert d['D_resolved'] is True and d['D_upper_bound_cm2_s'] is None


def test_too_few_frames_is_a_clear_error(rng):
    positions, cell, symbols = _brownian_system(rng, n_frames=5)
    with pytest.raises(InputError, match='too few frames to fit D: 5'):
        analyze_trajectory(positions, cell, symbols, DT, 600.0)
