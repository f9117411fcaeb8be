"""Calcfunctions and work chains on a temporary sqlite profile: provenance, caching, storage."""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node
from aiida.manage.caching import enable_caching

from aiida_superionic.analysis import analyze_trajectory
from aiida_superionic.calculations.functions import (
    assemble_record,
    compute_diffusion,
    compute_elastic_descriptors,
    fit_arrhenius,
)
from aiida_superionic.cli.records import format_records
from aiida_superionic.data import MDTrajectoryData
from aiida_superionic.descriptors import DESCRIPTORS
from aiida_superionic.io import Trajectory, read_xdatcar
from aiida_superionic.workflows.md_descriptors import ImportMDWorkChain, MDDescriptorsWorkChain
from tests.synthetic import brownian


@pytest.fixture
def small_trajectory(rng):
    box = 9.0
    positions = (
        np.concatenate(
            [brownian(rng, 400, 8, 1e-3, 2.0, box), 4.5 + rng.normal(scale=0.08, size=(400, 8, 3))], axis=1
        )
        % box
    )
    traj = Trajectory(positions.astype(np.float32), np.eye(3) * box, ['Li'] * 8 + ['S'] * 8)
    return MDTrajectoryData.from_trajectory(
        traj, timestep_fs=2.0, temperature_K=700.0, origin={'kind': 'test'}
    )


def test_trajectory_arrays_live_in_the_repository(small_trajectory):
    node = small_trajectory.store()
    assert node.get_positions().dtype == np.float32
    assert node.get_positions().shape == (400, 16, 3)
    attributes = node.base.attributes.all
    assert 'positions' not in attributes  # only the shape bookkeeping of ArrayData, no data
    assert len(repr(attributes)) < 2000
    assert 'positions.npy' in node.base.repository.list_object_names()


def test_diffusion_calcfunction_matches_library_and_links(small_trajectory):
    node = small_trajectory.store()
    outputs, process = compute_diffusion.run_get_node(node)
    ref = analyze_trajectory(node.get_positions(), node.cell, node.symbols, 2.0, 700.0)
    assert outputs['diffusion']['D_cm2_s'] == pytest.approx(ref['diffusion']['D_cm2_s'], rel=1e-12)
    assert process.is_finished_ok
    incoming = process.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all()
    assert [link.node.uuid for link in incoming] == [node.uuid]
    assert outputs['msd'].get_array('msd_A2').shape == outputs['msd'].get_array('time_ps').shape


def test_caching_reuses_the_analysis(small_trajectory):
    # an attribute of its own makes this trajectory's hash unlike any other test's (the profile is shared
    # by the whole session), so the first analysis cannot come from the cache of an earlier test
    small_trajectory.base.attributes.set('test_nonce', uuid.uuid4().hex)
    node = small_trajectory.store()
    with enable_caching(identifier='aiida.calculations:superionic.*'):
        _, first = compute_diffusion.run_get_node(node)
        _, second = compute_diffusion.run_get_node(node)
    assert not first.base.caching.is_created_from_cache
    assert second.base.caching.is_created_from_cache
    assert second.base.caching.get_cache_source() == first.uuid
    assert second.outputs.diffusion['D_cm2_s'] == first.outputs.diffusion['D_cm2_s']


def test_md_descriptors_workchain_builds_the_record(small_trajectory):
    node = small_trajectory.store()
    outputs, process = run_get_node(MDDescriptorsWorkChain, trajectory=node)
    assert process.is_finished_ok, process.exit_message
    record = outputs['record']
    values = record['values']
    assert set(values) == {d.key for d in DESCRIPTORS}
    assert values['D'] == outputs['diffusion']['D_cm2_s']
    assert values['C_v_nd'] == outputs['vibrational']['non_diffusive']['C_v_kB_atom']
    assert values['gamma'] == outputs['lindemann']['lindemann_ratio']
    # the record's VDOS is eq 5 (unweighted) unless asked otherwise, and says so
    ref, mass = (
        analyze_trajectory(
            node.get_positions(),
            node.cell,
            node.symbols,
            2.0,
            700.0,
            compute=['vibrational'],
            vdos_weighting=w,
        )
        for w in ('none', 'mass')
    )
    omega = ref['vibrational']['all']['mean_frequency_meV']
    assert values['omega_all'] == pytest.approx(omega, rel=1e-12)
    assert abs(mass['vibrational']['all']['mean_frequency_meV'] / omega - 1) > 0.02  # the choice matters here
    assert outputs['vibrational']['vdos_weighting'] == 'none'
    assert values['B'] is None and values['E_g'] is None  # not computed: missing, never invented
    assert record['mobile_species'] == 'Li' and record['formula'] == 'LiS'
    assert record['units']['D'] == 'cm^2/s'
    assert record['D_resolved'] is True and record['D_upper_bound_cm2_s'] is None  # a diffusing run
    rows = {
        line.split()[0]: line.split()[1:] for line in format_records([record]).splitlines() if line.strip()
    }
    assert rows['D_resolved'] == ['yes'] and rows['D'][1] == f'{values["D"]:.4g}'
    assert record['errors']['D'] == outputs['diffusion']['D_stderr_cm2_s']
    # the record descends from the trajectory
    ancestors = orm.QueryBuilder().append(MDTrajectoryData, filters={'id': node.pk}, tag='t')
    ancestors.append(orm.Dict, with_ancestors='t', filters={'id': record.pk})
    assert ancestors.distinct().count() == 1


def test_non_diffusing_run_gives_no_negative_D_in_the_record(rng):
    """Mobile ions that only vibrate: the diffusion node keeps the raw fit; the record says "not resolved",
    has no D (never a negative number) and carries the upper bound max(D, 0) + 2 sigma of that fit."""
    box, n_frames = 9.0, 400
    sites = rng.uniform(0, box, size=(16, 3))
    positions = sites[None] + rng.normal(scale=0.15, size=(n_frames, 16, 3))
    traj = Trajectory(positions % box, np.eye(3) * box, ['Li'] * 8 + ['S'] * 8)
    node = MDTrajectoryData.from_trajectory(
        traj, timestep_fs=2.0, temperature_K=300.0, origin={'kind': 'test'}
    )
    diffusion = compute_diffusion(node.store())['diffusion']
    raw, sigma = diffusion['D_cm2_s'], diffusion['D_stderr_cm2_s']
    assert diffusion['D_resolved'] is False and raw <= 2 * sigma
    record = assemble_record(orm.Dict({'material': 'LiS'}), diffusion=diffusion)
    assert record['values']['D'] is None
    assert 'D' not in record['errors']
    assert record['D_resolved'] is False
    assert record['D_upper_bound_cm2_s'] == pytest.approx(max(raw, 0.0) + 2 * sigma, rel=1e-12)
    # `aiida-superionic show` prints the bound and the flag, no number that looks like a measured D
    rows = {
        line.split()[0]: line.split()[1:] for line in format_records([record]).splitlines() if line.strip()
    }
    assert rows['D'] == ['cm^2/s', f'<{record["D_upper_bound_cm2_s"]:.2g}']
    assert rows['D_resolved'] == ['no']


def test_record_from_a_negative_fit_without_flag():
    """A diffusion result written before the flag existed (bash dev demo: Li3N 900 K) gets the same rule."""
    old = orm.Dict({'D_cm2_s': -1.75e-5, 'D_stderr_cm2_s': 3.4e-5, 'msd_at_window_end_A2': 0.4})
    record = assemble_record(orm.Dict({'material': 'Li3N'}), diffusion=old)
    assert record['values']['D'] is None and record['D_resolved'] is False
    assert record['D_upper_bound_cm2_s'] == pytest.approx(6.8e-5)
    assert record['values']['msd'] == 0.4


def test_import_workchain_from_a_real_xdatcar(shared_md):
    path = shared_md / 'Li6PS5Cl_kinisi' / 'XDATCAR.gz'
    source = orm.SinglefileData(path)
    params = {
        'format': 'xdatcar',
        'temperature_K': 500.0,
        'timestep_fs': 2.0,
        'step_skip': 50,
        'sha256': hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    outputs, process = run_get_node(ImportMDWorkChain, source=source, read_parameters=orm.Dict(params))
    assert process.is_finished_ok, process.exit_message
    traj = outputs['trajectory']
    assert traj.timestep_fs == 100.0 and traj.n_frames == 140
    assert traj.origin['sha256'] == params['sha256']
    ref = read_xdatcar(path)
    np.testing.assert_array_equal(traj.get_positions(), ref.positions)
    assert outputs['record']['values']['D'] == pytest.approx(
        analyze_trajectory(ref.positions, ref.cell, ref.symbols, 100.0, 500.0)['diffusion']['D_cm2_s']
    )


def test_elastic_and_arrhenius_calcfunctions():
    from pymatgen.core import Lattice, Structure

    structure = orm.StructureData(
        pymatgen=Structure(
            Lattice.cubic(3.615), ['Cu'] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
        )
    )
    c = np.zeros((6, 6))
    c[:3, :3] = 121.4
    np.fill_diagonal(c[:3, :3], 168.4)
    c[3, 3] = c[4, 4] = c[5, 5] = 75.4
    tensor = orm.ArrayData()
    tensor.set_array('voigt_GPa', c)
    result = compute_elastic_descriptors(tensor, structure)
    assert result['bulk_modulus_GPa'] == pytest.approx((168.4 + 2 * 121.4) / 3)
    kb = 8.617333262e-5
    runs = {
        f'T{t}': orm.Dict(
            {'temperature_K': t, 'D_cm2_s': 1e-3 * np.exp(-0.2 / (kb * t)), 'D_stderr_cm2_s': None}
        )
        for t in (600, 800, 1000)
    }
    fit = fit_arrhenius(**runs)
    assert fit['E_a_eV'] == pytest.approx(0.2, rel=1e-6)
    assert fit['weighted'] is False


def test_arrhenius_leaves_out_unresolved_runs():
    """A run whose D is not resolved from zero (here 1e-9 +- 1e-8, or negative) never enters the fit: the
    fit over the others equals the analytic Arrhenius line, and the node names what it left out."""
    kb = 8.617333262e-5
    runs = {
        f'T{t}': orm.Dict(
            {'temperature_K': t, 'D_cm2_s': 1e-3 * np.exp(-0.3 / (kb * t)), 'D_stderr_cm2_s': 1e-9}
        )
        for t in (800, 1000, 1200)
    }
    runs['T400'] = orm.Dict({'temperature_K': 400, 'D_cm2_s': 1e-9, 'D_stderr_cm2_s': 1e-8})
    runs['T500'] = orm.Dict(
        {'temperature_K': 500, 'D_cm2_s': -2e-7, 'D_stderr_cm2_s': 3e-7, 'D_resolved': False}
    )
    fit = fit_arrhenius(**runs)
    assert fit['E_a_eV'] == pytest.approx(0.3, rel=1e-6)
    assert fit['temperatures_K'] == [800, 1000, 1200]
    assert sorted(fit['left_out']) == ['T400', 'T500']
    with pytest.raises(Exception, match='resolved at >= 2 temperatures'):
        fit_arrhenius(T400=runs['T400'], T500=runs['T500'], T800=runs['T800'])


def test_record_rejects_unknown_parts():
    with pytest.raises(ValueError, match='unknown record parts'):
        assemble_record(orm.Dict({'material': 'x'}), nonsense=orm.Dict({}))


def test_dft_steps_reach_the_record_and_alpha_c():
    """A DFT engine's ε∞, Born charge and band gap land in the record; ε∞ also gives α_c by
    Clausius-Mossotti, α = 3Ω/(4π) (ε-1)/(ε+2), Ω the volume per formula unit."""
    from ase.build import bulk

    from aiida_superionic.calculations.functions import collect_dft_part, compute_structure_descriptors

    dft = collect_dft_part(
        orm.Dict({'phonon_gamma': 'not here'}),
        vacancy=orm.Dict({'E_vac_eV': 1.25, 'mu_reference': 'bcc Li'}),
        dielectric=orm.Dict({'epsilon_inf': 1.96, 'born_charge_e': 1.04}),
        band_gap=orm.Dict({'band_gap_eV': 8.9}),
    )
    structure = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.03))
    descriptors = compute_structure_descriptors(structure, orm.Dict({'mobile': 'Li', 'epsilon_inf': 1.96}))
    record = assemble_record(orm.Dict({'material': 'LiF'}), dft=dft, structure=descriptors)
    values = record['values']
    assert (values['epsilon'], values['Z_B'], values['E_g'], values['E_vac']) == (1.96, 1.04, 8.9, 1.25)
    omega = 4.03**3 / 4  # rocksalt: 4 formula units in the cubic cell
    assert values['alpha_c'] == pytest.approx(3 * omega / (4 * np.pi) * (1.96 - 1) / (1.96 + 2), rel=1e-6)
    # α_i of Li+ from Tessman, Kahn & Shockley, Phys. Rev. 92, 890 (1953): "Li+ 0.03" (Å^3)
    assert values['alpha_i'] == 0.03
    assert 'Tessman' in record['references']['alpha_i']['citation']


def test_structure_reaches_the_record_with_alpha_i_and_its_citation(small_trajectory):
    """The path of both engines' records (``superionic.md`` -> ``superionic.md_descriptors`` with the
    relaxed crystal): α_i of the mobile Li+ comes with the structural descriptors, and the node that
    provides it and the record both carry the published source. Reference: Tessman, Kahn & Shockley,
    Phys. Rev. 92, 890 (1953), abstract: "The best values for the sodium D line in A3 are Li+ 0.03, ...".
    """
    from ase.build import bulk

    node = small_trajectory.store()
    structure = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.03))
    outputs, process = run_get_node(
        MDDescriptorsWorkChain,
        trajectory=node,
        structure=structure,
        record_metadata=orm.Dict({'engine': 'vasp'}),
    )
    assert process.is_finished_ok, process.exit_message
    provider = outputs['structure_descriptors']
    assert provider['mobile_polarizability_A3'] == 0.03
    source = provider['mobile_polarizability_reference']
    assert source['ion'] == 'Li+'
    assert source['citation'].startswith('J. R. Tessman, A. H. Kahn and W. Shockley')
    assert 'sodium D line' in source['table'] and 'electronic' in source['kind']
    record = outputs['record']
    assert record['values']['alpha_i'] == 0.03
    assert record['units']['alpha_i'] == 'Å^3'
    assert record['references']['alpha_i'] == source
    # the record descends from the structure through the node that carries the citation
    query = orm.QueryBuilder().append(orm.StructureData, filters={'id': structure.pk}, tag='s')
    query.append(orm.Dict, with_ancestors='s', filters={'id': provider.pk}, tag='p')
    query.append(orm.Dict, with_ancestors='p', filters={'id': record.pk})
    assert query.distinct().count() == 1


def test_record_without_a_structure_has_no_alpha_i(small_trajectory):
    outputs, process = run_get_node(MDDescriptorsWorkChain, trajectory=small_trajectory.store())
    assert process.is_finished_ok, process.exit_message
    assert outputs['record']['values']['alpha_i'] is None
    assert outputs['record']['references'] == {}
