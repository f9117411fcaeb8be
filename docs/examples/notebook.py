# ruff: noqa: E402  (imports in the cells that use them)
# %% [markdown]
# # aiida-superionic from a notebook
# Build a launch from a protocol, read and edit it, run one step, then query the records.
# Each `# %%` block is a notebook cell (Jupyter, VS Code); `python notebook.py` runs them all.

# %%
import os

from aiida import load_profile, orm
from aiida.engine import run_get_node
from ase.build import bulk

load_profile()  # the default profile (`aiida-superionic setup` makes one)
code = orm.load_code(os.environ.get('SUPERIONIC_CODE', 'mlip@localhost'))
structure = orm.StructureData(ase=bulk('LiF', 'rocksalt', a=4.08))

# %% [markdown]
# The whole material: every input explicit, the engine's settings resolved from the protocol and the
# overrides now (a typo in an override raises `InputError` here, not hours later).

# %%
from aiida_superionic.workflows.material import MaterialWorkChain

builder = MaterialWorkChain.get_builder_from_protocol(
    code, structure, 'fast', overrides={'md': {'n_steps': 600}}, mobile='Li'
)
settings = builder.settings.get_dict()
print(builder.temperatures.get_list(), settings['md']['n_steps'], settings['relax'])

# %% [markdown]
# Edit before launching: `builder.settings` is a plain Dict (the port validator checks it at launch).
# `aiida.engine.submit(builder)` sends it to the daemon; here we run one cheap step instead.

# %%
from aiida_superionic.workflows.steps import RelaxWorkChain

relax = RelaxWorkChain.get_builder_from_protocol(code, structure, 'fast')
relax_settings = relax.settings.get_dict()
relax_settings['relax']['fmax'] = 0.02  # tighter than the fast protocol's 0.05 eV/Å
relax.settings = orm.Dict(relax_settings)
results, node = run_get_node(relax)
print(node.process_label, node.pk, node.exit_status, results['structure'].cell)

# %% [markdown]
# Follow and inspect from a shell: `verdi process list -a`, `verdi process show PK`,
# `verdi process report PK`, `verdi node graph generate PK`.

# %% [markdown]
# Query the records (see `queries.py` next to this file).

# %%
qb = orm.QueryBuilder().append(
    orm.Dict, filters={'attributes.schema': 'superionic.record.v1'}, project=['attributes.material']
)
print(f'{qb.count()} descriptor records in this profile')
