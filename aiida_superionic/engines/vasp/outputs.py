"""Readers of VASP output files for what aiida-vasp's parser does not give in the contract's form.

Pure functions on paths (plain or gzip-compressed files), no AiiDA: the elastic tensor of an IBRION=6
run (OUTCAR), the Γ modes of a DFPT / finite-difference run (vasprun.xml ``<dynmat>``), ε∞ and Born
charges of a LEPSILON run (OUTCAR), the band gap of a static run (vasprun.xml) and the velocities of a
CONTCAR (for MD restarts). Each raises :class:`VaspOutputError` with one line saying what is missing.
"""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ...exceptions import InputError

#: sqrt(eV / Å² / amu) in THz (as phonopy's ``VaspToTHz``): f = sqrt(-eigenvalue) * VASP_TO_THZ.
VASP_TO_THZ = 15.633302
#: h in meV / THz.
THZ_TO_MEV = 4.135667696
#: kBar in GPa.
KBAR_TO_GPA = 0.1
#: VASP orders the strain/stress components XX YY ZZ XY YZ ZX; Voigt is xx yy zz yz xz xy.
VASP_TO_VOIGT = [0, 1, 2, 4, 5, 3]


class VaspOutputError(InputError):
    """A VASP output file lacks what was asked of it (a crashed run, the wrong kind of run)."""


def _text(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise VaspOutputError(f'{path}: no such file')
    raw = path.read_bytes()
    if raw[:2] == b'\x1f\x8b':
        raw = gzip.decompress(raw)
    return raw.decode('utf-8', errors='replace')


def _xml_root(path: str | Path) -> ET.Element:
    try:
        return ET.fromstring(_text(path))
    except ET.ParseError as exc:
        raise VaspOutputError(
            f'{Path(path).name}: not a complete vasprun.xml ({exc}); the run crashed'
        ) from None


def read_elastic_moduli(outcar: str | Path) -> np.ndarray:
    """The last ``TOTAL ELASTIC MODULI (kBar)`` table of an IBRION=6, ISIF>=3 OUTCAR, as a 6x6 array in
    GPa and Voigt order (xx, yy, zz, yz, xz, xy). It includes the ionic-relaxation contribution."""
    text = _text(outcar)
    starts = [m.end() for m in re.finditer(r'TOTAL ELASTIC MODULI \(kBar\)', text)]
    if not starts:
        raise VaspOutputError(
            f'{Path(outcar).name}: no "TOTAL ELASTIC MODULI" table (not a finished IBRION=6, ISIF=3 run)'
        )
    lines = text[starts[-1] :].splitlines()[1:12]
    rows = []
    for line in lines:
        parts = line.split()
        if len(parts) == 7 and parts[0] in ('XX', 'YY', 'ZZ', 'XY', 'YZ', 'ZX'):
            rows.append([float(x) for x in parts[1:]])
    if len(rows) != 6:
        raise VaspOutputError(f'{Path(outcar).name}: the TOTAL ELASTIC MODULI table is incomplete')
    vasp = np.array(rows) * KBAR_TO_GPA
    return vasp[np.ix_(VASP_TO_VOIGT, VASP_TO_VOIGT)]


def read_dynmat_eigenvalues(vasprun: str | Path) -> np.ndarray:
    """The eigenvalues of the mass-weighted Hessian (``<dynmat>``) of an IBRION=5-8 vasprun.xml, in VASP's
    units (eV/Å²/amu, negative for a stable mode)."""
    root = _xml_root(vasprun)
    node = root.find('.//dynmat/v[@name="eigenvalues"]')
    if node is None or not node.text:
        raise VaspOutputError(f'{Path(vasprun).name}: no <dynmat> eigenvalues (not an IBRION=5-8 run)')
    return np.array([float(x) for x in node.text.split()])


def gamma_modes_meV(eigenvalues: np.ndarray) -> dict[str, object]:
    """Γ frequencies in meV (imaginary modes as negative numbers), sorted, and the lowest optical one.

    The three modes closest to zero are the acoustic ones (translations); the lowest of the others is
    the paper's "lowest optical Γ mode"."""
    ev = np.asarray(eigenvalues, dtype=float)
    if ev.size < 4:
        raise VaspOutputError(f'{ev.size} Γ modes: need at least 2 atoms (4 modes) for an optical mode')
    freqs = np.sign(-ev) * np.sqrt(np.abs(ev)) * VASP_TO_THZ * THZ_TO_MEV
    order = np.argsort(freqs)
    freqs = freqs[order]
    acoustic = np.argsort(np.abs(freqs))[:3]
    optical = np.delete(freqs, acoustic)
    return {
        'frequencies_meV': [float(f) for f in freqs],
        'gamma_mode_meV': float(optical.min()),
        'acoustic_meV': [float(freqs[i]) for i in sorted(acoustic)],
        'n_imaginary_optical': int((optical < 0).sum()),
    }


def _last_block(text: str, header: str, n_lines: int) -> list[str]:
    starts = [m.end() for m in re.finditer(re.escape(header), text)]
    if not starts:
        return []
    return text[starts[-1] :].splitlines()[1 : 1 + n_lines]


def read_lepsilon(outcar: str | Path) -> dict[str, np.ndarray]:
    """ε∞ (3x3, the electronic ``MACROSCOPIC STATIC DIELECTRIC TENSOR (including local field effects in
    DFT)``) and Born effective charges (n_atoms x 3 x 3, e) of a LEPSILON=.TRUE. OUTCAR."""
    text = _text(outcar)
    name = Path(outcar).name
    block = _last_block(
        text, 'MACROSCOPIC STATIC DIELECTRIC TENSOR (including local field effects in DFT)', 5
    )
    rows = [line.split() for line in block[1:4]]
    if len(rows) != 3 or any(len(r) != 3 for r in rows):
        raise VaspOutputError(f'{name}: no dielectric tensor (not a finished LEPSILON=.TRUE. run)')
    epsilon = np.array(rows, dtype=float)
    starts = [
        m.end() for m in re.finditer(re.escape('BORN EFFECTIVE CHARGES (in e, cummulative output)'), text)
    ]
    if not starts:
        raise VaspOutputError(f'{name}: no Born effective charges (not a finished LEPSILON=.TRUE. run)')
    charges: list[list[list[float]]] = []
    for line in text[starts[-1] :].splitlines()[2:]:
        parts = line.split()
        if len(parts) == 2 and parts[0] == 'ion':
            charges.append([])
        elif len(parts) == 4 and charges and parts[0] in ('1', '2', '3'):
            charges[-1].append([float(x) for x in parts[1:]])
        else:
            break
    if not charges or any(len(c) != 3 for c in charges):
        raise VaspOutputError(f'{name}: the Born effective charges are incomplete')
    return {'epsilon_inf': epsilon, 'born_charges': np.array(charges)}


def read_band_gap(vasprun: str | Path, occupation_tol: float = 1e-8) -> dict[str, float | bool]:
    """Band gap of a static run from the Kohn-Sham eigenvalues and occupations of vasprun.xml: the
    lowest empty level (occupation <= ``occupation_tol``) minus the highest occupied one, over all
    k-points and spins (eV)."""
    root = _xml_root(vasprun)
    calcs = root.findall('calculation')
    eig = calcs[-1].find('eigenvalues/array/set') if calcs else None
    if eig is None:
        raise VaspOutputError(f'{Path(vasprun).name}: no eigenvalues in the last ionic step')
    energies, occupations, kpoint_of = [], [], []
    for spin in eig.findall('set'):
        for k, kset in enumerate(spin.findall('set')):
            values = np.array([[float(x) for x in r.text.split()] for r in kset.findall('r')])
            energies.append(values[:, 0])
            occupations.append(values[:, 1])
            kpoint_of.append(np.full(len(values), k))
    e, o, kp = (np.concatenate(a) for a in (energies, occupations, kpoint_of))
    occupied, empty = o > occupation_tol, o <= occupation_tol
    if not occupied.any() or not empty.any():
        raise VaspOutputError(f'{Path(vasprun).name}: no empty bands (raise NBANDS) or no occupied ones')
    vbm, cbm = e[occupied].max(), e[empty].min()
    gap = max(float(cbm - vbm), 0.0)
    direct = bool(kp[occupied][np.argmax(e[occupied])] == kp[empty][np.argmin(e[empty])])
    return {'band_gap_eV': gap, 'vbm_eV': float(vbm), 'cbm_eV': float(cbm), 'is_direct': direct}


def read_poscar_velocities(contcar: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Fractional positions and the velocity block (as written: Å/fs, cartesian; None when absent) of a
    VASP 5 POSCAR/CONTCAR, for continuing an MD segment where the last one stopped."""
    lines = _text(contcar).splitlines()
    name = Path(contcar).name
    if len(lines) < 8:
        raise VaspOutputError(f'{name}: empty or truncated CONTCAR (the run crashed before writing it)')
    try:
        counts = [int(x) for x in lines[6].split()]
    except ValueError:
        raise VaspOutputError(f'{name}: not a VASP 5 CONTCAR (no species line)') from None
    n = sum(counts)
    i = 7
    if lines[i].strip()[:1] in ('S', 's'):  # Selective dynamics
        i += 1
    if lines[i].strip()[:1] not in ('D', 'd'):
        raise VaspOutputError(f'{name}: CONTCAR positions are not Direct')
    try:
        positions = np.array([[float(x) for x in lines[i + 1 + j].split()[:3]] for j in range(n)])
    except (IndexError, ValueError):
        raise VaspOutputError(f'{name}: CONTCAR has fewer than {n} positions') from None
    rest = lines[i + 1 + n :]
    # after the positions: optional blank line, optional coordinate-system line, n velocity lines
    while rest and not rest[0].strip():
        rest = rest[1:]
    if rest and rest[0].strip()[:1] in ('C', 'c', 'K', 'k'):
        rest = rest[1:]
    try:
        velocities = np.array([[float(x) for x in rest[j].split()[:3]] for j in range(n)])
    except (IndexError, ValueError):
        return positions, None
    return positions, velocities
