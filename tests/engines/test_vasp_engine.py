"""The VASP engine's protocol, INCARs and MD-segment helpers (no VASP, no mock: pure functions)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from aiida_superionic.analysis.vacancy import chemical_potential_reference
from aiida_superionic.engines.contract import get_engine
from aiida_superionic.engines.vasp.calcfunctions import md_segment_info, vacancy_supercell
from aiida_superionic.engines.vasp.inputs import potential_mapping, step_incar
from aiida_superionic.engines.vasp.workchain import reference_incar
from aiida_superionic.exceptions import InputError
from aiida_superionic.io.stitch import stitch_frames
from aiida_superionic.io.xdatcar import read_xdatcar

SHARED = Path(__file__).parents[2].parent / 'shared' / 'vasp-md'


@pytest.fixture
def engine():
    return get_engine('vasp')


def test_precise_protocol_is_the_papers_methods(engine):
    s = engine.protocol('precise')
    relax = step_incar('relax', s)
    assert relax['ENCUT'] == 750 and relax['EDIFFG'] == -0.005 and relax['IBRION'] == 2 and relax['ISIF'] == 3
    elastic = step_incar('elastic', s)
    assert elastic['IBRION'] == 6 and elastic['ISIF'] == 3 and elastic['ENCUT'] == 750
    dfpt = step_incar('phonon_gamma', s)
    assert dfpt['IBRION'] == 8 and dfpt['LEPSILON'] is True
    md = step_incar('md', s, temperature_K=1200)
    assert md['IBRION'] == 0 and md['MDALGO'] == 2 and md['POTIM'] == 1.5
    assert md['TEBEG'] == md['TEEND'] == 1200.0 and 'IVDW' not in md
    assert s['md']['min_atoms'] == 200 and min(s['md']['temperatures']) >= 400
    assert max(s['md']['temperatures']) <= 1600 and 0.01 <= s['md']['vacancy_fraction'] <= 0.02
    assert s['md']['n_steps'] * s['md']['timestep_fs'] / 1000 == pytest.approx(150.0)  # ps
    assert potential_mapping({'Li', 'La', 'Zr', 'O'}, s['potential_mapping'])['Li'] == 'Li_sv'


def test_gamma_job_gives_the_dielectric_only_as_a_lepsilon_dfpt_run(engine):
    """The material chain skips the dielectric step exactly when the Γ job is DFPT with LEPSILON."""
    for protocol in engine.protocols():
        assert engine.gamma_gives_dielectric(engine.protocol(protocol))
    assert not engine.gamma_gives_dielectric(
        engine.protocol('fast', {'phonon_gamma': {'incar': {'LEPSILON': False}}})
    )
    assert not engine.gamma_gives_dielectric(
        engine.protocol('fast', {'phonon_gamma': {'incar': {'IBRION': 6}}})
    )
    assert engine.gamma_gives_dielectric(
        engine.protocol('fast', {'phonon_gamma': {'incar': {'LEPSILON': '.TRUE.'}}})
    )
    mlip = get_engine('mlip')
    assert not mlip.gamma_gives_dielectric(mlip.protocol('fast'))


def test_d3_for_halides_and_bad_dispersion(engine):
    assert step_incar('relax', engine.protocol('precise', {'dispersion': 'D3'}))['IVDW'] == 11
    with pytest.raises(InputError, match='only D3'):
        step_incar('relax', engine.protocol('precise', {'dispersion': 'TS'}))


def test_overrides_reach_the_incar_and_bad_names_are_refused(engine):
    s = engine.protocol('fast', {'incar': {'ENCUT': 600}, 'elastic': {'incar': {'POTIM': 0.01}}})
    assert step_incar('elastic', s)['ENCUT'] == 600 and step_incar('elastic', s)['POTIM'] == 0.01
    with pytest.raises(InputError, match='unknown protocol'):
        engine.protocol('ultra')
    with pytest.raises(InputError, match="step 'phonons'"):
        step_incar('phonons', s)
    with pytest.raises(InputError, match='no POTCAR mapping for Xx'):
        potential_mapping({'Li', 'Xx'})
    with pytest.raises(InputError, match=r'unknown key md\.nsteps; md has'):
        engine.protocol('precise', {'md': {'nsteps': 10}})
    with pytest.raises(InputError, match="'vacancy' must be a mapping"):
        engine.protocol('precise', {'vacancy': 3})
    assert engine.protocol('fast', {'incar': {'NEW_TAG': 1}})['incar']['NEW_TAG'] == 1  # INCAR: free form


def test_vacancy_supercell_widths():
    cubic = np.eye(3) * 4.0
    assert vacancy_supercell(cubic, 10.0) == [3, 3, 3]
    assert vacancy_supercell(cubic, 8.0) == [2, 2, 2]
    fcc = np.array([[0, 2, 2], [2, 0, 2], [2, 2, 0]], dtype=float)  # perpendicular width 2.31 Å, |a| 2.83 Å
    assert vacancy_supercell(fcc, 5.0) == [3, 3, 3]


def test_chemical_potential_reference_incars():
    """The shared rule's reference jobs: a metal as the relax step (cell relaxed), a molecule as the
    defect cells (positions only) with its spin: O2 triplet spin-polarized, halogen singlets not."""
    settings = get_engine('vasp').protocol('precise')
    li = reference_incar(chemical_potential_reference('Li'), settings)
    assert li == step_incar('relax', settings) and li['ISIF'] == 3 and 'ISPIN' not in li
    o2 = reference_incar(chemical_potential_reference('O'), settings)
    assert o2['ISPIN'] == 2 and o2['MAGMOM'] == [1.0, 1.0] and o2['NUPDOWN'] == 2
    assert o2['ISIF'] == 2 and o2['ENCUT'] == step_incar('vacancy', settings)['ENCUT'] == 750
    cl2 = reference_incar(chemical_potential_reference('Cl'), settings)
    assert cl2['ISPIN'] == 1 and 'MAGMOM' not in cl2 and cl2['ISIF'] == 2


def test_md_segment_steps_on_a_real_xdatcar(tmp_path):
    """Frame k of a segment that started at step s0 with NBLOCK b is step s0 + b (k + 1); with no OSZICAR
    the steps done are frames x NBLOCK."""
    path = tmp_path / 'XDATCAR'
    path.write_bytes(gzip.decompress((SHARED / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz').read_bytes()))
    traj, steps, done = md_segment_info(path, None, nblock=10, start_step=500)
    assert traj.n_frames == 140 and traj.n_atoms == 416
    np.testing.assert_array_equal(steps[:3], [510, 520, 530])
    assert done == 1400 and steps[-1] == 500 + done


def test_md_segment_killed_while_writing(tmp_path):
    """A segment killed mid-frame (the real file cut inside its last frame) loses only that frame."""
    raw = gzip.decompress((SHARED / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz').read_bytes())
    cut = raw[: raw.rindex(b'Direct configuration=') + 2000]
    path = tmp_path / 'XDATCAR'
    path.write_bytes(cut)
    traj, steps, done = md_segment_info(path, None, nblock=10, start_step=0)
    full = read_xdatcar(SHARED / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz')
    assert traj.n_frames == full.n_frames - 1
    np.testing.assert_array_equal(traj.positions, full.positions[:-1])
    assert done == traj.n_frames * 10 == steps[-1]


def test_segments_join_on_the_frame_grid(tmp_path):
    """Two real XDATCAR segments: the second restarted from the first's last step joins without a gap or
    a duplicate; one restarted off the NBLOCK grid is refused (hence the realignment job)."""
    path = tmp_path / 'XDATCAR'
    path.write_bytes(gzip.decompress((SHARED / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz').read_bytes()))
    t1, s1, done = md_segment_info(path, None, nblock=10, start_step=0)
    t2, s2, _ = md_segment_info(path, None, nblock=10, start_step=done)
    steps, (positions,) = stitch_frames([s1, s2], [None, done], [[t1.positions], [t2.positions]])
    assert len(steps) == 280 and np.all(np.diff(steps) == 10)
    assert positions.shape == (280, 416, 3)
    _, s3, _ = md_segment_info(path, None, nblock=10, start_step=done - 5)
    with pytest.raises(InputError, match='do not join'):
        stitch_frames([s1, s3], [None, done - 5], [[t1.positions], [t2.positions]])
