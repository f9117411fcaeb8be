"""Command line interface: ``aiida-superionic``."""

import warnings

# Importing aiida's command-line groups creates an empty configuration folder on a machine that never
# ran AiiDA, with a warning; commands like `analyze` need no AiiDA set-up, so keep their output clean.
warnings.filterwarnings('ignore', message='Creating AiiDA configuration folder')

from . import cmd_analyze, cmd_archive, cmd_import, cmd_setup, cmd_show, cmd_study, cmd_submit  # noqa: E402, F401  (register the commands)
from .root import cmd_root  # noqa: E402

__all__ = ['cmd_root']
