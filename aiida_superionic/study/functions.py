"""Calcfunctions of the study: thin provenance wrappers over :mod:`.stats` and :mod:`.ml`.

The chain in the graph: descriptor records -> ``tabulate`` -> table -> ``correlate`` / ``bootstrap`` /
``principal_components`` -> ``cluster``, and table -> ``train_model`` -> model -> ``predict_descriptor``.
Matrices and arrays go to ``ArrayData`` (file repository); summaries to ``Dict``. A step that cannot run
on the table it was given (too few rows, no such target) finishes with exit status 400 and the reason,
storing no output.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, calcfunction

from ..calculations.functions import _clean
from ..data import DescriptorTableData
from . import ml, stats
from .table import SCHEMA, table_from_records

#: Exit status of a study step that cannot run on its table (the message says why).
STUDY_ERROR = 400

#: How the correlations, bootstrap, PCA and k-means pick their rows (stored in their summaries).
ROW_RULE = (
    'one record per material: nearest the middle of the temperature window (500 K without one); '
    'ties: stoichiometric first, then the lower temperature, then the smaller UUID'
)


def _fail(exc: Exception) -> ExitCode:
    return ExitCode(STUDY_ERROR, str(exc))


def _window(p: dict[str, Any]) -> tuple[float, float] | None:
    window = p.get('temperature_window')
    return tuple(float(t) for t in window) if window is not None else None


def _enough_materials(frame, need: int, what: str) -> None:
    n = int(frame['material'].nunique())
    if n < need:
        raise stats.StudyError(
            f'only {n} material{"s" if n != 1 else ""} in the selection (one record per material): '
            f'{what} need at least {need}'
        )


def _selected(table: orm.Data, p: dict[str, Any], one_per_material: bool = False):
    """The rows in the window (and family); with ``one_per_material`` one record per material
    (:func:`.stats.analysis_rows`), as the correlations, PCA and k-means use."""
    if one_per_material:
        frame = stats.analysis_rows(table.to_dataframe(), _window(p), p.get('family'))
    else:
        frame = stats.select(table.to_dataframe(), _window(p), p.get('family'))
    if frame.empty:
        raise stats.StudyError(
            f'no rows with temperature in {p.get("temperature_window")} K'
            + (f' and mobile species {p["family"]}' if p.get('family') else '')
        )
    return frame


@calcfunction
def tabulate(**records: orm.Dict) -> DescriptorTableData:
    """The descriptor table of the given records (every temperature; analyses select their window)."""
    rows = []
    for record in records.values():
        attrs = record.get_dict()
        if attrs.get('schema') != SCHEMA:
            raise ValueError(f'node {record.pk} is not a descriptor record')
        rows.append({**attrs, 'uuid': record.uuid, 'pk': record.pk})
    return DescriptorTableData.from_dataframe(table_from_records(rows))


@calcfunction
def correlate(table: DescriptorTableData, parameters: orm.Dict) -> dict[str, orm.Data] | ExitCode:
    """Spearman or Pearson matrices with p-values (``method``, ``temperature_window``, ``family``,
    ``min_pairs``, ``descriptors``) on one record per material; the summary holds the D row and the
    records used."""
    p = parameters.get_dict()
    try:
        frame = _selected(table, p, one_per_material=True)
        _enough_materials(frame, int(p.get('min_pairs', 3)), 'correlations')
        columns = stats.columns_of(p.get('descriptors', 'paper'))
        res = stats.correlation_matrices(
            frame, p.get('method', 'spearman'), int(p.get('min_pairs', 3)), columns
        )
    except stats.StudyError as exc:
        return _fail(exc)
    labels = list(res['coefficients'].index)
    matrices = orm.ArrayData()
    matrices.set_array('coefficients', res['coefficients'].to_numpy())
    matrices.set_array('p_values', res['p_values'].to_numpy())
    matrices.set_array('n_pairs', res['n_pairs'].to_numpy())
    matrices.base.attributes.set('labels', labels)
    d_row = {}
    if 'D' in labels:
        for key in labels:
            if key != 'D':
                d_row[key] = {
                    'c': res['coefficients'].loc['D', key],
                    'p': res['p_values'].loc['D', key],
                    'n': int(res['n_pairs'].loc['D', key]),
                }
    summary = {
        'method': res['method'],
        'family': p.get('family'),
        'temperature_window': p.get('temperature_window'),
        'n_rows': res['n_rows'],
        'n_materials': int(frame['material'].nunique()),
        'row_rule': ROW_RULE,
        'row_uuids': [str(u) for u in frame['uuid']],
        'descriptors': labels,
        'dropped': res['dropped'],
        'D_row': d_row,
    }
    return {'summary': orm.Dict(_clean(summary)), 'matrices': matrices}


@calcfunction
def bootstrap(table: DescriptorTableData, parameters: orm.Dict) -> orm.Dict | ExitCode:
    """Bootstrap confidence intervals of the Spearman correlations with ``target`` (default D),
    resampling materials (``n_boot``, ``confidence``, ``seed``, ``temperature_window``, ``family``,
    ``descriptors``), on one record per material."""
    p = parameters.get_dict()
    try:
        frame = _selected(table, p, one_per_material=True)
        _enough_materials(frame, 3, 'bootstrap correlations')
        res = stats.bootstrap_correlations(
            frame,
            target=p.get('target', 'D'),
            n_boot=int(p.get('n_boot', 1000)),
            confidence=float(p.get('confidence', 0.95)),
            seed=int(p.get('seed', 0)),
            columns=stats.columns_of(p.get('descriptors', 'paper')),
        )
    except stats.StudyError as exc:
        return _fail(exc)
    return orm.Dict(
        _clean(
            {
                **{k: p.get(k) for k in ('target', 'n_boot', 'confidence', 'seed', 'family')},
                'temperature_window': p.get('temperature_window'),
                'intervals': res.drop(columns='n_materials').to_dict(orient='index'),
                'n_materials': int(res['n_materials'].iloc[0]) if len(res) else 0,
            }
        )
    )


@calcfunction
def principal_components(table: DescriptorTableData, parameters: orm.Dict) -> dict[str, orm.Data] | ExitCode:
    """PCA of the Spearman matrix (``temperature_window``, ``family``, ``max_missing``, ``descriptors``)
    on one record per material."""
    p = parameters.get_dict()
    try:
        frame = _selected(table, p, one_per_material=True)
        _enough_materials(frame, 3, 'PCA and k-means')
        columns = stats.columns_of(p.get('descriptors', 'paper'))
        res = stats.pca_spearman(frame, float(p.get('max_missing', 0.25)), columns=columns)
    except stats.StudyError as exc:
        return _fail(exc)
    rows = frame.loc[res['projections'].index]
    arrays = orm.ArrayData()
    arrays.set_array('eigenvalues', res['eigenvalues'].to_numpy())
    arrays.set_array('loadings', res['loadings'].to_numpy())
    arrays.set_array('projections', res['projections'].to_numpy())
    arrays.base.attributes.set('descriptors', list(res['loadings'].index))
    arrays.base.attributes.set('row_uuids', [str(u) for u in rows['uuid']])
    arrays.base.attributes.set('row_materials', [str(m) for m in rows['material']])
    arrays.base.attributes.set('row_families', [str(f) for f in rows['family']])
    arrays.base.attributes.set('row_temperatures', [float(t) for t in rows['temperature_K']])
    contrib = res['contributions']
    top = {
        pc: contrib[pc].sort_values(ascending=False).head(8).round(6).to_dict() for pc in contrib.columns[:3]
    }
    summary = {
        'temperature_window': p.get('temperature_window'),
        'family': p.get('family'),
        'n_rows': len(rows),
        'n_materials': int(rows['material'].nunique()),
        'row_rule': ROW_RULE,
        'descriptors': list(res['loadings'].index),
        'explained': res['explained'].to_list(),
        'explained_first_three': float(res['explained'].iloc[:3].sum()),
        'D_contribution': contrib.loc['D'].iloc[:3].to_list() if 'D' in contrib.index else None,
        'top_contributions': top,
        'dropped_columns': res['dropped_columns'],
        'dropped_rows': [str(frame.loc[i, 'uuid']) for i in res['dropped_rows']],
    }
    return {'summary': orm.Dict(_clean(summary)), 'arrays': arrays}


@calcfunction
def cluster(pca: orm.ArrayData, parameters: orm.Dict) -> orm.Dict | ExitCode:
    """k-means in the space of the first ``n_components`` PCs (one point per material): elbow (inertia)
    and mean silhouette for k up to ``max(k_max, k)``; clusters for ``k`` (default the paper's 6;
    ``'silhouette'``: the k of the best silhouette; with too few materials the largest possible k,
    with a ``note`` saying so); composition by mobile species."""
    p = parameters.get_dict()
    n_pc = int(p.get('n_components', 2))
    points = pca.get_array('projections')[:, :n_pc]
    families = pca.base.attributes.get('row_families')
    seed = int(p.get('seed', 0))
    k_param = p.get('k', stats.PAPER_K)
    if k_param is None:
        k_param = stats.PAPER_K
    try:
        if points.shape[1] < n_pc:
            raise stats.StudyError(f'the PCA has only {points.shape[1]} components')
        k_scan = int(p.get('k_max', 8))
        if isinstance(k_param, int):
            k_scan = max(k_scan, k_param)
        scan = stats.kmeans_scan(points, k_scan, seed)
        choice = stats.choose_k(len(points), k_param, scan['silhouette'])
        k = choice['k']
        labels, centroids, inertia = stats.kmeans_clusters(points, k, seed)
    except stats.StudyError as exc:
        return _fail(exc)
    comp = stats.composition(labels, families)
    silhouette = scan['silhouette']
    return orm.Dict(
        _clean(
            {
                'n_components': n_pc,
                'n_points': len(points),
                'k': k,
                'k_requested': choice['k_requested'],
                'k_choice': choice['k_choice'],
                'note': choice['note'],
                'k_best_silhouette': max(silhouette, key=silhouette.get) if silhouette else None,
                'seed': seed,
                'inertia': {str(kk): v for kk, v in scan['inertia'].items()},
                'silhouette': {str(kk): v for kk, v in silhouette.items()},
                'labels': labels.tolist(),
                'row_uuids': pca.base.attributes.get('row_uuids'),
                'centroids': centroids.tolist(),
                'final_inertia': inertia,
                'composition': {str(c): {f: int(n) for f, n in comp.loc[c].items() if n} for c in comp.index},
            }
        )
    )


@calcfunction
def train_model(table: DescriptorTableData, parameters: orm.Dict) -> dict[str, orm.Data] | ExitCode:
    """Leave-one-material-out validation and the final model (``target``, ``feature_set``, ``model``,
    ``seed``, ``max_iter``, ``include_temperature``, ``descriptors``, optional ``temperature_window``/
    ``family``; default: every record, all temperatures and stoichiometries, as the paper)."""
    p = parameters.get_dict()
    try:
        frame = _selected(table, p)
        res = ml.train_validate(
            frame,
            target=p.get('target', 'D'),
            feature_set=p.get('feature_set', 'anharmonic'),
            model=p.get('model', 'mlp'),
            seed=int(p.get('seed', 0)),
            max_iter=int(p.get('max_iter', 2000)),
            include_temperature=bool(p.get('include_temperature', False)),
            columns=stats.columns_of(p.get('descriptors', 'paper')),
        )
    except stats.StudyError as exc:
        return _fail(exc)
    import sklearn

    metrics = {k: v for k, v in res.items() if k not in ('predictions', 'model')}
    metrics['sklearn_version'] = sklearn.__version__
    blob = pickle.dumps(
        {
            'model': res['model'],
            'target': res['target'],
            'numeric_features': res['numeric_features'],
            'categorical_features': res['categorical_features'],
        }
    )
    model = orm.SinglefileData(io.BytesIO(blob), filename='model.pkl')
    model.base.attributes.set('target', res['target'])
    model.base.attributes.set('feature_set', res['feature_set'])
    model.base.attributes.set('model_type', res['model_type'])
    model.base.attributes.set('sklearn_version', sklearn.__version__)
    predictions = orm.ArrayData()
    predictions.set_array('true', res['predictions']['true'].to_numpy())
    predictions.set_array('predicted', res['predictions']['predicted'].to_numpy())
    predictions.base.attributes.set('materials', [str(m) for m in res['predictions']['material']])
    return {'metrics': orm.Dict(_clean(metrics)), 'model': model, 'predictions': predictions}


def load_model(model: orm.SinglefileData) -> dict[str, Any]:
    """The pickled model of :func:`train_model` (only load models from archives you trust)."""
    with model.open(mode='rb') as handle:
        return pickle.load(handle)


@calcfunction
def predict_descriptor(model: orm.SinglefileData, record: orm.Dict) -> orm.Dict | ExitCode:
    """Apply a stored model to one descriptor record."""
    stored = load_model(model)
    attrs = record.get_dict()
    if attrs.get('schema') != SCHEMA:
        return ExitCode(STUDY_ERROR, f'node {record.pk} is not a descriptor record')
    frame = table_from_records([{**attrs, 'uuid': record.uuid, 'pk': record.pk}])
    try:
        value = ml.predict(stored['model'], frame, stored['numeric_features'], stored['categorical_features'])
    except stats.StudyError as exc:
        return _fail(exc)
    from ..descriptors import UNITS

    target = stored['target']
    true = frame[target].iloc[0]
    return orm.Dict(
        _clean(
            {
                'target': target,
                'unit': UNITS[target],
                'predicted': float(np.asarray(value)[0]),
                'recorded': None if np.isnan(true) else float(true),
                'material': attrs.get('material'),
                'temperature_K': attrs.get('temperature_K'),
            }
        )
    )
