"""Vibrational density of states from velocities (eq 5) and the descriptors that follow from it.

Conventions (stated once, used everywhere):

* g(E) is a function of the phonon energy E = hbar*omega in meV, normalised to **3 modes per atom**
  (``integral g dE = 3``). The zero-frequency bin is left out of every integral, so the translational
  (diffusive) weight at E = 0 does not enter; with N frames it is 1/(2N) of the spectrum's range.
* The spectrum of a group of atoms is the FFT of the velocity autocorrelation of those atoms
  (Wiener-Khinchin: the summed power spectra of their Hann-tapered velocities). By default
  (``weighting='none'``) every atom enters with weight 1: eq 5 of the paper literally, so each atom
  contributes in proportion to its <v^2> = 3 k_B T / m (equipartition) and, after the normalisation to
  3 modes per atom, light atoms carry more than 3 modes each and heavy atoms fewer. ``weighting='mass'``
  weights each atom by its mass, so that every atom carries exactly 3 modes (for a harmonic crystal
  this is the phonon DOS).
* Velocities from positions are forward differences between frames, (x(t + dt) - x(t)) / dt: the
  average of the true velocity over dt, whose power is the true one times the transfer function
  [sin(omega dt/2) / (omega dt/2)]^2 (>= 4/pi^2 up to the Nyquist energy h/(2 dt)).
  :func:`position_power_sum_t` divides it out exactly, so frames stored every few MD steps give the
  spectrum of the true velocities (up to the Nyquist energy; modes above it are folded back, which no
  correction can undo).
* Thermodynamic functions are the quantum-harmonic (Bose-Einstein) ones, per atom:
  E_vib = int g (E/2 + E n(E)) dE, C_v = k_B int g x^2 e^x/(e^x-1)^2 dE,
  F_vib = k_B T int g ln(2 sinh(x/2)) dE, S_vib = k_B int g [x/2 coth(x/2) - ln(2 sinh(x/2))] dE,
  with x = E/(k_B T). E_vib and F_vib include the zero-point energy.
* <omega> is eq 6, <omega_30> eq 7 with the 30 meV cut-off, both in meV.
* theta_D is the moment Debye temperature theta_D = sqrt(5/3 <E^2>) / k_B (Grimvall's theta_D(2)),
  exact for a Debye spectrum g ~ E^2 and defined for any g.
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from ._common import H_MEV_FS, KB_MEV

#: The paper's cut-off for <omega_30>, meV.
CUTOFF_30_MEV = 30.0

#: Atom weights of the VDOS: ``'none'`` is eq 5 (every atom weight 1), ``'mass'`` weights atoms by mass.
VDOS_WEIGHTINGS = ('none', 'mass')

#: The default weighting everywhere descriptors are made: eq 5 of the paper.
DEFAULT_VDOS_WEIGHTING = 'none'


def vdos_nfft(n_frames: int) -> int:
    """FFT length of the velocity spectra (no zero-padding: the Hann taper already makes the record
    go to zero at both ends, and padding would only interpolate the energy grid)."""
    return fft.next_fast_len(n_frames, real=True)


def vdos_energies_meV(n_frames: int, dt_fs: float) -> np.ndarray:
    """Energy grid (meV) of the spectra from :func:`velocity_power_sum`: spacing h/(N dt)."""
    return fft.rfftfreq(vdos_nfft(n_frames), d=dt_fs) * H_MEV_FS


def nyquist_energy_meV(dt_fs: float) -> float:
    """The highest energy resolved by frames ``dt_fs`` apart, h / (2 dt), meV."""
    return H_MEV_FS / (2.0 * dt_fs)


def hann_taper(n_frames: int) -> np.ndarray:
    """The Hann taper applied to velocities before their FFT (non-zero at every frame)."""
    return np.hanning(n_frames + 2)[1:-1]


def _power_of_tapered(tapered: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    spec = fft.rfft(tapered, n=vdos_nfft(tapered.shape[-1]), axis=-1, workers=-1)
    per_atom = np.einsum('adf,adf->af', spec.real, spec.real) + np.einsum('adf,adf->af', spec.imag, spec.imag)
    per_atom = per_atom.astype(float)
    if weights is not None:
        return weights @ per_atom
    return per_atom.sum(axis=0)


def velocity_power_sum_t(v: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """:func:`velocity_power_sum` for time-last velocities ``v[atom, dim, t]`` (the fast layout).

    The FFT runs in single precision: the spectrum's relative error (~1e-6) is far below the
    statistical noise of any MD VDOS, and it halves the time and memory.
    """
    n = v.shape[-1]
    tapered = np.multiply(v, hann_taper(n).astype(np.float32), dtype=np.float32)
    return _power_of_tapered(tapered, weights)


def difference_transfer(energy_meV: np.ndarray, dt_fs: float) -> np.ndarray:
    """Power transfer function of the forward-difference velocity, ``np.sinc(E dt / h) ** 2``
    (normalised sinc, sinc(u) = sin(pi u) / (pi u)), i.e. [sin(omega dt/2) / (omega dt/2)]^2.

    (x(t + dt) - x(t)) / dt is the mean of the true velocity over [t, t + dt], i.e. the velocity
    convolved with a box of width dt, whose Fourier transform is sin(omega dt/2) / (omega dt/2). Its
    square falls from 1 at E = 0 to 4/pi^2 at the Nyquist energy h/(2 dt) and has no zero below it,
    so dividing it out is exact and well conditioned over the whole grid. (Central differences would
    give sinc^2(2 E dt / h), which vanishes at the Nyquist energy.)
    """
    return np.sinc(np.asarray(energy_meV, dtype=float) * dt_fs / H_MEV_FS) ** 2


def position_vdos_energies_meV(n_frames: int, dt_fs: float) -> np.ndarray:
    """Energy grid (meV) of :func:`position_power_sum_t` for ``n_frames`` positions: the n_frames - 1
    forward differences between them."""
    return vdos_energies_meV(n_frames - 1, dt_fs)


def position_power_sum_t(x: np.ndarray, dt_fs: float, weights: np.ndarray | None = None) -> np.ndarray:
    """:func:`velocity_power_sum_t` of the true velocities behind time-last positions ``x[atom, dim, t]``
    (Å), on the grid :func:`position_vdos_energies_meV`.

    The velocities are the n - 1 forward differences between consecutive frames, written straight into
    the tapered buffer; their power is then divided by :func:`difference_transfer`, which makes the
    spectrum independent of how many MD steps lie between stored frames (below the Nyquist energy).
    """
    n = x.shape[-1] - 1
    v = np.empty((*x.shape[:-1], n), dtype=np.float32)
    np.subtract(x[..., 1:], x[..., :-1], out=v, casting='same_kind')
    v *= (hann_taper(n) / dt_fs).astype(np.float32)
    power = _power_of_tapered(v, weights)
    return power / difference_transfer(position_vdos_energies_meV(n + 1, dt_fs), dt_fs)


def velocity_power_sum(v: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Sum over atoms (weighted) and directions of ``|FFT v_i(t)|^2`` for v of shape (n_frames, n_atoms, 3).

    The power spectrum is the Fourier transform of the velocity autocorrelation (Wiener-Khinchin), so
    this is eq 5 up to normalisation, with the correlation seen through the taper's window. The
    velocities are tapered with a Hann window first: an untapered finite record leaks power as 1/E^2
    far from each peak, which biases <omega> upwards by a few per cent (measured: 20.4 instead of
    20.0 meV for a pure 20 meV oscillator over 4 ps); the taper removes it.
    """
    return velocity_power_sum_t(np.moveaxis(np.asarray(v, dtype=float), 0, -1), weights)


def normalise_dos(energy_meV: np.ndarray, power: np.ndarray, modes: float = 3.0) -> np.ndarray:
    """Scale a spectrum so that its integral over E > 0 equals ``modes`` (3 per atom)."""
    de = energy_meV[1] - energy_meV[0]
    total = power[1:].sum() * de
    if not np.isfinite(total) or total <= 0:
        raise ValueError('the velocity spectrum is zero: the atoms do not move')
    g = power * (modes / total)
    g[0] = 0.0
    return g


def _bose_terms(energy_meV: np.ndarray, temperature_K: float) -> dict[str, np.ndarray]:
    x = energy_meV / (KB_MEV * temperature_K)
    # Overflow-safe forms: for large x, n -> 0, C_v -> 0, ln(2 sinh(x/2)) -> x/2.
    with np.errstate(over='ignore', invalid='ignore', divide='ignore'):
        n = 1.0 / np.expm1(x)
        em = np.exp(-x)
        cv = np.where(x < 700, x * x * em / (1.0 - em) ** 2, 0.0)
        ln2sinh = x / 2.0 + np.log1p(-em)
        s = x * (n + 0.5) - ln2sinh  # = x/2 coth(x/2) - ln(2 sinh(x/2))
    return {'x': x, 'n': np.nan_to_num(n), 'cv': cv, 'ln2sinh': ln2sinh, 's': s}


def dos_descriptors(energy_meV: np.ndarray, dos: np.ndarray, temperature_K: float) -> dict[str, float]:
    """Vibrational descriptors of a DOS g(E) on a uniform grid (meV), per atom.

    ``dos`` must be normalised to 3 modes per atom (see :func:`normalise_dos`); bins with E <= 0 are
    ignored. Returns mean_frequency_meV, mean_frequency_30meV, E_vib_meV_atom, C_v_kB_atom,
    F_vib_meV_atom, S_vib_kB_atom and debye_temperature_K.
    """
    e = np.asarray(energy_meV, dtype=float)
    g = np.asarray(dos, dtype=float)
    keep = e > 0
    e, g = e[keep], g[keep]
    de = np.gradient(e) if len(e) > 1 else np.ones_like(e)
    w = g * de
    norm = w.sum()
    cut = e <= CUTOFF_30_MEV
    t = _bose_terms(e, temperature_K)
    kt = KB_MEV * temperature_K
    mean_e2 = np.sum(w * e * e) / norm
    return {
        'mean_frequency_meV': float(np.sum(w * e) / norm),
        'mean_frequency_30meV': float(np.sum(w[cut] * e[cut]) / w[cut].sum())
        if w[cut].sum() > 0
        else float('nan'),
        'E_vib_meV_atom': float(np.sum(w * e * (0.5 + t['n']))),
        'C_v_kB_atom': float(np.sum(w * t['cv'])),
        'F_vib_meV_atom': float(kt * np.sum(w * t['ln2sinh'])),
        'S_vib_kB_atom': float(np.sum(w * t['s'])),
        'debye_temperature_K': float(np.sqrt(5.0 / 3.0 * mean_e2) / KB_MEV),
    }
