"""Command line interface: ``aiida-superionic``."""

from . import cmd_analyze  # noqa: F401  (registers the command)
from .root import cmd_root

__all__ = ['cmd_root']
