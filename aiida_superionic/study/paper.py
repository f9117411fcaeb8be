"""This study beside the paper: López et al.'s headline numbers and a table that puts ours next to them.

:data:`PAPER_VALUES` holds, as data, every number of the paper's text that the study reproduces: the
Spearman correlations c_S(D, ·) for all materials (Fig. 2(b)) and for the Li-based ones (Fig. 2(c)),
the PCA's variance shares (Fig. 4(a)) and D's share in the first three PCs, and the k of its k-means
(Fig. 5). Each entry carries the exact words of the paper it comes from (``quote``) and their line in
the paper's text file (``line``; ``shared/paper/lopez2023_superionic_descriptors.txt``), so a test can
check every transcription against the paper.

Descriptor keys: the paper's unsuffixed vibrational symbols (⟨ω⟩, C_V, F_vib, S_vib) are the values of
the material as a whole (its Methods: "calculated for the materials as a whole (i.e., considering both
diffusive and non-diffusive ions) and also exclusively ... (denoted as 'nd' ... or 'd' in the
figures)"), so they map to the ``_all`` keys; ⟨ω30⟩^(d) is ``omega_30_d``.

:func:`beside_paper` is pure (no AiiDA): it takes the study's stored summaries (the bootstrap Dicts of
all materials and of the Li family, the Spearman summaries for n, the PCA summary and the k-means
summaries) and returns one row per paper number. Nothing is recomputed: the comparison is a join of
stored results with these constants, so it is made at report time (:func:`aiida_superionic.study.figures.render`)
from the work chain's outputs, and every number in it is a node's.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..descriptors import BY_KEY

#: The paper's text, as stored beside the repository (line numbers of :data:`PAPER_VALUES` refer to it).
PAPER_TEXT = 'shared/paper/lopez2023_superionic_descriptors.txt'

_UNIVERSAL = 'Results, "Universal ion diffusion descriptors", Fig. 2(b)'
_LI = 'Results, "Universal ion diffusion descriptors", Fig. 2(c)'
_PCA = 'Results, "Complexity reduction in the SSE landscape", Fig. 4(a)'
_KMEANS = 'Results, "Complexity reduction in the SSE landscape", Fig. 5'


@dataclass(frozen=True)
class PaperValue:
    """One number of the paper.

    ``kind``: ``c_S`` (Spearman c_S(D, key), a fraction), ``abs_c_S_max`` (the paper gives only
    |c_S| <= value), ``explained`` (share of the variance of PC ``index``), ``explained_cumulative``
    (of PC1..PC``index``), ``D_contribution`` (D's squared loading in PC ``index``), ``k`` (k-means
    clusters). ``line``: 1-based line of ``quote`` in :data:`PAPER_TEXT`.
    """

    key: str
    subset: str  # 'all' or 'Li'
    kind: str
    value: float
    quote: str
    line: int
    section: str
    index: int | None = None

    @property
    def where(self) -> str:
        return f'{self.section}; text line {self.line}'


def _c(key, subset, value, quote, line, section=None) -> PaperValue:
    return PaperValue(
        key, subset, 'c_S', value, quote, line, section or (_UNIVERSAL if subset == 'all' else _LI)
    )


#: The paper's numbers, in the order of its text.
PAPER_VALUES: tuple[PaperValue, ...] = (
    _c('omega_all', 'all', -0.39, r'$\langle\omega\rangle$ (-39%)', 103),
    _c('C_v_all', 'all', +0.39, r'C_V ($+39\%$)', 103),
    _c('F_vib_all', 'all', -0.37, r'F_{vib} (-37%)', 103),
    _c('S_vib_all', 'all', +0.33, r'S_{vib} ($+33\%$)', 103),
    _c('Gamma', 'all', -0.11, 'Γ in Fig. 2(b)), the resulting D correlation coefficient (-11%)', 105),
    _c('E_vac', 'all', -0.22, 'E_{vac} , -22%', 107),
    _c('alpha_c', 'all', +0.25, r'α_C , $+25\%$', 107),
    _c('SO', 'all', +0.27, r'SO, $+27\%$', 107),
    PaperValue(
        'E_g',
        'all',
        'abs_c_S_max',
        0.05,
        r'band gap (E_g) and dielectric constant (ϵ) have virtually no correlation with the ion '
        r'diffusivity ($|c_s| \leq 5\%$)',
        107,
        _UNIVERSAL,
    ),
    PaperValue(
        'epsilon',
        'all',
        'abs_c_S_max',
        0.05,
        r'band gap (E_g) and dielectric constant (ϵ) have virtually no correlation with the ion '
        r'diffusivity ($|c_s| \leq 5\%$)',
        107,
        _UNIVERSAL,
    ),
    _c('F_vib_all', 'Li', -0.42, r'F_{vib} (-42%)', 111),
    _c('S_vib_all', 'Li', +0.42, r'S_{vib} ($+42\%$)', 111),
    _c('omega_30_d', 'Li', -0.63, r'$\langle\omega_{30}\rangle^{(d)}$ (-63%)', 111),
    _c(
        'Gamma',
        'Li',
        -0.47,
        'now Γ , which is estimated at $T = 0$ K and does not explicitly account for anharmonicity, is '
        'strongly correlated with D as well (-47%)',
        111,
    ),
    _c('H_V', 'Li', -0.43, 'H_V (-43%)', 111),
    _c('kappa', 'Li', -0.56, 'κ (-56%)', 111),
    _c('nu', 'Li', +0.55, r'ν ($+55\%$)', 111),
    _c('P_c', 'Li', +0.48, r'P_C ($+48\%$)', 111),
    _c('v_r', 'Li', +0.56, r'v_r ($+56\%$)', 111),
    PaperValue(
        'PC1-PC3',
        'all',
        'explained_cumulative',
        0.62,
        r'the sum of their normalized eigenvalues, $\approx 62\%$',
        140,
        _PCA,
        3,
    ),
    PaperValue('D', 'all', 'D_contribution', 0.002, '0.2% to PC1', 140, _PCA, 1),
    PaperValue('D', 'all', 'D_contribution', 0.008, '0.8% to PC2', 140, _PCA, 2),
    PaperValue('D', 'all', 'D_contribution', 0.013, '1.3% to PC3', 140, _PCA, 3),
    PaperValue(
        'PC3', 'all', 'explained', 0.04, r'relatively small eigenvalue of $\approx 4\%$', 166, _PCA, 3
    ),
    PaperValue('k', 'all', 'k', 6, 'a subminimal number of 6 clusters', 153, _KMEANS),
)

#: The columns of the reStructuredText table.
RST_COLUMNS = (
    'quantity',
    'key',
    'subset',
    'paper',
    'ours',
    'interval',
    'n_materials',
    'inside',
    'same_sign',
    'note',
)
#: The columns of :func:`beside_paper`'s table: the rst table's, where each value is from, and the numbers.
COLUMNS = (*RST_COLUMNS, 'where', 'paper_value', 'ours_value', 'low', 'high')

NA = 'n/a'


def _symbol(key: str) -> str:
    d = BY_KEY.get(key)
    return d.symbol if d else key


def _pct(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return NA
    return f'{100 * value:+.0f} %'


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _quantity(pv: PaperValue, kmeans_name: str | None = None) -> str:
    if pv.kind in ('c_S', 'abs_c_S_max'):
        return f'c_S(D, {_symbol(pv.key)})'
    if pv.kind == 'explained':
        return f'PC{pv.index} share of the variance'
    if pv.kind == 'explained_cumulative':
        return f'PC1-PC{pv.index} share of the variance'
    if pv.kind == 'D_contribution':
        return f'D contribution to PC{pv.index}'
    space = {'pc2': 'PC1-PC2', 'pc3': 'PC1-PC2-PC3'}.get(kmeans_name or '', kmeans_name or '')
    return f'k-means clusters ({space})' if space else 'k-means clusters'


def _row(pv: PaperValue, **fields) -> dict[str, Any]:
    paper = {
        'c_S': _pct(pv.value),
        'abs_c_S_max': f'|c_S| ≤ {100 * pv.value:.0f} %',
        'explained': f'≈ {100 * pv.value:.0f} %',
        'explained_cumulative': f'≈ {100 * pv.value:.0f} %',
        'D_contribution': f'{100 * pv.value:.1f} %',
        'k': f'{pv.value:g}',
    }[pv.kind]
    row = {
        'quantity': _quantity(pv, fields.pop('kmeans_name', None)),
        'key': pv.key,
        'subset': pv.subset,
        'paper': paper,
        'ours': NA,
        'interval': NA,
        'n_materials': NA,
        'inside': NA,
        'same_sign': NA,
        'note': '',
        'where': pv.where,
        'paper_value': float(pv.value),
        'ours_value': None,
        'low': None,
        'high': None,
    }
    row.update(fields)
    return row


def _correlation_row(
    pv: PaperValue,
    boot: Mapping[str, Any] | None,
    summary: Mapping[str, Any] | None,
    missing: str,
) -> dict[str, Any]:
    """One c_S row from a bootstrap Dict (``intervals``, ``n_materials``, ``confidence``) and the
    Spearman summary of the same subset (``D_row``: n per descriptor; ``dropped``: reasons)."""
    if not boot:
        return _row(pv, note=missing)
    entry = (boot.get('intervals') or {}).get(pv.key)
    c = _finite((entry or {}).get('c_S'))
    if c is None:
        reason = ((summary or {}).get('dropped') or {}).get(pv.key)
        if reason is None and pv.key == 'D':
            reason = 'D is the target'
        note = f'{pv.key} not in the study: ' + (
            reason or 'fewer than 3 materials with both it and D known, or constant over them'
        )
        pair = ((summary or {}).get('D_row') or {}).get(pv.key) or {}
        return _row(pv, note=note, n_materials=pair.get('n', NA))
    low, high = _finite(entry.get('low')), _finite(entry.get('high'))
    n = _n_of(pv.key, boot, summary)
    confidence = _finite(boot.get('confidence')) or 0.95
    fields: dict[str, Any] = {
        'ours': _pct(c),
        'ours_value': c,
        'n_materials': n,
        'low': low,
        'high': high,
    }
    if low is None or high is None:
        fields['note'] = 'no bootstrap interval (the coefficient was undefined in every resample)'
    else:
        fields['interval'] = f'[{_pct(low)}, {_pct(high)}] ({100 * confidence:.0f} %)'
        if pv.kind == 'c_S':
            fields['inside'] = 'yes' if low <= pv.value <= high else 'no'
        else:  # the paper's |c_S| <= v: is some value of our interval within [-v, v]?
            fields['inside'] = 'yes' if low <= pv.value and high >= -pv.value else 'no'
            fields['note'] = (
                f'paper gives a bound: inside = our interval meets [-{100 * pv.value:.0f} %, +{100 * pv.value:.0f} %]'
            )
    if pv.kind == 'c_S':
        fields['same_sign'] = NA if c == 0 else ('yes' if (c > 0) == (pv.value > 0) else 'no')
    else:
        fields['same_sign'] = NA
        if not fields.get('note'):
            fields['note'] = 'paper gives a bound, not a sign'
    return _row(pv, **fields)


def _n_of(key: str, boot: Mapping[str, Any], summary: Mapping[str, Any] | None) -> Any:
    pair = ((summary or {}).get('D_row') or {}).get(key)
    if pair and pair.get('n') is not None:
        return int(pair['n'])
    n = boot.get('n_materials')
    return int(n) if n is not None else NA


def _pca_row(pv: PaperValue, pca: Mapping[str, Any] | None, missing: str) -> dict[str, Any]:
    if not pca:
        return _row(pv, note=missing)
    n = pca.get('n_materials', NA)
    explained = [float(v) for v in pca.get('explained') or []]
    note = 'no interval: the PCA is not bootstrapped'
    if pv.kind == 'D_contribution':
        contrib = pca.get('D_contribution')
        if not contrib or len(contrib) < pv.index:
            return _row(pv, n_materials=n, note='D is not in the PCA (dropped: missing or constant)')
        value = float(contrib[pv.index - 1])
        return _row(pv, ours=f'{100 * value:.1f} %', ours_value=value, n_materials=n, note=note)
    if len(explained) < pv.index:
        return _row(pv, n_materials=n, note=f'the PCA has only {len(explained)} components')
    value = sum(explained[: pv.index]) if pv.kind == 'explained_cumulative' else explained[pv.index - 1]
    n_desc = len(pca.get('descriptors') or explained)
    note += f'; {n_desc} descriptors in the PCA (the paper: 54)'
    return _row(pv, ours=f'{100 * value:.1f} %', ours_value=value, n_materials=n, note=note)


def _kmeans_rows(pv: PaperValue, kmeans: Mapping[str, Mapping[str, Any]] | None, missing: str) -> list[dict]:
    if not kmeans:
        return [_row(pv, note=missing)]
    rows = []
    for name in sorted(kmeans):
        res = kmeans[name]
        k = res.get('k')
        best = res.get('k_best_silhouette')
        sil = (res.get('silhouette') or {}).get(str(k))
        parts = [f'k chosen: {res.get("k_choice")}']
        if best is not None:
            best_sil = (res.get('silhouette') or {}).get(str(best))
            parts.append(
                f'best silhouette at k = {best}' + (f' ({best_sil:.2f})' if best_sil is not None else '')
            )
        if sil is not None:
            parts.append(f'silhouette at k = {k}: {sil:.2f}')
        if res.get('note'):
            parts.append(str(res['note']))
        rows.append(
            _row(
                pv,
                kmeans_name=name,
                ours=f'{k}' if k is not None else NA,
                ours_value=float(k) if k is not None else None,
                n_materials=res.get('n_points', NA),
                note='; '.join(parts),
            )
        )
    return rows


def beside_paper(
    *,
    bootstrap: Mapping[str, Any] | None = None,
    bootstrap_li: Mapping[str, Any] | None = None,
    correlations: Mapping[str, Any] | None = None,
    correlations_li: Mapping[str, Any] | None = None,
    pca: Mapping[str, Any] | None = None,
    kmeans: Mapping[str, Mapping[str, Any]] | None = None,
    reasons: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The paper's numbers beside ours: one row per :data:`PAPER_VALUES` entry (one per k-means space).

    Arguments are the study's stored summaries as dicts (``None`` when the study has none):
    ``bootstrap`` / ``bootstrap_li`` the bootstrap of c_S(D, ·) over all materials / over the Li family
    (``intervals``: key -> ``c_S``, ``low``, ``high``; ``n_materials``; ``confidence``);
    ``correlations`` / ``correlations_li`` the Spearman summaries of the same rows (``D_row``: n per
    descriptor, ``dropped``: reasons); ``pca`` the PCA summary (``explained``, ``D_contribution``,
    ``n_materials``); ``kmeans`` name -> k-means summary (``k``, ``k_choice``, ``k_best_silhouette``,
    ``silhouette``, ``n_points``); ``reasons``: why an analysis is missing (keys ``all``, ``Li``,
    ``pca``, ``kmeans``), shown in the row's note.

    Columns (:data:`COLUMNS`): text columns ``paper``, ``ours``, ``interval`` (percentile bootstrap),
    ``inside`` (the paper's value lies in our interval: ``yes``/``no``; for the paper's bound
    |c_S| <= 5 % whether our interval meets [-5 %, +5 %]), ``same_sign``, ``n_materials``; ``note`` says
    why a cell is ``n/a``; numeric ``paper_value``, ``ours_value``, ``low``, ``high`` (fractions, None
    when n/a). Never raises on missing analyses or descriptors: their rows say ``n/a`` and why.
    """
    reasons = dict(reasons or {})
    missing = {
        'all': 'no bootstrap of c_S(D, ·) over all materials'
        + (f': {reasons["all"]}' if reasons.get('all') else ''),
        'Li': 'no bootstrap of c_S(D, ·) over the Li family'
        + (f': {reasons["Li"]}' if reasons.get('Li') else ' (fewer than 3 Li materials in the window)'),
        'pca': 'no PCA' + (f': {reasons["pca"]}' if reasons.get('pca') else ''),
        'kmeans': 'no k-means' + (f': {reasons["kmeans"]}' if reasons.get('kmeans') else ''),
    }
    rows: list[dict[str, Any]] = []
    for pv in PAPER_VALUES:
        if pv.kind in ('c_S', 'abs_c_S_max'):
            if pv.subset == 'all':
                rows.append(_correlation_row(pv, bootstrap, correlations, missing['all']))
            else:
                rows.append(_correlation_row(pv, bootstrap_li, correlations_li, missing['Li']))
        elif pv.kind == 'k':
            rows.extend(_kmeans_rows(pv, kmeans, missing['kmeans']))
        else:
            rows.append(_pca_row(pv, pca, missing['pca']))
    return pd.DataFrame(rows, columns=list(COLUMNS))


_RST_HEADER = (
    'quantity',
    'key',
    'subset',
    'paper',
    'ours',
    '95 % interval',
    'n',
    'inside',
    'same sign',
    'note',
)


def _rst_cell(value: Any) -> str:
    text = '' if value is None else str(value)
    text = re.sub(r'\s+', ' ', text).strip()
    # plain text: no roles, emphasis, substitutions or references from symbols such as c_S, |c_S|, *
    return re.sub(r'([\\*_|`])', r'\\\1', text)


def to_rst(table: pd.DataFrame, title: str | None = None) -> str:
    """The table as a reStructuredText ``list-table`` (for ``.. include::`` in Sphinx)."""
    header = list(_RST_HEADER)
    if 'interval' in table and len(table):  # the confidence of the intervals, from the table itself
        m = next((re.search(r'\((\d+) %\)$', s) for s in table['interval'] if isinstance(s, str)), None)
        if m:
            header[5] = f'{m.group(1)} % interval'
    lines = [
        f'.. list-table:: {_rst_cell(title)}' if title else '.. list-table::',
        '   :header-rows: 1',
        '   :widths: auto',
        '',
    ]
    body = [[row[c] for c in RST_COLUMNS] for _, row in table.iterrows()]
    for i, cells in enumerate([header, *body]):
        for j, cell in enumerate(cells):
            if i > 0:
                if j == 5:  # the confidence is in the header
                    cell = re.sub(r' \(\d+ %\)$', '', str(cell))
                cell = _rst_cell(cell)
            bullet = '* -' if j == 0 else '  -'
            lines.append(f'   {bullet} {cell}' if cell else f'   {bullet}')
    return '\n'.join(lines) + '\n'


def write(table: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    """``beside_paper.csv`` (every column) and ``beside_paper.rst`` (a list-table) in ``out_dir``."""
    out_dir = Path(out_dir)
    csv_path, rst_path = out_dir / 'beside_paper.csv', out_dir / 'beside_paper.rst'
    table.to_csv(csv_path, index=False, quoting=csv.QUOTE_MINIMAL)
    rst_path.write_text(to_rst(table, 'This study beside López et al. (2023)'))
    return csv_path, rst_path
