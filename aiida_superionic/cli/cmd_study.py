"""``aiida-superionic table``, ``study`` and ``predict``: the paper's analysis on the records in the graph."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from ..exceptions import InputError
from .root import cmd_root


def _window(tmin: float | None, tmax: float | None, all_temperatures: bool) -> tuple[float, float] | None:
    if all_temperatures:
        return None
    lo, hi = 400.0 if tmin is None else tmin, 600.0 if tmax is None else tmax
    for name, value in (('--tmin', lo), ('--tmax', hi)):
        if not math.isfinite(value) or value <= 0:
            raise InputError(f'{name} must be a positive temperature in K, got {value:g}')
    if lo > hi:
        raise InputError(f'empty temperature window: --tmin {lo:g} K > --tmax {hi:g} K')
    return lo, hi


_window_options = [
    click.option('--group', '-g', help='Only the records in this AiiDA group (default: every record).'),
    click.option('--tmin', type=float, help='Lowest temperature of the window in K (default 400).'),
    click.option('--tmax', type=float, help='Highest temperature of the window in K (default 600).'),
    click.option(
        '--all-temperatures', is_flag=True, help='No temperature window (the paper uses T = 500 ± 100 K).'
    ),
]


def window_options(func):
    for option in reversed(_window_options):
        func = option(func)
    return func


@cmd_root.command('table')
@window_options
@click.option('--family', help='Only this mobile species (e.g. Li).')
@click.option('--engine', help='Only records of this engine (mlip, vasp, imported, ...).')
@click.option(
    '--csv', 'csv_path', type=click.Path(dir_okay=False, path_type=Path), help='Write the full table here.'
)
@click.option(
    '--archive',
    type=click.Path(dir_okay=False, path_type=Path),
    help='Read the records from this AiiDA archive (read-only, nothing imported) instead of the profile.',
)
@click.option('--full', is_flag=True, help="Print every one of the paper's 54 descriptors (Table 1's order).")
@click.option(
    '--extras', is_flag=True, help='As --full, then the extra columns after the 54 (theta_D_nd, theta_D_d).'
)
@click.pass_context
def cmd_table(ctx, group, tmin, tmax, all_temperatures, family, engine, csv_path, archive, full, extras):
    """The descriptor table of the records in the graph: one row per material x temperature x
    stoichiometry, one column per descriptor (NaN: not computed). Prints a summary (with --full the
    paper's 54 descriptors in Table 1's order); --csv writes every column: the 54, then the extras."""
    from ..study import descriptor_table
    from .profile import load_archive_profile, load_profile

    window = _window(tmin, tmax, all_temperatures)
    if archive is not None:
        load_archive_profile(archive)
    else:
        load_profile(ctx)
    table = descriptor_table(group=group, temperature_window=window, family=family, engine=engine)
    if table.empty:
        where = f' in group {group!r}' if group else ''
        span = f' with {window[0]:g} <= T <= {window[1]:g} K' if window else ''
        raise InputError(
            f'no descriptor records{where}{span} (try --all-temperatures, or `aiida-superionic submit`)'
        )
    if csv_path is not None:
        units = table.attrs['units']
        out = table.rename(
            columns={c: f'{c} [{units[c]}]' for c in table.columns if units.get(c) not in (None, '', 'text')}
        )
        out.to_csv(csv_path, index=False)
        click.echo(f'wrote {len(table)} rows x {table.shape[1]} columns to {csv_path}')
        return
    from ..descriptors import EXTRA_KEYS, PAPER_KEYS

    meta = ['pk', 'material', 'family', 'temperature_K', 'stoichiometric', 'engine']
    if full or extras:
        cols = [*meta, *PAPER_KEYS, *(EXTRA_KEYS if extras else ())]
    else:
        cols = [*meta, 'D', 'omega_all', 'C_v_all', 'B']
    known = table[list(PAPER_KEYS)].notna().sum(axis=1)  # of the paper's 54
    view = table[cols].assign(descriptors=known.astype(str) + f'/{len(PAPER_KEYS)}')
    click.echo(view.to_string(index=False, float_format=lambda v: f'{v:.4g}'))
    click.echo(f'{len(table)} records of {table.material.nunique()} materials')


@cmd_root.command('study')
@window_options
@click.option(
    '-o',
    '--out',
    'out_dir',
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help='Folder for the PNG figures, report.html and beside_paper.rst/.csv (this study beside the paper).',
)
@click.option(
    '--target', 'targets', multiple=True, help='ML target descriptor (repeat; default D, omega_all, C_v_all).'
)
@click.option('--no-ml', is_flag=True, help='Skip the ML models.')
@click.option(
    '--ml-temperature',
    is_flag=True,
    help='Give the ML models the temperature as an input (the paper does not: its inputs are the descriptors).',
)
@click.option('--k', type=int, help="Number of k-means clusters (default 6, the paper's).")
@click.option(
    '--k-silhouette', is_flag=True, help='Choose the number of k-means clusters by the best silhouette.'
)
@click.option(
    '--with-extras',
    is_flag=True,
    help="Analyse the extra columns (theta_D_nd, theta_D_d) too, not only the paper's 54 descriptors.",
)
@click.option(
    '--n-boot', type=int, default=1000, show_default=True, help='Bootstrap resamples of the materials.'
)
@click.option(
    '--seed', type=int, default=0, show_default=True, help='Seed of bootstrap, k-means and the networks.'
)
@click.option(
    '--parameters',
    'parameters_json',
    metavar='JSON',
    help='Further overrides of the study parameters (see docs).',
)
@click.pass_context
def cmd_study(
    ctx,
    group,
    tmin,
    tmax,
    all_temperatures,
    out_dir,
    targets,
    no_ml,
    ml_temperature,
    k,
    k_silhouette,
    with_extras,
    n_boot,
    seed,
    parameters_json,
):
    """Run the paper's study on the records in the graph (or a group): correlations with p-values and
    bootstrap intervals, PCA, k-means (one record per material, the one nearest 500 K), ML models on
    every record with leave-one-material-out validation. Every result is stored as a node
    (`superionic.study`); the figures, one report.html and the paper's headline numbers beside ours
    (beside_paper.rst, beside_paper.csv) go to --out."""
    from aiida import orm
    from aiida.engine import run_get_node

    from ..study.figures import render
    from ..study.table import query_records
    from ..study.workchain import StudyWorkChain, study_parameters
    from .profile import load_profile

    window = _window(tmin, tmax, all_temperatures)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f'--out {out_dir} exists and is not a folder')
    if n_boot < 10:
        raise InputError(f'--n-boot must be at least 10, got {n_boot}')
    overrides = {}
    if parameters_json:
        try:
            overrides = json.loads(parameters_json)
        except json.JSONDecodeError as exc:
            raise InputError(f'--parameters is not valid JSON: {exc}') from None
        if not isinstance(overrides, dict):
            raise InputError('--parameters must be a JSON object')
    overrides['temperature_window'] = list(window) if window else None
    overrides['seed'] = seed
    overrides.setdefault('bootstrap', {})['n_boot'] = n_boot
    if k is not None and k_silhouette:
        raise InputError('give --k or --k-silhouette, not both')
    if k is not None:
        if k < 1:
            raise InputError(f'--k must be at least 1, got {k}')
        overrides.setdefault('kmeans', {})['k'] = k
    elif k_silhouette:
        overrides.setdefault('kmeans', {})['k'] = 'silhouette'
    if ml_temperature:
        overrides.setdefault('ml', {})['include_temperature'] = True
    if with_extras:
        overrides['descriptors'] = 'all'
    if no_ml:
        overrides.setdefault('ml', {})['targets'] = []
    elif targets:
        overrides.setdefault('ml', {})['targets'] = list(targets)
    try:
        parameters = study_parameters(overrides)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    load_profile(ctx)
    from ..descriptors import BY_KEY

    unknown = [t for t in parameters['ml']['targets'] if t not in BY_KEY]
    if unknown:
        raise InputError(
            f'unknown --target {", ".join(unknown)}: give descriptor keys (D, omega_all, C_v_all, ...)'
        )
    records = query_records(group=group)
    if not records:
        where = f' in group {group!r}' if group else ''
        raise InputError(f'no descriptor records{where}: run `aiida-superionic submit` or `import-md` first')
    if window is not None:
        temps = sorted({float(a.get('temperature_K') or 0) for _, _, a in records})
        if not any(window[0] <= t <= window[1] for t in temps):
            shown = ', '.join(f'{t:g}' for t in temps[:12])
            raise InputError(
                f'no record with {window[0]:g} <= T <= {window[1]:g} K (records at {shown} K): '
                'set --tmin/--tmax or --all-temperatures'
            )
    click.echo(f'study: {len(records)} records; results as nodes, figures to {out_dir}', err=True)
    # aiida prints the work chain's reports ("Report: ...") as it goes: the progress of each analysis
    inputs = {f'r{pk}': orm.load_node(pk) for pk, _, _ in records}
    _, node = run_get_node(StudyWorkChain, records=inputs, parameters=orm.Dict(parameters))
    if not node.is_finished_ok:
        raise InputError(
            f'the study failed: {node.exit_message or node.process_state.value} (StudyWorkChain<{node.pk}>)'
        )
    if group:  # the study travels with its records (`aiida-superionic export GROUP`)
        orm.load_group(group).add_nodes([node])
    report = render(node, out_dir, progress=lambda m: click.echo(f'figures: {m}', err=True))
    _summary(node)
    click.echo(f'beside the paper: {out_dir / "beside_paper.rst"} and beside_paper.csv (also in the report)')
    click.echo(f'done: StudyWorkChain<{node.pk}>; report {report}')


def _summary(node) -> None:
    outputs = node.outputs
    if 'correlations' in outputs and 'all_spearman' in outputs.correlations:
        row = outputs.correlations.all_spearman['D_row']
        best = sorted((k for k in row if row[k]['c'] is not None), key=lambda k: -abs(row[k]['c']))[:5]
        click.echo('largest |c_S| with D: ' + ', '.join(f'{k} {100 * row[k]["c"]:+.0f}%' for k in best))
    if 'pca' in outputs:
        click.echo(f'PCA: PC1-PC3 explain {100 * outputs.pca["explained_first_three"]:.0f}% of the variance')
    for name in sorted(outputs.kmeans) if 'kmeans' in outputs else []:
        res = outputs.kmeans[name]
        best = res.get('k_best_silhouette')
        scan = f'; best silhouette at k = {best} (elbow and silhouette in the report)' if best else ''
        click.echo(f'k-means {name}: k = {res["k"]} ({res["k_choice"]}){scan}')
        if res.get('note'):
            click.echo(f'k-means {name}: {res["note"]}')
    for name in sorted(outputs.ml) if 'ml' in outputs else []:
        m = outputs.ml[name]
        click.echo(
            f'ML {name}: MAPE test {100 * m["mape_test"]:.1f}%, train {100 * m["mape_train"]:.1f}%; model PK {outputs.models[name].pk}'
        )


@cmd_root.command('predict')
@click.argument('model_id', metavar='MODEL')
@click.argument('identifiers', metavar='RECORD...', nargs=-1, required=True)
@click.pass_context
def cmd_predict(ctx, model_id, identifiers):
    """Apply a stored ML model (PK/UUID, from `aiida-superionic study`) to descriptor records (a record,
    trajectory or work-chain PK/UUID, or a material label). The prediction is stored with provenance."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    from ..study.functions import predict_descriptor
    from .profile import load_profile
    from .records import find_records

    load_profile(ctx)
    try:
        model = orm.load_node(int(model_id) if model_id.isdigit() else model_id)
    except (NotExistent, ValueError):
        raise InputError(f'no node with PK/UUID {model_id}') from None
    if not isinstance(model, orm.SinglefileData) or model.base.attributes.get('target', None) is None:
        raise InputError(f'node {model.pk} is not a model of `aiida-superionic study`')
    from ..study.functions import load_model
    from ..study.ml import missing_inputs
    from ..study.table import SCHEMA, table_from_records

    records = [r for ident in identifiers for r in find_records(ident)]
    stored = load_model(model)
    for record in records:  # check every record first: a failed prediction stores nothing
        attrs = record.get_dict()
        frame = table_from_records([{**attrs, 'uuid': record.uuid, 'pk': record.pk}])
        if attrs.get('schema') != SCHEMA:
            raise InputError(f'node {record.pk} is not a descriptor record')
        missing = missing_inputs(frame, stored['numeric_features'])
        if missing:
            raise InputError(f'record {record.pk} lacks inputs of this model: {", ".join(missing)}')
    for record in records:
        out, node = predict_descriptor.run_get_node(model, record)
        if not node.is_finished_ok:
            raise InputError(f'record {record.pk}: {node.exit_message}')
        recorded = '-' if out['recorded'] is None else f'{out["recorded"]:.4g}'
        click.echo(
            f'{out["material"]} {out["temperature_K"]:g} K: {out["target"]} predicted {out["predicted"]:.4g} '
            f'{out["unit"]} (recorded {recorded}); node {out.pk}'
        )
