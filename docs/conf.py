"""Sphinx configuration of the aiida-superionic documentation (built-in extensions only)."""

from __future__ import annotations

import warnings

# Importing aiida creates an empty configuration folder on a machine that never ran AiiDA, with a
# warning (as for the command line, see aiida_superionic/cli/__init__.py); the docs need no profile.
warnings.filterwarnings('ignore', message='Creating AiiDA configuration folder')

from aiida.common.warnings import AiidaDeprecationWarning  # noqa: E402
from aiida.manage.configuration import get_config_option  # noqa: E402

import aiida_superionic  # noqa: E402

# autodoc inspects every attribute of the AiiDA node classes, which touches aiida-core's deprecated
# ones (``objects``, ``Model``); their deprecation warnings are aiida-core's, not the docs'. Loading
# the AiiDA configuration (if any) resets aiida's warning filter, so read it first, then add ours.
get_config_option('warnings.showdeprecations')
warnings.filterwarnings('ignore', category=AiidaDeprecationWarning)

project = 'aiida-superionic'
author = 'aiida-superionic developers'
copyright = '2025, aiida-superionic developers'
release = aiida_superionic.__version__
version = release

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.mathjax',
    'sphinx.ext.viewcode',
]

# Docstrings use reST field lists (``:param x:``); napoleon only adds Google/NumPy support on top.
napoleon_google_docstring = True
napoleon_numpy_docstring = False

autodoc_default_options = {
    'members': True,
    'undoc-members': False,
    'show-inheritance': True,
}
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
autodoc_typehints_format = 'short'

exclude_patterns = ['_build', 'requirements.txt', 'reference_run']  # reference_run/: tables included by beside_paper.rst
templates_path: list[str] = []

html_theme = 'alabaster'
html_title = f'aiida-superionic {release}'
html_static_path: list[str] = []
