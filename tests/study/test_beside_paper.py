"""This study beside the paper: the paper's numbers against its text, and the table against scipy on a
planted set whose correlations are known by construction."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from scipy import stats as sps

from aiida_superionic.study import figures
from aiida_superionic.study.paper import NA, PAPER_VALUES, PaperValue, beside_paper, to_rst
from aiida_superionic.study.workchain import StudyWorkChain
from tests.study.planted import planted_records

PAPER = Path(__file__).resolve().parents[3] / 'shared' / 'paper' / 'lopez2023_superionic_descriptors.txt'

#: The paper's symbol of each descriptor key, as its text writes it (written here from the paper, not
#: from the module under test).
PAPER_SYMBOL = {
    'omega_all': r'$\langle\omega\rangle$',
    'C_v_all': 'C_V',
    'F_vib_all': 'F_{vib}',
    'S_vib_all': 'S_{vib}',
    'Gamma': 'Γ',
    'E_vac': 'E_{vac}',
    'alpha_c': 'α_C',
    'SO': 'SO',
    'E_g': 'E_g',
    'epsilon': 'ϵ',
    'omega_30_d': r'$\langle\omega_{30}\rangle^{(d)}$',
    'H_V': 'H_V',
    'kappa': 'κ',
    'nu': 'ν',
    'P_c': 'P_C',
    'v_r': 'v_r',
}


@pytest.fixture(scope='module')
def paper_lines() -> list[str]:
    assert PAPER.is_file(), f'{PAPER} is missing: clone the repository next to shared/'
    return PAPER.read_text().splitlines()


def transcription_errors(pv: PaperValue, lines: list[str]) -> list[str]:
    """What is wrong with one transcribed number: its quote is not on its line, the quote's number is
    not the value, or the quote does not name the descriptor."""
    errors = []
    line = lines[pv.line - 1] if 0 < pv.line <= len(lines) else ''
    if pv.quote not in line:
        errors.append(f'quote not on line {pv.line}')
    if pv.kind == 'k':
        numbers = [float(n) for n in re.findall(r'(\d+) clusters', pv.quote)]
        expected = pv.value
    else:
        numbers = [float(n.replace('−', '-')) for n in re.findall(r'([+\-−]?\d+(?:\.\d+)?)\\?%', pv.quote)]
        expected = 100 * pv.value
    if len(numbers) != 1 or not math.isclose(numbers[0], expected, abs_tol=1e-9):
        errors.append(f'quote gives {numbers}, value is {expected:g}')
    if pv.kind in ('c_S', 'abs_c_S_max') and PAPER_SYMBOL[pv.key] not in pv.quote:
        errors.append(f'quote does not name {PAPER_SYMBOL[pv.key]}')
    if pv.kind == 'abs_c_S_max' and r'|c_s| \leq' not in pv.quote:
        errors.append("not the paper's bound |c_s| <= ...")
    if pv.kind in ('explained', 'D_contribution') and f'PC{pv.index}' not in pv.quote + line:
        errors.append(f'PC{pv.index} not on the line')
    return errors


def test_every_paper_number_is_on_its_line_of_the_paper(paper_lines):
    problems = {
        f'{pv.key}/{pv.subset}/{pv.kind}': transcription_errors(pv, paper_lines) for pv in PAPER_VALUES
    }
    assert {k: v for k, v in problems.items() if v} == {}
    # Li-only numbers come from the Fig. 2(c) paragraph, the all-materials ones from before it
    li_line = next(i for i, line in enumerate(paper_lines, 1) if 'exclusively for Li-based SSEs' in line)
    universal = paper_lines.index('Universal ion diffusion descriptors') + 1
    for pv in PAPER_VALUES:
        if pv.kind == 'c_S' and pv.subset == 'Li':
            assert pv.line == li_line, pv
        elif pv.kind in ('c_S', 'abs_c_S_max'):
            assert universal < pv.line < li_line, pv
    # the unsuffixed vibrational symbols are the material as a whole (all ions): the _all keys
    assert 'calculated for the materials as a whole' in '\n'.join(paper_lines)
    # PC3's 4 % is its own eigenvalue share; the 62 % is PC1-PC3 together
    pc3 = next(pv for pv in PAPER_VALUES if pv.kind == 'explained')
    assert pc3.index == 3 and 'eigenvalue of' in pc3.quote
    cumulative = next(pv for pv in PAPER_VALUES if pv.kind == 'explained_cumulative')
    assert 'sum of their normalized eigenvalues' in cumulative.quote and cumulative.index == 3


def test_a_wrong_transcription_is_caught(paper_lines):
    """The check above can fail: a wrong value, a wrong line, or a quote of another descriptor."""
    omega = PAPER_VALUES[0]
    assert transcription_errors(omega, paper_lines) == []
    assert transcription_errors(PaperValue(**{**omega.__dict__, 'value': -0.38}), paper_lines)
    assert transcription_errors(PaperValue(**{**omega.__dict__, 'line': 105}), paper_lines)
    assert transcription_errors(PaperValue(**{**omega.__dict__, 'key': 'C_v_all'}), paper_lines)


def test_the_briefs_numbers_are_the_papers():
    """The headline numbers as the issue lists them (in %)."""
    got = {(pv.key, pv.subset): round(100 * pv.value) for pv in PAPER_VALUES if pv.kind == 'c_S'}
    expected = {
        ('omega_all', 'all'): -39,
        ('C_v_all', 'all'): 39,
        ('F_vib_all', 'all'): -37,
        ('S_vib_all', 'all'): 33,
        ('Gamma', 'all'): -11,
        ('E_vac', 'all'): -22,
        ('alpha_c', 'all'): 25,
        ('SO', 'all'): 27,
        ('kappa', 'Li'): -56,
        ('nu', 'Li'): 55,
        ('v_r', 'Li'): 56,
        ('H_V', 'Li'): -43,
        ('P_c', 'Li'): 48,
        ('omega_30_d', 'Li'): -63,
        ('Gamma', 'Li'): -47,
    }
    assert {k: got[k] for k in expected} == expected
    bounds = {pv.key for pv in PAPER_VALUES if pv.kind == 'abs_c_S_max'}
    assert bounds == {'E_g', 'epsilon'}


def test_without_any_analysis_every_row_is_na_with_a_reason():
    table = beside_paper()
    assert len(table) == len(PAPER_VALUES)
    assert (table['ours'] == NA).all() and (table['inside'] == NA).all()
    assert all(table['note'].str.len() > 0)
    li = table[table.subset == 'Li']
    assert li['note'].str.contains('Li family').all()
    # partial outputs: a descriptor missing, an undefined interval, a short PCA, a reason for the Li family
    boot = {
        'intervals': {'omega_all': {'c_S': -0.5, 'low': float('nan'), 'high': float('nan')}},
        'n_materials': 4,
        'confidence': 0.95,
    }
    table = beside_paper(
        bootstrap=boot,
        correlations={'dropped': {'E_vac': '1 known values (< 3)'}},
        pca={'explained': [0.7, 0.3], 'n_materials': 4, 'D_contribution': None},
        reasons={'Li': 'only 2 materials in the selection'},
    )
    row = table.set_index(['key', 'subset']).loc
    assert row[('omega_all', 'all')]['ours'] == '-50 %' and row[('omega_all', 'all')]['inside'] == NA
    assert 'no bootstrap interval' in row[('omega_all', 'all')]['note']
    assert '1 known values' in row[('E_vac', 'all')]['note'] and row[('E_vac', 'all')]['ours'] == NA
    assert 'only 2 materials' in row[('kappa', 'Li')]['note']
    pc3 = table[table.quantity == 'PC3 share of the variance'].iloc[0]
    assert pc3['ours'] == NA and 'only 2 components' in pc3['note']
    assert table[table.quantity == 'D contribution to PC1'].iloc[0]['note'].startswith('D is not in the PCA')


def _planted_study(families=None, n_per_family=8):
    """16 materials (8 Li, 8 Na) at 500 K with D = 1e-6 exp(x):

    * omega_all = 10 - x (c_S = -1 exactly, in every resample), C_v_all = x^2 (c_S = +1);
    * kappa = -x within Li, independent of x within Na (c_S = -1 for the Li family only);
    * S_vib_all, Gamma, E_g, epsilon independent of x; E_vac unknown everywhere.
    """
    rng = np.random.default_rng(5)
    records = planted_records(rng, families=families, n_per_family=n_per_family)
    for rec in records:
        v = rec['values']
        x = math.log(v['D'] / 1e-6)
        v['omega_all'] = 10.0 - x
        v['C_v_all'] = x**2
        v['kappa'] = -x if rec['mobile_species'] == 'Li' else rng.normal()
        for key in ('S_vib_all', 'Gamma', 'E_g', 'epsilon'):
            v[key] = rng.normal()
        v['E_vac'] = None
    nodes = [orm.Dict(rec).store() for rec in records]
    params = {'bootstrap': {'n_boot': 200}, 'kmeans': {'k_max': 4}, 'ml': {'targets': []}}
    _, node = run_get_node(
        StudyWorkChain, records={f'r{n.pk}': n for n in nodes}, parameters=orm.Dict(params)
    )
    assert node.is_finished_ok, node.exit_message
    return records, node


def test_beside_the_paper_on_a_planted_study_matches_scipy():
    records, node = _planted_study()
    # the work chain bootstraps every family too (the paper's Fig. 2(c)), each a node of the table
    li_boot = node.outputs.bootstrap_families.Li
    assert li_boot['family'] == 'Li' and li_boot['n_materials'] == 8
    assert li_boot.creator.inputs.table.uuid == node.outputs.table.uuid
    table = figures.beside_paper_of(node)
    row = table.set_index(['key', 'subset']).loc

    def column(key, family=None):
        return [r['values'][key] for r in records if family is None or r['mobile_species'] == family]

    for (key, subset), expected in {
        ('omega_all', 'all'): -1.0,
        ('C_v_all', 'all'): 1.0,
        ('kappa', 'Li'): -1.0,
        ('S_vib_all', 'all'): None,
        ('Gamma', 'all'): None,
        ('Gamma', 'Li'): None,
        ('epsilon', 'all'): None,
    }.items():
        family = None if subset == 'all' else subset
        ref = sps.spearmanr(column('D', family), column(key, family)).statistic
        if expected is not None:
            assert ref == pytest.approx(expected)
        r = row[(key, subset)]
        assert r['ours_value'] == pytest.approx(ref, abs=1e-12), (key, subset)
        assert r['n_materials'] == (16 if subset == 'all' else 8)
        boot = node.outputs.bootstrap if subset == 'all' else li_boot
        assert (r['low'], r['high']) == (
            boot['intervals'][key]['low'],
            boot['intervals'][key]['high'],
        )
        paper = r['paper_value']
        if key in ('E_g', 'epsilon'):
            assert r['inside'] == ('yes' if r['low'] <= paper and r['high'] >= -paper else 'no')
            assert r['same_sign'] == NA
        else:
            assert r['inside'] == ('yes' if r['low'] <= paper <= r['high'] else 'no')
            assert r['same_sign'] == ('yes' if (ref > 0) == (paper > 0) else 'no')
    # exact correlations: the interval is the point, and the paper's value is not in it
    for key, subset in (('omega_all', 'all'), ('C_v_all', 'all'), ('kappa', 'Li')):
        r = row[(key, subset)]
        assert r['low'] == pytest.approx(r['ours_value']) == pytest.approx(r['high'])
        assert r['inside'] == 'no' and r['same_sign'] == 'yes'
    # the Li row is the Li family's, not all materials'
    assert row[('kappa', 'Li')]['ours_value'] != pytest.approx(
        sps.spearmanr(column('D'), column('kappa')).statistic
    )
    assert set(table['inside']) >= {'yes', 'no'}
    e_vac = row[('E_vac', 'all')]
    assert e_vac['ours'] == NA and e_vac['n_materials'] == NA and 'E_vac not in the study' in e_vac['note']
    # PCA and k-means: the stored numbers
    pca = node.outputs.pca
    pc3 = table[table.quantity == 'PC3 share of the variance'].iloc[0]
    assert pc3['ours_value'] == pytest.approx(pca['explained'][2])
    cumulative = table[table.quantity == 'PC1-PC3 share of the variance'].iloc[0]
    assert cumulative['ours_value'] == pytest.approx(sum(pca['explained'][:3]))
    ks = table[table.key == 'k']
    assert list(ks['quantity']) == ['k-means clusters (PC1-PC2)', 'k-means clusters (PC1-PC2-PC3)']
    assert (ks['ours_value'] == 6).all() and ks['note'].str.contains('best silhouette at k = ').all()


def test_the_rst_table_is_valid_restructuredtext():
    from docutils.core import publish_doctree

    boot = {
        'intervals': {'omega_all': {'c_S': -0.25, 'low': -0.5, 'high': 0.1}},
        'n_materials': 9,
        'confidence': 0.9,
    }
    rst = to_rst(beside_paper(bootstrap=boot), 'title with |c_S| and *stars*')
    tree = publish_doctree(rst, settings_overrides={'halt_level': 2, 'report_level': 2})
    table = tree.next_node(lambda n: n.tagname == 'table')
    rows = [r for r in table.findall(lambda n: n.tagname == 'row')]
    assert len(rows) == 1 + len(PAPER_VALUES)
    header = [e.astext() for e in rows[0].findall(lambda n: n.tagname == 'entry')]
    assert header[5] == '90 % interval'
    first = [e.astext() for e in rows[1].findall(lambda n: n.tagname == 'entry')]
    assert first[:7] == ['c_S(D, ⟨ω⟩ (all))', 'omega_all', 'all', '-39 %', '-25 %', '[-50 %, +10 %]', '9']
    assert first[7:9] == ['yes', 'yes']


def test_a_li_only_study_compares_its_materials_with_the_papers_li_numbers():
    """With Li materials only the study makes no per-family analyses; its all-materials bootstrap is the
    Li family's, and the Li rows use it (not n/a)."""
    records, node = _planted_study(families={'Li': 0.0}, n_per_family=5)
    assert 'bootstrap_families' not in node.outputs
    row = figures.beside_paper_of(node).set_index(['key', 'subset']).loc
    ref = sps.spearmanr([r['values']['D'] for r in records], [r['values']['kappa'] for r in records])
    assert row[('kappa', 'Li')]['ours_value'] == pytest.approx(ref.statistic) == pytest.approx(-1.0)
    assert row[('kappa', 'Li')]['n_materials'] == 5
