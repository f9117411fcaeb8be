"""Task ``md_batch`` of the MLIP runner: several NVT MD runs (replicas) advanced together, one batched model
call per MD step for all of them.

The replicas of one material (its temperatures, its stoichiometric and vacancy cells: different cells and
atom counts) share one process and one loaded model. Every MD step evaluates the forces of all replicas in
one forward pass of the batch (CHGNet 0.3.0: one ``CHGNet.predict_graph`` call over the list of their crystal
graphs, :class:`BatchedCHGNet`; SevenNet-0: one call of its model on the merged graphs,
:class:`BatchedSevenNet`), then each replica is integrated on its own: its own temperature, seed and
thermostat.

Equations: those of task ``md``, split at the force call. Nosé-Hoover (ASE's ``NoseHooverChainNVT``): per
replica and step, ``p <- NHC(dt/2); p += dt/2 F(q); q += dt p / m; F <- model(q); p += dt/2 F(q);
p <- NHC(dt/2)``, with ASE's own :class:`ase.md.nose_hoover_chain.NoseHooverChainThermostat` (chain of 3, one
loop, fourth-order Suzuki-Yoshida) per replica. Langevin (ASE's ``Langevin`` with ``fixcm=False`` and a
``FixCom`` constraint, as task ``md``): the two halves of :meth:`ase.md.langevin.Langevin.step`, with the
coefficients of an ASE ``Langevin`` object per replica and the replica's own random stream (the second child
of ``SeedSequence(seed)``, as task ``md``), which draws ``xi`` then ``eta`` (N x 3 normals each) per step as
ASE does. The same Maxwell-Boltzmann start for the same seed. A batch of one replica therefore reproduces
task ``md`` step for step (with the same graph builder, below); a replica in a larger batch differs from its single run only by the rounding of
the batched forward pass (none was seen with CHGNet 0.3.0 on the CPU).

Crystal graphs (setting ``graph``)
    ``device``  every replica's graph is built each step with torch operations on the model's device
                (:mod:`.graphs`): the graph of CHGNet's converter (same edges, images, undirected pairing and
                angle triplets, tested against it), in another edge order, so forces agree with ``cpu`` to
                float32 rounding (~1e-5 eV/Å), not bit for bit.
    ``cpu``     CHGNet's own ``CrystalGraphConverter`` (pymatgen neighbour list, C graph code) on the CPU, one
                structure at a time, as task ``md``'s calculator: bit for bit task ``md``'s graph.
    ``auto``    (default) ``device`` when the model runs on a GPU, where CHGNet's CPU converter is ~90 % of
                an MD step; ``cpu`` when it runs on the CPU, so that a batch of one stays bit for bit task
                ``md`` there (the tests' reference) and the rounding-level difference is opted into.

Files, in the working directory
    ``aiida.json``        ``{"task": "md_batch", "model", "device", "seed", "settings"}``; settings are those of
                          task ``md`` (``temperature_K`` per replica instead) plus ``graph`` (above) and
                          ``replicas``: a list of
                          ``{"name", "structure", "temperature_K", "seed"}`` (``structure``: an extxyz file in
                          the directory; ``seed`` defaults to the top-level seed).
    ``restart.npz``       optional: the batch checkpoint of an earlier segment; continue exactly from it
                          (every replica's positions, momenta and thermostat state: the chain's
                          variables, or the state of its Langevin random stream).
    ``replicas/NAME/``    per replica, what task ``md`` writes: ``trajectory.f32``, ``trajectory.json``,
                          ``restart.npz`` (today's format: the replica can also be continued alone by task
                          ``md``) and ``results.json`` (task ``md``'s keys).
    ``results.json``      the batch: ``status`` (``ok``, ``walltime`` when stopped early, ``unstable`` when a
                          replica blew up and none stopped early), ``replicas`` (each replica's results).

The batch checkpoint ``restart.npz`` holds every replica's state at one common step and is replaced
atomically, so a batch killed at any moment continues from one consistent step (the per-replica restart
files are written after it and may be one checkpoint apart after a kill). All replicas of a batch use one
thermostat (``thermostat``: ``nose-hoover`` or ``langevin``, with ``friction_per_fs``).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import (
    MD_DEFAULTS,
    THERMOSTATS,
    TaskError,
    _log,
    _next_frame_step,
    _settings,
    _write_json_atomic,
    _write_restart,
    initial_momenta,
    normalize_thermostat,
    segment_stop,
    thermostat_parameters,
)
from .fileformat import (
    BATCHED_MODEL_NAMES,
    REPLICAS_DIR,
    RESTART_FILE,
    RESULTS_FILE,
    TRAJECTORY_FILE,
    TRAJECTORY_META_FILE,
)

__all__ = (
    'BATCHED_MODELS',
    'REPLICAS_DIR',
    'BatchedCHGNet',
    'BatchedSevenNet',
    'batched_model',
    'task_md_batch',
)

MD_BATCH_DEFAULTS = {**MD_DEFAULTS, 'graph': 'auto'}
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
_CONSERVED_NAME = {
    'nose-hoover': 'Nose-Hoover-chain conserved energy (ASE get_conserved_energy)',
    'langevin': 'total energy Epot + Ekin (Langevin has no conserved quantity in ASE)',
}
#: The thermostat's state in a checkpoint (batch: ``r{i}_KEY``; per replica: task md's ``KEY``).
_THERMOSTAT_KEYS = {'nose-hoover': ('nhc_eta', 'nhc_p_eta'), 'langevin': ('rng_state',)}


class BatchedCHGNet:
    """Energies and forces of several structures in one CHGNet forward pass.

    ``graph='device'``: each structure's crystal graph is built with torch operations on the model's device
    (:func:`.graphs.crystal_graph`: the graph of CHGNet's converter, edges in another order).
    ``graph='cpu'``: CHGNet's own ``CrystalGraphConverter`` on the CPU, as :class:`~.models.FastCHGNetCalculator`
    (a pymatgen ``Structure`` from the cell, atomic numbers and unwrapped Cartesian positions), then moved to
    the device. The list of graphs goes through ``predict_graph(task='ef', batch_size=len(graphs))``: one model
    call. Energies are totals (CHGNet's per-atom energy x N), forces in eV/Å.
    """

    GRAPHS = ('auto', 'device', 'cpu')

    def __init__(self, model, graph: str = 'auto'):
        if graph not in self.GRAPHS:
            raise TaskError(f'md_batch: graph must be one of {", ".join(self.GRAPHS)} (got {graph!r})')
        self.model = model
        self.device = next(model.parameters()).device
        if graph == 'auto':  # see the module docstring: device graphs on a GPU, CHGNet's converter on a CPU
            graph = 'cpu' if self.device.type == 'cpu' else 'device'
        self.graph = graph
        self._formulas: dict[tuple, str] = {}  # composition string per atomic-number sequence (metadata)

    def _formula(self, numbers) -> str:
        from .graphs import composition_formula

        key = tuple(int(z) for z in numbers)
        if key not in self._formulas:
            self._formulas[key] = composition_formula(key)
        return self._formulas[key]

    def graphs(self, systems):
        if self.graph == 'device':
            from .graphs import crystal_graphs

            compositions = [self._formula(numbers) for _, numbers, _ in systems]
            return crystal_graphs(systems, self.model, self.device, compositions)

        from pymatgen.core import Lattice, Structure

        return [
            self.model.graph_converter(
                Structure(Lattice(np.asarray(cell)), numbers, positions, coords_are_cartesian=True)
            ).to(self.device)
            for cell, numbers, positions in systems
        ]

    def __call__(self, systems) -> list[tuple[float, np.ndarray]]:
        """``systems``: (cell, numbers, positions) per structure -> (energy eV, forces (N, 3)) per structure."""
        graphs = self.graphs(systems)
        if not graphs:
            return []
        predictions = self.model.predict_graph(graphs, task='ef', batch_size=len(graphs))
        if len(graphs) == 1:
            predictions = [predictions]
        out = []
        for (_, numbers, _), prediction in zip(systems, predictions, strict=True):
            n_atoms = len(numbers)
            factor = n_atoms if self.model.is_intensive else 1
            energy = float(np.asarray(prediction['e']).reshape(-1)[0]) * factor
            out.append((energy, np.asarray(prediction['f'], dtype=float).reshape(n_atoms, 3)))
        return out


class BatchedSevenNet:
    """Energies and forces of several structures in one SevenNet forward pass.

    The model of the SevenNet calculator (``sevenn.calculator.SevenNetCalculator``, as :mod:`.models` loads it),
    copied once and switched to batched data (``set_is_batch_data(True)``, as sevenn's own torch-sim
    interface does); the structures' graphs are merged by torch-geometric's ``Collater`` into one batch and
    evaluated in one call. SevenNet's graph is its edge list: every directed pair ``i -> j + image`` within the
    model's cutoff (5 Å for SevenNet-0) with its vector ``r_j + image - r_i``; SevenNet differentiates the
    energy with respect to those vectors for the forces.

    ``graph='device'``: the pairs from :func:`.graphs.neighbor_list` (torch, on the model's device); the same
    pairs as ASE's neighbour list, in another order, so forces agree with ``cpu`` to float32 rounding.
    ``graph='cpu'``: sevenn's own ``unlabeled_atoms_to_graph`` (ASE's neighbour list, as the calculator of task
    ``md``), then moved to the device. ``auto`` as for CHGNet: ``device`` on a GPU, ``cpu`` on a CPU.
    """

    GRAPHS = BatchedCHGNet.GRAPHS

    def __init__(self, calc, graph: str = 'auto'):
        import copy

        if graph not in self.GRAPHS:
            raise TaskError(f'md_batch: graph must be one of {", ".join(self.GRAPHS)} (got {graph!r})')
        self.model = copy.deepcopy(calc.model)  # the calculator's own model stays unbatched
        self.model.set_is_batch_data(True)
        self.model.eval()
        self.device = next(self.model.parameters()).device
        self.cutoff = float(calc.cutoff)
        self.modal = getattr(calc, 'modal', None)
        if graph == 'auto':
            graph = 'cpu' if self.device.type == 'cpu' else 'device'
        self.graph = graph

    def _graph(self, cell, numbers, positions):
        import sevenn._keys as key
        import torch
        from sevenn.atom_graph_data import AtomGraphData

        if self.graph == 'cpu':
            from ase import Atoms
            from sevenn.train.dataload import unlabeled_atoms_to_graph

            atoms = Atoms(numbers=numbers, positions=positions, cell=np.asarray(cell), pbc=True)
            data = AtomGraphData.from_numpy_dict(
                unlabeled_atoms_to_graph(atoms, self.cutoff, with_shift=False)
            )
        else:
            from .graphs import neighbor_list

            pos = torch.as_tensor(np.asarray(positions), dtype=torch.float64, device=self.device)
            lattice = torch.as_tensor(np.asarray(cell), dtype=torch.float64, device=self.device)
            center, neighbor, image, _, _ = neighbor_list(pos, lattice, self.cutoff)
            vector = pos[neighbor] - pos[center] + image.to(torch.float64) @ lattice
            z = torch.as_tensor(np.asarray(numbers), dtype=torch.int64, device=self.device)
            volume = torch.abs(torch.linalg.det(lattice)).to(torch.float32)
            data = AtomGraphData(
                **{
                    key.NODE_FEATURE: z,  # a placeholder: the model maps atomic numbers to its types
                    key.ATOMIC_NUMBERS: z,
                    key.POS: pos.to(torch.float32),
                    key.EDGE_IDX: torch.stack([center, neighbor]),
                    key.EDGE_VEC: vector.to(torch.float32),
                    key.CELL_VOLUME: volume,
                    key.NUM_ATOMS: torch.tensor(len(z), device=self.device),
                    key.INFO: {},
                }
            )
        if self.modal:
            data[key.DATA_MODALITY] = self.modal
        return data

    def __call__(self, systems) -> list[tuple[float, np.ndarray]]:
        """``systems``: (cell, numbers, positions) per structure -> (energy eV, forces (N, 3)) per structure."""
        if not systems:
            return []
        import sevenn._keys as key
        from torch_geometric.loader.dataloader import Collater

        batch = Collater([], follow_batch=None, exclude_keys=None)(
            [self._graph(*system) for system in systems]
        )
        batch.to(self.device)
        output = self.model(batch)
        energies = output[key.PRED_TOTAL_ENERGY].detach().cpu().numpy().reshape(-1)
        forces = output[key.PRED_FORCE].detach().cpu().numpy().astype(float)
        out, start = [], 0
        for (_, numbers, _), energy in zip(systems, energies, strict=True):
            n_atoms = len(numbers)
            out.append((float(energy), forces[start : start + n_atoms].reshape(n_atoms, 3)))
            start += n_atoms
        return out


#: the batched force call of each model that task ``md_batch`` runs (the runner loads ``ctx.calc`` to match)
BATCHED_MODELS = dict(zip(BATCHED_MODEL_NAMES, (BatchedCHGNet, BatchedSevenNet), strict=True))


def batched_model(model: str, calc, graph: str = 'auto'):
    """The batched force call of ``model`` (a name of :data:`BATCHED_MODELS`) around its loaded ``calc``."""
    name = str(model).strip().lower()
    if name not in BATCHED_MODELS:
        raise TaskError(
            f'md_batch: model {model!r} is not batched; batched models: {", ".join(BATCHED_MODELS)}'
        )
    return BATCHED_MODELS[name](calc, graph=graph)


@dataclass
class _Replica:
    """One MD run of the batch: its atoms, integrator state and output files."""

    name: str
    atoms: object
    temperature: float
    seed: int
    workdir: Path
    thermostat: object = None  # NoseHooverChainThermostat, or an ase Langevin object (coefficients, rng)
    langevin: bool = False
    masses: np.ndarray = None  # (N, 1), as ASE's MolecularDynamics.masses
    q: np.ndarray = None
    p: np.ndarray = None
    forces: np.ndarray = None
    energy: float = 0.0
    status: str = 'ok'
    message: str = ''
    first_frame_step: int = 0
    last_step: int = 0
    n_frames: int = 0
    traj: object = None
    temperatures: list = field(default_factory=list)
    energies: list = field(default_factory=list)
    times: list = field(default_factory=list)
    snapshot: dict | None = None  # state at the last checkpoint (kept as is once the replica blew up)

    @property
    def active(self) -> bool:
        return self.status == 'ok'

    def update_atoms(self) -> None:
        if not self.langevin:  # a Langevin step works on the atoms themselves
            self.atoms.set_positions(self.q)
            self.atoms.set_momenta(self.p)

    def positions(self) -> np.ndarray:
        """Where the next forces are wanted."""
        return self.atoms.get_positions() if self.langevin else self.q

    def first_half(self, dt: float, dt2: float) -> None:
        """The step up to the force call (``NoseHooverChainNVT.step`` / ``Langevin.step``)."""
        if not self.langevin:
            self.p = self.thermostat.integrate_nhc(self.p, dt2)
            self.p += dt2 * self.forces
            self.q += dt * self.p / self.masses
            return
        # ase.md.langevin.Langevin.step (ASE 3.29), statement for statement, up to atoms.get_forces
        dyn, atoms, forces = self.thermostat, self.atoms, self.forces
        natoms = len(atoms)
        dyn.v = atoms.get_velocities()
        xi = dyn.rng.standard_normal(size=(natoms, 3))
        eta = dyn.rng.standard_normal(size=(natoms, 3))
        for constraint in atoms.constraints:
            if hasattr(constraint, 'redistribute_forces_md'):
                constraint.redistribute_forces_md(atoms, xi, rand=True)
                constraint.redistribute_forces_md(atoms, eta, rand=True)
        dyn.rnd_pos = dyn.c5 * eta
        dyn.rnd_vel = dyn.c3 * xi - dyn.c4 * eta
        dyn.v += dyn.c1 * forces / dyn.masses - dyn.c2 * dyn.v + dyn.rnd_vel
        x = atoms.get_positions()
        atoms.set_positions(x + dyn.dt * dyn.v + dyn.rnd_pos)
        dyn.v = (atoms.get_positions() - x - dyn.rnd_pos) / dyn.dt

    def second_half(self, dt2: float) -> None:
        """The step after the force call."""
        if not self.langevin:
            self.p += dt2 * self.forces
            self.p = self.thermostat.integrate_nhc(self.p, dt2)
            self.update_atoms()
            return
        dyn = self.thermostat
        dyn.v += dyn.c1 * self.forces / dyn.masses - dyn.c2 * dyn.v + dyn.rnd_vel
        self.atoms.set_momenta(dyn.v * dyn.masses)

    def conserved(self) -> float:
        if self.langevin:  # task md's quantity: Epot + Ekin
            return float(self.energy + self.atoms.get_kinetic_energy())
        return float(self.energy + self.atoms.get_kinetic_energy() + self.thermostat.get_thermostat_energy())

    def thermostat_state(self) -> dict:
        if self.langevin:
            return {'rng_state': np.str_(json.dumps(self.thermostat.rng.bit_generator.state))}
        return {'nhc_eta': np.array(self.thermostat._eta), 'nhc_p_eta': np.array(self.thermostat._p_eta)}


def _replica_specs(s: dict, workdir: Path, default_seed: int) -> list[dict]:
    specs = s['replicas']
    if not isinstance(specs, list) or not specs:
        raise TaskError('md_batch: settings.replicas must be a non-empty list')
    out, names = [], set()
    for k, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise TaskError(f'md_batch: replica {k} must be a mapping')
        unknown = set(spec) - {'name', 'structure', 'temperature_K', 'seed'}
        if unknown:
            raise TaskError(f'md_batch: replica {k} has unknown keys {sorted(unknown)}')
        name = str(spec.get('name', ''))
        if not _NAME.match(name) or name in names:
            raise TaskError(
                f'md_batch: replica {k} needs a unique name of letters, digits, _ . - (got {name!r})'
            )
        names.add(name)
        structure = workdir / str(spec.get('structure', ''))
        if not spec.get('structure') or not structure.is_file() or structure.parent != workdir:
            raise TaskError(f'md_batch: replica {name}: structure file {spec.get("structure")!r} not found')
        try:
            temperature = float(spec['temperature_K'])
        except (KeyError, TypeError, ValueError):
            raise TaskError(f'md_batch: replica {name}: temperature_K missing or not a number') from None
        if not temperature > 0:
            raise TaskError(f'md_batch: replica {name}: temperature_K must be > 0')
        seed = spec.get('seed')
        out.append(
            {
                'name': name,
                'structure': structure,
                'temperature_K': temperature,
                'seed': int(default_seed if seed is None else seed),
            }
        )
    return out


def _read_cell(path: Path):
    import ase.io

    atoms = ase.io.read(path, index=0, format='extxyz')
    atoms.calc = None
    atoms.set_constraint()
    if not atoms.pbc.all():
        raise TaskError(f'{path.name} must be periodic in all three directions')
    return atoms


def _load_batch_restart(path: Path, replicas: list[_Replica], settings: dict) -> dict:
    with np.load(path, allow_pickle=False) as data:
        restart = {key: data[key] for key in data.files}
    if str(restart.get('task')) != 'md_batch':
        raise TaskError('restart.npz is not a checkpoint of task md_batch')
    names = [str(x) for x in restart['names']]
    if names != [r.name for r in replicas]:
        raise TaskError(f'restart.npz holds the replicas {names}, settings say {[r.name for r in replicas]}')
    thermostat = str(restart['thermostat']) if 'thermostat' in restart else 'nose-hoover'
    if thermostat != normalize_thermostat(settings['thermostat']):
        raise TaskError(
            f'restart.npz was written with thermostat = {thermostat}, settings say {settings["thermostat"]}'
        )
    keys = ('timestep_fs', 'frame_interval') + (
        ('friction_per_fs',) if thermostat == 'langevin' else ('tdamp_fs',)
    )
    for key in keys:
        if not np.isclose(float(restart[key]), float(settings[key])):
            raise TaskError(
                f'restart.npz was written with {key} = {restart[key]}, settings say {settings[key]}'
            )
    for i, r in enumerate(replicas):
        if not np.array_equal(restart[f'r{i}_numbers'], r.atoms.numbers):
            raise TaskError(f'restart.npz does not match replica {r.name} (atomic numbers)')
        if not np.allclose(restart[f'r{i}_cell'], np.asarray(r.atoms.cell), atol=1e-8):
            raise TaskError(f'restart.npz does not match replica {r.name} (cell)')
        if not np.isclose(float(restart[f'r{i}_temperature_K']), r.temperature):
            raise TaskError(
                f'restart.npz was written with temperature_K = {restart[f"r{i}_temperature_K"]} for replica '
                f'{r.name}, settings say {r.temperature}'
            )
    return restart


def task_md_batch(settings: dict, ctx) -> tuple[str, str, dict]:
    """Run the batch described by ``settings`` in ``ctx.workdir``; ``ctx.calc`` is the loaded model of
    ``ctx.model`` (the CHGNet model, or the SevenNet calculator)."""
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.nose_hoover_chain import NoseHooverChainThermostat

    s = _settings(settings, MD_BATCH_DEFAULTS, required=('n_steps', 'replicas'))
    timestep = float(s['timestep_fs'])
    n_steps = int(s['n_steps'])
    interval = int(s['frame_interval'])
    checkpoint_every = max(1, int(s['checkpoint_every']))
    thermostat_name = normalize_thermostat(s['thermostat'])
    if thermostat_name not in THERMOSTATS:
        raise TaskError(f'md_batch: unknown thermostat {s["thermostat"]!r}; known: {THERMOSTATS}')
    langevin = thermostat_name == 'langevin'
    if interval < 1 or n_steps < 0 or timestep <= 0:
        raise TaskError('md_batch: need frame_interval >= 1, n_steps >= 0, timestep_fs > 0')
    walltime = None if s['walltime_s'] is None else float(s['walltime_s'])
    segment_steps = None if s['segment_steps'] is None else int(s['segment_steps'])
    factor = float(s['max_temperature_factor'])
    dt = timestep * units.fs
    dt2 = dt / 2
    workdir = Path(ctx.workdir)
    specs = _replica_specs(s, workdir, ctx.seed)
    force_call = batched_model(ctx.model, ctx.calc, graph=str(s['graph']).strip().lower())

    replicas = []
    for spec in specs:
        atoms = _read_cell(spec['structure'])
        folder = workdir / REPLICAS_DIR / spec['name']
        folder.mkdir(parents=True, exist_ok=True)
        replicas.append(_Replica(spec['name'], atoms, spec['temperature_K'], spec['seed'], folder))

    restart_path = workdir / RESTART_FILE
    restart = _load_batch_restart(restart_path, replicas, s) if restart_path.is_file() else None
    start_step = 0 if restart is None else int(restart['step'])
    for i, r in enumerate(replicas):
        if restart is None:
            initial_momenta(r.atoms, r.temperature, r.seed)
        else:
            r.atoms.set_positions(restart[f'r{i}_positions'])
            r.atoms.set_momenta(restart[f'r{i}_momenta'])
            r.status = str(restart[f'r{i}_status'])
            r.message = str(restart[f'r{i}_message'])
        r.masses = r.atoms.get_masses()[:, None]
        r.langevin = langevin
        if langevin:  # as task md: ASE's Langevin, fixcm off, then a FixCom constraint
            _, seed_langevin = np.random.SeedSequence(r.seed).spawn(2)
            rng = np.random.default_rng(seed_langevin)
            if restart is not None:
                rng.bit_generator.state = json.loads(str(restart[f'r{i}_rng_state']))
            r.thermostat = Langevin(
                r.atoms,
                timestep=dt,
                temperature_K=r.temperature,
                friction=float(s['friction_per_fs']) / units.fs,
                fixcm=False,
                rng=rng,
            )
            r.atoms.set_constraint(FixCom())
        else:  # ASE's NoseHooverChainNVT with its defaults (tchain 3, tloop 1), as task md builds it
            r.thermostat = NoseHooverChainThermostat(
                num_atoms_global=len(r.atoms),
                masses=r.masses,
                temperature_K=r.temperature,
                tdamp=float(s['tdamp_fs']) * units.fs,
            )
            if restart is not None:
                r.thermostat._eta[:] = restart[f'r{i}_nhc_eta']
                r.thermostat._p_eta[:] = restart[f'r{i}_nhc_p_eta']
        r.q = r.atoms.get_positions()
        r.p = r.atoms.get_momenta()
        r.last_step = start_step if restart is None else int(restart[f'r{i}_last_step'])
        r.first_frame_step = 0 if restart is None else _next_frame_step(start_step, interval)
    _log(
        f'md_batch: {len(replicas)} replicas, graphs built by {force_call.graph} ('
        + ', '.join(f'{r.name}: {len(r.atoms)} atoms, {r.temperature:g} K' for r in replicas)
        + ')'
        + ('' if restart is None else f'; restarting from step {start_step} of {n_steps}')
    )

    def evaluate(group: list[_Replica]) -> None:
        results = force_call([(r.atoms.cell, r.atoms.numbers, r.positions()) for r in group])
        for r, (energy, forces) in zip(group, results, strict=True):
            r.energy, r.forces = energy, forces

    for r in replicas:
        meta = {
            'n_atoms': len(r.atoms),
            'symbols': r.atoms.get_chemical_symbols(),
            'masses': r.atoms.get_masses(),
            'cell': np.asarray(r.atoms.cell),
            'pbc': r.atoms.pbc,
            'timestep_fs': timestep,
            'frame_interval': interval,
            'first_step': r.first_frame_step,
            'restart_step': None if restart is None else start_step,
            'n_steps': n_steps,
            'temperature_K': r.temperature,
            'thermostat': thermostat_name,
            **thermostat_parameters(thermostat_name, s),
            'seed': r.seed,
            'model': ctx.model,
            'batch': {'task': 'md_batch', 'replica': r.name, 'replicas': [x.name for x in replicas]},
            'layout': 'little-endian float32; per frame positions (N,3) in Å (unwrapped) then velocities '
            '(N,3) in Å/fs',
        }
        _write_json_atomic(r.workdir / TRAJECTORY_META_FILE, meta)
        r.traj = open(r.workdir / TRAJECTORY_FILE, 'wb')  # kept open for the whole run

    def save_frame(r: _Replica) -> None:
        frame = np.concatenate([r.atoms.get_positions(), r.atoms.get_velocities() * units.fs]).astype('<f4')
        r.traj.write(frame.tobytes())
        r.traj.flush()
        r.n_frames += 1

    def replica_state(r: _Replica, step: int) -> dict:
        return {
            'positions': r.atoms.get_positions(),
            'momenta': r.atoms.get_momenta(),
            'velocities': r.atoms.get_velocities() * units.fs,
            'step': np.int64(step),
            'n_frames': np.int64(r.n_frames),
            'first_step': np.int64(r.first_frame_step),
            'numbers': r.atoms.numbers,
            'cell': np.asarray(r.atoms.cell),
            'thermostat': np.str_(thermostat_name),
            'timestep_fs': np.float64(timestep),
            'temperature_K': np.float64(r.temperature),
            'frame_interval': np.int64(interval),
            'seed': np.int64(r.seed),
            **{key: np.float64(value) for key, value in thermostat_parameters(thermostat_name, s).items()},
            **r.thermostat_state(),
        }

    def checkpoint(step: int) -> None:
        import os

        for r in replicas:
            if r.active:
                os.fsync(r.traj.fileno())
                r.snapshot = replica_state(r, step)
        data = {
            'task': np.str_('md_batch'),
            'step': np.int64(step),
            'names': np.array([r.name for r in replicas]),
            'thermostat': np.str_(thermostat_name),
            'timestep_fs': np.float64(timestep),
            'tdamp_fs': np.float64(s['tdamp_fs']),
            'friction_per_fs': np.float64(s['friction_per_fs']),
            'frame_interval': np.int64(interval),
        }
        for i, r in enumerate(replicas):
            snap = r.snapshot
            for key in state_keys:
                data[f'r{i}_{key}'] = snap[key]
            data[f'r{i}_step'] = snap['step']
            data[f'r{i}_last_step'] = np.int64(r.last_step)
            data[f'r{i}_status'] = np.str_(r.status)
            data[f'r{i}_message'] = np.str_(r.message)
        _write_restart(restart_path, data)  # the batch, atomically: one consistent step for all replicas
        for r in replicas:
            if r.active:
                _write_restart(r.workdir / RESTART_FILE, r.snapshot)

    state_keys = (
        'positions',
        'momenta',
        'numbers',
        'cell',
        'temperature_K',
        *_THERMOSTAT_KEYS[thermostat_name],
    )
    status, message = 'ok', ''
    step = start_step
    step_times: list[float] = []
    batch_frames = 0
    try:
        active = [r for r in replicas if r.active]
        for r in replicas:  # a replica that blew up in an earlier segment keeps its last good checkpoint
            if not r.active and restart is not None:
                i = replicas.index(r)
                r.snapshot = {key: restart[f'r{i}_{key}'] for key in state_keys}
                r.snapshot['step'] = restart[f'r{i}_step']
        evaluate(active)
        for r in active:
            r.update_atoms()
            r.snapshot = replica_state(r, step)  # until the first checkpoint
            if restart is None and n_steps >= 0:
                save_frame(r)
            r.temperatures.append(r.atoms.get_temperature())
            r.energies.append(r.conserved())
            r.times.append(step * timestep)
        if restart is None and n_steps >= 0:
            batch_frames += 1
        while step < n_steps and active:
            stop = segment_stop(step, start_step, segment_steps, walltime, ctx.t_start, step_times)
            if stop is not None:
                status, message = stop
                break
            t0 = time.perf_counter()
            for r in active:  # each replica's step up to the force call
                r.first_half(dt, dt2)
            evaluate(active)  # one model call for every replica
            for r in active:
                r.second_half(dt2)
            step_times.append(time.perf_counter() - t0)
            step += 1
            for r in active:
                r.last_step = step
                t_inst = r.atoms.get_temperature()
                finite = np.isfinite(t_inst) and np.isfinite(r.atoms.get_positions()).all()
                if not finite or t_inst > factor * r.temperature:
                    r.status = 'unstable'
                    r.message = (
                        f'T = {t_inst:.1f} K at step {step} exceeds {factor:g} x {r.temperature:g} K (or NaN)'
                    )
                    _log(f'md_batch: replica {r.name} {r.status}: {r.message}')
                    continue
                r.temperatures.append(t_inst)
                r.energies.append(r.conserved())
                r.times.append(step * timestep)
            active = [r for r in active if r.active]
            if step % interval == 0 and active:
                for r in active:
                    save_frame(r)
                batch_frames += 1
                if batch_frames % checkpoint_every == 0:
                    checkpoint(step)
            if step % int(s['log_interval']) == 0:
                _log(
                    f'md_batch: step {step}/{n_steps}  '
                    + '  '.join(f'{r.name}: T = {r.atoms.get_temperature():.1f} K' for r in active)
                )
        checkpoint(step)
    finally:
        for r in replicas:
            if r.traj is not None:
                r.traj.close()

    if status == 'ok' and any(r.status == 'unstable' for r in replicas):
        status = 'unstable'
        message = '; '.join(f'{r.name}: {r.message}' for r in replicas if r.status == 'unstable')
    per_step = float(np.mean(step_times)) if step_times else None
    replica_results = {}
    for r in replicas:
        r_status = r.status if r.status == 'unstable' else status
        temps = np.asarray(r.temperatures)
        drift = None
        if len(r.times) >= 2:
            drift = float(
                np.polyfit(np.asarray(r.times) / 1000.0, np.asarray(r.energies) / len(r.atoms), 1)[0]
            )
        steps_done = max(0, r.last_step - start_step)  # 0 for a replica that blew up in an earlier segment
        result = {
            'status': r_status,
            'message': r.message
            if r.status == 'unstable'
            else (message or f'{steps_done} steps, {r.n_frames} frames'),
            'task': 'md',
            'batch_task': 'md_batch',
            'model': ctx.model,
            'n_atoms': len(r.atoms),
            'temperature_K': r.temperature,
            'seed': r.seed,
            'n_steps_done': steps_done,
            'first_step': start_step,
            'last_step': r.last_step,
            'n_frames': r.n_frames,
            'first_frame_step': r.first_frame_step,
            'T_mean_K': float(temps.mean()) if len(temps) else None,
            'T_std_K': float(temps.std()) if len(temps) else None,
            'etotal_drift_eV_per_atom_ps': drift,
            'etotal_drift_quantity': _CONSERVED_NAME[thermostat_name],
            'seconds_per_step': per_step,
            'restart_written': r.status != 'unstable',
        }
        _write_json_atomic(r.workdir / RESULTS_FILE, result)
        replica_results[r.name] = result
    if status == 'ok':
        message = f'{step - start_step} steps x {len(replicas)} replicas'
    n_atoms_total = sum(len(r.atoms) for r in replicas)
    results = {
        'n_replicas': len(replicas),
        'graph': force_call.graph,
        'n_atoms_total': n_atoms_total,
        'first_step': start_step,
        'last_step': step,
        'n_steps_done': step - start_step,
        'seconds_per_step': per_step,
        'replica_steps_per_s': None if not per_step else len(replicas) / per_step,
        'replicas': replica_results,
    }
    _log(f'md_batch: {status}: {message}')
    return status, message, results
