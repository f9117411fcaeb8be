"""Accuracy of the MLIP engine's model: relaxed lattice constant, bulk modulus B and shear modulus G of
eight reference conductors against experiment (lattice constants: the reference set's CIFs) and the
Materials Project (K_VRH, G_VRH), through the runner's own ``relax`` and ``elastic`` tasks at one protocol.

Per material (the standard primitive cell of the reference CIF; ``--cell conventional`` for the CIF's cell):

* ``relax`` then ``elastic`` with the protocol's settings (``engines/mlip/protocols.yaml``): a, K_VRH, G_VRH;
* B from a Birch-Murnaghan E(V) fit (ASE ``EquationOfState``, 7 static energies of the relaxed cell scaled
  isotropically over +-3 % and over +-1 % in volume): independent of the stress route;
* K_VRH again from strain sets +-0.5 % and +-2 % (same ionic relaxation): how much the model's modulus
  depends on the strain with which it is probed.

    nice python benchmarks/bench_accuracy.py                        # moderate protocol, all eight
    nice python benchmarks/bench_accuracy.py --protocol fast --materials Li2O LiF
    nice python benchmarks/bench_accuracy.py --markdown /tmp/accuracy.md
    nice python benchmarks/bench_accuracy.py --model sevennet-0       # the other model of the engine

Prints the table and writes it as markdown (``--markdown``, default ``accuracy_<model>_<protocol>.md`` in the
current directory). CPU, a few minutes for the eight primitive cells on 2 cores (CHGNet; SevenNet-0 is slower).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

# Materials Project K_VRH / G_VRH (GPa), as given in issue 12; the phase is that of the MP entry as far as we
# know it (not verified against the MP database from this machine, which has no network).
MP = {
    'Li2O': (78.6, 68.5, 'antifluorite, Fm-3m'),
    'Li3N': (52.0, 33.6, 'alpha-Li3N, P6/mmm'),
    'Li2S': (40.5, 33.9, 'antifluorite, Fm-3m'),
    'LiF': (69.7, 50.0, 'rocksalt, Fm-3m'),
    'CaF2': (80.2, 37.9, 'fluorite, Fm-3m'),
    'PbF2': (67.7, 24.3, 'unverified: alpha (cotunnite, Pnma) or beta (fluorite, Fm-3m)'),
    'AgI': (25.7, 6.6, 'unverified: beta (wurtzite, P6_3mc) or gamma (zincblende, F-43m)'),
    'CuI': (38.2, 15.2, 'gamma (zincblende, F-43m), as far as we know'),
}
#: the engine's models (``engines/mlip/models.py``) and their names in the table
MODEL_NAMES = {'chgnet-0.3.0': 'CHGNet 0.3.0', 'sevennet-0': 'SevenNet-0'}
GPA = 1.0 / 160.21766208  # eV/Å^3 per GPa (ase.units.GPa)


def _quiet(func, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return func(*args, **kwargs)


def _pct(value: float, reference: float, digits: int = 0) -> str:
    return f'{100 * (value / reference - 1):+.{digits}f} %'


def measure(name: str, entry: dict, protocol: dict, cell: str, calc, workdir: Path, model: str) -> dict:
    import ase.io
    from ase.eos import EquationOfState
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from aiida_superionic.engines.mlip import runner
    from aiida_superionic.engines.mlip.common import Context
    from aiida_superionic.engines.symmetry import primitive_atoms
    from aiida_superionic.reference import __file__ as reference_init

    t0 = time.perf_counter()
    atoms = ase.io.read(Path(reference_init).parent / entry['file'])
    if cell == 'primitive':
        atoms, _ = primitive_atoms(atoms, 0.01)
    atoms.calc = calc
    ctx = Context(workdir=workdir, calc=calc, seed=0, t_start=time.monotonic(), model=model)
    status_relax, _, _ = _quiet(runner.task_relax, atoms, dict(protocol['relax']), ctx)
    conventional = SpacegroupAnalyzer(AseAtomsAdaptor.get_structure(atoms), symprec=0.01)
    abc = conventional.get_conventional_standard_structure().lattice.abc

    def elastic(settings: dict) -> tuple[str, dict]:
        strained = atoms.copy()
        strained.calc = calc
        status, _, results = _quiet(runner.task_elastic, strained, settings, ctx)
        return status, results

    status_elastic, el = elastic(dict(protocol['elastic']))
    k_small = elastic({**protocol['elastic'], 'strains': [-0.005, 0.005]})[1]['k_vrh_GPa']
    k_large = elastic({**protocol['elastic'], 'strains': [-0.02, 0.02]})[1]['k_vrh_GPa']

    def b_eos(span: float) -> float:
        volumes, energies = [], []
        for scale in np.linspace(1 - span, 1 + span, 7):
            scaled = atoms.copy()
            scaled.set_cell(atoms.cell * scale ** (1 / 3), scale_atoms=True)
            scaled.calc = calc
            volumes.append(scaled.get_volume())
            energies.append(scaled.get_potential_energy())
        return float(EquationOfState(volumes, energies, eos='birchmurnaghan').fit()[2]) / GPA

    lattice = entry['lattice_A_deg']
    return {
        'name': name,
        'phase': f'{entry["structure_type"].split(",")[0]}, {entry["space_group"]}',
        'reference': entry['reference'],
        'a_exp': lattice['a'],
        'c_exp': lattice['c'] if entry['space_group'].startswith('P6') else None,
        'a': abc[0],
        'c': abc[2] if entry['space_group'].startswith('P6') else None,
        'k': el['k_vrh_GPa'],
        'g': el['g_vrh_GPa'],
        'k_small': k_small,
        'k_large': k_large,
        'b_eos3': b_eos(0.03),
        'b_eos1': b_eos(0.01),
        'status': f'{status_relax}/{status_elastic}',
        'n_atoms': len(atoms),
        'seconds': time.perf_counter() - t0,
    }


def table(rows: list[dict], protocol_name: str, cell: str, model: str) -> str:
    head = (
        f'| Material | phase (CIF) | a exp (Å) | a {MODEL_NAMES[model]} (Å) | K MP | K_VRH | B E(V) ±3 % | B E(V) ±1 % '
        '| K_VRH at ±0.5 % / ±2 % | G MP | G_VRH | status |'
    )
    lines = [head, '|' + '---|' * 12]
    for r in rows:
        k_mp, g_mp, _ = MP[r['name']]
        a_exp = f'{r["a_exp"]:.4f}' + (f', c {r["c_exp"]:.4f}' if r['c_exp'] else '')
        a = f'{r["a"]:.4f} ({_pct(r["a"], r["a_exp"], 1)})'
        if r['c']:
            a += f', c {r["c"]:.4f} ({_pct(r["c"], r["c_exp"], 1)})'
        lines.append(
            f'| {r["name"]} | {r["phase"]} | {a_exp} | {a} | {k_mp:.1f} | {r["k"]:.1f} ({_pct(r["k"], k_mp)}) '
            f'| {r["b_eos3"]:.1f} | {r["b_eos1"]:.1f} | {r["k_small"]:.1f} / {r["k_large"]:.1f} '
            f'| {g_mp:.1f} | {r["g"]:.1f} ({_pct(r["g"], g_mp)}) | {r["status"]} |'
        )
    notes = [
        '',
        f'{MODEL_NAMES[model]}, protocol `{protocol_name}`, {cell} cells; moduli in GPa. K MP / G MP: Materials Project '
        'K_VRH / G_VRH; phase of the MP entries:',
        '',
    ]
    notes += [f'- {r["name"]}: {MP[r["name"]][2]}' for r in rows]
    notes += ['', "Experimental lattice constants (room temperature) from the reference set's CIFs:", '']
    notes += [f'- {r["name"]}: {r["reference"]}' for r in rows]
    return '\n'.join(lines + notes) + '\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--protocol', default='moderate', choices=['fast', 'moderate', 'precise'])
    parser.add_argument('--materials', nargs='+', default=list(MP))
    parser.add_argument('--cell', choices=['primitive', 'conventional'], default='primitive')
    parser.add_argument('--markdown', type=Path, default=None)
    parser.add_argument('--model', default='chgnet-0.3.0', choices=list(MODEL_NAMES))
    args = parser.parse_args()
    unknown = [m for m in args.materials if m not in MP]
    if unknown:
        sys.exit(f'Error: unknown materials {unknown}; known: {", ".join(MP)}')

    warnings.filterwarnings('ignore')
    import yaml

    from aiida_superionic.engines.mlip.models import load_calculator
    from aiida_superionic.protocols import base_protocol
    from aiida_superionic.reference import __file__ as reference_init

    index = yaml.safe_load((Path(reference_init).parent / 'index.yaml').read_text())
    entries = {m['name']: m for m in index['materials']}
    protocol = base_protocol('aiida_superionic.engines.mlip', args.protocol)
    calc = _quiet(load_calculator, args.model, 'cpu')
    rows = []
    with tempfile.TemporaryDirectory(prefix='bench-accuracy-') as tmp:
        for name in args.materials:
            row = measure(name, entries[name], protocol, args.cell, calc, Path(tmp), args.model)
            print(
                f'{name:5s} {row["n_atoms"]:2d} atoms  a = {row["a"]:.4f} Å  K = {row["k"]:.1f}  '
                f'G = {row["g"]:.1f}  B_EOS(±3 %) = {row["b_eos3"]:.1f}  B_EOS(±1 %) = {row["b_eos1"]:.1f}  '
                f'K(±0.5 %) = {row["k_small"]:.1f}  K(±2 %) = {row["k_large"]:.1f}  GPa  '
                f'[{row["status"]}, {row["seconds"]:.1f} s]',
                flush=True,
            )
            rows.append(row)
    markdown = table(rows, args.protocol, args.cell, args.model)
    print()
    print(markdown)
    out = args.markdown or Path(f'accuracy_{args.model}_{args.protocol}.md')
    out.write_text(markdown)
    print(f'written: {out}')


if __name__ == '__main__':
    main()
