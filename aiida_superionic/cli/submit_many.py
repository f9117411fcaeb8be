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


def material_builder(structure, mobile: str, common: dict, label: str | None = None):
    """The ``MaterialWorkChain`` builder of one material (a pymatgen ``structure``) from the settings the
    command's materials share (``common``: ``code``, ``engine``, ``protocol``, ``temperatures``,
    ``overrides``, ``options``, ``group_label``): protocol and overrides resolved into explicit inputs by
    ``get_builder_from_protocol``, as a ``verdi run`` script builds it; process label ``label`` (default:
    the reduced formula)."""
    from aiida import orm

    from ..workflows.material import MaterialWorkChain

    builder = MaterialWorkChain.get_builder_from_protocol(
        common['code'],
        orm.StructureData(pymatgen=structure),
        common['protocol'],
        overrides=common.get('overrides') or None,
        options=common.get('options') or None,
        mobile=mobile,
        engine=common['engine'],
        temperatures=sorted(common.get('temperatures') or ()) or None,
        label=label,
        group_label=common.get('group_label'),
    )
    builder.metadata.label = label or structure.composition.reduced_formula
    return builder


def run_materials(
    items: list[Material], common: dict, model: str | None, daemon: bool, dry_run: bool, profile
) -> list[Outcome]:
    """:func:`submit_many` with the MaterialWorkChain: ``common`` holds the settings every material shares
    (``code``, ``engine``, ``protocol``, ``temperatures``, ``overrides``, ``options``, ``group_label`` and
    optionally ``label`` for a single material), already checked."""
    from aiida.engine import run_get_node, submit

    from .launch import check_inputs
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
        builder = material_builder(structure, item.mobile, common, label)
        check_inputs(builder)  # the ports' validators, as at launch: a dry run checks what would run
        return builder, label, f'{formula}, {len(structure)} atoms, mobile {item.mobile}'

    def launch(builder, label, description):
        if daemon:
            node = submit(builder)
            return (
                True,
                f'submitted MaterialWorkChain<{node.pk}> to the daemon of profile {profile.name}',
                [node.pk],
            )
        outputs, node = run_get_node(builder)
        if not node.is_finished_ok:
            reason = node.exit_message or node.process_state.value
            return False, f'MaterialWorkChain<{node.pk}> failed: {reason}', [node.pk]
        return True, f'MaterialWorkChain<{node.pk}>, {len(outputs["records"])} records', [node.pk]

    return submit_many(items, prepare, launch, common.get('group_label'), dry_run)
