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
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # serves MathJax with the pages: formulas render offline, the build fetches nothing
    "myst_parser",  # the markdown reports under results/ (results-markdown)
    "sphinxarg.ext",  # the CLI reference, from art_sgt.cli.build_parser
    "sphinx_gallery.gen_gallery",  # the tutorial, executed at build time
    "artsgt_api",
    "artsgt_docs",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "tutorial_src", "tutorial/*.ipynb"]
source_suffix = {".rst": "restructuredtext"}  # markdown is only parsed where a directive includes it
templates_path: list[str] = []
root_doc = "index"
smartquotes_action = "qe"  # curly quotes, but "--option" stays two hyphens (the CLI reference)
language = "en"

# -- strictness: every cross-reference inside the package must resolve -----------------------------------
nitpicky = True
# External libraries are not fetched (the build is offline: no intersphinx), so their types stay plain text.
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np|art|captum|matplotlib|tqdm|argparse|pathlib|os|collections|typing|abc)(\..*)?"),
    (r"py:.*", r"(Any|Callable|Iterator|Mapping|Sequence|Path|Union|Optional|Tensor|Module|Generator)"),
    (r"py:class", r"(int|float|str|bool|bytes|dict|list|tuple|type|None|object|slice|BaseException)"),
    (r"py:class", r"(nn|F)\..*"),
    # Types of ART and Captum in the public signatures, shown by their short names.
    (r"py:class", r"(PyTorchClassifier|EvasionAttack|Attribution)"),
    (r"py:class", r"Fill"),
    (r"py:class", r"(optional|default|callable|array_like)"),
    # Private helpers (modules or names starting with "_") appear in signatures but are not documented.
    (r"py:.*", r"art_sgt(\.\w+)*\._\w+(\.\w+)*"),
]

# -- autodoc ----------------------------------------------------------------------------------------------
autodoc_default_options = {
    "members": True,
    "undoc-members": True,  # every name of a module's __all__, constants included, even without a docstring
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

# -- MyST (markdown reports) ------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
# results-markdown titles each report's section with the report's own first heading and includes the rest,
# which therefore starts at H2; the nesting is right (checked in the built page), so that notice is silenced.
suppress_warnings = ["myst.header"]


# -- the tutorial (sphinx-gallery) ------------------------------------------------------------------------
# docs/tutorial_src/*.py run when the HTML is built, on a small MNIST subset (seconds), so the page shows
# real outputs and CI checks that the code still runs. Without a local MNIST the page is built unexecuted.
def _mnist_is_local() -> bool:
    folders = [os.environ.get("ART_SGT_DATA", "")]
    try:
        import art.config

        folders.append(art.config.ART_DATA_PATH)
    except ImportError:
        pass
    return any(folder and Path(folder, "mnist.npz").is_file() for folder in folders)


sphinx_gallery_conf = {
    "examples_dirs": "tutorial_src",
    "gallery_dirs": "tutorial",
    "filename_pattern": r"tutorial_",
    "plot_gallery": "True" if _mnist_is_local() else "False",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 3600,  # no "total running time" line: it depends on the machine
    "show_signature": False,
    "write_computation_times": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "line_numbers": False,
    "first_notebook_cell": None,
}

# -- HTML -------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"art-sgt {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": True,
}
