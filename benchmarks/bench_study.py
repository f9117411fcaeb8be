"""The whole study on a planted 61-material x 3-temperature table: each stage of ``aiida_superionic``
against plain scipy / scikit-learn calls for the same work, in one run.

The table: 61 planted materials in the paper's proportions of mobile species (Li 28, F 14, Na 9, O 5,
Ag 5) at 500, 700 and 900 K (183 records; ``tests/study/planted.py``). The statistics take one row
per material (``stats.analysis_rows``, the record nearest 500 K in the 400-600 K window), the ML
models every record, as the study's calcfunctions do.

Stages, with the study's defaults (``aiida_superionic.study.workchain.DEFAULTS``):

* correlations: Spearman and Pearson matrices with p-values for all materials and for each family with
  at least 3 materials (``stats.correlation_matrices``); peer: ``scipy.stats.spearmanr``/``pearsonr``
  pair by pair on the pairwise-complete rows;
* bootstrap: 1,000 resamples of the materials, Spearman c_S(D, every descriptor) with 95 % percentile
  intervals (``stats.bootstrap_correlations``); peer: one ``scipy.stats.spearmanr`` call on the 2-D
  array of each resample;
* PCA of the Spearman matrix (``stats.pca_spearman``); peer: ``sklearn.decomposition.PCA`` on the
  standardised ranks;
* k-means in PC1-PC2 and PC1-PC3: elbow and silhouette for k = 1..8, then k = 6 (``stats.kmeans_scan``
  and ``kmeans_clusters``); peer: ``sklearn.cluster.KMeans`` + ``silhouette_score`` as they come;
* ML: targets x feature sets x models, leave one material out and a final fit (``ml.train_validate``);
  peer: ``sklearn.model_selection.cross_validate`` with ``LeaveOneGroupOut`` on the same pipeline
  (``ml.make_model``), train predictions from the returned estimators, and a final fit.

Each pair of results is compared (largest difference); the run stops with an error if they disagree.
``--workchain`` also runs the whole ``superionic.study`` work chain (its calcfunctions, with the
same parameters) on the stored records in a throw-away profile (``verdi presto``, SQLite, in a
temporary AIIDA_PATH), then renders its figures and report.

    .venv/bin/python benchmarks/bench_study.py --quick            # small ML settings, about 1 min
    .venv/bin/python benchmarks/bench_study.py --ml-models kernel_ridge --workchain
    .venv/bin/python benchmarks/bench_study.py                    # the study's defaults (MLP: long)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Planted materials per mobile species (61, the paper's proportions) and their descriptor shifts.
FAMILIES = {'Li': (-3.0, 28), 'F': (0.0, 14), 'Na': (3.0, 9), 'O': (6.0, 5), 'Ag': (-6.0, 5)}
TEMPERATURES = (500.0, 700.0, 900.0)
WINDOW = (400.0, 600.0)


def planted_table_records(seed: int = 0, missing: bool = True) -> list[dict]:
    """Record attribute dicts of the 61 x 3 planted table (a few values missing when ``missing``)."""
    from tests.study.planted import planted_records

    rng = np.random.default_rng(seed)
    records = []
    for family, (shift, n) in FAMILIES.items():
        gaps = {'E_g': 6, 'B': 3} if (missing and family == 'Li') else None
        records += planted_records(
            rng, families={family: shift}, n_per_family=n, temperatures=TEMPERATURES, missing=gaps
        )
    return records


class Clock:
    def __init__(self):
        self.rows: list[tuple[str, float, float | None, str]] = []

    def time(self, func, *args, **kwargs):
        t0 = time.perf_counter()
        out = func(*args, **kwargs)
        return out, time.perf_counter() - t0


# --------------------------------------------------------------------------------------------------
# ours: the functions the study's calcfunctions call
# --------------------------------------------------------------------------------------------------


def ours_correlations(table, families):
    from aiida_superionic.study import stats

    out = {}
    for family in [None, *families]:
        rows = stats.analysis_rows(table, WINDOW, family)
        for method in ('spearman', 'pearson'):
            out[family, method] = stats.correlation_matrices(rows, method)
    return out


def ours_bootstrap(rows, n_boot, seed):
    from aiida_superionic.study import stats

    return stats.bootstrap_correlations(rows, 'D', n_boot=n_boot, seed=seed)


def ours_kmeans(points_by_n, seed):
    from aiida_superionic.study import stats

    out = {}
    for n, points in points_by_n.items():
        scan = stats.kmeans_scan(points, 8, seed)
        out[n] = (scan, stats.kmeans_clusters(points, stats.PAPER_K, seed))
    return out


def ours_ml(table, job, max_iter, seed):
    from aiida_superionic.study import ml

    target, feature_set, model = job
    return ml.train_validate(table, target, feature_set, model, seed=seed, max_iter=max_iter)


# --------------------------------------------------------------------------------------------------
# the peer: plain scipy / scikit-learn calls for the same work
# --------------------------------------------------------------------------------------------------


def peer_correlations(table, families):
    from scipy import stats as sps

    from aiida_superionic.study import stats

    out = {}
    for family in [None, *families]:
        rows = stats.analysis_rows(table, WINDOW, family)
        x = stats.numeric_descriptors(rows)
        keep = [k for k in x.columns if x[k].notna().sum() >= 3 and x[k].nunique() >= 2]
        values = x[keep].to_numpy()
        for method, func in (('spearman', sps.spearmanr), ('pearson', sps.pearsonr)):
            n = len(keep)
            coef, pval = np.eye(n), np.zeros((n, n))
            for i in range(n):
                for j in range(i + 1, n):
                    both = np.isfinite(values[:, i]) & np.isfinite(values[:, j])
                    a, b = values[both, i], values[both, j]
                    if both.sum() < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
                        coef[i, j] = coef[j, i] = pval[i, j] = pval[j, i] = np.nan
                        continue
                    res = func(a, b)
                    coef[i, j] = coef[j, i] = res.statistic
                    pval[i, j] = pval[j, i] = res.pvalue
            out[family, method] = (keep, coef, pval)
    return out


def peer_bootstrap(rows, n_boot, seed, confidence=0.95):
    """The same resamples (materials drawn with the study's generator), one 2-D spearmanr per draw;
    a descriptor with a missing value in the draw: pairwise-complete, pair by pair."""
    from scipy import stats as sps

    from aiida_superionic.study import stats

    x = stats.numeric_descriptors(rows, [*stats.DESCRIPTOR_KEYS, 'D'])
    keys = [k for k in x.columns if k != 'D' and x[k].notna().sum() >= 3 and x[k].nunique() >= 2]
    materials = rows['material'].to_numpy()
    unique = np.unique(materials)
    rows_of = [np.flatnonzero(materials == m) for m in unique]
    rng = np.random.default_rng(seed)
    draws = [
        np.concatenate([rows_of[i] for i in rng.integers(0, len(unique), len(unique))]) for _ in range(n_boot)
    ]
    data = x[['D', *keys]].to_numpy()
    complete = np.isfinite(data).all(axis=0)
    boot = np.full((n_boot, len(keys)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for b, idx in enumerate(draws):
            sample = data[idx]
            full = np.flatnonzero(complete[1:])
            rho = sps.spearmanr(sample[:, [0, *(full + 1)]]).statistic
            boot[b, full] = rho[0, 1:]
            for i in np.flatnonzero(~complete[1:]):
                ok = np.isfinite(sample[:, i + 1])
                if ok.sum() >= 3:
                    boot[b, i] = sps.spearmanr(sample[ok, 0], sample[ok, i + 1]).statistic
    alpha = (1 - confidence) / 2
    out = {}
    for i, k in enumerate(keys):
        valid = boot[np.isfinite(boot[:, i]), i]
        out[k] = np.quantile(valid, [alpha, 1 - alpha])
    return out


def peer_pca(rows):
    from sklearn.decomposition import PCA

    from aiida_superionic.study import stats

    x, _, _ = stats.complete_matrix(rows)
    ranks = x.rank().to_numpy()
    z = (ranks - ranks.mean(axis=0)) / ranks.std(axis=0)
    pca = PCA().fit(z)
    return pca.explained_variance_ratio_, pca.transform(z)


def peer_kmeans(points_by_n, seed):
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    out = {}
    for n, points in points_by_n.items():
        inertia, silhouette = {}, {}
        for k in range(1, 9):
            km = KMeans(n_clusters=k, n_init=20, random_state=seed).fit(points)
            inertia[k] = km.inertia_
            if k >= 2:
                silhouette[k] = silhouette_score(points, km.labels_)
        km = KMeans(n_clusters=6, n_init=20, random_state=seed).fit(points)
        out[n] = ({'inertia': inertia, 'silhouette': silhouette}, km.labels_)
    return out


def peer_ml(table, job, max_iter, seed):
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import LeaveOneGroupOut, cross_validate

    from aiida_superionic.study import ml

    target, feature_set, model = job
    numeric, categorical, _ = ml.feature_columns(table, target, feature_set)
    x = table[numeric + categorical].copy()
    for c in categorical:
        x[c] = x[c].astype(str)
    y = table[target].to_numpy(dtype=float)
    groups = table['material'].to_numpy()
    estimator = ml.make_model(model, numeric, categorical, seed, max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ConvergenceWarning)
        cv = LeaveOneGroupOut()
        res = cross_validate(
            estimator, x, y, groups=groups, cv=cv, return_estimator=True, return_indices=True
        )
        predicted = np.empty_like(y)
        train_mape = []
        for fitted, train, test in zip(
            res['estimator'], res['indices']['train'], res['indices']['test'], strict=True
        ):
            predicted[test] = fitted.predict(x.iloc[test])
            train_mape.append((len(test), ml.mape(y[train], fitted.predict(x.iloc[train]))))
        clone(estimator).fit(x, y)
    return predicted, sum(k * m for k, m in train_mape) / len(y)


# --------------------------------------------------------------------------------------------------


def compare(name, ours, peer) -> float:
    """Largest absolute difference; NaN where both are NaN counts as equal."""
    ours, peer = np.asarray(ours, dtype=float), np.asarray(peer, dtype=float)
    if ours.shape != peer.shape or not np.array_equal(np.isnan(ours), np.isnan(peer)):
        raise SystemExit(f'Error: {name}: ours and the peer disagree in shape or in missing values')
    ok = np.isfinite(ours)
    return float(np.max(np.abs(ours[ok] - peer[ok]), initial=0.0))


def run_stats(table, args, report):
    from aiida_superionic.study import stats

    rows = stats.analysis_rows(table, WINDOW)
    counts = rows.groupby('family')['material'].nunique()
    families = sorted(f for f, n in counts.items() if n >= 3)

    ours, t_ours = Clock().time(ours_correlations, table, families)
    peer, t_peer = Clock().time(peer_correlations, table, families)
    diff = 0.0
    for key, (keep, coef, pval) in peer.items():
        res = ours[key]
        assert list(res['coefficients'].index) == keep
        diff = max(diff, compare(f'correlations {key}', res['coefficients'].to_numpy(), coef))
        diff = max(diff, compare(f'p-values {key}', res['p_values'].to_numpy(), pval) / 1.0)
    report(f'correlations ({len(ours)} matrices)', t_ours, t_peer, diff)

    ours, t_ours = Clock().time(ours_bootstrap, rows, args.n_boot, args.seed)
    peer, t_peer = Clock().time(peer_bootstrap, rows, args.n_boot, args.seed)
    diff = max(compare(f'bootstrap {k}', ours.loc[k, ['low', 'high']].to_numpy(), v) for k, v in peer.items())
    assert set(ours.index) == set(peer)
    report(f'bootstrap ({args.n_boot} resamples)', t_ours, t_peer, diff)

    pca, t_ours = Clock().time(stats.pca_spearman, rows)
    (ratio, proj), t_peer = Clock().time(peer_pca, rows)
    n = len(ratio)
    diff = compare('PCA explained', pca['explained'].to_numpy()[:n], ratio)
    a, b = pca['projections'].to_numpy()[:, :3], proj[:, :3]
    diff = max(diff, compare('PCA projections', a, b * np.sign((a * b).sum(axis=0))))
    report('PCA', t_ours, t_peer, diff)

    points = {n: pca['projections'].to_numpy()[:, :n] for n in (2, 3)}
    ours, t_ours = Clock().time(ours_kmeans, points, args.seed)
    peer, t_peer = Clock().time(peer_kmeans, points, args.seed)
    diff = 0.0
    for n in points:
        (scan, (labels, _, _)), (pscan, plabels) = ours[n], peer[n]
        for what in ('inertia', 'silhouette'):
            keys = sorted(scan[what])
            diff = max(
                diff,
                compare(f'k-means {what}', [scan[what][k] for k in keys], [pscan[what][k] for k in keys]),
            )
        # the same partition (the study numbers its clusters by size)
        same = len({(a, b) for a, b in zip(labels, plabels, strict=True)}) == len(set(labels))
        if not same:
            raise SystemExit(f'Error: k-means PC1-PC{n}: ours and the peer found different clusters')
    report('k-means scan k=1..8 + k=6 (PC2, PC3)', t_ours, t_peer, diff)


def run_ml(table, args, report):
    jobs = [(t, f, m) for t in args.targets for f in args.feature_sets for m in args.ml_models]
    for job in jobs:
        res, t_ours = Clock().time(ours_ml, table, job, args.max_iter, args.seed)
        (predicted, train_mape), t_peer = Clock().time(peer_ml, table, job, args.max_iter, args.seed)
        scale = np.abs(res['predictions']['true']).mean()
        diff = compare(f'ML {job}', res['predictions']['predicted'].to_numpy() / scale, predicted / scale)
        diff = max(diff, abs(res['mape_train'] - train_mape))
        report(f'ML {"/".join(job)} LOMO ({res["n_materials"]} folds + final)', t_ours, t_peer, diff)


def run_workchain(records, args):
    """The whole ``superionic.study`` work chain on the stored records in a throw-away profile."""
    root = Path(tempfile.mkdtemp(prefix='bench-study-'))
    os.environ['AIIDA_PATH'] = str(root)
    bindir = Path(sys.executable).parent
    name = f'bench_{uuid.uuid4().hex[:8]}'
    env = {**os.environ, 'PATH': f'{bindir}:{os.environ["PATH"]}'}
    proc = subprocess.run(
        [str(bindir / 'verdi'), 'presto', '--profile-name', name, '--use-zeromq'],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode:
        raise SystemExit(f'Error: profile setup failed: {(proc.stderr or proc.stdout).strip()[-300:]}')
    try:
        from aiida import load_profile, orm
        from aiida.engine import run_get_node

        from aiida_superionic.study.figures import render
        from aiida_superionic.study.workchain import StudyWorkChain, study_parameters

        load_profile(name)
        nodes = {}
        for i, rec in enumerate(records):
            nodes[f'r{i}'] = orm.Dict(rec).store()
        params = study_parameters(
            {
                'bootstrap': {'n_boot': args.n_boot},
                'seed': args.seed,
                'ml': {
                    'targets': list(args.targets),
                    'feature_sets': list(args.feature_sets),
                    'models': list(args.ml_models),
                    'max_iter': args.max_iter,
                },
            }
        )
        t0 = time.perf_counter()
        _, node = run_get_node(StudyWorkChain, records=nodes, parameters=orm.Dict(params))
        t_chain = time.perf_counter() - t0
        if not node.is_finished_ok:
            raise SystemExit(f'Error: the study failed: {node.exit_message}')
        t0 = time.perf_counter()
        render(node, root / 'figures')
        t_render = time.perf_counter() - t0
        return t_chain, t_render, node.base.extras.get('skipped', {})
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--quick', action='store_true', help='n_boot 200; ML: C_v_all, anharmonic, max_iter 20'
    )
    parser.add_argument('--n-boot', type=int, default=1000)
    parser.add_argument('--targets', nargs='+', default=['D', 'omega_all', 'C_v_all'])
    parser.add_argument('--feature-sets', nargs='+', default=['anharmonic', 'harmonic'])
    parser.add_argument('--ml-models', nargs='+', default=['mlp', 'kernel_ridge'])
    parser.add_argument('--max-iter', type=int, default=2000)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-ml', action='store_true')
    parser.add_argument('--no-stats', action='store_true', help='only the ML stages')
    parser.add_argument(
        '--workchain', action='store_true', help='also the work chain on a throw-away profile'
    )
    args = parser.parse_args()
    if args.quick:
        args.n_boot, args.targets, args.feature_sets, args.max_iter = 200, ['C_v_all'], ['anharmonic'], 20

    from aiida_superionic.study.table import table_from_records

    records = planted_table_records(args.seed)
    table = table_from_records(records)
    import sklearn

    print(
        f'machine: {platform.machine()}, nproc {os.cpu_count()}, load average '
        f'{" ".join(f"{v:.1f}" for v in os.getloadavg())}; Python {platform.python_version()}, '
        f'numpy {np.__version__}, sklearn {sklearn.__version__}'
    )
    print(
        f'table: {len(table)} records, {table["material"].nunique()} materials x {len(TEMPERATURES)} '
        f'temperatures; n_boot {args.n_boot}; ML {args.targets} x {args.feature_sets} x {args.ml_models}, '
        f'max_iter {args.max_iter}'
    )
    print(f'{"stage":<52} {"ours s":>8} {"peer s":>8} {"peer/ours":>9} {"max |diff|":>11}', flush=True)
    total = [0.0, 0.0]

    def report(name, t_ours, t_peer, diff):
        total[0] += t_ours
        total[1] += t_peer
        print(f'{name:<52} {t_ours:8.2f} {t_peer:8.2f} {t_peer / t_ours:8.1f}x {diff:11.1e}', flush=True)

    if not args.no_stats:
        run_stats(table, args, report)
    if not args.no_ml:
        run_ml(table, args, report)
    print(
        f'{"whole study (sum of the stages)":<52} {total[0]:8.2f} {total[1]:8.2f} {total[1] / total[0]:8.1f}x'
    )
    print(f'load average after: {" ".join(f"{v:.1f}" for v in os.getloadavg())}')
    if args.workchain:
        t_chain, t_render, skipped = run_workchain(records, args)
        print(
            f'work chain superionic.study on {len(records)} stored records: {t_chain:.2f} s; figures + report {t_render:.2f} s'
        )
        if skipped:
            print(f'  skipped: {skipped}')


if __name__ == '__main__':
    main()
