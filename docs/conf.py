"""Sphinx configuration of the art-sgt documentation (``make docs``; offline, warning-free)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))  # the package, also when it is not installed

os.environ.setdefault("TQDM_DISABLE", "1")

import art_sgt  # noqa: E402

project = "art-sgt"
author = "art-sgt contributors"
copyright = "art-sgt contributors"
release = art_sgt.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.doctest",
    "artsgt_api",
    "artsgt_docs",
    "mathtext_svg",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
root_doc = "index"
language = "en"

# -- strictness: every cross-reference inside the package must resolve -----------------------------------
nitpicky = True
# External libraries are not fetched (the build is offline: no intersphinx), so their types stay plain text.
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np|art|captum|matplotlib|tqdm|argparse|pathlib|os|collections|typing|abc)(\..*)?"),
    (r"py:.*", r"(Any|Callable|Iterator|Mapping|Sequence|Path|Union|Optional|Tensor|Module|Generator)"),
    (r"py:class", r"(int|float|str|bool|bytes|dict|list|tuple|type|None|object|slice|BaseException)"),
    (r"py:class", r"(nn|F)\..*"),
    (r"py:class", r"(optional|default|callable|array_like)"),
    # Private helpers (modules or names starting with "_") appear in signatures but are not documented.
    (r"py:.*", r"art_sgt(\.\w+)*\._\w+(\.\w+)*"),
]

# -- autodoc ----------------------------------------------------------------------------------------------
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
autosummary_generate = False
add_module_names = False
python_use_unqualified_type_names = True
napoleon_google_docstring = False
napoleon_numpy_docstring = False  # the docstrings use reST :param: fields, as ART does

# -- doctest: examples in docstrings and pages run with ``make docs`` (the doctest builder) ---------------
doctest_global_setup = """
import os
os.environ.setdefault("TQDM_DISABLE", "1")
import logging
logging.getLogger("art").setLevel(logging.ERROR)
import numpy as np
import torch
torch.manual_seed(0)
torch.set_num_threads(1)
"""
doctest_test_doctest_blocks = "default"

# -- HTML -------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"art-sgt {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": True,
}
# Formulas are rendered to SVG at build time (matplotlib mathtext, _ext/mathtext_svg.py): no MathJax, so
# the pages read correctly offline and nothing is fetched by the build or the browser.
html_math_renderer = "mathtext_svg"
