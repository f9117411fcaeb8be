"""Lindemann ratio with a known answer, and the input checks of analyze_trajectory."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_superionic.analysis import analyze_trajectory, nearest_neighbour_distances
from aiida_superionic.analysis._common import default_mobile
from aiida_superionic.exceptions import InputError
from tests.synthetic import brownian


def test_nearest_neighbour_distance_simple_cubic():
    a = 3.0
    grid = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(3)], float) * a
    np.testing.assert_allclose(nearest_neighbour_distances(grid, np.eye(3) * 3 * a), a)
    # one atom in the cell: its nearest neighbour is its own image
    assert nearest_neighbour_distances(np.zeros((1, 3)), np.diag([4.0, 5.0, 6.0]))[0] == pytest.approx(4.0)


def test_lindemann_ratio_of_gaussian_vibrations(rng):
    """Framework on a simple-cubic lattice (a = 3 Å) with isotropic Gaussian displacements σ per axis:
    γ = sqrt(3) σ / a."""
    a, sigma, n_frames = 3.0, 0.12, 2000
    sites = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(3)], float) * a
    frame = sites[None] + rng.normal(scale=sigma, size=(n_frames, len(sites), 3))
    mobile = brownian(rng, n_frames, 5, 1e-4, 1.0, 9.0)
    positions = np.concatenate([mobile, frame], axis=1) % 9.0
    symbols = ['Ag'] * 5 + ['I'] * len(sites)
    result = analyze_trajectory(positions, np.eye(3) * 9.0, symbols, 1.0, 500.0)
    assert result['lindemann_ratio'] == pytest.approx(np.sqrt(3) * sigma / a, rel=0.02)
    assert result['mobile_species'] == 'Ag'


def test_default_mobile_follows_the_paper_order():
    assert default_mobile(['La', 'Li', 'O']) == 'Li'
    assert default_mobile(['Cu', 'I', 'Ag']) == 'Ag'
    assert default_mobile(['Pb', 'F']) == 'F'
    with pytest.raises(InputError, match='no mobile species'):
        default_mobile(['Si', 'C'])


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'temperature_K': 0.0}, 'temperature must be > 0'),
        ({'temperature_K': float('nan')}, 'temperature must be > 0'),
        ({'timestep_fs': -1.0}, 'timestep must be > 0'),
        ({'mobile': 'Na'}, "mobile species 'Na' not in the trajectory"),
        ({'symbols': ['Li'] * 4 + ['Xx'] * 4}, "unknown chemical symbol 'Xx'"),
        ({'symbols': ['Li'] * 3}, '3 symbols for 8 atoms'),
        ({'cell': np.zeros((3, 3))}, 'non-zero volume'),
        ({'velocities': np.zeros((5, 8, 3))}, 'velocities must have the shape'),
        ({'vdos_weighting': 'charge'}, 'vdos_weighting'),
    ],
)
def test_bad_input_is_one_clear_error(rng, change, message):
    positions = np.concatenate(
        [brownian(rng, 100, 4, 1e-4, 1.0, 8.0), 4.0 + rng.normal(scale=0.05, size=(100, 4, 3))], axis=1
    )
    kwargs = {
        'positions': positions,
        'cell': np.eye(3) * 8.0,
        'symbols': ['Li'] * 4 + ['O'] * 4,
        'timestep_fs': 1.0,
        'temperature_K': 600.0,
        **change,
    }
    with pytest.raises(InputError, match=message):
        analyze_trajectory(**kwargs)


def test_nan_position_names_the_frame(rng):
    positions = np.concatenate(
        [brownian(rng, 100, 4, 1e-4, 1.0, 8.0), 4.0 + rng.normal(scale=0.05, size=(100, 4, 3))], axis=1
    )
    positions[42, 3, 1] = np.nan
    with pytest.raises(InputError, match='first at frame 43'):
        analyze_trajectory(positions, np.eye(3) * 8.0, ['Li'] * 4 + ['O'] * 4, 1.0, 600.0)


def test_compute_subsets_give_the_same_numbers(rng):
    positions = np.concatenate(
        [brownian(rng, 300, 4, 1e-4, 1.0, 8.0), 4.0 + rng.normal(scale=0.05, size=(300, 4, 3))], axis=1
    )
    args = (positions, np.eye(3) * 8.0, ['Li'] * 4 + ['O'] * 4, 1.0, 600.0)
    full = analyze_trajectory(*args)
    diffusion = analyze_trajectory(*args, compute=['diffusion'])
    lindemann = analyze_trajectory(*args, compute=['lindemann'])
    vibrational = analyze_trajectory(*args, compute=['vibrational'])
    assert diffusion['diffusion'] == full['diffusion'] and 'vibrational' not in diffusion
    assert lindemann['lindemann_ratio'] == full['lindemann_ratio'] and 'diffusion' not in lindemann
    assert vibrational['vibrational'] == full['vibrational'] and 'lindemann_ratio' not in vibrational
    with pytest.raises(InputError, match='compute must name'):
        analyze_trajectory(*args, compute=['msd'])
