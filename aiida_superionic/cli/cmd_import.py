"""``aiida-superionic import-md``: a group's existing MD runs into the provenance graph."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import click

from ..exceptions import InputError
from . import options
from .launch import check_daemon
from .progress import StderrProgress
from .records import format_D, record_of
from .root import cmd_root
from .structures import read_structure
from .validation import check_label


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _imported_with(chain, read_parameters: dict, descriptors: dict, structure) -> bool:
    """Whether the import work chain ``chain`` read its file with ``read_parameters`` and made its record
    with the descriptor inputs ``descriptors`` (Dict inputs by name) and ``structure`` (pymatgen or None)."""
    import numpy as np
    from aiida import orm

    if chain.inputs.read_parameters.get_dict() != read_parameters:
        return False
    given = chain.base.links.get_incoming(node_class=orm.Data).nested().get('descriptors', {})
    if {k: v.get_dict() for k, v in given.items() if isinstance(v, orm.Dict)} != descriptors:
        return False
    before = given.get('structure')
    if (before is None) != (structure is None):
        return False
    if structure is None:
        return True
    before = before.get_pymatgen_structure()
    return (
        [s.species_string for s in before] == [s.species_string for s in structure]
        and np.allclose(before.lattice.matrix, structure.lattice.matrix, atol=1e-6)
        and np.allclose(before.cart_coords, structure.cart_coords, atol=1e-6)
    )


def existing_import(
    sha256: str, read_parameters: dict | None = None, descriptors: dict | None = None, structure=None
):
    """The trajectory node already imported from a file with this SHA-256, or None.

    With ``read_parameters`` (those of ``parse_trajectory_file``) and ``descriptors`` (the Dict inputs of the
    descriptor work chain by name, with ``structure``, a pymatgen structure or None), only an import made
    with exactly these options counts: the same file read at another temperature or time step, or analysed
    with other options, is another import.
    """
    from aiida import orm

    from ..data import MDTrajectoryData
    from ..workflows.md_descriptors import ImportMDWorkChain

    qb = orm.QueryBuilder().append(
        MDTrajectoryData, filters={'attributes.origin.sha256': sha256}, project='*'
    )
    qb.order_by({MDTrajectoryData: {'id': 'asc'}})
    for (trajectory,) in qb.iterall():
        if read_parameters is None:
            return trajectory
        creator = trajectory.creator
        chain = creator.caller if creator is not None else None
        if chain is None or chain.process_class is not ImportMDWorkChain or not chain.is_finished_ok:
            continue
        if _imported_with(chain, read_parameters, descriptors or {}, structure):
            return trajectory
    return None


@cmd_root.command('import-md')
@click.argument('trajectory', type=click.Path(dir_okay=False, path_type=Path))
@click.option('-T', '--temperature', type=float, required=True, help='Temperature of the run, K.')
@click.option('-t', '--timestep', type=float, required=True, help='MD time step, fs.')
@options.STEP_SKIP
@click.option(
    '--stride', type=int, default=1, show_default=True, help='Keep every STRIDE-th frame of the file.'
)
@options.MOBILE
@options.FORMAT
@click.option(
    '-s',
    '--structure',
    'structure_file',
    type=click.Path(dir_okay=False, path_type=Path),
    help='Reference crystal (POSCAR, CIF, ...) for the structural descriptors.',
)
@click.option(
    '--non-stoichiometric', is_flag=True, help='The run has mobile-ion vacancies (the record says so).'
)
@click.option('-l', '--label', help='Material label of the record (default: the reduced formula).')
@click.option(
    '-g',
    '--group',
    'group_label',
    help='Add the trajectory and the record to this group (created if needed).',
)
@options.FIT_WINDOW
@options.VDOS_WEIGHTING
@options.ALLOW_TRUNCATED
@click.option(
    '-d', '--daemon', is_flag=True, help='Submit to the daemon and print the PK instead of running here.'
)
@click.pass_context
def cmd_import_md(
    ctx: click.Context,
    trajectory: Path,
    temperature: float,
    timestep: float,
    step_skip: int,
    stride: int,
    mobile: str | None,
    fmt: str | None,
    structure_file: Path | None,
    non_stoichiometric: bool,
    label: str | None,
    group_label: str | None,
    fit_window: tuple[float, float] | None,
    vdos_weighting: str,
    allow_truncated: bool,
    daemon: bool,
) -> None:
    """Import an existing MD TRAJECTORY and compute its descriptors, with full provenance.

    The file is stored (with its SHA-256) as the source of a trajectory node; the descriptor
    calcfunctions and the record follow from it. A file imported before with the same options is
    recognised by its hash and not imported again (other options make a new import). Everything is
    checked before the first node is stored, so bad input leaves
    the database as it was.
    """
    from ..analysis.trajectory import validate_inputs
    from ..io import guess_format, read_trajectory
    from .profile import load_profile

    for name, value in (('temperature', temperature), ('timestep', timestep)):
        if not (math.isfinite(value) and value > 0):
            raise InputError(f'--{name} must be a finite number > 0, got {value:g}')
    for name, value in (('step-skip', step_skip), ('stride', stride)):
        if value < 1:
            raise InputError(f'--{name} must be >= 1, got {value}')
    if not trajectory.is_file():
        raise InputError(f'no such trajectory file: {trajectory}')
    profile = load_profile(ctx)

    sha = sha256_of(trajectory)
    known = existing_import(sha)  # the file itself; whether with these options, once they are known

    fmt = fmt or guess_format(trajectory)
    reading = StderrProgress(f'checking {trajectory.name}')
    traj = read_trajectory(trajectory, fmt, stride=stride, allow_truncated=allow_truncated, progress=reading)
    reading.close()
    *_, mobile = validate_inputs(
        traj.positions,
        traj.cell,
        traj.symbols,
        timestep * step_skip * stride,
        temperature,
        mobile,
        traj.velocities,
    )
    structure = read_structure(structure_file, mobile) if structure_file else None
    check_label(label)
    check_label(group_label, '--group')
    if daemon:
        check_daemon(profile)

    from aiida import orm
    from aiida.engine import run_get_node, submit

    from ..workflows.md_descriptors import ImportMDWorkChain

    read_parameters = {
        'format': fmt,
        'temperature_K': temperature,
        'timestep_fs': timestep,
        'step_skip': step_skip,
        'stride': stride,
        'allow_truncated': allow_truncated,
        'mobile': mobile,
        'sha256': sha,
    }
    analysis = {'mobile': mobile, 'vdos_weighting': vdos_weighting}
    if fit_window:
        analysis['fit_window_ps'] = list(fit_window)
    record_metadata = {'stoichiometric': not non_stoichiometric, 'engine': 'imported'}
    if label:
        record_metadata['material'] = label
    structure_parameters = {'stoichiometric': not non_stoichiometric}
    if known is not None:
        descriptors = {'parameters': analysis, 'record_metadata': record_metadata}
        if structure is not None:
            descriptors['structure_parameters'] = structure_parameters
        previous = existing_import(sha, read_parameters, descriptors, structure)
        if previous is not None:
            record = record_of(previous)
            rec = f', record {record.pk}' if record is not None else ''
            if group_label:
                group, _ = orm.Group.collection.get_or_create(group_label)
                group.add_nodes([n for n in (previous, record) if n is not None])
                todo = f'added to group {group_label!r}'
            else:
                todo = 'nothing to do'
            click.echo(
                f'already imported: {trajectory.name} is trajectory {previous.pk}{rec} (sha256 {sha[:12]}, '
                f'same options); {todo}'
            )
            return
        click.echo(
            f'note: {trajectory.name} was imported before (trajectory {known.pk}) with other options; '
            'importing it again with these'
        )
    inputs = {
        'source': orm.SinglefileData(trajectory.resolve()),
        'read_parameters': orm.Dict(read_parameters),
        'descriptors': {'parameters': orm.Dict(analysis), 'record_metadata': orm.Dict(record_metadata)},
        'metadata': {'label': label or trajectory.name, 'description': f'import of {trajectory}'},
    }
    if structure is not None:
        inputs['descriptors']['structure'] = orm.StructureData(pymatgen=structure)
        inputs['descriptors']['structure_parameters'] = orm.Dict(structure_parameters)
    if group_label:
        inputs['group_label'] = orm.Str(group_label)

    if daemon:
        node = submit(ImportMDWorkChain, **inputs)
        click.echo(f'submitted ImportMDWorkChain<{node.pk}> to the daemon of profile {profile.name}')
        return
    click.echo(
        f'importing {trajectory.name} ({traj.n_frames} frames, {traj.n_atoms} atoms) into profile {profile.name}'
    )
    outputs, node = run_get_node(ImportMDWorkChain, **inputs)
    if not node.is_finished_ok:
        raise InputError(f'ImportMDWorkChain<{node.pk}> failed: {node.exit_message or node.process_state}')
    record = outputs['record']
    click.echo(
        f'done: trajectory {outputs["trajectory"].pk}, record {record.pk} '
        f'(D: {format_D(outputs["diffusion"].get_dict(), short=True)}); `aiida-superionic show {record.pk}` prints it'
    )
