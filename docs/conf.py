"""Sphinx configuration of the aiida-superionic documentation (built-in extensions only)."""

from __future__ import annotations


import aiida_superionic

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

exclude_patterns = ['_build', 'requirements.txt']
templates_path: list[str] = []

html_theme = 'alabaster'
html_title = f'aiida-superionic {release}'
html_static_path: list[str] = []
