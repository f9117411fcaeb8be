"""Universal machine-learned interatomic potentials behind one ASE interface.

``load_calculator(model, device)`` returns an :class:`ase.calculators.calculator.Calculator`:

* ``'chgnet-0.3.0'`` (default): CHGNet with the 0.3.0 weights shipped in the ``chgnet`` wheel (no download).
  It runs through :class:`FastCHGNetCalculator`, which asks the network only for what ASE requested:
  energy + forces (task ``'ef'``) unless the stress is requested (task ``'efs'``). The stock
  ``chgnet.model.dynamics.CHGNetCalculator`` always evaluates ``'efsm'`` (stress + magnetic moments), which on
  a CPU costs ~50 % more per MD step for nothing.
* ``'sevennet-0'``: SevenNet-0 (the 11 Jul 2024 checkpoint, sevenn's ``7net-0``) through
  ``sevenn.calculator.SevenNetCalculator`` (optional dependency ``aiida-superionic[sevennet]``). The checkpoint
  ships in the ``sevenn`` wheel; it is loaded from its path in the installed package (:func:`sevennet_checkpoint`),
  never by name, so that nothing is ever downloaded at run time (sevenn fetches a missing checkpoint by URL).

No AiiDA import here: this module runs on the compute node.
"""

from __future__ import annotations

import numpy as np
from ase import units
from ase.calculators.calculator import Calculator, all_changes

__all__ = (
    'DEFAULT_MODEL',
    'MODELS',
    'FastCHGNetCalculator',
    'load_calculator',
    'resolve_device',
    'sevennet_checkpoint',
)

DEFAULT_MODEL = 'chgnet-0.3.0'
MODELS: tuple[str, ...] = ('chgnet-0.3.0', 'sevennet-0')

#: CHGNet returns the stress in GPa; ASE wants eV/Å^3. Same factor as ``CHGNetCalculator`` (``units.GPa``).
GPA_TO_EV_A3 = units.GPa  # = 1 / 160.21766208

_CHGNET_CACHE: dict[tuple[str, str], object] = {}
_SEVENNET_CACHE: dict[tuple[str, str], Calculator] = {}


def resolve_device(device: str = 'auto') -> str:
    """``'auto'`` -> ``'cuda'`` if torch sees a GPU, else ``'cpu'``; anything else is returned unchanged."""
    if device in (None, '', 'auto'):
        import torch

        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return str(device)


def _load_chgnet(version: str, device: str):
    """The CHGNet model, loaded once per (version, device) and process."""
    key = (version, device)
    if key not in _CHGNET_CACHE:
        from chgnet.model import CHGNet

        _CHGNET_CACHE[key] = CHGNet.load(model_name=version, use_device=device, verbose=False)
    return _CHGNET_CACHE[key]


class FastCHGNetCalculator(Calculator):
    """ASE calculator for CHGNet that evaluates the stress only when asked for.

    Conventions are those of ``chgnet.model.dynamics.CHGNetCalculator``: energy = CHGNet energy per atom x
    number of atoms (the model is intensive), forces in eV/Å, stress = CHGNet stress (GPa) x ``units.GPa``
    with no sign change (CHGNet's stress is already ASE's: positive = tensile), returned as a 3x3 matrix
    (``Atoms.get_stress`` turns it into Voigt order xx yy zz yz xz xy). Set ``always_stress = True`` to get the
    stress with every evaluation (cell relaxations, where ASE asks for forces and then for the stress).
    """

    implemented_properties = ('energy', 'free_energy', 'forces', 'stress')

    def __init__(self, model=None, *, version: str = '0.3.0', device: str = 'auto', **kwargs):
        super().__init__(**kwargs)
        self.device = resolve_device(device)
        self.model = model if model is not None else _load_chgnet(version, self.device)
        self.version = version
        #: evaluate the stress with every call (cell relaxations ask for forces then stress: one call, not two)
        self.always_stress = False

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        properties = list(properties or ('energy', 'forces'))
        super().calculate(atoms, properties, system_changes)
        from pymatgen.core import Lattice, Structure

        # Direct conversion (what AseAtomsAdaptor does for the fields CHGNet reads, without its warning about
        # ASE constraints such as FixCom); coordinates are not wrapped.
        structure = Structure(
            Lattice(np.asarray(self.atoms.cell)),
            self.atoms.numbers,
            self.atoms.positions,
            coords_are_cartesian=True,
        )
        graph = self.model.graph_converter(structure)
        task = 'efs' if self.always_stress or 'stress' in properties else 'ef'
        prediction = self.model.predict_graph(graph.to(self.device), task=task)
        n_atoms = len(structure)
        factor = n_atoms if self.model.is_intensive else 1
        energy = float(np.asarray(prediction['e']).reshape(-1)[0]) * factor
        self.results = {
            'energy': energy,
            'free_energy': energy,
            'forces': np.asarray(prediction['f'], dtype=float).reshape(n_atoms, 3),
        }
        if 's' in prediction:
            self.results['stress'] = np.asarray(prediction['s'], dtype=float).reshape(3, 3) * GPA_TO_EV_A3


def sevennet_checkpoint() -> str:
    """Path of the SevenNet-0 (11 Jul 2024) checkpoint inside the installed ``sevenn`` package.

    Raises ``ImportError`` (with the install hint) without ``sevenn``, ``FileNotFoundError`` when the installed
    ``sevenn`` lacks the file (sevenn would otherwise try to download it).
    """
    try:
        from sevenn import _const
    except ImportError as exc:
        raise ImportError(
            "the SevenNet-0 model needs the optional dependency: pip install 'aiida-superionic[sevennet]'"
        ) from exc
    from pathlib import Path

    path = Path(_const.SEVENNET_0_11Jul2024)
    if not path.is_file():
        raise FileNotFoundError(
            f'the SevenNet-0 checkpoint is not in the installed sevenn package ({path}); '
            "reinstall it: pip install 'aiida-superionic[sevennet]'"
        )
    return str(path)


def _load_sevennet(device: str) -> Calculator:
    """A SevenNet-0 calculator; the model is built once per (checkpoint, device) and process (building it
    takes seconds on a CPU): later calls get a fresh calculator (own atoms and results) sharing that model."""
    import copy
    import warnings

    checkpoint = sevennet_checkpoint()
    key = (checkpoint, device)
    if key not in _SEVENNET_CACHE:
        from sevenn.calculator import SevenNetCalculator

        with warnings.catch_warnings():  # "no tensor product accelerator": none exists for the CPU
            warnings.filterwarnings('ignore', message='No tensor product accelerator', category=UserWarning)
            _SEVENNET_CACHE[key] = SevenNetCalculator(checkpoint, file_type='checkpoint', device=device)
    calc = copy.copy(_SEVENNET_CACHE[key])
    calc.reset()
    return calc


def load_calculator(model: str = DEFAULT_MODEL, device: str = 'auto') -> Calculator:
    """An ASE calculator for ``model`` (one of :data:`MODELS`) on ``device`` ('auto', 'cpu', 'cuda', ...)."""
    name = str(model).strip().lower()
    if name == 'chgnet-0.3.0':
        return FastCHGNetCalculator(version='0.3.0', device=device)
    if name == 'sevennet-0':
        return _load_sevennet(resolve_device(device))
    raise ValueError(f'unknown model {model!r}: known models are {", ".join(MODELS)}')
