"""Run in a subprocess with AIIDA_PATH set: load a profile and print facts about its graph as JSON."""

import json
import sys

from aiida import load_profile, orm
from aiida.common.links import LinkType

profile = load_profile(sys.argv[1], allow_switch=True)
facts = {'nodes': orm.QueryBuilder().append(orm.Node).count(), 'workchains': []}
for (node,) in (
    orm.QueryBuilder()
    .append(orm.WorkflowNode, filters={'attributes.process_label': 'ImportMDWorkChain'})
    .all()
):
    entry = {
        'pk': node.pk,
        'state': node.process_state.value if node.process_state else None,
        'ok': node.is_finished_ok,
    }
    if node.is_finished_ok:
        record = node.outputs.record
        traj = node.outputs.trajectory
        parse = traj.creator
        source = parse.inputs.source
        diffusion_calc = node.outputs.diffusion.creator
        record_calc = record.creator
        entry.update(
            {
                'D': record['values']['D'],
                'record_inputs': sorted(
                    link.link_label
                    for link in record_calc.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all()
                ),
                'diffusion_input_is_trajectory': diffusion_calc.inputs.trajectory.uuid == traj.uuid,
                'trajectory_creator': parse.process_label,
                'source_type': type(source).__name__,
                'source_sha256': traj.origin.get('sha256'),
                'groups': sorted(g.label for g in orm.Group.collection.all() if traj in g.nodes),
            }
        )
    facts['workchains'].append(entry)
print(json.dumps(facts))
