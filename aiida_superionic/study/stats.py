"""The paper's statistics on a descriptor table (pure pandas/scipy/scikit-learn, no AiiDA import).

Every function takes the table of :func:`aiida_superionic.study.table.table_from_records` (one row per
material x temperature x stoichiometry; descriptor columns keyed by the registry) and returns plain
numbers, arrays and data frames. The descriptor columns are the paper's 54 in Table 1's order
(:data:`aiida_superionic.descriptors.PAPER_KEYS`) unless ``columns`` says otherwise.

One row per material: the paper's T = 500 +- 100 K analyses (correlations, p-values, PCA, k-means)
describe materials, and the 0 K descriptors of a material are the same in all its records, so several
records of one material are not independent samples. :func:`analysis_rows` keeps one record per
material (:func:`one_row_per_material`: the record nearest the reference temperature, 500 K; on a tie
the stoichiometric one, then the lower temperature, then the smaller UUID), so n = number of materials.

Missing values are never imputed:

* correlations use, for each pair of descriptors, the rows where both are known (pairwise-complete);
  the number of pairs is returned beside each coefficient, and a descriptor with fewer than
  ``min_pairs`` known values, or with a single value, is dropped and listed with the reason;
* PCA and k-means need one matrix: descriptors missing in more than ``max_missing`` of the rows (or
  constant) are dropped first, then the rows that still miss a value; both lists are returned.

The two text descriptors enter the correlations as ordinal numbers: Sym by the order of the crystal
systems (triclinic 1 ... cubic 7, the holohedry order) and Stc as 1 for stoichiometric, 0 otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..descriptors import DESCRIPTORS, PAPER_KEYS

#: Ordinal code of the crystal systems (Sym) in the correlations: the order of their holohedries.
CRYSTAL_SYSTEMS = ('triclinic', 'monoclinic', 'orthorhombic', 'tetragonal', 'trigonal', 'hexagonal', 'cubic')

_SYM_CODES = {name: i + 1.0 for i, name in enumerate(CRYSTAL_SYSTEMS)}

#: The study's default columns: the paper's 54 descriptors in Table 1's order.
DESCRIPTOR_KEYS = PAPER_KEYS
#: Every registry column: the paper's 54, then the extras (``descriptors: all``).
ALL_KEYS = tuple(d.key for d in DESCRIPTORS)
#: The named column sets of the study's ``descriptors`` parameter.
COLUMN_SETS = {'paper': DESCRIPTOR_KEYS, 'all': ALL_KEYS}
#: The paper's number of k-means clusters (Fig. 5: "a subminimal number of 6 clusters").
PAPER_K = 6
#: The temperature of the paper's analyses (T = 500 +- 100 K), in K.
REFERENCE_TEMPERATURE_K = 500.0


class StudyError(ValueError):
    """A study cannot be run on this table (too few rows, no such column, ...)."""


def numeric_descriptors(table: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The descriptor columns as floats: text descriptors coded as ordinals (see the module docs)."""
    columns = [c for c in (columns or DESCRIPTOR_KEYS) if c in table.columns]
    out = {}
    for key in columns:
        col = table[key]
        if key == 'Sym':
            out[key] = col.map(lambda v: _SYM_CODES.get(str(v).lower(), np.nan) if v is not None else np.nan)
        elif key == 'Stc':
            out[key] = col.map(
                lambda v: (
                    {'stoichiometric': 1.0, 'non-stoichiometric': 0.0}.get(v, np.nan)
                    if v is not None
                    else np.nan
                )
            )
        else:
            out[key] = pd.to_numeric(col, errors='coerce')
    return pd.DataFrame(out, index=table.index, dtype=float)


def select(
    table: pd.DataFrame,
    temperature_window: tuple[float, float] | None = None,
    family: str | None = None,
) -> pd.DataFrame:
    """Rows with ``temperature_window[0] <= T <= temperature_window[1]`` and mobile species ``family``."""
    mask = pd.Series(True, index=table.index)
    if temperature_window is not None:
        lo, hi = temperature_window
        mask &= (table['temperature_K'] >= lo) & (table['temperature_K'] <= hi)
    if family is not None:
        mask &= table['family'] == family
    return table[mask]


def one_row_per_material(table: pd.DataFrame, reference_K: float = REFERENCE_TEMPERATURE_K) -> pd.DataFrame:
    """One record per material: the one nearest ``reference_K``; on a tie the stoichiometric one, then
    the lower temperature, then the smaller UUID (so the choice never depends on PKs or row order).
    The rows keep the table's order."""
    if table.empty:
        return table
    keys = pd.DataFrame(
        {
            'material': table['material'].astype(str),
            'distance': (table['temperature_K'] - float(reference_K)).abs(),
            'vacancies': ~table['stoichiometric'].astype(bool),
            'temperature': table['temperature_K'],
            'uuid': table['uuid'].fillna('').astype(str),
        },
        index=table.index,
    )
    ranked = keys.sort_values(['material', 'distance', 'vacancies', 'temperature', 'uuid'], kind='mergesort')
    chosen = set(ranked.drop_duplicates('material').index)
    return table[[i in chosen for i in table.index]]


def analysis_rows(
    table: pd.DataFrame,
    temperature_window: tuple[float, float] | None = (400.0, 600.0),
    family: str | None = None,
) -> pd.DataFrame:
    """The rows of the paper's T = 500 +- 100 K analyses: :func:`select`, then
    :func:`one_row_per_material` with the window's midpoint as the reference (500 K without a window)."""
    rows = select(table, temperature_window, family)
    if temperature_window is None:
        reference = REFERENCE_TEMPERATURE_K
    else:
        reference = 0.5 * (float(temperature_window[0]) + float(temperature_window[1]))
    return one_row_per_material(rows, reference)


def columns_of(descriptors: str | Sequence[str] | None) -> tuple[str, ...]:
    """The descriptor columns of a named set (``paper``: the 54, ``all``: with the extras) or a list."""
    if descriptors is None:
        return DESCRIPTOR_KEYS
    if isinstance(descriptors, str):
        if descriptors not in COLUMN_SETS:
            raise StudyError(f'unknown descriptor set {descriptors!r}: {" or ".join(COLUMN_SETS)}')
        return COLUMN_SETS[descriptors]
    unknown = [c for c in descriptors if c not in ALL_KEYS]
    if unknown:
        raise StudyError(f'unknown descriptors: {", ".join(unknown)}')
    return tuple(descriptors)


def _usable_columns(x: pd.DataFrame, min_pairs: int) -> tuple[list[str], dict[str, str]]:
    keep, dropped = [], {}
    for key in x.columns:
        values = x[key].dropna()
        if len(values) < min_pairs:
            dropped[key] = f'{len(values)} known values (< {min_pairs})'
        elif values.nunique() < 2:
            dropped[key] = 'constant over the rows'
        else:
            keep.append(key)
    return keep, dropped


def correlation_matrices(
    table: pd.DataFrame,
    method: str = 'spearman',
    min_pairs: int = 3,
    columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Spearman (c_S) or Pearson (c_P) coefficients of every pair of descriptors with their p-values.

    Every row counts as one sample: give one row per material (:func:`analysis_rows`).

    Returns ``coefficients``, ``p_values`` and ``n_pairs`` (square data frames over the kept
    descriptors; NaN where a pair has fewer than ``min_pairs`` common rows or one side is constant on
    them) and ``dropped`` (descriptor -> reason). p-values are scipy's two-sided ones (exact
    t-distribution for Pearson, the t approximation for Spearman).
    """
    if method not in ('spearman', 'pearson'):
        raise StudyError(f'unknown correlation method {method!r}: spearman or pearson')
    x = numeric_descriptors(table, columns)
    keep, dropped = _usable_columns(x, min_pairs)
    if len(keep) < 2:
        raise StudyError(
            f'fewer than 2 descriptors with {min_pairs} or more known, non-constant values ({len(table)} rows)'
        )
    values = x[keep].to_numpy()
    known = np.isfinite(values)
    n = len(keep)
    coef = np.full((n, n), np.nan)
    pval = np.full((n, n), np.nan)
    npairs = np.zeros((n, n), dtype=int)
    func = stats.spearmanr if method == 'spearman' else stats.pearsonr
    # descriptors known in every row: every pair of them at once (scipy's own 2-D/broadcast calls,
    # the same arithmetic as pair by pair); the pairs with a partly known descriptor one by one
    full = np.flatnonzero(known.all(axis=0))
    if len(full) >= 3:
        block = values[:, full]
        if method == 'spearman':
            res = stats.spearmanr(block)
        else:
            res = stats.pearsonr(block[:, :, None], block[:, None, :], axis=0)
        sub = np.ix_(full, full)
        coef[sub], pval[sub] = res.statistic, res.pvalue
        npairs[sub] = len(values)
    done = np.zeros(n, dtype=bool)
    done[full] = len(full) >= 3
    for i in range(n):
        for j in range(i, n):
            if i == j:
                npairs[i, i] = int(known[:, i].sum())
                coef[i, i], pval[i, i] = 1.0, 0.0
                continue
            if done[i] and done[j]:
                continue
            both = known[:, i] & known[:, j]
            m = int(both.sum())
            npairs[i, j] = npairs[j, i] = m
            a, b = values[both, i], values[both, j]
            if m < min_pairs or np.ptp(a) == 0 or np.ptp(b) == 0:
                continue
            res = func(a, b)
            coef[i, j] = coef[j, i] = float(res.statistic)
            pval[i, j] = pval[j, i] = float(res.pvalue)
    frame = lambda a: pd.DataFrame(a, index=keep, columns=keep)  # noqa: E731
    return {
        'method': method,
        'coefficients': frame(coef),
        'p_values': frame(pval),
        'n_pairs': frame(npairs),
        'dropped': dropped,
        'n_rows': len(table),
    }


def _spearman_pairwise(a: np.ndarray, b: np.ndarray, min_pairs: int) -> float:
    both = np.isfinite(a) & np.isfinite(b)
    if both.sum() < min_pairs:
        return np.nan
    ra, rb = stats.rankdata(a[both]), stats.rankdata(b[both])
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return np.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def bootstrap_correlations(
    table: pd.DataFrame,
    target: str = 'D',
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_pairs: int = 3,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Percentile bootstrap confidence intervals of the Spearman correlations of ``target`` with every
    descriptor, resampling *materials* with replacement (all rows of a drawn material enter together,
    so a material with several temperatures or stoichiometries is not counted as independent samples).

    Returns a data frame indexed by descriptor with ``c_S`` (on the table itself), ``low``, ``high``,
    ``n_valid`` (bootstrap samples in which the coefficient was defined) and ``n_materials``.
    """
    x = numeric_descriptors(table, [*(columns or DESCRIPTOR_KEYS), target])
    if target not in x.columns or x[target].notna().sum() < min_pairs:
        raise StudyError(f'the target {target!r} has fewer than {min_pairs} known values')
    materials = table['material'].to_numpy()
    unique = np.unique(materials)
    if len(unique) < 2:
        raise StudyError('a bootstrap over materials needs at least 2 materials')
    rows_of = [np.flatnonzero(materials == m) for m in unique]
    rng = np.random.default_rng(seed)
    draws = [
        np.concatenate([rows_of[i] for i in rng.integers(0, len(unique), len(unique))]) for _ in range(n_boot)
    ]
    y = x[target].to_numpy()
    alpha = (1.0 - confidence) / 2.0
    keys = [k for k in x.columns if k != target]
    # descriptors known in every row where the target is known: all draws at once, vectorised
    rows_y = np.isfinite(y)
    full = [k for k in keys if np.isfinite(x[k].to_numpy()[rows_y]).all()]
    full_boot = {}
    if full:
        xf = x[full].to_numpy()
        samples = np.empty((n_boot, len(full)))
        for b, idx in enumerate(draws):
            idx = idx[rows_y[idx]]
            ranks = stats.rankdata(xf[idx], axis=0)
            ry = stats.rankdata(y[idx])
            rc, ryc = ranks - ranks.mean(axis=0), ry - ry.mean()
            with np.errstate(invalid='ignore', divide='ignore'):
                samples[b] = (rc * ryc[:, None]).sum(axis=0) / np.sqrt((rc**2).sum(axis=0) * (ryc**2).sum())
            if len(idx) < min_pairs:
                samples[b] = np.nan
        full_boot = {k: samples[:, i] for i, k in enumerate(full)}
    out = {}
    for key in keys:
        col = x[key].to_numpy()
        point = _spearman_pairwise(col, y, min_pairs)
        if not np.isfinite(point):
            continue
        if key in full_boot:
            boot = full_boot[key]
        else:
            boot = np.array([_spearman_pairwise(col[idx], y[idx], min_pairs) for idx in draws])
        boot = boot[np.isfinite(boot)]
        low, high = np.quantile(boot, [alpha, 1 - alpha]) if len(boot) else (np.nan, np.nan)
        out[key] = {'c_S': point, 'low': float(low), 'high': float(high), 'n_valid': len(boot)}
    frame = pd.DataFrame.from_dict(out, orient='index')
    frame['n_materials'] = len(unique)
    return frame


def complete_matrix(
    table: pd.DataFrame, max_missing: float = 0.25, min_rows: int = 3, columns: Sequence[str] | None = None
) -> tuple[pd.DataFrame, dict[str, str], list[Any]]:
    """The descriptor matrix for PCA/k-means: drop descriptors missing in more than ``max_missing`` of
    the rows or constant, then rows that still miss a value. Returns (matrix, dropped columns with
    reasons, dropped row labels)."""
    x = numeric_descriptors(table, columns)
    dropped: dict[str, str] = {}
    for key in x.columns:
        missing = x[key].isna().mean()
        if missing > max_missing:
            dropped[key] = f'missing in {100 * missing:.0f}% of the rows'
    x = x.drop(columns=list(dropped))
    rows = x.index[x.isna().any(axis=1)].tolist()
    x = x.drop(index=rows)
    for key in list(x.columns):
        if x[key].nunique() < 2:
            dropped[key] = 'constant over the rows'
            x = x.drop(columns=key)
    if len(x) < min_rows:
        raise StudyError(f'only {len(x)} complete rows (need {min_rows}); dropped rows: {len(rows)}')
    if x.shape[1] < 2:
        raise StudyError('fewer than 2 usable descriptors')
    return x, dropped, rows


def pca_spearman(
    table: pd.DataFrame, max_missing: float = 0.25, min_rows: int = 3, columns: Sequence[str] | None = None
) -> dict[str, Any]:
    """PCA by diagonalising the Spearman correlation matrix (the paper's Fig. 4).

    The matrix is built on :func:`complete_matrix`'s rows and columns (so it is a true correlation
    matrix: symmetric, positive semi-definite). Returns ``eigenvalues`` (descending),
    ``explained`` (eigenvalues / their sum), ``loadings`` (descriptor x PC; each PC's sign fixed so its
    largest component is positive), ``contributions`` (squared loadings: the share of a descriptor in a
    PC, which sums to 1 over descriptors), ``projections`` (rows x PC: the standardised ranks of each
    row projected on the PCs; Spearman's matrix is the covariance of these standardised ranks), and
    ``dropped_columns``/``dropped_rows``.
    """
    x, dropped, rows = complete_matrix(table, max_missing, min_rows, columns)
    ranks = x.rank(method='average')
    z = (ranks - ranks.mean()) / ranks.std(ddof=0)
    corr = np.corrcoef(z.to_numpy(), rowvar=False)
    evals, evecs = np.linalg.eigh(corr)
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
    signs = np.sign(evecs[np.argmax(np.abs(evecs), axis=0), np.arange(evecs.shape[1])])
    evecs = evecs * np.where(signs == 0, 1.0, signs)
    pcs = [f'PC{i + 1}' for i in range(len(evals))]
    loadings = pd.DataFrame(evecs, index=x.columns, columns=pcs)
    return {
        'eigenvalues': pd.Series(evals, index=pcs),
        'explained': pd.Series(evals / evals.sum(), index=pcs),
        'loadings': loadings,
        'contributions': loadings**2,
        'projections': pd.DataFrame(z.to_numpy() @ evecs, index=x.index, columns=pcs),
        'correlation': pd.DataFrame(corr, index=x.columns, columns=x.columns),
        'dropped_columns': dropped,
        'dropped_rows': rows,
    }


def _one_thread():
    """One OpenMP/BLAS thread for k-means: with a few dozen points the threads only cost (on two busy
    cores a scan took 7x longer with two); the clusters are the same, the inertia to rounding."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def kmeans_scan(points: np.ndarray, k_max: int = 8, seed: int = 0, n_init: int = 20) -> dict[str, Any]:
    """Elbow (inertia for k = 1..k_max) and mean silhouette (k = 2..min(k_max, n-1)) of k-means."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    points = np.asarray(points, dtype=float)
    n = len(points)
    if n < 3:
        raise StudyError(f'k-means needs at least 3 rows, the table has {n}')
    ks = list(range(1, min(k_max, n - 1) + 1))
    inertia, silhouette = {}, {}
    with _one_thread():
        for k in ks:
            km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(points)
            inertia[k] = float(km.inertia_)
            if k >= 2:
                silhouette[k] = float(silhouette_score(points, km.labels_))
    return {'inertia': inertia, 'silhouette': silhouette}


def choose_k(
    n_rows: int, k: int | str | None = PAPER_K, silhouette: dict[int, float] | None = None
) -> dict[str, Any]:
    """The number of k-means clusters: ``k`` (default the paper's 6; ``None`` means 6 too) or, with
    ``k='silhouette'``, the k of the best mean silhouette in ``silhouette`` (from :func:`kmeans_scan`).

    With ``n_rows`` points the largest usable k is ``n_rows - 1``, the largest k whose clusters are not
    all single points (the silhouette is defined only for 2 <= k <= n - 1). A larger k is reduced to it
    and ``note`` says so. Returns ``k``, ``k_requested``, ``k_choice`` (how k was chosen) and ``note``.
    """
    if n_rows < 3:
        raise StudyError(f'k-means needs at least 3 materials, the table has {n_rows}')
    if k == 'silhouette':
        if not silhouette:
            raise StudyError('no silhouette scan to choose k from')
        best = max(silhouette, key=lambda kk: silhouette[kk])
        return {'k': int(best), 'k_requested': 'silhouette', 'k_choice': 'best silhouette', 'note': None}
    if k is None:
        k = PAPER_K
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise StudyError(f'k must be a positive integer or "silhouette", got {k!r}')
    k = int(k)
    how = "the paper's k = 6" if k == PAPER_K else 'given'
    largest = n_rows - 1
    if k > largest:
        note = (
            f'only {n_rows} materials: too few for k = {k} clusters; using k = {largest}, the largest '
            f'possible (at most n - 1 = {largest} clusters that are not all single materials)'
        )
        return {'k': largest, 'k_requested': k, 'k_choice': f'{how}, reduced to {largest}', 'note': note}
    return {'k': k, 'k_requested': k, 'k_choice': how, 'note': None}


def kmeans_clusters(
    points: np.ndarray, k: int, seed: int = 0, n_init: int = 20
) -> tuple[np.ndarray, np.ndarray, float]:
    """Labels (0..k-1, numbered by decreasing cluster size, ties by centroid), centroids and inertia."""
    from sklearn.cluster import KMeans

    points = np.asarray(points, dtype=float)
    if not 1 <= k <= len(points):
        raise StudyError(f'cannot make {k} clusters of {len(points)} rows')
    with _one_thread():
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(points)
    sizes = np.bincount(km.labels_, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], tuple(km.cluster_centers_[c])))
    relabel = np.empty(k, dtype=int)
    relabel[order] = np.arange(k)
    return relabel[km.labels_], km.cluster_centers_[order], float(km.inertia_)


def composition(labels: Sequence[int], families: Sequence[str]) -> pd.DataFrame:
    """Cluster x mobile species counts (the paper's cluster populations)."""
    return pd.crosstab(pd.Series(labels, name='cluster'), pd.Series(list(families), name='family'))
