"""The study on records in the AiiDA graph: the table query, the work chain's provenance, the stored
model and the CLI (`table`, `study`, `predict`), on a temporary profile."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node
from click.testing import CliRunner

from aiida_superionic.cli import cmd_root
from aiida_superionic.data import DescriptorTableData
from aiida_superionic.descriptors import EXTRA_KEYS, PAPER_KEYS
from aiida_superionic.study import descriptor_table, functions, stats, table_from_records
from aiida_superionic.study.workchain import StudyWorkChain
from tests.study.planted import planted_records

FAST = {
    'bootstrap': {'n_boot': 200},
    'kmeans': {'k_max': 5},
    'ml': {'targets': ['C_v_all'], 'models': ['kernel_ridge', 'mlp'], 'max_iter': 150},
}


def _store(records, group: str | None = None) -> list[orm.Dict]:
    nodes = [orm.Dict(rec).store() for rec in records]
    if group:
        g, _ = orm.Group.collection.get_or_create(group)
        g.add_nodes(nodes)
    return nodes


@pytest.fixture(scope='module')
def planted_group():
    rng = np.random.default_rng(11)
    nodes = _store(planted_records(rng, n_per_family=6, temperatures=(500.0, 900.0)), 'planted')
    return nodes


@pytest.fixture(scope='module')
def fast_study(planted_group):
    """The study with ``FAST`` on the planted group, run once for this module: the provenance test checks
    it, the reproducibility test runs it again and compares."""
    records = {f'r{n.pk}': n for n in planted_group}
    outputs, node = run_get_node(StudyWorkChain, records=records, parameters=orm.Dict(FAST))
    assert node.is_finished_ok, node.exit_message
    return outputs


def _count_nodes() -> int:
    return orm.QueryBuilder().append(orm.Node).count()


def test_descriptor_table_from_the_graph(planted_group):
    _store(
        planted_records(np.random.default_rng(1), families={'Ag': 0.0}, n_per_family=2), None
    )  # not in group
    table = descriptor_table(group='planted')
    assert len(table) == 12 and set(table['temperature_K']) == {500.0}  # the default window, 400-600 K
    assert set(table['pk']) <= {n.pk for n in planted_group}
    every = descriptor_table(group='planted', temperature_window=None)
    assert len(every) == 24
    li = descriptor_table(group='planted', family='Li', temperature_window=(800, 1000))
    assert len(li) == 6 and set(li['family']) == {'Li'}
    assert 'Ag' in set(descriptor_table(temperature_window=None)['family'])
    # the same numbers as the records' attributes
    node = orm.load_node(int(table['pk'].iloc[0]))
    assert table['D'].iloc[0] == node['values']['D']


def test_table_node_round_trips_exactly(planted_group):
    table = table_from_records({**n.get_dict(), 'uuid': n.uuid, 'pk': n.pk} for n in planted_group)
    table.loc[0, 'B'] = np.nan
    table.loc[1, 'Sym'] = None
    node = DescriptorTableData.from_dataframe(table).store()
    back = orm.load_node(node.pk).to_dataframe()
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert back['D'].to_numpy().tobytes() == table['D'].to_numpy().tobytes()  # bit for bit


def test_study_workchain_provenance_and_results(planted_group, fast_study):
    outputs = fast_study
    # every result leads back to the records through the table
    table = outputs['table']
    assert {
        n.uuid for n in table.creator.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all_nodes()
    } == {n.uuid for n in planted_group}
    corr = outputs['correlations']['all_spearman']
    assert corr.creator.inputs.table.uuid == table.uuid
    assert outputs['kmeans']['pc2'].creator.inputs.pca.uuid == outputs['pca_arrays'].uuid
    # the numbers are those of the statistics on the table in the window
    frame = stats.select(table.to_dataframe(), (400, 600))
    ref = stats.correlation_matrices(frame, 'spearman')['coefficients']
    assert corr['D_row']['omega_all']['c'] == pytest.approx(ref.loc['D', 'omega_all']) == pytest.approx(1.0)
    # k-means: the paper's 6 clusters by default; elbow and silhouette reported, and the silhouette
    # finds the 2 planted families
    km = outputs['kmeans']['pc2']
    assert km['k'] == 6 and km['k_requested'] == 6 and km['note'] is None and km['n_points'] == 12
    assert km['k_best_silhouette'] == 2
    assert set(km['inertia']) == {str(k) for k in range(1, 7)} and set(km['silhouette']) == {
        str(k) for k in range(2, 7)
    }
    assert all(len(c) == 1 for c in km['composition'].values())  # no cluster mixes the two families
    assert sum(n for c in km['composition'].values() for n in c.values()) == 12
    # one family alone has 6 materials: a per-family correlogram for each
    assert {'Li_spearman', 'Na_pearson'} <= set(outputs['correlations'])
    # ML trains on every temperature (the paper's 174 samples span all of them)
    metrics = outputs['ml']['C_v_all_anharmonic_kernel_ridge']
    assert metrics['n_samples'] == 24 and metrics['n_materials'] == 12
    assert 'temperature_K' not in metrics['numeric_features']  # the paper's inputs: descriptors only
    assert 'theta_D_nd' not in metrics['numeric_features']  # the paper's 54, not the extras
    assert outputs['models']['C_v_all_anharmonic_mlp'].base.attributes.get('target') == 'C_v_all'
    boot = outputs['bootstrap']['intervals']['omega_all']
    assert boot['low'] <= 1.0 <= boot['high'] + 1e-12


def test_study_is_reproducible(planted_group, fast_study):
    """The same parameters on the same records, run again: the same numbers (the first run is the
    module's ``fast_study``)."""
    records = {f'r{n.pk}': n for n in planted_group}
    a = fast_study
    b, node = run_get_node(StudyWorkChain, records=records, parameters=orm.Dict(FAST))
    assert node.is_finished_ok, node.exit_message
    assert b['table'].uuid != a['table'].uuid  # a second run, not the first one's nodes
    for name in ('pca', 'bootstrap'):
        assert a[name].get_dict() == b[name].get_dict()
    for model in ('mlp', 'kernel_ridge'):
        key = f'C_v_all_anharmonic_{model}'
        assert a['ml'][key]['mape_test'] == b['ml'][key]['mape_test'], key
    assert a['kmeans']['pc3']['labels'] == b['kmeans']['pc3']['labels']


def test_a_step_that_cannot_run_is_skipped_with_its_reason():
    rng = np.random.default_rng(3)
    nodes = _store(planted_records(rng, families={'Cu': 1.0}, n_per_family=1, temperatures=(500.0, 550.0)))
    params = {'ml': {'targets': ['D'], 'models': ['kernel_ridge'], 'feature_sets': ['harmonic']}}
    _, node = run_get_node(
        StudyWorkChain, records={f'r{n.pk}': n for n in nodes}, parameters=orm.Dict(params)
    )
    assert node.is_finished_ok
    skipped = node.base.extras.get('skipped')
    assert 'at least 2 materials' in skipped['ml.D_harmonic_kernel_ridge']
    assert 'correlations.all_spearman' in skipped  # two rows: fewer than 3 pairs for every descriptor


def test_unknown_study_parameters_are_rejected_before_anything_runs(planted_group):
    before = _count_nodes()
    with pytest.raises(ValueError, match=r'unknown study parameters: ml\.target'):
        run_get_node(
            StudyWorkChain, records={'a': planted_group[0]}, parameters=orm.Dict({'ml': {'target': 'D'}})
        )
    assert _count_nodes() == before


def test_cli_table_study_predict(planted_group, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cmd_root, ['table', '--group', 'planted', '--csv', str(tmp_path / 't.csv')])
    assert res.exit_code == 0, res.output
    csv = pd.read_csv(tmp_path / 't.csv')
    assert len(csv) == 12 and 'D [cm^2/s]' in csv.columns
    res = runner.invoke(cmd_root, ['table', '--group', 'planted', '--all-temperatures'])
    assert res.exit_code == 0 and '24 records of 12 materials' in res.output
    assert res.output.count(' 54/54') == 24  # every one of the paper's 54 descriptors is known
    res = runner.invoke(cmd_root, ['table', '--group', 'planted', '--full'])
    header = res.output.splitlines()[0].split()
    assert res.exit_code == 0 and header[6:-1] == list(PAPER_KEYS) and 'theta_D_nd' not in header
    res = runner.invoke(cmd_root, ['table', '--group', 'planted', '--full', '--extras'])
    assert res.output.splitlines()[0].split()[-3:] == ['theta_D_nd', 'theta_D_d', 'descriptors']
    out = tmp_path / 'study'
    args = ['study', '--group', 'planted', '--out', str(out), '--n-boot', '100', '--target', 'C_v_all']
    params = '{"ml": {"models": ["kernel_ridge"]}, "kmeans": {"k_max": 4}}'
    flags = ['--k-silhouette', '--ml-temperature']  # the planted C_v depends on T
    res = runner.invoke(cmd_root, [*args, *flags, '--parameters', params])
    assert res.exit_code == 0, res.output
    assert 'k-means pc2: k = 2 (best silhouette)' in res.output
    pngs = {p.name for p in out.glob('*.png')}
    assert {
        'correlogram_all_spearman.png',
        'D_correlations_all_spearman.png',
        'pca.png',
        'kmeans_pc2.png',
    } <= pngs
    assert (
        'parity_C_v_all_anharmonic_kernel_ridge.png' in pngs
        and len([p for p in pngs if p.startswith('material_')]) == 12
    )
    html = (out / 'report.html').read_text()
    assert html.count('<img src="data:image/png;base64,') == len(pngs)
    # this study beside the paper: in the report and as rst/csv in --out
    assert '<h2>Beside the paper</h2>' in html and 'c_S(D, κ)' in html
    beside = pd.read_csv(out / 'beside_paper.csv')
    assert (
        set(beside['subset']) == {'all', 'Li'} and beside['n_materials'].astype(str).isin(['12', '6']).all()
    )
    assert (out / 'beside_paper.rst').read_text().startswith('.. list-table::')
    assert 'beside_paper.rst' in res.output
    study = (
        orm.QueryBuilder()
        .append(StudyWorkChain, project='*')
        .order_by({StudyWorkChain: {'ctime': 'desc'}})
        .first()[0]
    )
    model = study.outputs.models['C_v_all_anharmonic_kernel_ridge']
    assert study.outputs.ml['C_v_all_anharmonic_kernel_ridge']['numeric_features'][-1] == 'temperature_K'
    record = planted_group[0]
    res = runner.invoke(cmd_root, ['predict', str(model.pk), str(record.pk)])
    assert res.exit_code == 0, res.output
    prediction = (
        orm.QueryBuilder()
        .append(orm.Dict, filters={'attributes.target': 'C_v_all'}, project='*')
        .order_by({orm.Dict: {'ctime': 'desc'}})
        .first()[0]
    )
    assert prediction.creator.inputs.record.uuid == record.uuid
    assert prediction['predicted'] == pytest.approx(record['values']['C_v_all'], rel=0.05)


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['table', '--group', 'no-such-group'], "no group 'no-such-group'"),
        (['table', '--tmin', '700', '--tmax', '600'], 'empty temperature window'),
        (['table', '--tmin', '-5'], '--tmin must be a positive temperature'),
        (
            ['study', '--out', '{out}', '--group', 'planted', '--tmin', '2000', '--tmax', '3000'],
            'no record with 2000 <= T <= 3000 K',
        ),
        (['study', '--out', '{out}', '--target', 'nonsense'], 'unknown --target nonsense'),
        (
            ['study', '--out', '{out}', '--parameters', '{"ml": {"models": ["forest"]}}'],
            'unknown ml.models: forest',
        ),
        (['study', '--out', '{out}', '--parameters', '[1]'], '--parameters must be a JSON object'),
        (['study', '--out', '{out}', '--k', '3', '--k-silhouette'], 'give --k or --k-silhouette, not both'),
        (
            ['study', '--out', '{out}', '--parameters', '{"kmeans": {"k": "elbow"}}'],
            'kmeans.k must be a positive integer or "silhouette"',
        ),
        (['study', '--out', '{file}'], 'is a file'),
        (['predict', '999999', '1'], 'no node with PK/UUID 999999'),
    ],
)
def test_cli_bad_input_one_line_no_nodes(planted_group, tmp_path, args, message):
    (tmp_path / 'file').write_text('x')
    args = [a.replace('{out}', str(tmp_path / 'o')).replace('{file}', str(tmp_path / 'file')) for a in args]
    before = _count_nodes()
    res = CliRunner().invoke(cmd_root, args)
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('Error: ') and message in lines[0], res.output
    assert _count_nodes() == before


def test_correlations_and_pca_take_one_record_per_material(tmp_path):
    """Four records per material in 400-600 K (two temperatures x stoichiometric/vacancies): the
    correlations count each material once, and their p-values are scipy's on the record nearest
    500 K (stoichiometric first), picked here independently."""
    from scipy import stats as sps

    rng = np.random.default_rng(21)
    records = planted_records(rng, n_per_family=5, temperatures=(450.0, 550.0), stoichiometries=(True, False))
    for rec in records:  # make the records of a material differ beyond D
        rec['values']['G'] += 0.02 * rec['temperature_K'] * (1 if rec['stoichiometric'] else -1)
    nodes = _store(records, 'planted-dup')
    table = functions.tabulate(**{f'r{n.pk}': n for n in nodes})
    params = {'method': 'spearman', 'temperature_window': [400.0, 600.0]}
    out = functions.correlate(table, orm.Dict(params))
    summary = out['summary']
    assert summary['n_rows'] == summary['n_materials'] == 10  # not 40 records
    assert len(summary['row_uuids']) == 10
    # the same rows chosen here: 450 and 550 K are equally near 500 K -> stoichiometric -> 450 K
    chosen = [n for n in nodes if n['stoichiometric'] and n['temperature_K'] == 450.0]
    assert sorted(summary['row_uuids']) == sorted(n.uuid for n in chosen)
    for key in ('omega_all', 'G', 'B'):
        ref = sps.spearmanr([n['values']['D'] for n in chosen], [n['values'][key] for n in chosen])
        assert summary['D_row'][key]['c'] == pytest.approx(ref.statistic, rel=1e-12)
        assert summary['D_row'][key]['p'] == pytest.approx(ref.pvalue, rel=1e-10)
        assert summary['D_row'][key]['n'] == 10
    pca = functions.principal_components(table, orm.Dict({'temperature_window': [400.0, 600.0]}))
    assert pca['summary']['n_rows'] == pca['summary']['n_materials'] == 10
    # k-means on 10 materials: the paper's k = 6
    km = functions.cluster(pca['arrays'], orm.Dict({'n_components': 2}))
    assert km['k'] == 6 and len(km['labels']) == 10
    # the ML keeps every record (all temperatures and stoichiometries, as the paper's 174 samples)
    ml_params = {'target': 'C_v_all', 'model': 'kernel_ridge', 'feature_set': 'harmonic'}
    assert functions.train_model(table, orm.Dict(ml_params))['metrics']['n_samples'] == 40


def test_kmeans_with_too_few_materials_says_so_and_uses_the_largest_k():
    pca = orm.ArrayData()
    pca.set_array('projections', np.random.default_rng(2).normal(size=(5, 3)))
    pca.base.attributes.set('row_families', ['Li', 'Li', 'Na', 'Na', 'Cu'])
    pca.base.attributes.set('row_uuids', [f'u{i}' for i in range(5)])
    res = functions.cluster(pca, orm.Dict({'n_components': 2}))
    assert res['k'] == 4 and res['k_requested'] == 6
    assert 'only 5 materials' in res['note'] and 'k = 4' in res['note']
    assert len(set(res['labels'])) == 4


def test_show_prints_the_54_in_table_1_order_then_the_extras_and_reads_old_records(rng):
    record = planted_records(rng, families={'K': 0.0}, n_per_family=1)[0]
    record['material'] = 'old-record'
    record['values']['theta_D_all'] = 345.6  # stored before theta_D became one descriptor
    del record['values']['theta_D']
    _store([record])
    res = CliRunner().invoke(cmd_root, ['show', 'old-record'])
    assert res.exit_code == 0, res.output
    rows = [line.split() for line in res.output.splitlines()[4:]]
    keys = [r[0] for r in rows if r[0] != '--']
    # the descriptors in order; the one status row (whether D is resolved) follows D
    assert keys == [
        *PAPER_KEYS[: PAPER_KEYS.index('D') + 1],
        'D_resolved',
        *PAPER_KEYS[PAPER_KEYS.index('D') + 1 :],
        *EXTRA_KEYS,
    ]
    headings = [' '.join(r[1:]) for r in rows if r[0] == '--']
    assert headings == ['M-E', 'D-V', 'S-C', "extras (not among the paper's 54)"]
    theta = next(r for r in rows if r[0] == 'theta_D')
    assert theta[-1] == '345.6'
