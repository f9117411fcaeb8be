"""The VASP output readers on real recorded VASP files (tests/data/aiida-vasp), checked against what
pymatgen reads from the same files and against what VASP itself printed in the OUTCAR."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.io.vasp import Outcar, Poscar, Vasprun

from aiida_superionic.engines.vasp import outputs as vo

DATA = Path(__file__).parents[1] / 'data' / 'aiida-vasp'


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        yield


def test_elastic_moduli_match_pymatgen_and_are_reordered_to_voigt():
    path = DATA / 'OUTCAR_elastic_ibrion6.gz'
    voigt = vo.read_elastic_moduli(path)
    outcar = Outcar(str(path))
    outcar.read_elastic_tensor()
    raw_kbar = np.array(outcar.data['elastic_tensor'])  # VASP order XX YY ZZ XY YZ ZX, kBar
    perm = [0, 1, 2, 4, 5, 3]
    np.testing.assert_allclose(voigt, raw_kbar[np.ix_(perm, perm)] / 10.0, atol=1e-6)
    assert voigt.shape == (6, 6)
    assert voigt[0, 0] == pytest.approx(167.45786)  # C11 of the TOTAL table, GPa
    assert voigt[3, 3] == pytest.approx(77.58054, abs=1e-4)  # C44 incl. ionic relaxation (-34.7 GPa)
    np.testing.assert_allclose(voigt, voigt.T, atol=0.01)


def test_elastic_moduli_missing_table_is_one_clear_error():
    with pytest.raises(vo.VaspOutputError, match='no "TOTAL ELASTIC MODULI" table'):
        vo.read_elastic_moduli(DATA / 'OUTCAR_lepsilon.gz')


def _outcar_printed_meV(path: Path) -> list[float]:
    text = vo._text(path)
    block = text[text.rindex('Eigenvectors and eigenvalues of the dynamical matrix') :]
    block = block[: block.index('ELASTIC MODULI CONTR')]
    values = []
    for m in re.finditer(r'^\s*\d+ (f|f/i)\s*=.*?([-\d.]+) meV', block, flags=re.M):
        values.append(float(m.group(2)) * (-1 if m.group(1) == 'f/i' else 1))
    return values


def test_gamma_modes_match_vasp_printed_frequencies():
    """Eigenvalues of vasprun.xml's <dynmat> -> meV, against the meV VASP printed in the same run's OUTCAR."""
    eig = vo.read_dynmat_eigenvalues(DATA / 'vasprun_elastic_ibrion6.xml.gz')
    v = Vasprun(str(DATA / 'vasprun_elastic_ibrion6.xml.gz'), parse_potcar_file=False)
    np.testing.assert_allclose(eig, v.normalmode_eigenvals, rtol=1e-7)
    modes = vo.gamma_modes_meV(eig)
    printed = sorted(_outcar_printed_meV(DATA / 'OUTCAR_elastic_ibrion6.gz'))
    np.testing.assert_allclose(modes['frequencies_meV'], printed, atol=1e-4)
    assert modes['gamma_mode_meV'] == pytest.approx(65.050401, abs=1e-4)
    assert modes['n_imaginary_optical'] == 0


def test_gamma_modes_of_a_dfpt_run_are_the_hessian_eigenvalues():
    """IBRION=8 (DFPT) vasprun.xml (pymatgen cannot read this file: an INCAR field overflowed to ******):
    the listed eigenvalues must be those of the listed mass-weighted Hessian."""
    import xml.etree.ElementTree as ET

    path = DATA / 'vasprun_dfpt_ibrion8.xml.gz'
    eig = vo.read_dynmat_eigenvalues(path)
    root = ET.fromstring(vo._text(path))
    hessian = np.array(
        [[float(x) for x in v.text.split()] for v in root.find('.//dynmat/varray[@name="hessian"]')]
    )
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(hessian)), np.sort(eig), atol=1e-6)
    modes = vo.gamma_modes_meV(eig)
    assert len(modes['frequencies_meV']) == 24
    lowest_optical = np.sqrt(-np.sort(eig)[::-1][3]) * vo.VASP_TO_THZ * vo.THZ_TO_MEV
    assert modes['gamma_mode_meV'] == pytest.approx(lowest_optical)
    assert modes['gamma_mode_meV'] == pytest.approx(12.652, abs=1e-3)


def test_gamma_modes_need_an_optical_mode():
    with pytest.raises(vo.VaspOutputError, match='need at least 2 atoms'):
        vo.gamma_modes_meV(np.array([0.0, 0.0, 0.0]))


def test_dynmat_missing_is_one_clear_error():
    with pytest.raises(vo.VaspOutputError, match='no <dynmat>'):
        vo.read_dynmat_eigenvalues(DATA / 'vasprun_relax_isif3.xml')


def test_lepsilon_matches_pymatgen():
    path = DATA / 'OUTCAR_lepsilon.gz'
    data = vo.read_lepsilon(path)
    outcar = Outcar(str(path))
    outcar.read_lepsilon()
    np.testing.assert_allclose(data['epsilon_inf'], outcar.dielectric_tensor)
    np.testing.assert_allclose(data['born_charges'], np.array(outcar.born))
    assert data['born_charges'].shape == (26, 3, 3)
    # charge neutrality: the Born charges sum to ~0 (VASP prints them before enforcing it)
    assert np.abs(data['born_charges'].sum(axis=0)).max() < 0.1


def test_lepsilon_missing_is_one_clear_error():
    with pytest.raises(vo.VaspOutputError, match='no dielectric tensor'):
        vo.read_lepsilon(DATA / 'OUTCAR_elastic_ibrion6.gz')


@pytest.mark.parametrize(
    'name', ['vasprun_lepsilon.xml.gz', 'vasprun_relax_isif3.xml', 'exit_codes_converged/vasprun.xml.gz']
)
def test_band_gap_matches_pymatgen(name):
    gap = vo.read_band_gap(DATA / name)
    ref_gap, cbm, vbm, direct = Vasprun(str(DATA / name), parse_potcar_file=False).eigenvalue_band_properties
    assert gap['band_gap_eV'] == pytest.approx(ref_gap, abs=1e-6)
    assert gap['cbm_eV'] == pytest.approx(cbm) and gap['vbm_eV'] == pytest.approx(vbm)
    assert gap['is_direct'] == direct


def test_band_gap_of_a_crashed_run_is_one_clear_error():
    with pytest.raises(vo.VaspOutputError, match=r'not a complete vasprun\.xml'):
        vo.read_band_gap(DATA / 'vasprun_unfinished.xml')


def test_contcar_positions_and_zero_velocities_match_pymatgen():
    path = DATA / 'CONTCAR_lepsilon'
    frac, vel = vo.read_poscar_velocities(path)
    poscar = Poscar.from_file(str(path))
    np.testing.assert_allclose(frac, poscar.structure.frac_coords, atol=1e-12)
    assert vel.shape == (26, 3) and not vel.any()  # pymatgen drops an all-zero block: velocities None
    assert poscar.velocities is None


def test_poscar_velocities_written_by_pymatgen_are_read_back(tmp_path):
    """A POSCAR with a velocity block (an MD input, written by pymatgen) is read back exactly."""
    poscar = Poscar.from_file(str(DATA / 'CONTCAR_lepsilon'))
    rng = np.random.default_rng(3)
    velocities = rng.normal(scale=0.01, size=(26, 3))
    Poscar(poscar.structure, velocities=velocities.tolist()).write_file(tmp_path / 'POSCAR')
    frac, vel = vo.read_poscar_velocities(tmp_path / 'POSCAR')
    np.testing.assert_allclose(vel, velocities, atol=1e-8)
    np.testing.assert_allclose(frac, poscar.structure.frac_coords, atol=1e-8)


def test_empty_contcar_of_a_crashed_run_is_one_clear_error(tmp_path):
    import gzip

    path = tmp_path / 'CONTCAR'
    path.write_bytes(gzip.decompress((DATA / 'exit_codes_unfinished' / 'CONTCAR.gz').read_bytes()))
    assert path.stat().st_size == 0
    with pytest.raises(vo.VaspOutputError, match='empty or truncated CONTCAR'):
        vo.read_poscar_velocities(path)
