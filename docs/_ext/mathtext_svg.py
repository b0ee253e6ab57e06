"""Render ``:math:`` and ``.. math::`` to SVG at build time with matplotlib's mathtext.

The HTML then shows formulas without MathJax, so the pages read correctly offline and the build reaches no
URL. mathtext covers the TeX these pages use (fractions, sums, sub/superscripts, ``\\mathcal``,
``\\mathbb``, ``\\left( ... \\right)``, ...); a few common commands it lacks are rewritten first
(``\\big(`` -> ``(``, ``\\le`` -> ``\\leq``, ``\\text`` -> ``\\mathrm``). A formula mathtext cannot parse is
reported as a warning (so the strict build fails) and shown as its TeX source.

Formulas are embedded as ``<img>`` data URIs; dark themes invert them (see ``_static/custom.css``).
"""

from __future__ import annotations

import base64
import html
import io
import re
from functools import cache
from typing import Any

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

_REWRITES = [
    (re.compile(r"\\[bB]igg?[lrm]?(?=[\\()\[\]|.]|\\\{|\\\})"), ""),
    (re.compile(r"\\le(?![a-zA-Z])"), r"\\leq"),
    (re.compile(r"\\ge(?![a-zA-Z])"), r"\\geq"),
    (re.compile(r"\\text(?![a-zA-Z])"), r"\\mathrm"),
]


def _normalise(latex: str) -> str:
    latex = " ".join(latex.split())
    for pattern, replacement in _REWRITES:
        latex = pattern.sub(replacement, latex)
    return latex


@cache
def render(latex: str, fontsize: float) -> tuple[str, float, float, float]:
    """Render one formula.

    :param latex: TeX source, without dollars.
    :param fontsize: Font size in points.
    :return: ``(data URI, width pt, height pt, depth pt)``.
    :raises ValueError: If mathtext cannot parse the formula.
    """
    import matplotlib
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties

    buf = io.BytesIO()
    with matplotlib.rc_context(
        {"mathtext.fontset": "cm", "svg.fonttype": "path", "svg.hashsalt": "art-sgt", "savefig.transparent": True}
    ):
        depth = mathtext.math_to_image(
            f"${_normalise(latex)}$", buf, prop=FontProperties(size=fontsize), dpi=72, format="svg"
        )
    svg = buf.getvalue().decode("utf-8")
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)  # drops the creation date
    size = re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    width, height = (float(v) for v in size.groups()) if size else (0.0, 0.0)
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return uri, width, height, float(depth or 0.0)


def _img(self: Any, node: nodes.Element, latex: str, fontsize: float, inline: bool) -> str:
    try:
        uri, width, height, depth = render(latex, fontsize)
    except Exception as err:  # mathtext raises ValueError with a caret diagram
        logger.warning("mathtext cannot render %r: %s", latex, str(err).strip().splitlines()[-1], location=node)
        return f'<span class="math">{html.escape(latex)}</span>'
    alt = html.escape(" ".join(latex.split()), quote=True)
    style = f"width: {width:.2f}pt; height: {height:.2f}pt;"
    if inline:
        style += f" vertical-align: {-depth:.2f}pt;"
    return f'<img class="math-svg" src="{uri}" alt="{alt}" title="{alt}" style="{style}"/>'


def visit_math(self: Any, node: nodes.math) -> None:
    self.body.append(_img(self, node, node.astext(), 12.0, inline=True))
    raise nodes.SkipNode


def visit_displaymath(self: Any, node: nodes.math_block) -> None:
    self.body.append(self.starttag(node, "div", CLASS="math"))
    self.body.append("<p>")
    if node.get("number"):
        from sphinx.util.math import get_node_equation_number

        self.body.append(f'<span class="eqno">({get_node_equation_number(self, node)})</span>')
    # Blank lines separate equations, as in Sphinx's other math renderers.
    for i, part in enumerate(p for p in re.split(r"\n\s*\n", node.astext()) if p.strip()):
        if i:
            self.body.append("<br/>")
        # Display style: full-size fractions (mathtext has no \\displaystyle, but has \\dfrac).
        part = re.sub(r"\\frac(?![a-zA-Z])", r"\\dfrac", part)
        self.body.append(_img(self, node, part, 14.0, inline=False))
    self.body.append("</p>\n</div>")
    raise nodes.SkipNode


def setup(app: Any) -> dict[str, Any]:
    app.add_html_math_renderer("mathtext_svg", (visit_math, None), (visit_displaymath, None))
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
