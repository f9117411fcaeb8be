"""The descriptor registry against the paper's Table 1: the 54 descriptors, their order and categories,
theta_D as one descriptor, and records stored under the older key."""

from __future__ import annotations

import numpy as np

from aiida_superionic.descriptors import (
    BY_KEY,
    DESCRIPTORS,
    EXTRA_KEYS,
    PAPER_DESCRIPTORS,
    PAPER_KEYS,
    record_values,
)
from aiida_superionic.study import stats
from aiida_superionic.study.table import table_from_records
from tests.study.planted import planted_records

_GROUPS = ('all', 'nd', 'd')

# Table 1 of the paper, row by row; the six vibrational rows that the text says were computed for all,
# non-diffusive and diffusive ions expand to three columns each; theta_d is one (all ions).
TABLE_1 = [
    # M-E: lambda B E G nu sigma H_V kappa P_c v_l v_t v_r <v>
    *('lambda', 'B', 'E', 'G', 'nu', 'sigma', 'H_V', 'kappa', 'P_c', 'v_l', 'v_t', 'v_r', 'v_mean'),
    # D-V: gamma Gamma <omega> <omega30> E_vib C_v theta_d F_vib S_vib D msd
    'gamma',
    'Gamma',
    *(f'omega_{g}' for g in _GROUPS),
    *(f'omega_30_{g}' for g in _GROUPS),
    *(f'E_vib_{g}' for g in _GROUPS),
    *(f'C_v_{g}' for g in _GROUPS),
    'theta_D',
    *(f'F_vib_{g}' for g in _GROUPS),
    *(f'S_vib_{g}' for g in _GROUPS),
    'D',
    'msd',
    # S-C: Z_N Z_B eps M alpha_i alpha_c Stc Sym a_m n Omega <abc> <alpha beta gamma> SO N_nn d_nn E_g E_vac
    *('Z_N', 'Z_B', 'epsilon', 'M', 'alpha_i', 'alpha_c', 'Stc', 'Sym', 'a_m', 'n', 'Omega'),
    *('sigma_abc', 'sigma_angles', 'SO', 'N_nn', 'd_nn', 'E_g', 'E_vac'),
]


def test_the_paper_set_is_table_1():
    assert len(TABLE_1) == 54  # "The total number of descriptors considered in this work is equal to 54"
    assert PAPER_KEYS == tuple(TABLE_1)
    categories = [d.category for d in PAPER_DESCRIPTORS]
    assert categories == ['M-E'] * 13 + ['D-V'] * 23 + ['S-C'] * 18
    assert BY_KEY['theta_D'].symbol == 'θ_d' and BY_KEY['theta_D'].paper
    # the extras come after the 54 and are marked as such
    assert EXTRA_KEYS == ('theta_D_nd', 'theta_D_d')
    assert tuple(d.key for d in DESCRIPTORS) == (*TABLE_1, *EXTRA_KEYS)
    assert not any(BY_KEY[k].paper for k in EXTRA_KEYS)
    assert 'theta_D_all' not in BY_KEY
    assert stats.DESCRIPTOR_KEYS == tuple(TABLE_1)  # the study's default columns


def test_record_values_give_theta_D_of_all_ions_and_the_groups_as_extras():
    md = {
        'vibrational': {
            'all': {'debye_temperature_K': 310.0},
            'non_diffusive': {'debye_temperature_K': 330.0},
            'diffusive': {'debye_temperature_K': 250.0},
        }
    }
    values, _ = record_values(md=md)
    assert values['theta_D'] == 310.0
    assert values['theta_D_nd'] == 330.0 and values['theta_D_d'] == 250.0
    assert 'theta_D_all' not in values


def test_records_stored_with_the_old_theta_D_all_key_fill_the_theta_D_column(rng):
    records = planted_records(rng, n_per_family=2)
    for rec, value in zip(records[:2], (301.0, 302.0), strict=True):  # records of the old registry
        del rec['values']['theta_D']
        rec['values']['theta_D_all'] = value
    table = table_from_records(records)
    assert 'theta_D_all' not in table.columns
    by_material = dict(zip(table['material'], table['theta_D'], strict=True))
    assert by_material[records[0]['material']] == 301.0 and by_material[records[1]['material']] == 302.0
    assert np.isfinite(table['theta_D']).all()
    assert list(table.columns[8:]) == [*TABLE_1, *EXTRA_KEYS]  # metadata, the 54, then the extras
