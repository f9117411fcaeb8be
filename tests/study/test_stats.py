"""The study's statistics against scipy / pandas / scikit-learn computed here on the same table, and
on planted structures that the analyses must find."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from aiida_superionic.study import ml, stats
from aiida_superionic.study.table import table_from_records
from tests.study.planted import planted_records


@pytest.fixture
def planted(rng):
    return table_from_records(planted_records(rng, n_per_family=10))


def test_table_has_every_descriptor_and_keeps_missing_values_missing(rng):
    table = table_from_records(planted_records(rng, n_per_family=3, missing={'B': 2, 'Sym': 1}))
    assert len(table) == 6
    assert table['B'].isna().sum() == 2  # never imputed
    assert table['Sym'].isna().sum() == 1
    assert table.attrs['units']['D'] == 'cm^2/s'
    assert list(table['family']) == ['Li'] * 3 + ['Na'] * 3  # sorted by family, then material


def test_correlations_match_pandas_and_scipy_pairwise(rng):
    table = table_from_records(planted_records(rng, n_per_family=8, missing={'B': 5, 'E': 3}))
    res = stats.correlation_matrices(table, 'spearman')
    x = stats.numeric_descriptors(table)[res['coefficients'].columns]
    expected = x.corr(method='spearman', min_periods=3)  # pandas: pairwise-complete observations
    np.testing.assert_allclose(res['coefficients'].to_numpy(), expected.to_numpy(), atol=1e-12)
    both = x['B'].notna() & x['E'].notna()
    assert res['n_pairs'].loc['B', 'E'] == both.sum() == 16 - 5
    ref = sps.spearmanr(x.loc[both, 'B'], x.loc[both, 'E'])
    assert res['p_values'].loc['B', 'E'] == pytest.approx(ref.pvalue, rel=1e-10)
    pearson = stats.correlation_matrices(table, 'pearson')
    ref = sps.pearsonr(x['D'], x['G'])
    assert pearson['coefficients'].loc['D', 'G'] == pytest.approx(ref.statistic, rel=1e-10)
    assert pearson['p_values'].loc['D', 'G'] == pytest.approx(ref.pvalue, rel=1e-8)


def test_spearman_finds_the_monotonic_relation_that_pearson_underrates(planted):
    cs = stats.correlation_matrices(planted, 'spearman')['coefficients'].loc['D', 'omega_all']
    cp = stats.correlation_matrices(planted, 'pearson')['coefficients'].loc['D', 'omega_all']
    assert cs == pytest.approx(1.0)  # D = exp(omega): perfectly monotonic
    assert cp < 0.9  # but far from linear


def test_constant_and_empty_descriptors_are_dropped_with_a_reason(rng):
    records = planted_records(rng, n_per_family=3)
    for rec in records:
        rec['values']['E_g'] = None  # e.g. an engine that cannot give a band gap
        rec['values']['Stc'] = 'stoichiometric'
    res = stats.correlation_matrices(table_from_records(records))
    assert 'E_g' not in res['coefficients'].index and '0 known values' in res['dropped']['E_g']
    assert res['dropped']['Stc'] == 'constant over the rows'


def test_pca_of_the_spearman_matrix_matches_sklearn_on_standardised_ranks(planted):
    from sklearn.decomposition import PCA

    res = stats.pca_spearman(planted)
    x = stats.numeric_descriptors(planted)[res['loadings'].index]
    ranks = x.rank().to_numpy()
    z = (ranks - ranks.mean(axis=0)) / ranks.std(axis=0)
    ref = PCA().fit(z)
    n = len(ref.explained_variance_ratio_)
    np.testing.assert_allclose(res['explained'].to_numpy()[:n], ref.explained_variance_ratio_, atol=1e-10)
    proj = ref.transform(z)
    for i in range(3):
        a, b = res['projections'].iloc[:, i].to_numpy(), proj[:, i]
        np.testing.assert_allclose(a, b * np.sign(a @ b), atol=1e-8)  # equal up to the sign of the PC
    # the spearman matrix itself is scipy's
    np.testing.assert_allclose(
        res['correlation'].to_numpy(), sps.spearmanr(x.to_numpy()).statistic, atol=1e-12
    )
    assert np.allclose((res['loadings'] ** 2).sum(axis=0), 1.0)


def test_pca_finds_the_planted_family_axis(planted):
    res = stats.pca_spearman(planted)
    assert res['explained'].iloc[0] > 0.5  # the family shift dominates the variance
    pc1 = res['projections']['PC1']
    fam = planted.loc[pc1.index, 'family']
    li, na = pc1[fam == 'Li'], pc1[fam == 'Na']
    assert li.max() < na.min() or na.max() < li.min()  # PC1 separates the two families completely
    assert res['contributions'].loc['D', 'PC1'] < 0.02  # D carries no family signal, as in the paper


def test_pca_drops_mostly_missing_columns_then_incomplete_rows(rng):
    table = table_from_records(planted_records(rng, n_per_family=6, missing={'B': 10, 'E': 2}))
    res = stats.pca_spearman(table, max_missing=0.25)
    assert 'B' in res['dropped_columns']  # 10/12 missing
    assert 'E' in res['loadings'].index and len(res['dropped_rows']) == 2  # rows without E left out


def test_kmeans_finds_the_planted_families(planted):
    from sklearn.metrics import adjusted_rand_score

    proj = stats.pca_spearman(planted)['projections'].iloc[:, :2].to_numpy()
    scan = stats.kmeans_scan(proj, k_max=6, seed=1)
    assert max(scan['silhouette'], key=scan['silhouette'].get) == 2
    assert all(scan['inertia'][k] >= scan['inertia'][k + 1] - 1e-9 for k in range(1, 6))  # the elbow curve
    labels, centroids, _ = stats.kmeans_clusters(proj, 2, seed=1)
    assert adjusted_rand_score(labels, planted['family']) == 1.0
    comp = stats.composition(labels, planted['family'])
    assert sorted(comp.max(axis=1).tolist()) == [10, 10] and centroids.shape == (2, 2)


def test_bootstrap_over_materials_matches_scipy_when_each_material_has_one_row(rng):
    records = planted_records(rng, n_per_family=12)
    for rec in records:
        rec['values']['G'] = rec['values']['omega_all'] + rng.normal(scale=2.0)  # a noisy correlate of D
    table = table_from_records(records)
    ours = stats.bootstrap_correlations(table, n_boot=1000, seed=3).loc['G']
    ref = sps.bootstrap(
        (table['G'].to_numpy(), table['D'].to_numpy()),
        lambda a, b: sps.spearmanr(a, b).statistic,
        paired=True,
        vectorized=False,
        n_resamples=1000,
        method='percentile',
        random_state=np.random.default_rng(4),
    ).confidence_interval
    assert ours['low'] < ours['c_S'] < ours['high']
    assert ours['low'] == pytest.approx(ref.low, abs=0.06) and ours['high'] == pytest.approx(
        ref.high, abs=0.06
    )
    assert ours['low'] > 0.3  # a real correlation: the interval excludes zero
    noise = stats.bootstrap_correlations(table, n_boot=500, seed=3).loc['B']  # family blobs only
    assert noise['low'] < 0 < noise['high'] or abs(noise['c_S']) < 0.5


def test_bootstrap_resamples_whole_materials(rng):
    """With each material's row duplicated at a second temperature, resampling rows would halve the
    interval's width; resampling materials keeps it."""
    one = table_from_records(planted_records(np.random.default_rng(5), n_per_family=8))
    two = table_from_records(
        planted_records(np.random.default_rng(5), n_per_family=8, temperatures=(500.0, 500.0))
    )
    w1 = stats.bootstrap_correlations(one, n_boot=1000, seed=1).loc['E']
    w2 = stats.bootstrap_correlations(two, n_boot=1000, seed=1).loc['E']
    assert (w2['high'] - w2['low']) == pytest.approx(w1['high'] - w1['low'], rel=0.35)


def test_mape_is_the_papers_eq_8():
    true, pred = np.array([0.0, 2.0, 4.0]), np.array([1.0, 2.0, 2.0])
    assert ml.mape(true, pred) == pytest.approx((1 + 0 + 2) / 3 / 2.0)  # finite although a true value is 0


def test_kernel_ridge_lomo_matches_sklearn_cross_val_predict(rng):
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    table = table_from_records(planted_records(rng, n_per_family=5, temperatures=(400.0, 600.0)))
    res = ml.train_validate(table, target='C_v_all', feature_set='harmonic', model='kernel_ridge')
    num, cat = res['numeric_features'], res['categorical_features']
    assert 'temperature_K' not in num and 'omega_all' not in num  # harmonic: no AIMD vibrational inputs
    assert {'D', 'msd', 'gamma'} <= set(num)  # but D, msd and the Lindemann ratio stay
    assert cat == ['family', 'Stc', 'formula', 'Sym']
    x = table[num + cat].copy()
    ref_model = TransformedTargetRegressor(
        make_pipeline(
            ColumnTransformer(
                [
                    ('n', StandardScaler(), num),
                    ('c', OneHotEncoder(handle_unknown='ignore', sparse_output=False), cat),
                ]
            ),
            KernelRidge(kernel='linear', alpha=1.0),
        ),
        transformer=StandardScaler(),
    )
    ref = cross_val_predict(ref_model, x, table['C_v_all'], groups=table['material'], cv=LeaveOneGroupOut())
    np.testing.assert_allclose(res['predictions']['predicted'].to_numpy(), ref, rtol=1e-9)
    # the paper's weighting: per-material MAPE weighted by its number of predictions
    by_mat = res['predictions'].groupby('material')
    expected = sum(len(g) * ml.mape(g['true'], g['predicted']) for _, g in by_mat) / len(table)
    assert res['mape_test'] == pytest.approx(expected)
    assert res['mape_test_pooled'] == pytest.approx(ml.mape(table['C_v_all'], ref))


def test_mlp_learns_a_planted_relation_and_is_reproducible(rng):
    table = table_from_records(planted_records(rng, n_per_family=6, temperatures=(400.0, 800.0)))
    kwargs = {
        'target': 'C_v_all',
        'feature_set': 'anharmonic',
        'model': 'mlp',
        'seed': 2,
        'max_iter': 300,
        'include_temperature': True,  # the planted C_v is a function of T
    }
    res = ml.train_validate(table, **kwargs)
    y = table['C_v_all'].to_numpy()
    groups = table['material'].to_numpy()
    baseline = np.array([y[groups != g].mean() for g in groups])  # predict the training mean
    assert res['mape_test'] < 0.5 * ml.mape(y, baseline)
    again = ml.train_validate(table, **kwargs)
    np.testing.assert_array_equal(again['predictions']['predicted'], res['predictions']['predicted'])
    assert 'msd' not in ml.feature_columns(table, 'D', 'anharmonic')[0]  # the same measurement as D


def test_ml_leaves_out_inputs_with_missing_values(rng):
    table = table_from_records(planted_records(rng, n_per_family=3, missing={'B': 1}))
    numeric, _, dropped = ml.feature_columns(table, 'D', 'anharmonic')
    assert 'B' not in numeric and dropped['B'] == 'missing in 1 of 6 rows'
    with pytest.raises(stats.StudyError, match='unknown target'):
        ml.feature_columns(table, 'nope', 'anharmonic')
    with pytest.raises(stats.StudyError, match='at least 2 materials'):
        ml.train_validate(table[table.material == table.material.iloc[0]], target='D', model='kernel_ridge')


def test_select_by_window_and_family(rng):
    table = table_from_records(planted_records(rng, n_per_family=2, temperatures=(300.0, 500.0, 700.0)))
    sel = stats.select(table, (400, 600), 'Li')
    assert set(sel['temperature_K']) == {500.0} and set(sel['family']) == {'Li'} and len(sel) == 2
    assert isinstance(sel, pd.DataFrame)


# The AIMD vibrational descriptors of the paper (Table 1 and the text: six of them for all, nd and d
# ions, theta_d for all ions): what the "harmonic" ML inputs leave out, and nothing else.
PAPER_VIBRATIONAL = [
    *(
        f'{k}_{g}'
        for k in ('omega', 'omega_30', 'E_vib', 'C_v', 'F_vib', 'S_vib')
        for g in ('all', 'nd', 'd')
    ),
    'theta_D',
]


def test_ml_feature_columns_of_each_set(rng):
    from aiida_superionic.descriptors import BY_KEY, PAPER_KEYS

    table = table_from_records(planted_records(rng, n_per_family=3, temperatures=(400.0, 600.0)))
    numeric_paper = [k for k in PAPER_KEYS if BY_KEY[k].numeric]
    num, cat, dropped = ml.feature_columns(table, 'D', 'anharmonic')
    assert num == [k for k in numeric_paper if k not in ('D', 'msd')]  # no T, no extras (theta_D_nd/_d)
    assert cat == ['family', 'Stc', 'formula', 'Sym'] and dropped == {}
    num, _, _ = ml.feature_columns(table, 'D', 'harmonic')
    assert num == [k for k in numeric_paper if k not in ('D', 'msd', *PAPER_VIBRATIONAL)]
    assert {'gamma', 'Gamma'} <= set(num)
    num, _, _ = ml.feature_columns(table, 'C_v_all', 'harmonic')
    assert num == [k for k in numeric_paper if k not in PAPER_VIBRATIONAL]  # D, msd and gamma stay
    # the temperature only on request, as the last input
    num, _, _ = ml.feature_columns(table, 'C_v_all', 'harmonic', include_temperature=True)
    assert num[-1] == 'temperature_K' and num[:-1] == [k for k in numeric_paper if k not in PAPER_VIBRATIONAL]
    res = ml.train_validate(table, target='C_v_all', feature_set='anharmonic', model='kernel_ridge')
    assert 'temperature_K' not in res['numeric_features'] and res['include_temperature'] is False
    assert res['n_samples'] == len(table) == 12  # the ML keeps every record: 6 materials x 2 temperatures


def _nearest_500_per_material(records: list[dict]) -> list[dict]:
    """The documented rule, written out on the record dicts: nearest 500 K, then stoichiometric, then
    the lower temperature, then the smaller UUID."""
    chosen = {}
    for rec in records:
        key = (
            abs(rec['temperature_K'] - 500.0),
            not rec['stoichiometric'],
            rec['temperature_K'],
            rec['uuid'],
        )
        best = chosen.get(rec['material'])
        if best is None or key < best[0]:
            chosen[rec['material']] = (key, rec)
    return [rec for _, rec in chosen.values()]


def test_one_row_per_material_p_values_are_scipys_on_the_deduplicated_table(rng):
    records = planted_records(
        rng, n_per_family=5, temperatures=(400.0, 500.0, 600.0), stoichiometries=(True, False)
    )
    for i, rec in enumerate(records):
        rec['uuid'] = f'{i:04d}'
        # a second, independent T dependence of a 0 K-looking column, so the chosen record matters
        rec['values']['G'] += 0.01 * rec['temperature_K'] * (1 if rec['stoichiometric'] else -1)
    # take out records so every branch of the rule is used: no stoichiometric 500 K record (-> the
    # 500 K vacancy record), no 500 K record at all (-> 400 K, the lower of the nearest), only vacancies
    drop = {
        ('Li00X', 500.0, True),
        ('Li01X', 500.0, True),
        ('Li01X', 500.0, False),
        ('Na00X', 400.0, True),
        ('Na00X', 500.0, True),
        ('Na00X', 600.0, True),
    }
    records = [r for r in records if (r['material'], r['temperature_K'], r['stoichiometric']) not in drop]
    table = table_from_records(records)
    assert len(stats.select(table, (400, 600))) == len(records) == 60 - 6

    rows = stats.analysis_rows(table, (400.0, 600.0))
    assert len(rows) == rows['material'].nunique() == 10  # n = number of materials
    expected = table_from_records(_nearest_500_per_material(records))
    assert sorted(rows['uuid']) == sorted(expected['uuid'])
    picked = dict(
        zip(rows['material'], zip(rows['temperature_K'], rows['stoichiometric'], strict=True), strict=True)
    )
    assert picked['Li00X'] == (500.0, False) and picked['Li01X'] == (400.0, True)
    assert picked['Na00X'] == (500.0, False) and picked['Na01X'] == (500.0, True)

    res = stats.correlation_matrices(rows, 'spearman')
    for a, b in (('D', 'omega_all'), ('D', 'G'), ('G', 'B'), ('D', 'Stc')):
        x = stats.numeric_descriptors(expected, [a, b])
        ref = sps.spearmanr(x[a], x[b])
        assert res['coefficients'].loc[a, b] == pytest.approx(ref.statistic, rel=1e-12)
        assert res['p_values'].loc[a, b] == pytest.approx(ref.pvalue, rel=1e-10)
        assert res['n_pairs'].loc[a, b] == 10
    pca = stats.pca_spearman(rows)
    assert len(pca['projections']) == 10


def test_the_study_uses_the_papers_54_columns_by_default(rng):
    from aiida_superionic.descriptors import PAPER_KEYS

    table = table_from_records(planted_records(rng, n_per_family=6))
    assert {'theta_D_nd', 'theta_D_d'} <= set(table.columns)  # the extras are in the table
    res = stats.correlation_matrices(table)
    kept = list(res['coefficients'].index)
    assert kept == [k for k in PAPER_KEYS if k not in res['dropped']]  # Table 1's order
    assert set(kept) | set(res['dropped']) == set(PAPER_KEYS)
    pca = stats.pca_spearman(table)
    assert set(pca['loadings'].index) | set(pca['dropped_columns']) == set(PAPER_KEYS)
    boot = stats.bootstrap_correlations(table, n_boot=20)
    assert set(boot.index) <= set(PAPER_KEYS) - {'D'}
    every = stats.correlation_matrices(table, columns=stats.columns_of('all'))
    assert {'theta_D_nd', 'theta_D_d'} <= set(every['coefficients'].index)  # on request


def test_kmeans_uses_the_papers_six_clusters_or_the_largest_possible(planted):
    choice = stats.choose_k(20)
    assert choice['k'] == 6 and choice['note'] is None
    assert stats.choose_k(7)['k'] == 6  # 7 materials: 6 clusters are possible
    few = stats.choose_k(5)
    assert few['k'] == 4 and few['k_requested'] == 6 and 'only 5 materials' in few['note']
    assert stats.choose_k(20, 'silhouette', {2: 0.8, 3: 0.5})['k'] == 2
    with pytest.raises(stats.StudyError, match='at least 3 materials'):
        stats.choose_k(2)
    with pytest.raises(stats.StudyError, match='positive integer'):
        stats.choose_k(20, 0)
