"""The shipped reference set against its published crystallographic data (no AiiDA profile needed)."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import spglib
from pymatgen.core import Composition, Species, Structure

from aiida_superionic.reference import (
    FAMILIES,
    PAPER_FRACTIONS,
    excluded,
    family_fractions,
    materials,
)

DOCS = Path(__file__).resolve().parents[2] / 'docs' / 'reference_set.rst'


def rst_table() -> str:
    """The reference set as a reStructuredText list-table (the docs page holds exactly this text)."""
    lines = [
        '.. list-table:: The reference set (``aiida_superionic/reference/index.yaml``)',
        '   :header-rows: 1',
        '   :widths: 12 8 14 8 10 48',
        '',
        '   * - Material',
        '     - Family',
        '     - Space group',
        '     - Mobile',
        '     - ρ (g/cm³)',
        '     - Reference',
    ]
    for e in materials():
        ref = e['reference'] + (f', doi:{e["doi"]}' if e.get('doi') else '')
        lines += [
            f'   * - {e["name"]} ({e["structure_type"]})',
            f'     - {e["family"]}',
            f'     - ``{e["space_group"]}`` ({e["space_group_number"]})',
            f'     - {e["mobile"]}',
            f'     - {e["density_g_cm3"]:.3f}',
            f'     - {ref}',
        ]
    return '\n'.join(lines) + '\n'


FAMILY_OF_MOBILE = {'Li': 'Li', 'Na': 'Na', 'F': 'halide', 'Cl': 'halide', 'Br': 'halide', 'I': 'halide'}
FAMILY_OF_MOBILE |= {'O': 'O', 'Ag': 'Ag/Cu', 'Cu': 'Ag/Cu'}
ENTRIES = materials()


def _read(path: Path) -> Structure:
    with warnings.catch_warnings():  # 1/3 coordinates 'rounded to ideal values': expected
        warnings.simplefilter('ignore')
        return Structure.from_file(str(path))


@pytest.fixture(scope='module')
def structures() -> dict[str, Structure]:
    return {e['name']: _read(e['path']) for e in ENTRIES}


def test_about_thirty_materials_with_unique_names():
    names = [e['name'] for e in ENTRIES]
    assert 25 <= len(names) <= 40
    assert len(set(names)) == len(names)


@pytest.mark.parametrize('entry', ENTRIES, ids=[e['name'] for e in ENTRIES])
def test_spglib_finds_the_published_space_group(entry, structures):
    s = structures[entry['name']]
    cell = (s.lattice.matrix, s.frac_coords, [site.specie.Z for site in s])
    dataset = spglib.get_symmetry_dataset(cell, symprec=1e-3)
    assert dataset.number == entry['space_group_number']


@pytest.mark.parametrize('entry', ENTRIES, ids=[e['name'] for e in ENTRIES])
def test_density_within_one_percent_of_the_published_xray_density(entry, structures):
    assert 'X-ray density' in entry['density_source']
    assert structures[entry['name']].density == pytest.approx(entry['density_g_cm3'], rel=0.01)


@pytest.mark.parametrize('entry', ENTRIES, ids=[e['name'] for e in ENTRIES])
def test_composition_mobile_species_and_reference_in_the_cif(entry, structures):
    s = structures[entry['name']]
    assert s.composition.reduced_formula == Composition(entry['formula']).reduced_formula
    assert len(s) == entry['Z'] * Composition(entry['formula']).num_atoms  # Z formula units in the cell
    assert entry['mobile'] in {el.symbol for el in s.composition.elements}
    assert FAMILY_OF_MOBILE[entry['mobile']] == entry['family']
    text = entry['path'].read_text()
    assert re.search(rf'^_superionic_mobile_species\s+{entry["mobile"]}$', text, re.M)
    assert re.search(rf'^_superionic_family\s+{re.escape(entry["family"])}$', text, re.M)
    assert entry['reference'] in text
    assert entry['reference'] and re.search(r'\(\d{4}\)', entry['reference'])  # authors/source, year
    assert s.is_ordered


@pytest.mark.parametrize('entry', ENTRIES, ids=[e['name'] for e in ENTRIES])
def test_nearest_cation_anion_distance_matches_shannon_radii(entry, structures):
    """An independent check of the Wyckoff coordinates: the shortest cation–anion distance is within
    ±20 % of the sum of Shannon ionic radii (pymatgen's table) of the ions' usual oxidation states."""
    s = structures[entry['name']]
    guesses = s.composition.oxi_state_guesses(max_sites=-1)
    if not guesses:  # pymatgen has no Bi3- guess
        assert entry['name'] == 'Li3Bi'
        return
    guess = guesses[0]
    radius = {}
    for el, oxi in guess.items():
        with warnings.catch_warnings():  # 'No ionic radius for P3-!'
            warnings.simplefilter('ignore')
            radius[el] = Species(el, round(oxi)).ionic_radius
    d = s.distance_matrix + np.eye(len(s)) * 1e9
    checked = 0
    for i, a in enumerate(s):
        ea = a.specie.symbol
        if guess[ea] <= 0 or not radius[ea]:
            continue
        anions = [j for j, b in enumerate(s) if guess[b.specie.symbol] < 0 and radius[b.specie.symbol]]
        if not anions:
            continue
        j = min(anions, key=lambda k: d[i, k])
        ratio = d[i, j] / (radius[ea] + radius[s[j].specie.symbol])
        assert 0.8 < ratio < 1.2, (ea, s[j].specie.symbol, d[i, j], ratio)
        checked += 1
    # pymatgen has no Shannon radius for P3-, Sb3-, Bi3-: those three cells go unchecked here
    assert checked > 0 or entry['name'] in {'Li3P', 'Li3Sb', 'Li3Bi'}


def test_family_proportions_close_to_the_papers():
    fractions = family_fractions()
    print({f: f'{100 * x:.0f} % (paper {100 * PAPER_FRACTIONS[f]:.0f} %)' for f, x in fractions.items()})
    assert set(fractions) == set(FAMILIES)
    for family in FAMILIES:
        assert fractions[family] == pytest.approx(PAPER_FRACTIONS[family], abs=0.06), family
    assert math.isclose(sum(fractions.values()), 1.0)


def test_excluded_materials_have_reasons():
    out = excluded()
    names = {e['name'] for e in ENTRIES}
    assert {'Li10GeP2S12', 'Li6PS5Cl', 'delta-Bi2O3'} <= {x['name'] for x in out}
    assert all(x['reason'] and x['name'] not in names for x in out)


def test_docs_table_is_the_generated_one():
    """docs/reference_set.rst holds the table rst_table() makes from the index: it cannot drift."""
    assert rst_table() in DOCS.read_text()


def test_shipped_files_are_what_build_writes(tmp_path):
    """The CIFs and index entries are exactly what reference/build.py writes from its literature data:
    a hand edit of a shipped file, or a data change without a rebuild, fails here."""
    import yaml

    from aiida_superionic.reference import REFERENCE_DIR
    from aiida_superionic.reference.build import build

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        build(tmp_path)
    shipped = sorted(p.name for p in (REFERENCE_DIR / 'cifs').glob('*.cif'))
    assert sorted(p.name for p in (tmp_path / 'cifs').glob('*.cif')) == shipped
    for name in shipped:
        assert (tmp_path / 'cifs' / name).read_text() == (REFERENCE_DIR / 'cifs' / name).read_text(), name
    fresh = yaml.safe_load((tmp_path / 'index.yaml').read_text())
    stored = yaml.safe_load((REFERENCE_DIR / 'index.yaml').read_text())
    assert fresh['materials'] == stored['materials']
    assert fresh['excluded'] == stored['excluded']
