"""Arrhenius fit of D(T) and the Nernst-Einstein conductivity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import constants as sc

from ..exceptions import InputError
from ._common import KB_EV


def nernst_einstein_conductivity(
    D_cm2_s: float, temperature_K: float, n_carriers_cm3: float, charge: float = 1.0
) -> float:
    """sigma = n q^2 D / (k_B T) in S/cm (Haven ratio 1; n in cm^-3, q = charge * e)."""
    q = charge * sc.e
    return float(n_carriers_cm3 * q * q * D_cm2_s / (sc.k * temperature_K))


def arrhenius(
    temperatures_K: Sequence[float],
    D_cm2_s: Sequence[float],
    D_err: Sequence[float] | None = None,
    *,
    n_carriers_cm3: float | None = None,
    charge: float = 1.0,
    T_ref_K: float = 300.0,
) -> dict[str, float | None]:
    """Fit ln D = ln D0 - E_a / (k_B T) and extrapolate to ``T_ref_K`` (300 K by default).

    With ``D_err`` (one standard error per point) the fit is weighted by D/D_err (the error of ln D)
    and the parameter covariance is taken as absolute; without it, the covariance is scaled by the
    residual variance, which needs at least 3 temperatures (with 2, uncertainties are NaN).
    The conductivity at ``T_ref_K`` follows from Nernst-Einstein when ``n_carriers_cm3`` (number
    density of mobile ions) is given. Returned errors are one standard deviation; the error of D0 and
    D(T_ref) are propagated through the exponential to first order.
    """
    t = np.asarray(temperatures_K, dtype=float)
    d = np.asarray(D_cm2_s, dtype=float)
    if t.ndim != 1 or t.shape != d.shape:
        raise InputError('temperatures and diffusion coefficients must be 1-D sequences of equal length')
    if len(t) < 2 or len(np.unique(t)) < 2:
        raise InputError(f'an Arrhenius fit needs at least 2 distinct temperatures, got {len(np.unique(t))}')
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise InputError('temperatures must be finite and > 0 K')
    if not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise InputError('an Arrhenius fit needs every D > 0 (a non-diffusing run has no activation energy)')
    x = 1.0 / t
    y = np.log(d)
    design = np.column_stack([np.ones_like(x), x])
    if D_err is not None:
        err = np.asarray(D_err, dtype=float)
        if err.shape != d.shape or not np.all(np.isfinite(err)) or np.any(err <= 0):
            raise InputError('D_err must hold one finite, positive error per temperature')
        w = (d / err) ** 2
    else:
        w = np.ones_like(d)
    xtwx = design.T @ (design * w[:, None])
    coef = np.linalg.solve(xtwx, design.T @ (w * y))
    resid = y - design @ coef
    dof = len(t) - 2
    if D_err is not None:
        cov = np.linalg.inv(xtwx)
    elif dof > 0:
        cov = np.linalg.inv(xtwx) * (resid @ resid) / dof
    else:
        cov = np.full((2, 2), np.nan)
    a, b = coef
    ea = -b * KB_EV
    xr = np.array([1.0, 1.0 / T_ref_K])
    ln_dref = float(xr @ coef)
    ln_dref_err = float(np.sqrt(xr @ cov @ xr))
    d_ref = float(np.exp(ln_dref))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    out: dict[str, float | None] = {
        'E_a_eV': float(ea),
        'E_a_err_eV': float(np.sqrt(cov[1, 1]) * KB_EV),
        'D0_cm2_s': float(np.exp(a)),
        'D0_err_cm2_s': float(np.exp(a) * np.sqrt(cov[0, 0])),
        'T_ref_K': float(T_ref_K),
        'D_ref_cm2_s': d_ref,
        'D_ref_err_cm2_s': d_ref * ln_dref_err,
        'r_squared': float(1.0 - (resid @ resid) / ss_tot) if ss_tot > 0 else float('nan'),
        'n_temperatures': len(t),
        'sigma_ref_S_cm': None,
        'sigma_ref_err_S_cm': None,
    }
    if n_carriers_cm3 is not None:
        if not np.isfinite(n_carriers_cm3) or n_carriers_cm3 <= 0:
            raise InputError('n_carriers_cm3 must be a finite, positive number density')
        sigma = nernst_einstein_conductivity(d_ref, T_ref_K, n_carriers_cm3, charge)
        out['sigma_ref_S_cm'] = sigma
        out['sigma_ref_err_S_cm'] = sigma * ln_dref_err
    return out
