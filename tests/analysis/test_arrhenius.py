"""Arrhenius fit and Nernst-Einstein conductivity against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import constants as sc

from aiida_superionic.analysis import arrhenius, nernst_einstein_conductivity
from aiida_superionic.exceptions import InputError

KB = sc.k / sc.e


def test_exact_arrhenius_data_give_exact_parameters():
    t = np.array([500.0, 700.0, 900.0, 1200.0])
    ea, d0 = 0.25, 3e-3
    d = d0 * np.exp(-ea / (KB * t))
    out = arrhenius(t, d)
    assert out['E_a_eV'] == pytest.approx(ea, rel=1e-10)
    assert out['D0_cm2_s'] == pytest.approx(d0, rel=1e-9)
    assert out['D_ref_cm2_s'] == pytest.approx(d0 * np.exp(-ea / (KB * 300)), rel=1e-9)
    assert out['E_a_err_eV'] == pytest.approx(0.0, abs=1e-9)
    assert out['r_squared'] == pytest.approx(1.0)


def test_errors_are_calibrated_on_noisy_data():
    """Over many noisy data sets, the quoted E_a error matches the scatter of E_a."""
    rng = np.random.default_rng(7)
    t = np.array([400.0, 600.0, 800.0, 1000.0, 1300.0])
    ea, d0, rel = 0.3, 1e-3, 0.15
    truth = d0 * np.exp(-ea / (KB * t))
    fits = [arrhenius(t, truth * np.exp(rng.normal(scale=rel, size=t.size)), truth * rel) for _ in range(400)]
    values = np.array([f['E_a_eV'] for f in fits])
    quoted = np.mean([f['E_a_err_eV'] for f in fits])
    assert np.mean(values) == pytest.approx(ea, abs=3 * quoted / np.sqrt(len(fits)) + 1e-3)
    assert np.std(values) / quoted == pytest.approx(1.0, abs=0.15)


def test_nernst_einstein_conductivity():
    # Li in Li7La3Zr2O12-like density: n = 56 Li in a 2,150 Å^3 cell
    n = 56 / 2150e-24
    d = 1e-8
    expected = n * sc.e**2 * d / (sc.k * 300.0)
    assert nernst_einstein_conductivity(d, 300.0, n) == pytest.approx(expected)
    t = np.array([600.0, 800.0, 1000.0])
    out = arrhenius(t, 1e-3 * np.exp(-0.3 / (KB * t)), n_carriers_cm3=n, charge=1)
    assert out['sigma_ref_S_cm'] == pytest.approx(n * sc.e**2 * out['D_ref_cm2_s'] / (sc.k * 300.0))
    assert out['sigma_ref_err_S_cm'] is not None


@pytest.mark.parametrize(
    ('t', 'd', 'message'),
    [
        ([600.0], [1e-5], 'at least 2 distinct'),
        ([600.0, 600.0], [1e-5, 2e-5], 'at least 2 distinct'),
        ([600.0, -800.0], [1e-5, 2e-5], 'finite and > 0'),
        ([600.0, 800.0], [1e-5, 0.0], 'every D > 0'),
        ([600.0, 800.0], [1e-5], 'equal length'),
    ],
)
def test_bad_input(t, d, message):
    with pytest.raises(InputError, match=message):
        arrhenius(t, d)


def test_two_points_have_no_error_without_D_err():
    out = arrhenius([600.0, 900.0], [1e-6, 1e-5])
    assert np.isnan(out['E_a_err_eV'])
    out = arrhenius([600.0, 900.0], [1e-6, 1e-5], [1e-7, 1e-6])
    assert np.isfinite(out['E_a_err_eV'])
