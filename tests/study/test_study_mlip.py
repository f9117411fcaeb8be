"""The study on descriptor records made by the real MLIP engine (CHGNet, `fast` protocol) in the graph:
two materials, each at two temperatures, stoichiometric and with Li vacancies (Li3N: the session's shared
material run)."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk
from scipy import stats as sps

from aiida_superionic.study import descriptor_table, stats
from aiida_superionic.study.figures import render
from aiida_superionic.study.workchain import StudyWorkChain
from aiida_superionic.workflows.material import MaterialWorkChain


@pytest.fixture(scope='module')
def mlip_records(mlip_code, li3n_fast):
    """Li3N: the session's shared material run (conftest ``li3n_fast``, the fast protocol, also checked by
    tests/engines/test_mlip_workflows.py); LiF: run here, first, with the inputs given one by one and its
    records put in a new group by the work chain (``submit --group``); Li3N's records are added to it."""
    outputs, node = run_get_node(
        MaterialWorkChain,
        structure=orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.03)),
        mobile=orm.Str('Li'),
        code=mlip_code,
        protocol=orm.Str('fast'),
        overrides=orm.Dict({'md': {'n_steps': 240}}),
        label=orm.Str('LiF'),
        group_label=orm.Str('mlip-study'),  # `submit --group`
    )
    assert node.is_finished_ok, node.exit_message
    group = orm.load_group('mlip-study')
    assert {n.uuid for n in group.nodes} >= {r.uuid for r in outputs['records'].values()}
    assert li3n_fast.node.is_finished_ok, li3n_fast.node.exit_message
    group.add_nodes(list(li3n_fast.outputs['records'].values()))
    return group


@pytest.mark.slow  # the shared Li3N chain and a LiF chain on the real potential
def test_study_on_real_mlip_records(mlip_records, tmp_path):
    table = descriptor_table(group='mlip-study', temperature_window=None)
    assert len(table) == 8 and set(table['engine']) == {'mlip'} and table.material.nunique() == 2
    assert table['E_g'].isna().all() and table['B'].notna().all()  # no band gap from an ML potential
    records = {f'r{n.pk}': n for n in mlip_records.nodes}
    params = {
        'temperature_window': None,  # the fast protocol runs at 900 and 1500 K
        'bootstrap': {'n_boot': 200},
        'kmeans': {'k_max': 4},
        'ml': {'targets': ['D', 'C_v_all'], 'models': ['kernel_ridge'], 'feature_sets': ['anharmonic']},
    }
    outputs, node = run_get_node(StudyWorkChain, records=records, parameters=orm.Dict(params))
    assert node.is_finished_ok, node.exit_message
    # two materials: the correlations, PCA and k-means take one record per material, too few for them
    skipped = node.base.extras.get('skipped')
    for name in ('correlations.all_spearman', 'bootstrap', 'pca'):
        assert 'only 2 materials' in skipped[name], skipped
    # the statistics on the 8 records themselves: scipy's Spearman on the engine numbers (C_v and <omega>: known
    # in every record; D only where resolved from zero, which short runs of small cells often are not)
    corr = stats.correlation_matrices(table, 'spearman')
    assert corr['n_rows'] == 8 and corr['dropped']['E_g'] == '0 known values (< 3)'
    ref = sps.spearmanr(table['C_v_all'], table['omega_all'])
    assert corr['coefficients'].loc['C_v_all', 'omega_all'] == pytest.approx(ref.statistic)
    assert corr['p_values'].loc['C_v_all', 'omega_all'] == pytest.approx(ref.pvalue)
    n_d = int(table['D'].notna().sum())
    assert n_d == sum(bool(n['D_resolved']) for n in mlip_records.nodes)
    if n_d < 3:
        assert corr['dropped']['D'] == f'{n_d} known values (< 3)'
    else:
        both = table[['D', 'omega_all']].dropna()
        assert corr['coefficients'].loc['D', 'omega_all'] == pytest.approx(
            sps.spearmanr(both['D'], both['omega_all']).statistic
        )
    pca = stats.pca_spearman(table)
    assert 'E_g' in pca['dropped_columns'] and 0 < pca['explained'].iloc[:3].sum() <= 1
    assert pca['explained'].sum() == pytest.approx(1.0)
    # the ML trains on every record, as the paper
    metrics = outputs['ml']['C_v_all_anharmonic_kernel_ridge']
    assert metrics['n_materials'] == 2 and metrics['n_samples'] == 8
    assert np.isfinite(metrics['mape_test'])
    report = render(node, tmp_path)
    assert (tmp_path / 'material_Li3N.png').stat().st_size > 10_000  # MSD, VDOS and Arrhenius drawn
    # one parity plot per trained model and one panel per material; D's model is trained only where enough
    # records resolved D from zero (short runs may not), and otherwise its skip is recorded with the reason
    if 'D_anharmonic_kernel_ridge' not in outputs['ml']:
        assert 'ml.D_anharmonic_kernel_ridge' in skipped, skipped
    assert report.read_text().count('data:image/png') == len(outputs['ml']) + 2
