"""The one way the commands launch a process: check the builder's inputs against the process's ports
(the same validators a ``verdi run`` script meets), then run it here or submit it to the daemon; and the check that a daemon can take what ``--daemon``
submits (``submit``, ``import-md``)."""

from __future__ import annotations

from typing import Any

import click

from ..exceptions import InputError


def check_inputs(builder) -> None:
    """Run the process's port validators on the builder's inputs now, before any node is stored; a
    failure is one :class:`InputError` (the command prints one ``Error:`` line)."""
    ports = builder._process_class.spec().inputs
    error = ports.validate(ports.pre_process(dict(builder._inputs(prune=True))))
    if error is not None:
        raise InputError(error.message.strip())


def launch(builder, *, daemon: bool, profile) -> tuple[dict[str, Any] | None, Any]:
    """Launch ``builder``: with ``daemon``, submit it and print its PK (outputs None); else run it here
    and return its outputs and node, raising :class:`InputError` when it did not finish ok."""
    from aiida.engine import run_get_node, submit

    check_inputs(builder)
    label = builder._process_class.__name__
    if daemon:
        check_daemon(profile)
        node = submit(builder)
        click.echo(
            f'submitted {label}<{node.pk}> to the daemon of profile {profile.name}; '
            f'follow it with `verdi process status {node.pk}`'
        )
        return None, node
    outputs, node = run_get_node(builder)
    if not node.is_finished_ok:
        raise InputError(f'{label}<{node.pk}> failed: {node.exit_message or node.process_state.value}')
    return outputs, node


def check_daemon(profile) -> None:
    """Refuse ``--daemon`` before anything is stored when no daemon can take the process."""
    from aiida.engine.daemon.client import get_daemon_client

    if get_daemon_client(profile.name).is_daemon_running:
        return
    if profile.process_control_backend == 'core.rabbitmq':
        click.echo(
            f'Warning: the daemon of profile {profile.name} is not running; the process waits in RabbitMQ '
            f'until `verdi -p {profile.name} daemon start`',
            err=True,
        )
        return
    raise InputError(
        f'the daemon of profile {profile.name} is not running: start it with `verdi -p {profile.name} daemon start`, '
        'or leave out --daemon to run here'
    )
