"""Figures of a study (PNG) and one self-contained HTML report, drawn from a ``superionic.study`` node.

Correlograms and p-value maps (Fig. 1), D-correlation bars with bootstrap intervals (Fig. 2), PCA scree
and loadings (Fig. 4), k-means maps with cluster composition, elbow and silhouette (Fig. 5, S4-S5), ML
parity plots (Fig. 3), and MSD / VDOS / Arrhenius plots per material; the table "beside the paper"
(:mod:`.paper`) in the report and as ``beside_paper.csv`` / ``beside_paper.rst``.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..descriptors import BY_KEY
from . import paper

Progress = Callable[[str], None]


def _plt():
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def _symbol(key: str) -> str:
    return BY_KEY[key].symbol if key in BY_KEY else key


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches='tight')
    _plt().close(fig)
    return path


def correlogram(matrices, title: str, path: Path) -> Path:
    """Coefficient and p-value heatmaps side by side."""
    plt = _plt()
    labels = [_symbol(k) for k in matrices.base.attributes.get('labels')]
    coef, pval = matrices.get_array('coefficients'), matrices.get_array('p_values')
    n = len(labels)
    size = max(6.0, 0.17 * n + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, data, cmap, vmin, vmax, name in (
        (axes[0], coef, 'RdBu_r', -1, 1, 'coefficient'),
        (axes[1], pval, 'viridis_r', 0, 1, 'p-value'),
    ):
        im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_xticks(range(n), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(n), labels, fontsize=6)
        ax.set_title(f'{title}: {name}')
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def d_bars(summary, boot, path: Path) -> Path:
    """Correlations of D with every descriptor, coloured by p-value, with bootstrap intervals."""
    plt = _plt()
    row = summary['D_row']
    keys = sorted((k for k in row if row[k]['c'] is not None), key=lambda k: -abs(row[k]['c']))
    c = np.array([row[k]['c'] for k in keys])
    p = np.array([row[k]['p'] if row[k]['p'] is not None else 1.0 for k in keys])
    colours = np.where(p < 0.01, 'tab:green', np.where(p < 0.05, 'tab:orange', 'tab:gray'))
    fig, ax = plt.subplots(figsize=(max(6, 0.22 * len(keys) + 2), 4))
    ax.bar(range(len(keys)), 100 * c, color=colours)
    if boot is not None:
        intervals = boot['intervals']
        for i, k in enumerate(keys):
            if k in intervals and intervals[k]['low'] is not None:
                ax.plot([i, i], [100 * intervals[k]['low'], 100 * intervals[k]['high']], color='k', lw=1)
    ax.set_xticks(range(len(keys)), [_symbol(k) for k in keys], rotation=90, fontsize=7)
    ax.set_ylabel(f'{summary["method"]} correlation with D (%)')
    ax.axhline(0, color='k', lw=0.5)
    ax.set_title('green p < 0.01, orange p < 0.05, grey otherwise; bars: bootstrap interval')
    return _save(fig, path)


def pca_plots(summary, arrays, path: Path) -> Path:
    plt = _plt()
    explained = np.array(summary['explained'])
    loadings = arrays.get_array('loadings')
    labels = [_symbol(k) for k in arrays.base.attributes.get('descriptors')]
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5), gridspec_kw={'width_ratios': [1, 3]})
    n = min(len(explained), 15)
    axes[0].bar(range(1, n + 1), 100 * explained[:n])
    axes[0].plot(range(1, n + 1), 100 * np.cumsum(explained[:n]), 'k.-')
    axes[0].set_xlabel('principal component')
    axes[0].set_ylabel('normalised eigenvalue (%)')
    width = 0.27
    for i in range(min(3, loadings.shape[1])):
        axes[1].bar(np.arange(len(labels)) + (i - 1) * width, loadings[:, i], width, label=f'PC{i + 1}')
    axes[1].set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axes[1].set_ylabel('eigenvector component')
    axes[1].legend()
    return _save(fig, path)


def kmeans_plots(result, arrays, path: Path) -> Path:
    plt = _plt()
    proj = arrays.get_array('projections')
    families = arrays.base.attributes.get('row_families')
    labels = np.array(result['labels'])
    n_pc = result['n_components']
    fig = plt.figure(figsize=(17, 4.8))
    fig.subplots_adjust(wspace=0.45)
    markers = dict(zip(sorted(set(families)), 'osD^v<>ph*', strict=False))
    if n_pc >= 3:
        ax = fig.add_subplot(1, 3, 1, projection='3d')
    else:
        ax = fig.add_subplot(1, 3, 1)
    from matplotlib.lines import Line2D

    for fam, marker in markers.items():  # colour: cluster; marker: mobile species
        sel = np.array([f == fam for f in families])
        coords = [proj[sel, i] for i in range(min(n_pc, 3))]
        ax.scatter(*coords, c=labels[sel], cmap='tab10', vmin=0, vmax=9, marker=marker)
    handles = [Line2D([], [], marker=m, color='k', linestyle='', label=f) for f, m in markers.items()]
    for i, centre in enumerate(result['centroids']):
        ax.text(*centre[:3], str(i + 1), fontsize=12, weight='bold')
    ax.set_xlabel('PC1')
    ax.set_ylabel('PC2')
    ax.legend(handles=handles, fontsize=7)
    ax.set_title(f'k = {result["k"]} ({result["k_choice"]}), PC1-PC{n_pc}')
    ax2 = fig.add_subplot(1, 3, 2)
    ks = sorted(int(k) for k in result['inertia'])
    ax2.plot(ks, [result['inertia'][str(k)] for k in ks], 'o-', label='inertia (elbow)')
    ax2.set_xlabel('k')
    ax2.set_ylabel('inertia')
    if result['silhouette']:
        twin = ax2.twinx()
        sk = sorted(int(k) for k in result['silhouette'])
        twin.plot(sk, [result['silhouette'][str(k)] for k in sk], 's--', color='tab:red')
        twin.set_ylabel('silhouette', color='tab:red')
    ax3 = fig.add_subplot(1, 3, 3)
    comp = result['composition']
    fams = sorted({f for c in comp.values() for f in c})
    bottom = np.zeros(len(comp))
    clusters = sorted(comp, key=int)
    for fam in fams:
        counts = np.array([comp[c].get(fam, 0) for c in clusters], dtype=float)
        ax3.bar([int(c) + 1 for c in clusters], counts, bottom=bottom, label=fam)
        bottom += counts
    ax3.set_xlabel('cluster')
    ax3.set_ylabel('materials')
    ax3.legend(fontsize=7)
    return _save(fig, path)


def parity(metrics, predictions, path: Path) -> Path:
    plt = _plt()
    true, pred = predictions.get_array('true'), predictions.get_array('predicted')
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(true, pred, s=14)
    lo, hi = min(true.min(), pred.min()), max(true.max(), pred.max())
    ax.plot([lo, hi], [lo, hi], 'k--', lw=0.8)
    unit = BY_KEY[metrics['target']].unit
    ax.set_xlabel(f'{_symbol(metrics["target"])} recorded ({unit})')
    ax.set_ylabel('predicted, material left out')
    ax.set_title(
        f'{metrics["model_type"]}, {metrics["feature_set"]}: MAPE {100 * metrics["mape_test"]:.0f}% '
        f'(train {100 * metrics["mape_train"]:.0f}%)',
        fontsize=9,
    )
    return _save(fig, path)


def _record_arrays(record) -> dict[str, Any]:
    """The MSD and VDOS arrays behind a record (through the calcfunctions that made its parts)."""
    out: dict[str, Any] = {}
    creator = record.creator
    if creator is None:
        return out
    for label, part in (('diffusion', 'msd'), ('vibrational', 'vdos')):
        if label in creator.inputs and creator.inputs[label].creator is not None:
            outputs = creator.inputs[label].creator.outputs
            if part in outputs:
                out[part] = outputs[part]
    return out


def material_plots(table, material: str, path: Path) -> Path:
    """MSD(τ) and VDOS of every record of a material, and its Arrhenius plot."""
    from aiida import orm

    from ..analysis import arrhenius

    plt = _plt()
    rows = table[table['material'] == material]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for _, row in rows.iterrows():
        tag = f'{row.temperature_K:g} K{"" if row.stoichiometric else " (vac.)"}'
        try:
            arrays = _record_arrays(orm.load_node(row.uuid))
        except Exception:  # a record imported without its history
            arrays = {}
        if 'msd' in arrays:
            axes[0].plot(arrays['msd'].get_array('time_ps'), arrays['msd'].get_array('msd_A2'), label=tag)
        if 'vdos' in arrays:
            axes[1].plot(arrays['vdos'].get_array('energy_meV'), arrays['vdos'].get_array('all'), label=tag)
    axes[0].set_xlabel('τ (ps)')
    axes[0].set_ylabel(f'MSD of {rows.family.iloc[0]} (Å²)')
    axes[1].set_xlabel('energy (meV)')
    axes[1].set_ylabel('VDOS, all ions (1/meV)')
    for ax in axes[:2]:
        if ax.lines:
            ax.legend(fontsize=7)
    for stoich, sub in rows.groupby('stoichiometric'):
        sub = sub[sub['D'] > 0]
        if sub.empty:
            continue
        label = 'stoichiometric' if stoich else 'with vacancies'
        axes[2].semilogy(1000 / sub.temperature_K, sub.D, 'o', label=label)
        if sub.temperature_K.nunique() >= 2:
            with np.errstate(all='ignore'):
                fit = arrhenius(sub.temperature_K.to_numpy(), sub.D.to_numpy())
            t = np.linspace(sub.temperature_K.min(), sub.temperature_K.max(), 20)
            axes[2].semilogy(
                1000 / t,
                fit['D0_cm2_s'] * np.exp(-fit['E_a_eV'] / (8.617333e-5 * t)),
                '--',
                label=f'E_a = {fit["E_a_eV"]:.2f} eV',
            )
    axes[2].set_xlabel('1000 / T (1/K)')
    axes[2].set_ylabel('D (cm²/s)')
    if axes[2].lines:
        axes[2].legend(fontsize=7)
    fig.suptitle(material)
    return _save(fig, path)


def render(node, out_dir: Path, progress: Progress | None = None, per_material_limit: int = 50) -> Path:
    """Every figure of a finished ``superionic.study`` node into ``out_dir``, and ``report.html``."""
    say = progress or (lambda message: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = node.outputs
    table = outputs.table.to_dataframe()
    sections: list[tuple[str, list[tuple[Path, str]]]] = []

    figs = []
    for name in sorted(outputs.correlation_matrices) if 'correlation_matrices' in outputs else []:
        say(f'correlogram {name}')
        figs.append(
            (correlogram(outputs.correlation_matrices[name], name, out_dir / f'correlogram_{name}.png'), name)
        )
    sections.append(('Correlograms and p-values (Fig. 1)', figs))

    figs = []
    boot = outputs.bootstrap if 'bootstrap' in outputs else None
    families = outputs.bootstrap_families if 'bootstrap_families' in outputs else {}
    for name in sorted(outputs.correlations) if 'correlations' in outputs else []:
        summary = outputs.correlations[name]
        if summary['D_row']:
            say(f'D correlations {name}')
            family, _, method = name.rpartition('_')
            if method != 'spearman':
                use_boot = None
            elif family == 'all':
                use_boot = boot
            else:
                use_boot = families[family] if family in families else None
            figs.append((d_bars(summary, use_boot, out_dir / f'D_correlations_{name}.png'), name))
    sections.append(('Correlations with D (Fig. 2)', figs))

    figs = []
    if 'pca' in outputs:
        say('PCA')
        figs.append((pca_plots(outputs.pca, outputs.pca_arrays, out_dir / 'pca.png'), 'scree and loadings'))
        for name in sorted(outputs.kmeans) if 'kmeans' in outputs else []:
            say(f'k-means {name}')
            path = out_dir / f'kmeans_{name}.png'
            figs.append((kmeans_plots(outputs.kmeans[name], outputs.pca_arrays, path), name))
    sections.append(('PCA and k-means (Figs 4-5)', figs))

    figs = []
    for name in sorted(outputs.ml) if 'ml' in outputs else []:
        say(f'parity {name}')
        path = out_dir / f'parity_{name}.png'
        figs.append((parity(outputs.ml[name], outputs.ml_predictions[name], path), name))
    sections.append(('Machine learning, leave one material out (Fig. 3)', figs))

    figs = []
    materials = sorted(table['material'].unique())[:per_material_limit]
    for i, material in enumerate(materials, 1):
        say(f'material {i}/{len(materials)}: {material}')
        safe = ''.join(ch if ch.isalnum() or ch in '-_' else '_' for ch in material)
        figs.append((material_plots(table, material, out_dir / f'material_{safe}.png'), material))
    sections.append(('MSD, VDOS and Arrhenius per material', figs))
    say('beside the paper')
    beside = beside_paper_of(node)
    paper.write(beside, out_dir)
    return write_report(node, table, sections, out_dir / 'report.html', beside)


def beside_paper_of(node):
    """The table of :func:`aiida_superionic.study.paper.beside_paper` from a finished study's stored
    outputs (the bootstrap of all materials and of the Li family, the Spearman summaries, the PCA and
    the k-means summaries); an analysis the study skipped gives ``n/a`` rows with its recorded reason."""
    outputs = node.outputs
    skipped = node.base.extras.get('skipped', {})

    def get(name, sub=None):
        if name not in outputs:
            return None
        port = outputs[name]
        if sub is None:
            return port.get_dict()
        return port[sub].get_dict() if sub in port else None

    kmeans = {n: outputs.kmeans[n].get_dict() for n in outputs.kmeans} if 'kmeans' in outputs else None
    reasons = {
        'all': skipped.get('bootstrap'),
        'Li': skipped.get('bootstrap_families.Li'),
        'pca': skipped.get('pca'),
        'kmeans': next((v for k, v in sorted(skipped.items()) if k.startswith('kmeans')), None),
    }
    boot_all, corr_all = get('bootstrap'), get('correlations', 'all_spearman')
    boot_li, corr_li = get('bootstrap_families', 'Li'), get('correlations', 'Li_spearman')
    if boot_li is None and boot_all is not None and corr_all is not None:
        # a study of Li materials only has no per-family analyses: all materials are the Li family
        frame = outputs.table.to_dataframe()
        families = set(frame.loc[frame['uuid'].isin(corr_all.get('row_uuids') or []), 'family'])
        if families == {'Li'}:
            boot_li, corr_li = boot_all, corr_all
    return paper.beside_paper(
        bootstrap=boot_all,
        bootstrap_li=boot_li,
        correlations=corr_all,
        correlations_li=corr_li,
        pca=get('pca'),
        kmeans=kmeans or None,
        reasons={k: v for k, v in reasons.items() if v},
    )


def _beside_html(beside) -> str:
    cols = [*paper.RST_COLUMNS, 'where']  # the rst table's columns and where each value is from
    head = ''.join(f'<th>{html.escape(c)}</th>' for c in cols)
    rows = ''.join(
        '<tr>' + ''.join(f'<td>{html.escape(str(row[c]))}</td>' for c in cols) + '</tr>'
        for _, row in beside.iterrows()
    )
    return (
        "<h2>Beside the paper</h2><p>López <i>et al.</i> (2023), numbers of the paper's text (line numbers of "
        f"{html.escape(paper.PAPER_TEXT)}) beside this study's: Spearman c_S(D, ·) with percentile bootstrap "
        'intervals over materials (all materials; the Li family), PCA variance shares and k-means k. '
        "<i>inside</i>: the paper's value lies in our interval. Also in beside_paper.csv and "
        f'beside_paper.rst.</p><table><tr>{head}</tr>{rows}</table>'
    )


def write_report(node, table, sections, path: Path, beside=None) -> Path:
    """One HTML file with the figures embedded (it can be mailed on its own) and the key numbers;
    ``beside``: the table of :func:`beside_paper_of` (its "Beside the paper" section)."""
    parts = [
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>aiida-superionic study</title>',
        '<style>body{font-family:sans-serif;max-width:1400px;margin:auto}img{max-width:100%}'
        'table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>',
        f'<h1>Superionic descriptor study</h1><p>StudyWorkChain PK {node.pk}, UUID {node.uuid}. '
        f'{len(table)} records of {table.material.nunique()} materials '
        f'({", ".join(sorted(map(str, table.family.dropna().unique())))}).</p>',
    ]
    skipped = node.base.extras.get('skipped', {})
    if skipped:
        items = ''.join(
            f'<li>{html.escape(k)}: {html.escape(str(v))}</li>' for k, v in sorted(skipped.items())
        )
        parts.append(f'<h2>Skipped analyses</h2><ul>{items}</ul>')
    if 'ml' in node.outputs:
        rows = ''.join(
            f'<tr><td>{html.escape(name)}</td><td>{100 * m["mape_test"]:.1f}%</td>'
            f'<td>{100 * m["mape_train"]:.1f}%</td><td>{m["n_samples"]}</td><td>{m["n_materials"]}</td></tr>'
            for name, m in sorted(node.outputs.ml.items())
        )
        parts.append(
            '<h2>ML models (MAPE, eq. 8)</h2><table><tr><th>model</th><th>test</th><th>train</th>'
            f'<th>samples</th><th>materials</th></tr>{rows}</table>'
        )
    if beside is not None:
        parts.append(_beside_html(beside))
    for title, figs in sections:
        if not figs:
            continue
        parts.append(f'<h2>{html.escape(title)}</h2>')
        for fig_path, caption in figs:
            data = base64.b64encode(Path(fig_path).read_bytes()).decode()
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                f'<figcaption>{html.escape(caption)} ({Path(fig_path).name})</figcaption></figure>'
            )
    parts.append('</body></html>')
    path.write_text('\n'.join(parts))
    return path
