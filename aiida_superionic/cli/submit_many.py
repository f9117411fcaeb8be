"""``aiida-superionic submit`` for several materials: paths or the shipped reference set, into one group.

Each material is read, checked and launched on its own; a failure (unreadable file, mobile species absent,
element the model does not know, a work chain that does not finish ok) is recorded with its reason and the
loop goes on. The summary names every failure; the command exits non-zero if there is one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from ..exceptions import InputError

#: Highest atomic number each MLIP model was trained on (CHGNet 0.3.0 and SevenNet-0: MPtrj, H to Pu).
MODEL_MAX_Z: dict[str, int] = {'chgnet-0.3.0': 94, 'sevennet-0': 94}


@dataclass
class Material:
    """One material to submit: where it comes from, its label and mobile species (``None``: not given)."""

    label: str
    path: Path
    mobile: str | None


@dataclass
class Outcome:
    material: Material
    ok: bool
    message: str
    pks: list[int] = field(default_factory=list)


def collect_materials(
    paths: tuple[Path, ...], reference_set: str | None, family: str | None, mobile: str | None
) -> list[Material]:
    """The materials of the command line: the paths given (with ``mobile``) and/or the reference set
    (optionally one ``family``; each with its own mobile species from the index)."""
    found = [Material(label='', path=p, mobile=mobile) for p in paths]
    if family is not None and reference_set is None:
        raise InputError('--family selects from a set: give --set reference too')
    if reference_set is not None:
        from ..reference import materials

        for entry in materials(family, fast_plan=reference_set == 'reference-fast'):
            if mobile is not None and entry['mobile'] != mobile:
                continue
            found.append(Material(label=entry['name'], path=entry['path'], mobile=entry['mobile']))
    if not found:
        raise InputError(
            'nothing to submit: give STRUCTURE files or --set reference (with --mobile matching)'
        )
    return found


def check_model_elements(structure, model: str) -> None:
    """Refuse elements beyond what ``model`` was trained on (one clear reason, before anything runs)."""
    max_z = MODEL_MAX_Z.get(model)
    if max_z is None:
        return
    unknown = sorted({el.symbol for el in structure.composition.elements if el.Z > max_z})
    if unknown:
        raise InputError(f'element(s) {", ".join(unknown)} not supported by the {model} model (Z <= {max_z})')


def submit_many(
    items: list[Material],
    prepare: Callable[[Material], tuple[object, str, str]],
    launch: Callable[[object, str, str], tuple[bool, str, list[int]]],
    group_label: str | None,
    dry_run: bool,
) -> list[Outcome]:
    """Prepare and launch every material, one at a time, echoing ``[i/n] label: ...`` as each ends.

    ``prepare(material)`` -> (inputs, label, description) raises :class:`InputError` on bad input;
    ``launch(inputs, label, description)`` -> (ok, message, pks). Any exception of one material is that
    material's failure; the loop goes on. Then a summary; a ``ClickException`` (``Error: ...``, exit 1)
    if any failed."""
    outcomes: list[Outcome] = []
    n = len(items)
    for i, item in enumerate(items, 1):
        name = item.label or item.path.name
        try:
            inputs, label, description = prepare(item)
            click.echo(f'[{i}/{n}] {label}: {description}')
            if dry_run:
                outcome = Outcome(item, True, 'inputs built (dry run: nothing launched)')
            else:
                ok, message, pks = launch(inputs, label, description)
                outcome = Outcome(item, ok, message, pks)
        except InputError as exc:
            outcome = Outcome(item, False, str(exc))
        except Exception as exc:  # one material's failure never stops the others
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
            outcome = Outcome(item, False, f'{type(exc).__name__}: {first}')
        name = item.label or name  # prepare() names the material once its file is read
        item.label = name
        outcomes.append(outcome)
        click.echo(f'[{i}/{n}] {name}: {"ok" if outcome.ok else "FAILED"}: {outcome.message}')
    failed = [o for o in outcomes if not o.ok]
    verb = 'checked' if dry_run else 'submitted'
    where = f' into group {group_label!r}' if group_label and not dry_run else ''
    click.echo(f'summary: {n - len(failed)} of {n} materials {verb}{where}; {len(failed)} failed')
    for outcome in failed:
        click.echo(f'  failed: {outcome.material.label} ({outcome.material.path}): {outcome.message}')
    if failed:
        names = ', '.join(o.material.label for o in failed)
        raise click.ClickException(f'{len(failed)} of {n} materials failed: {names}')
    return outcomes


def run_materials(
    items: list[Material], common: dict, model: str | None, daemon: bool, dry_run: bool, profile
) -> list[Outcome]:
    """:func:`submit_many` with the MaterialWorkChain: ``common`` holds the settings every material shares
    (``code``, ``engine``, ``protocol``, ``temperatures``, ``overrides``, ``options``, ``group_label`` and
    optionally ``label`` for a single material), already checked."""
    from aiida import orm
    from aiida.engine import run_get_node, submit

    from ..workflows.material import MaterialWorkChain
    from .structures import read_structure

    def prepare(item: Material):
        structure = read_structure(item.path)
        formula = structure.composition.reduced_formula
        label = common.get('label') or item.label or formula
        item.label = label
        if item.mobile is None:
            raise InputError(f'{item.path.name}: no mobile species: pass -m / --mobile')
        if item.mobile not in {el.symbol for el in structure.composition.elements}:
            raise InputError(f'mobile species {item.mobile!r} not in structure {formula}')
        if common['engine'] == 'mlip' and model:
            check_model_elements(structure, model)
        inputs = {
            'structure': orm.StructureData(pymatgen=structure),
            'mobile': orm.Str(item.mobile),
            'code': common['code'],
            'engine': orm.Str(common['engine']),
            'protocol': orm.Str(common['protocol']),
            'label': orm.Str(label),
            'metadata': {'label': label},
        }
        if common.get('temperatures'):
            inputs['temperatures'] = orm.List(sorted(common['temperatures']))
        if common.get('overrides'):
            inputs['overrides'] = orm.Dict(common['overrides'])
        if common.get('options'):
            inputs['options'] = orm.Dict(common['options'])
        if common.get('group_label'):
            inputs['group_label'] = orm.Str(common['group_label'])
        invalid = MaterialWorkChain.spec().inputs.validate(inputs)
        if invalid is not None:
            raise InputError(f'inputs rejected by MaterialWorkChain: {invalid.message}')
        return inputs, label, f'{formula}, {len(structure)} atoms, mobile {item.mobile}'

    def launch(inputs, label, description):
        if daemon:
            node = submit(MaterialWorkChain, **inputs)
            return (
                True,
                f'submitted MaterialWorkChain<{node.pk}> to the daemon of profile {profile.name}',
                [node.pk],
            )
        outputs, node = run_get_node(MaterialWorkChain, **inputs)
        if not node.is_finished_ok:
            reason = node.exit_message or node.process_state.value
            return False, f'MaterialWorkChain<{node.pk}> failed: {reason}', [node.pk]
        return True, f'MaterialWorkChain<{node.pk}>, {len(outputs["records"])} records', [node.pk]

    return submit_many(items, prepare, launch, common.get('group_label'), dry_run)
