"""Mean-squared displacement over all time origins and the paper's Einstein fit (eqs 3-4).

All functions take cartesian, *unwrapped* positions in Å and times in fs. They never hold more than
one chunk of atoms in float64 at once, so a 300-atom x 100k-frame trajectory stays within a few
hundred MB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft

from ..exceptions import InputError
from ._common import A2_PER_FS_TO_CM2_PER_S

#: The fewest frames for which the paper's fit window (tau_max/2 <= tau <= tau_max, tau_max = N/2)
#: holds at least three lag times.
MIN_FRAMES_FOR_FIT = 12


def msd_sum_fft_t(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Like :func:`msd_sum_fft` for time-last arrays ``x[..., t]`` (any leading shape), float64.

    Time-last is the fast layout: the FFT and the cumulative sums run over contiguous memory.
    """
    n = x.shape[-1]
    lags = np.arange(max_lag + 1)
    flat = x.reshape(-1, n)
    sq = np.einsum('it,it->t', flat, flat)  # sum over atoms and dims of |r_i(t)|^2
    cum = np.concatenate(([0.0], np.cumsum(sq)))  # cum[k] = sum_{t<k} sq[t]
    # sum_{t=0}^{n-m-1} |r(t)|^2 + sum_{t=m}^{n-1} |r(t)|^2
    s1 = cum[n - lags] + (cum[n] - cum[lags])
    # zero-padding to n + max_lag makes the circular correlation exact for lags <= max_lag
    nfft = fft.next_fast_len(n + max_lag, real=True)
    spec = fft.rfft(flat, n=nfft, axis=-1, workers=-1)
    power = np.einsum('if,if->f', spec.real, spec.real) + np.einsum('if,if->f', spec.imag, spec.imag)
    s2 = fft.irfft(power, n=nfft)[: max_lag + 1]
    return (s1 - 2.0 * s2) / (n - lags)


def msd_per_atom_fft_t(x: np.ndarray, max_lag: int) -> np.ndarray:
    """MSD over all time origins of each atom of time-last ``x[atom, dim, t]``, lags ``0..max_lag``.

    Same algorithm as :func:`msd_sum_fft_t` without the sum over atoms: returns (n_atoms, max_lag + 1),
    float64; the sum over atoms equals :func:`msd_sum_fft_t` to rounding.
    """
    n = x.shape[-1]
    lags = np.arange(max_lag + 1)
    sq = np.einsum('adt,adt->at', x, x)
    cum = np.zeros((len(sq), n + 1))
    np.cumsum(sq, axis=-1, out=cum[:, 1:])
    s1 = cum[:, n - lags] + (cum[:, n:] - cum[:, lags])
    nfft = fft.next_fast_len(n + max_lag, real=True)
    spec = fft.rfft(x, n=nfft, axis=-1, workers=-1)
    power = np.einsum('adf,adf->af', spec.real, spec.real) + np.einsum('adf,adf->af', spec.imag, spec.imag)
    del spec
    s2 = fft.irfft(power, n=nfft, axis=-1, workers=-1)[:, : max_lag + 1]
    return (s1 - 2.0 * s2) / (n - lags)


def msd_sum_fft(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sum over atoms of the MSD over all time origins, for lags ``0..max_lag`` (eq 3 without 1/N_ion).

    ``x`` has shape (n_frames, n_atoms, 3). The algorithm is the FFT one of Calandrini et al.
    (nMOLDYN): MSD(m) = S1(m) - 2 S2(m), with S2 the position autocorrelation computed by FFT
    (zero-padded to avoid circular wrap) and S1 from cumulative sums of ``|r|^2``. Cost O(N log N).
    """
    return msd_sum_fft_t(np.ascontiguousarray(np.moveaxis(np.asarray(x, dtype=float), 0, -1)), max_lag)


@dataclass(frozen=True)
class EinsteinFit:
    """Result of the linear fit MSD(tau) = a + 6 D tau over a lag window."""

    D_A2_fs: float
    intercept_A2: float
    window_fs: tuple[float, float]

    @property
    def D_cm2_s(self) -> float:
        return self.D_A2_fs * A2_PER_FS_TO_CM2_PER_S


def fit_window_lags(n_frames: int, dt_fs: float, window_fs: tuple[float, float] | None) -> tuple[int, int]:
    """Lag indices (first, last) of the fit window.

    Default: the paper's tau_max/2 <= tau <= tau_max with tau_max = N/2 frames.
    """
    max_lag = n_frames // 2
    if window_fs is None:
        return max(1, max_lag // 2), max_lag
    t0, t1 = window_fs
    if not (np.isfinite(t0) and np.isfinite(t1)) or t0 < 0 or t1 <= t0:
        raise InputError(f'fit window must satisfy 0 <= t0 < t1, got [{t0}, {t1}] fs')
    first = int(np.ceil(t0 / dt_fs - 1e-9))
    last = int(np.floor(t1 / dt_fs + 1e-9))
    if last > n_frames - 1:
        raise InputError(
            f'fit window ends at {t1 / 1000:g} ps but the trajectory only spans {(n_frames - 1) * dt_fs / 1000:g} ps'
        )
    if last - first < 2:
        raise InputError(f'fit window [{t0 / 1000:g}, {t1 / 1000:g}] ps holds fewer than 3 lag times')
    return first, last


def slope_weights(dt_fs: float, first: int, last: int) -> np.ndarray:
    """Weights w of the least-squares slope over lags ``first..last``: slope = w @ MSD[first:last + 1].

    The slope is linear in the data, so the slope of the mean MSD is the mean of the per-ion slopes.
    """
    tau = np.arange(first, last + 1) * dt_fs
    centred = tau - tau.mean()
    return centred / np.dot(centred, centred)


def per_ion_stderr(d_ion: np.ndarray) -> float:
    """Standard error of D = mean of the per-ion D_i (the paper's D, by linearity of the fit).

    ``std(D_i, ddof=1) / sqrt(N_ion)``: exact for independent ions whatever the run length or the
    shape of the MSD (ballistic, vibrational or diffusive). NaN with fewer than 2 ions.
    """
    d_ion = np.asarray(d_ion, dtype=float)
    if len(d_ion) < 2:
        return float('nan')
    return float(np.std(d_ion, ddof=1) / np.sqrt(len(d_ion)))


#: D is resolved from zero when D > RESOLVED_SIGMAS * sigma_D; else the record gives an upper bound
#: max(D, 0) + RESOLVED_SIGMAS * sigma_D (about 97.7 % one-sided for a Gaussian error).
RESOLVED_SIGMAS = 2.0


def resolve_D(D: float, sigma: float | None) -> tuple[bool, float | None]:
    """(resolved, upper bound) of a fitted D with standard error ``sigma`` (same units).

    Resolved: ``D > 2 sigma``; then the bound is None. Not resolved: the bound is
    ``max(D, 0) + 2 sigma``. Without a finite sigma (fewer than 2 mobile ions) nothing can be tested:
    a positive D counts as resolved, a D <= 0 is not resolved and has no bound (None).
    """
    if sigma is None or not np.isfinite(sigma):
        return bool(D > 0), None
    if D > RESOLVED_SIGMAS * sigma:
        return True, None
    return False, float(max(D, 0.0) + RESOLVED_SIGMAS * sigma)


def einstein_fit(msd: np.ndarray, dt_fs: float, first: int, last: int) -> EinsteinFit:
    """Least-squares line through MSD(tau) for lags ``first..last`` (inclusive); D = slope / 6 (eq 4)."""
    lags = np.arange(first, last + 1)
    tau = lags * dt_fs
    slope, intercept = np.polyfit(tau, msd[lags], 1)
    return EinsteinFit(D_A2_fs=slope / 6.0, intercept_A2=float(intercept), window_fs=(tau[0], tau[-1]))
