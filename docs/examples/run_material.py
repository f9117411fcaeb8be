"""Launch one material (or one of its steps) from a protocol with ``verdi run``::

    verdi run run_material.py Li3N.cif --mobile Li --protocol fast
    verdi run run_material.py Li3N.cif --mobile Li --protocol fast --overrides '{"md": {"n_steps": 2000}}'
    verdi run run_material.py LiF.cif --mobile Li --protocol fast --step relax
    verdi run run_material.py Li3N.cif --mobile Li --daemon        # submit, print the PK

``verdi run`` loads the profile; the builder holds every input explicitly (the engine's settings
resolved from the protocol and the overrides), and the work chains' port validators check it at launch.
"""

import argparse
import json

from aiida import orm
from aiida.engine import run_get_node, submit
from pymatgen.core import Structure

from aiida_superionic.workflows.material import MaterialWorkChain
from aiida_superionic.workflows.steps import ElasticWorkChain, PhononGammaWorkChain, RelaxWorkChain

STEPS = {'relax': RelaxWorkChain, 'elastic': ElasticWorkChain, 'phonon_gamma': PhononGammaWorkChain}

parser = argparse.ArgumentParser(description='One material through the paper, from a protocol.')
parser.add_argument('structure', help='CIF, POSCAR, ... (anything pymatgen reads)')
parser.add_argument('--mobile', required=True)
parser.add_argument('--protocol', default='fast')
parser.add_argument('--engine', default='mlip')
parser.add_argument('--code', default='mlip@localhost')
parser.add_argument('--overrides', default='{}', help='JSON deltas on the protocol')
parser.add_argument('--step', choices=['material', *STEPS], default='material')
parser.add_argument('--daemon', action='store_true')
args = parser.parse_args()

structure = orm.StructureData(pymatgen=Structure.from_file(args.structure))
code = orm.load_code(args.code)
common = {'protocol': args.protocol, 'overrides': json.loads(args.overrides), 'engine': args.engine}
if args.step == 'material':
    builder = MaterialWorkChain.get_builder_from_protocol(code, structure, mobile=args.mobile, **common)
else:
    builder = STEPS[args.step].get_builder_from_protocol(code, structure, **common)

if args.daemon:
    node = submit(builder)
    print(f'submitted {node.process_label}<{node.pk}>')
else:
    results, node = run_get_node(builder)
    print(f'{node.process_label}<{node.pk}> finished with exit status {node.exit_status}')
    for name in sorted(results):
        print(f'  {name}: {results[name]}')
