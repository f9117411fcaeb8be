"""``superionic.mlip`` parser: the runner's files -> contract outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import ExitCode
from aiida.parsers import Parser

from ...data import MDTrajectoryData
from ...io import Trajectory
from .fileformat import (
    FORCE_CONSTANTS_FILE,
    MD_BATCH_TASK,
    RELAXED_FILE,
    REPLICAS_DIR,
    RESTART_FILE,
    RESULTS_FILE,
    TRAJECTORY_META_FILE,
)


def _checkpoint_step(path) -> int:
    """The MD step a runner checkpoint (``restart.npz``: task md's, or md_batch's batch checkpoint) holds."""
    with np.load(path) as restart:
        return int(restart['step'])


def _thermostat_origin(meta: dict) -> dict:
    """The thermostat of an MD run for its trajectory's ``origin``: ``thermostat`` and its parameter,
    ``tdamp_fs`` (Nose-Hoover chain) or ``friction_per_ps`` (Langevin, 1/ps, as the protocol key). Runs of
    older runners did not record the parameter: then only the thermostat."""
    origin = {'thermostat': str(meta['thermostat'])} if 'thermostat' in meta else {}
    if meta.get('tdamp_fs') is not None:
        origin['tdamp_fs'] = float(meta['tdamp_fs'])
    if meta.get('friction_per_fs') is not None:
        origin['friction_per_ps'] = float(meta['friction_per_fs']) * 1000.0
    return origin


def _structure_from_extxyz(text: str) -> orm.StructureData:
    import io

    import ase.io

    return orm.StructureData(ase=ase.io.read(io.StringIO(text), format='extxyz'))


class MlipParser(Parser):
    """Turn ``results.json`` and the task's files into nodes; map the runner's status to exit codes."""

    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        temporary = kwargs.get('retrieved_temporary_folder')
        task = self.node.inputs.parameters['task']

        if RESULTS_FILE not in names:
            if task == 'md':
                return self._parse_md(retrieved, temporary, results=None)
            if task == MD_BATCH_TASK:
                return self._parse_md_batch(retrieved, temporary, results=None)
            return self.exit_codes.ERROR_NO_RESULTS
        results = json.loads(retrieved.base.repository.get_object_content(RESULTS_FILE))
        status = results.get('status')
        if status == 'error':
            self.out('results', orm.Dict(results))
            return self.exit_codes.ERROR_RUNNER.format(message=results.get('message', 'no message'))

        if task == 'md':
            return self._parse_md(retrieved, temporary, results)
        if task == MD_BATCH_TASK:
            return self._parse_md_batch(retrieved, temporary, results)
        self.out('results', orm.Dict(results))
        if task == 'relax':
            if RELAXED_FILE not in names:
                return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=RELAXED_FILE)
            self.out(
                'structure',
                _structure_from_extxyz(retrieved.base.repository.get_object_content(RELAXED_FILE)),
            )
            if status == 'unconverged':
                return self.exit_codes.ERROR_RELAX_NOT_CONVERGED.format(message=results.get('message', ''))
        elif task == 'elastic':
            # A finite-difference fit is symmetric only to its noise: keep the symmetric part (the
            # physical tensor) and record how large the antisymmetric part was.
            voigt = np.array(results['voigt_GPa'], dtype=float)
            tensor = orm.ArrayData()
            tensor.set_array('voigt_GPa', (voigt + voigt.T) / 2)
            tensor.base.attributes.set('max_asymmetry_GPa', float(np.max(np.abs(voigt - voigt.T)) / 2))
            self.out('elastic_tensor', tensor)
        elif task == 'phonon_gamma':
            keys = (
                'gamma_mode_meV',
                'frequencies_meV',
                'acoustic_meV',
                'supercell_matrix',
                'n_displacements',
                'n_atoms_supercell',
                'displacement_A',
                # the cell the frequencies belong to: spglib's primitive cell of the input
                'n_atoms_input',
                'n_atoms_primitive',
                'primitive_cell_A',
                'primitive_symbols',
                'primitive_scaled_positions',
                'spacegroup',
                'symprec_A',
            )
            self.out('phonon', orm.Dict({k: results[k] for k in keys if k in results}))
            if FORCE_CONSTANTS_FILE in names:
                with retrieved.base.repository.open(FORCE_CONSTANTS_FILE, 'rb') as handle:
                    fc = orm.ArrayData()
                    fc.set_array('force_constants', np.load(handle))
                self.out('force_constants', fc)
        elif task == 'vacancy':
            keys = (
                'E_vac_eV',
                'mu_eV',
                'mu_reference',
                'mu_source',
                'mu_rule',
                'reference',
                'E_perfect_eV',
                'E_defect_eV',
                'supercell',
                'n_atoms_supercell',
                'removed_index',
                'wyckoff',
                'mobile',
                'symprec',
                'sites',
                'converged',
            )
            self.out('vacancy', orm.Dict({k: results[k] for k in keys if k in results}))
        if status == 'unconverged':
            return self.exit_codes.ERROR_STEP_NOT_CONVERGED.format(message=results.get('message', ''))
        if status != 'ok':
            return self.exit_codes.ERROR_RUNNER.format(
                message=f'status {status}: {results.get("message", "")}'
            )
        return ExitCode(0)

    def _killed_status(self) -> str:
        """The status of a run that left no results file: ``walltime`` when the scheduler killed the job
        at its time limit (a Slurm ``TIMEOUT``), else ``killed`` (SIGKILL, ``scancel``, a node that went
        down). aiida-core's scheduler parser has already set the node's exit status when the scheduler's
        accounting (``sacct``) says so; without accounting it matches the scheduler's stderr, but only its
        first line, and the runner's own warnings come before Slurm's message: here every line is given to
        the scheduler plugin's ``parse_output``."""
        from aiida.engine import CalcJob

        walltime = CalcJob.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME.status
        if self.node.exit_status == walltime:
            return 'walltime'
        name = self.node.get_option('scheduler_stderr') or '_scheduler-stderr.txt'  # CalcJob's default
        computer = self.node.computer
        if computer is None:
            return 'killed'
        try:
            text = self.retrieved.base.repository.get_object_content(name, mode='r')
        except FileNotFoundError:
            return 'killed'
        scheduler = computer.get_scheduler()
        for line in text.splitlines():
            try:
                code = scheduler.parse_output(None, '', line)
            except Exception:  # FeatureNotAvailable (core.direct) or a plugin's own error: not a verdict
                return 'killed'
            if code is not None and code.status == walltime:
                return 'walltime'
        return 'killed'

    def _restart_from(self):
        if 'restart' not in self.node.inputs:
            return None
        with self.node.inputs.restart.as_path() as path:
            return _checkpoint_step(path)

    def _md_folder(self, retrieved, temporary, sub: str, restart_from):
        """One md output folder (``sub``: '' or ``replicas/NAME``): the retrieved ``trajectory.json`` and the
        temporarily retrieved frames and checkpoint -> (trajectory node or None, restart node or None,
        checkpoint step, number of frames); None when the folder has no ``trajectory.json``."""
        from .output import read_md_output

        name = f'{sub}/{TRAJECTORY_META_FILE}' if sub else TRAJECTORY_META_FILE
        if temporary is None:
            return None
        try:
            retrieved.base.repository.get_object(name)
        except FileNotFoundError:
            return None
        work = Path(temporary) / sub
        work.mkdir(parents=True, exist_ok=True)
        with (
            retrieved.base.repository.open(name, 'rb') as src,
            open(work / TRAJECTORY_META_FILE, 'wb') as dst,
        ):
            shutil.copyfileobj(src, dst)
        data = read_md_output(work)
        meta = data['meta']
        restart_path = work / RESTART_FILE
        restart_step, restart_node = None, None
        if restart_path.is_file():
            restart_step = _checkpoint_step(restart_path)
            restart_node = orm.SinglefileData(restart_path, filename=RESTART_FILE)
        n_frames = len(data['steps'])
        node = None
        if n_frames:
            traj = Trajectory(
                positions=np.asarray(data['positions'], dtype=np.float32),
                cell=np.array(meta['cell'], dtype=float),
                symbols=list(meta['symbols']),
                velocities=np.asarray(data['velocities'], dtype=np.float32),
            )
            node = MDTrajectoryData.from_trajectory(
                traj,
                timestep_fs=float(meta['timestep_fs']) * int(meta['frame_interval']),
                temperature_K=float(meta['temperature_K']),
                origin={
                    'kind': 'mlip',
                    'model': self.node.inputs.parameters.get('model', 'chgnet-0.3.0'),
                    'md_timestep_fs': float(meta['timestep_fs']),
                    'frame_interval': int(meta['frame_interval']),
                    **_thermostat_origin(meta),
                    'calcjob_uuid': self.node.uuid,
                },
            )
            node.set_array('steps', np.asarray(data['steps'], dtype=np.int64))
            node.base.attributes.set('restart_from_step', restart_from)
            node.base.attributes.set('last_checkpoint_step', restart_step)
        return node, restart_node, restart_step, n_frames

    def _md_exit_code(self, status, ok_frames: bool, restart_step, message):
        if status == 'ok' and ok_frames:
            return ExitCode(0)
        if status == 'ok':  # 'ok' without a frame: the files are not this run's (never an empty success)
            status = 'incomplete'
        if status == 'unstable':
            return self.exit_codes.ERROR_MD_UNSTABLE.format(message=message)
        if restart_step is None:
            return self.exit_codes.ERROR_NO_RESULTS
        if status == 'walltime':
            return self.exit_codes.ERROR_WALLTIME.format(step=restart_step)
        return self.exit_codes.ERROR_MD_INCOMPLETE.format(step=restart_step)

    def _parse_md(self, retrieved, temporary, results):
        restart_from = self._restart_from()
        folder = self._md_folder(retrieved, temporary, '', restart_from)
        if folder is None:
            if results is not None:
                self.out('results', orm.Dict(results))
            return self.exit_codes.ERROR_NO_RESULTS
        node, restart_node, restart_step, n_frames = folder
        if restart_node is not None:
            self.out('restart', restart_node)
        if node is not None:
            self.out('trajectory', node)
        summary = dict(results or {})
        summary.update(
            {'n_frames_parsed': n_frames, 'restart_step': restart_step, 'restart_from_step': restart_from}
        )
        if results is None:
            summary['status'] = self._killed_status()
        self.out('results', orm.Dict(summary))
        return self._md_exit_code(
            summary.get('status'), bool(n_frames), restart_step, summary.get('message', '')
        )

    def _parse_md_batch(self, retrieved, temporary, results):
        """Task ``md_batch``: every run's folder ``replicas/NAME`` parsed as an md run into
        ``replicas.NAME.{trajectory, results, restart}``; the batch's checkpoint into ``restart``; one exit
        code for the batch, as for md (the batch stops, or blows up, as a whole)."""
        restart_from = self._restart_from()
        restart_step = None
        if temporary is not None and (Path(temporary) / RESTART_FILE).is_file():
            path = Path(temporary) / RESTART_FILE
            restart_step = _checkpoint_step(path)
            self.out('restart', orm.SinglefileData(path, filename=RESTART_FILE))
        names = [spec['name'] for spec in self.node.inputs.parameters['settings']['replicas']]
        runs = (results or {}).get('replicas') or {}
        all_frames = True
        for name in names:
            folder = self._md_folder(retrieved, temporary, f'{REPLICAS_DIR}/{name}', restart_from)
            run = dict(runs.get(name) or {})
            if folder is None:
                all_frames = False
                continue
            node, restart_node, run_restart_step, n_frames = folder
            all_frames = all_frames and bool(n_frames)
            if node is not None:
                self.out(f'replicas.{name}.trajectory', node)
            if restart_node is not None:
                self.out(f'replicas.{name}.restart', restart_node)
            run.update(
                {
                    'n_frames_parsed': n_frames,
                    'restart_step': run_restart_step,
                    'restart_from_step': restart_from,
                }
            )
            if not runs:
                run['status'] = self._killed_status()
            self.out(f'replicas.{name}.results', orm.Dict(run))
        summary = dict(results or {})
        summary.update({'restart_step': restart_step, 'restart_from_step': restart_from})
        if results is None:
            summary['status'] = self._killed_status()
        self.out('results', orm.Dict(summary))
        return self._md_exit_code(summary.get('status'), all_frames, restart_step, summary.get('message', ''))
