"""The study's fast paths give the numbers of a straightforward scipy / scikit-learn reference on the
same table: all descriptor pairs at once (correlations), kernel-ridge folds on numpy arrays, network
folds in worker processes, k-means on one thread."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats as sps

from aiida_superionic.study import ml, stats
from aiida_superionic.study.table import table_from_records
from tests.study.planted import planted_records


@pytest.fixture
def gappy(rng):
    """Three families, ties in Sym, and descriptors missing in some rows (pairwise-complete pairs)."""
    records = planted_records(
        rng, families={'Li': -3.0, 'Na': 3.0, 'Ag': 0.0}, n_per_family=7, missing={'B': 4, 'E_g': 2}
    )
    return table_from_records(records)


@pytest.mark.parametrize('method', ['spearman', 'pearson'])
def test_correlations_are_scipys_pair_by_pair(gappy, method):
    res = stats.correlation_matrices(gappy, method)
    x = stats.numeric_descriptors(gappy)[res['coefficients'].columns].to_numpy()
    func = sps.spearmanr if method == 'spearman' else sps.pearsonr
    n = x.shape[1]
    coef, pval, npairs = np.eye(n), np.zeros((n, n)), np.zeros((n, n), dtype=int)
    for i in range(n):
        npairs[i, i] = np.isfinite(x[:, i]).sum()
        for j in range(i + 1, n):
            both = np.isfinite(x[:, i]) & np.isfinite(x[:, j])
            r = func(x[both, i], x[both, j])
            coef[i, j] = coef[j, i] = r.statistic
            pval[i, j] = pval[j, i] = r.pvalue
            npairs[i, j] = npairs[j, i] = both.sum()
    np.testing.assert_allclose(res['coefficients'].to_numpy(), coef, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res['p_values'].to_numpy(), pval, rtol=1e-9, atol=1e-300)
    np.testing.assert_array_equal(res['n_pairs'].to_numpy(), npairs)
    labels = list(res['coefficients'].columns)
    assert {'B', 'E_g', 'D'} <= set(labels)  # both kinds of pairs are in the comparison
    assert npairs[labels.index('B'), labels.index('E_g')] == len(gappy) - 4  # the first rows miss both


def _reference_lomo(table, target, feature_set, model, seed, max_iter):
    """Leave one material out with the study's scikit-learn pipeline, fold by fold, in this process."""
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    numeric, categorical, _ = ml.feature_columns(table, target, feature_set)
    x = table[numeric + categorical].copy()
    for c in categorical:
        x[c] = x[c].astype(str)
    y = table[target].to_numpy(dtype=float)
    materials = table['material'].to_numpy()
    estimator = ml.make_model(model, numeric, categorical, seed, max_iter)
    predicted, train_terms = np.empty_like(y), []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ConvergenceWarning)
        for material in sorted(set(materials)):
            test = materials == material
            fitted = clone(estimator).fit(x[~test], y[~test])
            predicted[test] = fitted.predict(x[test])
            train_terms.append((test.sum(), ml.mape(y[~test], fitted.predict(x[~test]))))
        final = clone(estimator).fit(x, y).predict(x)
    return predicted, sum(k * m for k, m in train_terms) / len(y), final


def test_kernel_ridge_folds_are_the_pipelines_with_an_unseen_family(rng):
    # one Cu material: when it is held out its family (and formula) is unseen in training, and the
    # one-hot columns of the numpy fold must ignore it as OneHotEncoder(handle_unknown='ignore') does
    records = planted_records(
        rng, families={'Li': -3.0, 'Na': 3.0}, n_per_family=5, temperatures=(500.0, 800.0)
    )
    records += planted_records(rng, families={'Cu': 1.0}, n_per_family=1, temperatures=(500.0, 800.0))
    table = table_from_records(records)
    for target, feature_set in (('D', 'anharmonic'), ('C_v_all', 'harmonic')):
        res = ml.train_validate(table, target, feature_set, 'kernel_ridge')
        predicted, train_mape, final = _reference_lomo(table, target, feature_set, 'kernel_ridge', 0, 2000)
        np.testing.assert_allclose(res['predictions']['predicted'].to_numpy(), predicted, rtol=1e-9)
        assert res['mape_train'] == pytest.approx(train_mape, rel=1e-9)
        np.testing.assert_allclose(
            res['model'].predict(ml._inputs(table, res['numeric_features'], res['categorical_features'])),
            final,
        )


def test_network_folds_in_workers_are_the_same_as_here(rng):
    table = table_from_records(planted_records(rng, n_per_family=3, temperatures=(500.0, 800.0)))
    kwargs = {'target': 'C_v_all', 'feature_set': 'anharmonic', 'model': 'mlp', 'seed': 3, 'max_iter': 15}
    here = ml.train_validate(table, **kwargs, n_jobs=1)
    workers = ml.train_validate(table, **kwargs, n_jobs=2)
    predicted, train_mape, final = _reference_lomo(table, 'C_v_all', 'anharmonic', 'mlp', 3, 15)
    # the same fits, wherever they run: bit for bit
    np.testing.assert_array_equal(workers['predictions']['predicted'], here['predictions']['predicted'])
    assert workers['mape_train'] == here['mape_train']
    # the reference runs with the default BLAS threads: equal to rounding
    for res in (here, workers):
        np.testing.assert_allclose(res['predictions']['predicted'].to_numpy(), predicted, rtol=1e-10)
        assert res['mape_train'] == pytest.approx(train_mape, rel=1e-10)
        x = ml._inputs(table, res['numeric_features'], res['categorical_features'])
        np.testing.assert_allclose(res['model'].predict(x), final, rtol=1e-10)


def test_kmeans_on_one_thread_finds_sklearns_clusters(rng):
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    points = np.concatenate([rng.normal(c, 0.4, size=(12, 2)) for c in ((0, 0), (3, 0), (0, 3), (3, 3))])
    scan = stats.kmeans_scan(points, 6, seed=1)
    for k in range(1, 7):
        km = KMeans(n_clusters=k, n_init=20, random_state=1).fit(points)
        assert scan['inertia'][k] == pytest.approx(km.inertia_, rel=1e-12)
        if k >= 2:
            assert scan['silhouette'][k] == pytest.approx(silhouette_score(points, km.labels_), rel=1e-12)
    labels, _, inertia = stats.kmeans_clusters(points, 4, seed=1)
    km = KMeans(n_clusters=4, n_init=20, random_state=1).fit(points)
    assert len(set(zip(labels, km.labels_, strict=True))) == 4  # the same partition, renumbered
    assert inertia == pytest.approx(km.inertia_, rel=1e-12)


@pytest.mark.parametrize('model', ['kernel_ridge', 'mlp'])
def test_a_category_missing_in_some_rows_is_dropped_like_a_numeric_input(rng, model):
    # a record imported from an AIMD file has no structure, so its Sym is missing; pandas >= 3 keeps
    # that as NaN through astype(str), and a NaN among strings broke the one-hot sort (CI, stop 18)
    records = planted_records(rng, n_per_family=4, missing={'Sym': 2})
    table = table_from_records(records)
    assert table['Sym'].isna().sum() == 2
    res = ml.train_validate(table, 'C_v_all', 'harmonic', model, max_iter=200, n_jobs=1)
    assert 'Sym' not in res['categorical_features']
    assert res['dropped_features']['Sym'] == 'missing in 2 of 8 rows'
    assert np.isfinite(res['predictions']['predicted']).all()
