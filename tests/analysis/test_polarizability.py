"""α_i from the published table of Tessman, Kahn & Shockley, Phys. Rev. 92, 890 (1953).

The independent reference is the source's own text. Its abstract reads: "The best values for the
sodium D line in A3 are Li+ 0.03, Na+ 0.41, K+ 1.33, Rb+ 1.98, Cs+ 3.34, F- 0.64, Cl- 2.96, Br- 4.16,
I- 6.43, Ca++ 1.1, Sr++ 1.6, Ba++ 2.5, O-- 0.5-3.2, S-- 4.8-5.9, Se-- 6.0-7.5, Te-- 8.3-10.2, Ag+ 2.4,
Cu+ 1.6, Cu++ 0.2, Zn++ 0.8, Cd++ 1.8, Ge4+ 1, Sn4+ 3.4, Pb++ 4.9. Values represented by a spread
indicate ions that cannot be treated additively."
"""

from __future__ import annotations

import pytest

from aiida_superionic.analysis.polarizability import (
    ELECTRONIC_POLARIZABILITY_A3,
    NOT_ADDITIVE_RANGE_A3,
    mobile_ion_polarizability,
)
from aiida_superionic.exceptions import InputError

#: The mobile ions of López et al. 2023 with the value printed in the source (Å^3).
PUBLISHED = [
    ('Li', 1, 'Li+', 0.03),
    ('Na', 1, 'Na+', 0.41),
    ('Ag', 1, 'Ag+', 2.4),
    ('Cu', 1, 'Cu+', 1.6),
    ('F', -1, 'F-', 0.64),
    ('Cl', -1, 'Cl-', 2.96),
    ('Br', -1, 'Br-', 4.16),
    ('I', -1, 'I-', 6.43),
]


@pytest.mark.parametrize(('symbol', 'charge', 'ion', 'published'), PUBLISHED)
def test_lookup_returns_the_published_value(symbol, charge, ion, published):
    out = mobile_ion_polarizability(symbol, float(charge))
    assert out['value_A3'] == published
    assert out['ion'] == ion
    assert out['reason'] is None
    assert 'Tessman' in out['citation'] and 'Phys. Rev. 92, 890 (1953)' in out['citation']
    assert 'sodium D line' in out['table']
    assert 'electronic' in out['kind'] and 'in the crystal' in out['kind']


def test_the_charge_state_selects_the_ion():
    # the source lists Cu+ 1.6 and Cu++ 0.2
    assert mobile_ion_polarizability('Cu', 2)['value_A3'] == 0.2
    assert mobile_ion_polarizability('Cu', 2)['ion'] == 'Cu2+'


def test_oxide_ion_has_no_single_value():
    """O2- is given as a spread (0.5-3.2 Å^3, not additive): missing, with the reason."""
    out = mobile_ion_polarizability('O', -2.0)
    assert out['value_A3'] is None
    assert out['ion'] == 'O2-'
    assert '0.5-3.2' in out['reason'] and 'additively' in out['reason']
    assert out['citation']  # the record still says which table was consulted


@pytest.mark.parametrize(('symbol', 'charge'), [('N', -3), ('Li', -1), ('Mg', 2), ('H', 1)])
def test_ion_not_in_the_table_stays_missing(symbol, charge):
    out = mobile_ion_polarizability(symbol, charge)
    assert out['value_A3'] is None
    assert 'not in the table' in out['reason']


def test_non_integer_charge_stays_missing():
    out = mobile_ion_polarizability('Cu', 1.5)
    assert out['value_A3'] is None and out['ion'] is None
    assert 'non-integer' in out['reason']


#: The sentence of the source's abstract, as printed (ion charges as + / ++ / 4+ / - / --).
ABSTRACT_VALUES = (
    'Li+ 0.03, Na+ 0.41, K+ 1.33, Rb+ 1.98, Cs+ 3.34, F- 0.64, Cl- 2.96, Br- 4.16, I- 6.43, Ca++ 1.1, '
    'Sr++ 1.6, Ba++ 2.5, O-- 0.5-3.2, S-- 4.8-5.9, Se-- 6.0-7.5, Te-- 8.3-10.2, Ag+ 2.4, Cu+ 1.6, '
    'Cu++ 0.2, Zn++ 0.8, Cd++ 1.8, Ge4+ 1, Sn4+ 3.4, Pb++ 4.9'
)


def _parse_abstract():
    import re

    single, spread = {}, {}
    for item in ABSTRACT_VALUES.split(', '):
        ion, value = item.split(' ')
        symbol, sign = re.fullmatch(r'([A-Z][a-z]?)(.*)', ion).groups()
        charge = {'+': 1, '++': 2, '4+': 4, '-': -1, '--': -2}[sign]
        if '-' in value:
            low, high = value.split('-')
            spread[(symbol, charge)] = (float(low), float(high))
        else:
            single[(symbol, charge)] = float(value)
    return single, spread


def test_table_is_the_source_table_and_nothing_else():
    single, spread = _parse_abstract()
    assert ELECTRONIC_POLARIZABILITY_A3 == single
    assert NOT_ADDITIVE_RANGE_A3 == spread


@pytest.mark.parametrize(('symbol', 'charge'), [('', 1), (None, 1), ('Li', 'one'), ('Li', float('nan'))])
def test_bad_input_is_one_clear_error(symbol, charge):
    with pytest.raises(InputError):
        mobile_ion_polarizability(symbol, charge)
