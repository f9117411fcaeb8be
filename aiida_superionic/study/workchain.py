"""``superionic.study``: the paper's analysis (Figs 1-5 and Methods) on a set of descriptor records."""

from __future__ import annotations

from typing import Any

from aiida import orm
from aiida.engine import WorkChain

from ..calculations.functions import _clean
from ..data import DescriptorTableData
from ..protocols import deep_merge
from . import functions
from .ml import FEATURE_SETS, MODELS
from .stats import COLUMN_SETS, PAPER_K

#: Defaults of the study's parameters (every key can be overridden).
DEFAULTS: dict[str, Any] = {
    'temperature_window': [400.0, 600.0],  # the paper's T = 500 +- 100 K, for correlations, PCA, k-means
    'descriptors': 'paper',  # the columns: the paper's 54 ('paper') or with the extras ('all')
    'families': 'auto',  # per-family correlations: 'auto' = every mobile species with >= 3 materials
    'min_pairs': 3,
    'bootstrap': {'n_boot': 1000, 'confidence': 0.95},
    'max_missing': 0.25,  # PCA/k-means: drop descriptors missing in more rows than this
    # k: the paper's 6 clusters, or 'silhouette' for the k of the best silhouette; elbow and silhouette
    # are scanned up to max(k_max, k)
    'kmeans': {'k_max': 8, 'k': PAPER_K, 'components': [2, 3]},
    'ml': {
        'targets': ['D', 'omega_all', 'C_v_all'],
        'feature_sets': list(FEATURE_SETS),
        'models': list(MODELS),
        'max_iter': 2000,
        'temperature_window': None,  # the paper trains on every simulated temperature
        'include_temperature': False,  # the paper's inputs are the descriptors, not T
    },
    'seed': 0,
}


def study_parameters(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """DEFAULTS with ``overrides`` merged in; raises ValueError on unknown keys or bad values."""
    overrides = overrides or {}
    unknown = set(overrides) - set(DEFAULTS)
    for key in ('bootstrap', 'kmeans', 'ml'):
        if isinstance(overrides.get(key), dict):
            unknown |= {f'{key}.{k}' for k in set(overrides[key]) - set(DEFAULTS[key])}
    if unknown:
        raise ValueError(f'unknown study parameters: {", ".join(sorted(unknown))}')
    p = deep_merge(DEFAULTS, overrides)
    window = p['temperature_window']
    if window is not None and (len(window) != 2 or float(window[0]) > float(window[1])):
        raise ValueError(f'temperature_window must be [low, high] in K, got {window}')
    if p['descriptors'] not in COLUMN_SETS:
        raise ValueError(f'descriptors must be one of {", ".join(COLUMN_SETS)}, got {p["descriptors"]!r}')
    k = p['kmeans']['k']
    if k is None:
        p['kmeans'] = {**p['kmeans'], 'k': PAPER_K}
    elif k != 'silhouette' and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f'kmeans.k must be a positive integer or "silhouette", got {k!r}')
    for name, allowed in (('feature_sets', FEATURE_SETS), ('models', MODELS)):
        bad = set(p['ml'][name]) - set(allowed)
        if bad:
            raise ValueError(
                f'unknown ml.{name}: {", ".join(sorted(bad))} (choose from {", ".join(allowed)})'
            )
    return p


def _validate(value, _):
    try:
        study_parameters(value.get_dict())
    except ValueError as exc:
        return str(exc)
    return None


class StudyWorkChain(WorkChain):
    """Correlations and bootstrap intervals (all and per family), PCA, k-means and ML models of a set of
    descriptor records; every result is a node whose inputs lead back to the records."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace('records', valid_type=orm.Dict, dynamic=True, help='The descriptor records.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            validator=_validate,
            help='Overrides of `aiida_superionic.study.workchain.DEFAULTS` (seeds are recorded here).',
        )
        spec.outline(
            cls.tabulate, cls.correlations, cls.principal_components, cls.machine_learning, cls.finish
        )
        spec.output('table', valid_type=DescriptorTableData)
        spec.output_namespace('correlations', valid_type=orm.Dict, dynamic=True)
        spec.output_namespace('correlation_matrices', valid_type=orm.ArrayData, dynamic=True)
        spec.output('bootstrap', valid_type=orm.Dict, required=False)
        spec.output_namespace(
            'bootstrap_families',
            valid_type=orm.Dict,
            dynamic=True,
            required=False,
            help='The bootstrap of c_S(D, .) within each family of the per-family correlations.',
        )
        spec.output('pca', valid_type=orm.Dict, required=False)
        spec.output('pca_arrays', valid_type=orm.ArrayData, required=False)
        spec.output_namespace('kmeans', valid_type=orm.Dict, dynamic=True, required=False)
        spec.output_namespace('ml', valid_type=orm.Dict, dynamic=True, required=False)
        spec.output_namespace('models', valid_type=orm.SinglefileData, dynamic=True, required=False)
        spec.output_namespace('ml_predictions', valid_type=orm.ArrayData, dynamic=True, required=False)
        spec.exit_code(300, 'ERROR_NO_RECORDS', message='no descriptor records were given')
        spec.exit_code(301, 'ERROR_EMPTY_WINDOW', message='{message}')

    def _p(self) -> dict[str, Any]:
        return study_parameters(self.inputs.parameters.get_dict() if 'parameters' in self.inputs else None)

    def _skip(self, name: str, node) -> None:
        self.ctx.skipped[name] = node.exit_message or f'exit status {node.exit_status}'
        self.report(f'{name}: skipped ({self.ctx.skipped[name]})')

    def _call(self, name: str, func, *args):
        """Run a study calcfunction; a step that cannot run on its table is recorded as skipped."""
        outputs, node = func.run_get_node(*args)
        if not node.is_finished_ok:
            self._skip(name, node)
            return None
        return outputs

    def tabulate(self):
        if not self.inputs.records:
            return self.exit_codes.ERROR_NO_RECORDS
        self.ctx.skipped = {}
        self.ctx.table = functions.tabulate(**self.inputs.records)
        self.out('table', self.ctx.table)
        frame = self.ctx.table.to_dataframe()
        p = self._p()
        window = p['temperature_window']
        if window is not None:
            inside = frame[(frame.temperature_K >= window[0]) & (frame.temperature_K <= window[1])]
            if inside.empty:
                temps = ', '.join(f'{t:g}' for t in sorted(frame.temperature_K.unique()))
                return self.exit_codes.ERROR_EMPTY_WINDOW.format(
                    message=f'no record with {window[0]:g} <= T <= {window[1]:g} K (records at {temps} K): '
                    'widen the temperature window'
                )
        else:
            inside = frame
        self.ctx.window_frame = inside
        self.report(
            f'table: {len(frame)} records of {frame.material.nunique()} materials; '
            f'{len(inside)} in the temperature window {window} K, of {inside.material.nunique()} materials '
            '(one record per material for the correlations, PCA and k-means)'
        )

    def correlations(self):
        p = self._p()
        families = p['families']
        if families == 'auto':
            counts = self.ctx.window_frame.groupby('family')['material'].nunique()
            families = sorted(f for f, n in counts.items() if n >= 3 and counts.size > 1)
        for family in [None, *families]:
            for method in ('spearman', 'pearson'):
                name = f'{family or "all"}_{method}'
                params = {
                    'method': method,
                    'temperature_window': p['temperature_window'],
                    'family': family,
                    'min_pairs': p['min_pairs'],
                    'descriptors': p['descriptors'],
                }
                out = self._call(
                    f'correlations.{name}', functions.correlate, self.ctx.table, orm.Dict(params)
                )
                if out is not None:
                    self.out(f'correlations.{name}', out['summary'])
                    self.out(f'correlation_matrices.{name}', out['matrices'])
        self.report(f'correlations: all materials and families {families or "none"}')
        for family in [None, *families]:  # all materials, then each family (the paper's Fig. 2(b), 2(c))
            params = {
                **p['bootstrap'],
                'target': 'D',
                'seed': p['seed'],
                'temperature_window': p['temperature_window'],
                'descriptors': p['descriptors'],
                'family': family,
            }
            name = 'bootstrap' if family is None else f'bootstrap_families.{family}'
            out = self._call(name, functions.bootstrap, self.ctx.table, orm.Dict(params))
            if out is not None:
                self.out(name, out)
                self.report(f'{name}: {params["n_boot"]} resamples of the materials')

    def principal_components(self):
        p = self._p()
        params = {
            'temperature_window': p['temperature_window'],
            'max_missing': p['max_missing'],
            'descriptors': p['descriptors'],
        }
        out = self._call('pca', functions.principal_components, self.ctx.table, orm.Dict(params))
        if out is None:
            return
        self.out('pca', out['summary'])
        self.out('pca_arrays', out['arrays'])
        explained = out['summary']['explained_first_three']
        self.report(f'PCA: the first three PCs explain {100 * explained:.0f}% of the variance')
        for n in p['kmeans']['components']:
            params = {
                'n_components': n,
                'k_max': p['kmeans']['k_max'],
                'k': p['kmeans']['k'],
                'seed': p['seed'],
            }
            res = self._call(f'kmeans.pc{n}', functions.cluster, out['arrays'], orm.Dict(params))
            if res is not None:
                self.out(f'kmeans.pc{n}', res)
                self.report(f'k-means in PC1-PC{n}: k = {res["k"]} ({res["k_choice"]})')
                if res['note']:
                    self.report(f'k-means in PC1-PC{n}: {res["note"]}')

    def machine_learning(self):
        p = self._p()
        mlp = p['ml']
        jobs = [(t, f, m) for t in mlp['targets'] for f in mlp['feature_sets'] for m in mlp['models']]
        for i, (target, feature_set, model) in enumerate(jobs, 1):
            name = f'{target}_{feature_set}_{model}'
            params = {
                'target': target,
                'feature_set': feature_set,
                'model': model,
                'seed': p['seed'],
                'max_iter': mlp['max_iter'],
                'temperature_window': mlp['temperature_window'],
                'include_temperature': mlp['include_temperature'],
                'descriptors': p['descriptors'],
            }
            out = self._call(f'ml.{name}', functions.train_model, self.ctx.table, orm.Dict(params))
            if out is None:
                continue
            self.out(f'ml.{name}', out['metrics'])
            self.out(f'models.{name}', out['model'])
            self.out(f'ml_predictions.{name}', out['predictions'])
            self.report(
                f'ML {i}/{len(jobs)} {name}: MAPE test {100 * out["metrics"]["mape_test"]:.0f}%, '
                f'train {100 * out["metrics"]["mape_train"]:.0f}%'
            )

    def finish(self):
        # analyses that could not run on this table, with the reason (their calcfunction nodes carry it too)
        self.node.base.extras.set('skipped', _clean(self.ctx.skipped))
        if self.ctx.skipped:
            self.report(f'{len(self.ctx.skipped)} analyses skipped: {", ".join(sorted(self.ctx.skipped))}')
