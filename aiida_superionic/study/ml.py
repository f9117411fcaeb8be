"""The paper's machine-learning models (Methods, "Machine learning"), on a descriptor table.

* Model: scikit-learn ``MLPRegressor`` with 6 hidden layers of 200, 500, 50, 150, 70 and 100 neurons,
  ReLU, Adam with a constant learning rate of 5e-4 and an L2 strength alpha = 0.05; or the kernel-ridge
  baseline (linear kernel, alpha = 1).
* Inputs: every other descriptor of the paper's 54 ("anharmonic") or every other descriptor except the
  AIMD vibrational ones ("harmonic": ⟨ω⟩, ⟨ω30⟩, E_vib, C_v, θ_D, F_vib and S_vib of every ion group;
  γ, D and msd stay inputs), as in the paper: "excluding the AIMD-based vibrational descriptors". The
  temperature is not an input (the paper's inputs are the descriptors) unless ``include_temperature``.
  The non-numeric descriptors — mobile species, stoichiometry, composition (formula) and crystal
  system — are one-hot encoded; numeric inputs and the target are standardised (the target's scaling
  is undone on prediction). When the target is D the msd is never an input (and vice versa): msd at
  the end of the fit window is 6Dτ, the same measurement.
* Rows: every record given (the paper trains on all temperatures and stoichiometries, 174 samples),
  not one row per material as the correlations.
* Missing values: a numeric input missing in any row is left out of the inputs (listed in
  ``dropped_features``); rows without the target are left out. Nothing is imputed.
* Validation: leave one material out (the paper's K-fold: "predict the output for one element using
  the rest as the training set"); every fold's MAPE (eq 8, normalised by the mean of the true values of
  that set) is weighted by the number of predictions in the fold and divided by the number of samples.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..descriptors import BY_KEY, VIBRATIONAL_KEYS
from .stats import DESCRIPTOR_KEYS, StudyError

#: The paper's network.
MLP_HIDDEN_LAYERS = (200, 500, 50, 150, 70, 100)
#: One-hot encoded inputs (table columns).
CATEGORICAL = ('family', 'Stc', 'formula', 'Sym')
#: Descriptors that are the same measurement as another one (never an input for it).
SAME_MEASUREMENT = {'D': ('msd',), 'msd': ('D',)}
FEATURE_SETS = ('anharmonic', 'harmonic')
MODELS = ('mlp', 'kernel_ridge')


def mape(true: np.ndarray, predicted: np.ndarray) -> float:
    """The paper's eq 8: mean |x0 - x| / <x0> (normalised by the mean of the true values)."""
    true = np.asarray(true, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    scale = abs(true.mean())
    if scale == 0:
        return float('nan')
    return float(np.mean(np.abs(true - predicted)) / scale)


def feature_columns(
    table: pd.DataFrame,
    target: str,
    feature_set: str,
    include_temperature: bool = False,
    columns: Sequence[str] | None = None,
) -> tuple[list[str], list[str], dict]:
    """(numeric inputs, categorical inputs, dropped inputs with reasons) for ``target``.

    ``columns``: the descriptors to draw the inputs from (default the paper's 54, Table 1's order);
    ``include_temperature`` adds ``temperature_K`` as the last numeric input."""
    if target not in BY_KEY:
        raise StudyError(f'unknown target {target!r}: give a descriptor key (D, omega_all, C_v_all, ...)')
    if not BY_KEY[target].numeric:
        raise StudyError(f'the target {target!r} is not numeric')
    if feature_set not in FEATURE_SETS:
        raise StudyError(f'unknown feature set {feature_set!r}: {" or ".join(FEATURE_SETS)}')
    excluded = {target, *SAME_MEASUREMENT.get(target, ())}
    if feature_set == 'harmonic':
        excluded |= set(VIBRATIONAL_KEYS)
    numeric, dropped = [], {}
    for key in columns or DESCRIPTOR_KEYS:
        d = BY_KEY[key]
        if d.key in excluded or not d.numeric or d.key not in table.columns:
            continue
        values = pd.to_numeric(table[d.key], errors='coerce')
        if values.isna().any():
            dropped[d.key] = f'missing in {int(values.isna().sum())} of {len(values)} rows'
        else:
            numeric.append(d.key)
    if include_temperature:
        numeric.append('temperature_K')
    categorical = []
    for c in CATEGORICAL:
        if c not in table.columns or c in excluded:
            continue
        # the same rule as a numeric input: a category missing in some rows (a record imported without
        # its structure, say) is dropped, not turned into a category of its own
        missing = table[c].isna() | (table[c].astype(object) == '')
        if missing.any():
            dropped[c] = f'missing in {int(missing.sum())} of {len(missing)} rows'
        else:
            categorical.append(c)
    return numeric, categorical, dropped


def make_model(model: str, numeric: list[str], categorical: list[str], seed: int, max_iter: int = 2000):
    """The scikit-learn pipeline: one-hot + standard scaling, then the regressor (target standardised)."""
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if model == 'mlp':
        regressor = MLPRegressor(
            hidden_layer_sizes=MLP_HIDDEN_LAYERS,
            activation='relu',
            solver='adam',
            learning_rate='constant',
            learning_rate_init=5e-4,
            alpha=0.05,
            max_iter=max_iter,
            random_state=seed,
        )
    elif model == 'kernel_ridge':
        regressor = KernelRidge(kernel='linear', alpha=1.0)
    else:
        raise StudyError(f'unknown model {model!r}: {" or ".join(MODELS)}')
    columns = ColumnTransformer(
        [
            ('numeric', StandardScaler(), numeric),
            ('categorical', OneHotEncoder(handle_unknown='ignore', sparse_output=False), categorical),
        ]
    )
    return TransformedTargetRegressor(
        regressor=Pipeline([('inputs', columns), ('regressor', regressor)]), transformer=StandardScaler()
    )


def _inputs(table: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    x = pd.DataFrame(index=table.index)
    for c in numeric:
        x[c] = pd.to_numeric(table[c], errors='coerce').astype(float)
    for c in categorical:
        x[c] = table[c].astype(str)
    return x


def _onehot(values: np.ndarray, train: np.ndarray) -> np.ndarray:
    """One-hot columns of ``values`` for the categories seen in the ``train`` rows (sorted, as
    ``OneHotEncoder``); an unseen category is all zeros (``handle_unknown='ignore'``)."""
    categories = np.unique(values[train])
    return (values[:, None] == categories[None, :]).astype(float)


def _scaled(a: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, float | np.ndarray, float | np.ndarray]:
    """``StandardScaler`` fitted on the ``train`` rows, applied to every row (a constant column: scale
    1), with the mean and scale."""
    mean = a[train].mean(axis=0)
    scale = a[train].std(axis=0)
    scale = np.where(scale < 10 * np.finfo(float).eps * np.maximum(np.abs(mean), 1.0), 1.0, scale)
    return (a - mean) / scale, mean, scale


def _kernel_ridge_fold(numeric: np.ndarray, codes: list[np.ndarray], y: np.ndarray, test: np.ndarray):
    """One leave-one-material-out fold of the kernel-ridge pipeline of :func:`make_model` in plain numpy:
    the same transformers (scaled numeric inputs, then one-hot categories of the training rows, target
    standardised) and the same linear-kernel ridge solve, without the per-call scikit-learn/pandas
    overhead that was almost all of its cost. Returns the predictions of the held-out and of the
    training rows."""
    from scipy import linalg

    train = ~test
    parts = [_scaled(numeric, train)[0]] if numeric.shape[1] else []
    x = np.hstack([*parts, *(_onehot(c, train) for c in codes)])
    y_scaled, y_mean, y_scale = _scaled(y, train)
    xt = x[train]
    kernel = xt @ xt.T
    kernel.flat[:: len(xt) + 1] += 1.0  # alpha = 1
    dual = linalg.solve(kernel, y_scaled[train], assume_a='pos')
    back = lambda rows: (x[rows] @ xt.T) @ dual * y_scale + y_mean  # noqa: E731
    return back(test), back(train)


def _pipeline_fold(estimator, x: pd.DataFrame, y: np.ndarray, test: np.ndarray):
    """One fold with the scikit-learn pipeline (one BLAS thread): held-out and training predictions."""
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api='blas'):
        warnings.simplefilter('ignore', ConvergenceWarning)
        fitted = clone(estimator).fit(x[~test], y[~test])
        return fitted.predict(x[test]), fitted.predict(x[~test])


def _pipeline_final(estimator, x: pd.DataFrame, y: np.ndarray):
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api='blas'):
        warnings.simplefilter('ignore', ConvergenceWarning)
        return clone(estimator).fit(x, y)


def default_jobs() -> int:
    """Worker processes for the network folds: the CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def train_validate(
    table: pd.DataFrame,
    target: str = 'D',
    feature_set: str = 'anharmonic',
    model: str = 'mlp',
    seed: int = 0,
    max_iter: int = 2000,
    include_temperature: bool = False,
    columns: Sequence[str] | None = None,
    n_jobs: int | None = None,
) -> dict[str, Any]:
    """Leave-one-material-out validation and a final model fitted on every row (every temperature and
    stoichiometry given). ``include_temperature`` and ``columns``: see :func:`feature_columns`.

    The network's folds (and its final fit) run in ``n_jobs`` worker processes (default: every usable
    CPU; 1 runs them here): each fit is seeded and single-threaded, so the results do not depend on
    ``n_jobs``. The kernel ridge's folds run here on numpy arrays (:func:`_kernel_ridge_fold`).

    Returns ``mape_test`` and ``mape_train`` (the paper's weighting), ``mape_test_pooled`` (eq 8 over
    all held-out predictions at once), ``predictions`` (a data frame: material, true, predicted on the
    held-out fold), the inputs used and dropped, and ``model`` (the fitted final estimator).
    """
    numeric, categorical, dropped = feature_columns(table, target, feature_set, include_temperature, columns)
    y_all = pd.to_numeric(table[target], errors='coerce')
    rows = table[y_all.notna()]
    y = y_all[y_all.notna()].to_numpy(dtype=float)
    materials = rows['material'].to_numpy()
    unique = list(dict.fromkeys(sorted(materials)))
    if len(unique) < 2:
        raise StudyError(
            f'leave-one-material-out needs at least 2 materials with {target}; found {len(unique)}'
        )
    x = _inputs(rows, numeric, categorical)
    estimator = make_model(model, numeric, categorical, seed, max_iter)
    tests = [materials == material for material in unique]
    if model == 'kernel_ridge':
        num = x[numeric].to_numpy(dtype=float)
        codes = [x[c].to_numpy(dtype=object) for c in categorical]
        folds = [_kernel_ridge_fold(num, codes, y, test) for test in tests]
        final = _pipeline_final(estimator, x, y)
    else:
        from joblib import Parallel, delayed

        jobs = max(1, min(n_jobs or default_jobs(), len(tests) + 1))
        calls = [delayed(_pipeline_fold)(estimator, x, y, test) for test in tests]
        *folds, final = Parallel(n_jobs=jobs)([*calls, delayed(_pipeline_final)(estimator, x, y)])
    predicted = np.empty_like(y)
    test_terms, train_terms = [], []
    for test, (on_test, on_train) in zip(tests, folds, strict=True):
        predicted[test] = on_test
        n_test = int(test.sum())
        test_terms.append((n_test, mape(y[test], on_test)))
        train_terms.append((n_test, mape(y[~test], on_train)))
    n = len(y)
    return {
        'target': target,
        'feature_set': feature_set,
        'model_type': model,
        'seed': seed,
        'include_temperature': bool(include_temperature),
        'n_samples': n,
        'n_materials': len(unique),
        'mape_test': float(sum(k * m for k, m in test_terms) / n),
        'mape_train': float(sum(k * m for k, m in train_terms) / n),
        'mape_test_pooled': mape(y, predicted),
        'numeric_features': numeric,
        'categorical_features': categorical,
        'dropped_features': dropped,
        'predictions': pd.DataFrame(
            {'material': materials, 'true': y, 'predicted': predicted}, index=rows.index
        ),
        'model': final,
    }


def missing_inputs(table: pd.DataFrame, numeric: list[str]) -> list[str]:
    """The numeric inputs of a model that some row of ``table`` lacks."""
    return [
        c for c in numeric if c not in table.columns or pd.to_numeric(table[c], errors='coerce').isna().any()
    ]


def predict(model, table: pd.DataFrame, numeric: list[str], categorical: list[str]) -> np.ndarray:
    """Apply a fitted model to rows of a descriptor table; every numeric input must be known."""
    missing = missing_inputs(table, numeric)
    if missing:
        raise StudyError(f'the record lacks inputs of this model: {", ".join(missing)}')
    return model.predict(_inputs(table, numeric, categorical))
