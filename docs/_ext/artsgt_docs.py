"""Sphinx helpers for the art-sgt documentation.

Everything a page shows about *measured* results is read at build time from files the repository's scripts
wrote under ``results/``; nothing here holds a number. The directives:

``.. results-markdown:: results/name.md`` (or a glob such as ``results/*.md``)
    Converts the markdown files the scripts write (headings, paragraphs, lists, pipe tables, images, code)
    to reST and inserts them where the directive stands, as ``.. include::`` would. Files that do not exist
    yet give a short note instead, so the build never depends on which scripts have run.

``.. results-json-table:: results/bench_trainers.json``
    Values of a results JSON file as a table (a benchmark's ratios by default), with the command and hardware.

``.. results-figures:: results/*/*.png``
    Every figure matching a glob, captioned with its path.

``.. param-table:: dotted.path.to.callable``
    Every parameter of a function or class with its default (read from the signature) and its description
    (read from the ``:param:`` fields of the docstring), so the table cannot drift from the code.

``.. mapping-table:: dotted.path.to.dict``
    A ``{name: description}`` dictionary of the package (e.g. the gradient-masking checks) as a table.

``.. cli-help::`` (optional argument: a subcommand)
    The ``--help`` text of the ``art-sgt`` command, generated from its argument parser.

A ``missing-reference`` handler resolves cross-references to re-exported names (``art_sgt.X``,
``art_sgt.evaluation.X``) to the place where the object is documented.
"""

from __future__ import annotations

import glob
import importlib
import inspect
import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

TITLE_CHAR = "~"  # section of one included file (under the page's "-" sections)
HEADING_CHARS = "^\"'`+:"  # headings inside an included file


# --------------------------------------------------------------------------------------------- markdown
def _inline(text: str) -> str:
    """Markdown inline markup to reST inline markup (code, bold, italics, links, escapes)."""
    out: list[str] = []
    # Split off code spans first: their content is literal.
    for i, part in enumerate(re.split(r"(`+[^`]+?`+)", text)):
        if i % 2 == 1:
            code = part.strip("`")
            out.append(f"``{code}``" if code.strip() else part)
            continue
        # Backslashes and reST-only markup characters that markdown treats as plain text.
        part = part.replace("\\", "\\\\")
        part = re.sub(r"(?<![\w*])_(?=\w)|(?<=\w)_(?![\w*])", r"\\_", part)
        part = part.replace("|", "\\|")
        # Links [text](url) -> anonymous hyperlinks.
        part = re.sub(
            r"\[([^\]]+)\]\(([^)\s]+)\)",
            lambda m: f"`{m.group(1).replace('`', '')} <{m.group(2)}>`__",
            part,
        )
        # __bold__ -> **bold**; single-star and single-underscore emphasis already match reST.
        part = re.sub(r"\*\*(\S(?:.*?\S)?)\*\*", r"**\1**", part)
        # A lone '*' (e.g. a footnote mark or multiplication) would open emphasis in reST: escape it.
        part = re.sub(r"(?<![*\w])\*(?=\s|$)|(?<=\s)\*(?![*\w])", r"\\*", part)
        out.append(part)
    return "".join(out)


def _table(rows: list[str]) -> list[str]:
    """A pipe table (header, separator, body) to a ``list-table``."""

    def cells(line: str) -> list[str]:
        line = line.strip()
        if line.startswith("|"):
            line = line[1:]
        if line.endswith("|") and not line.endswith("\\|"):
            line = line[:-1]
        return [c.strip() for c in re.split(r"(?<!\\)\|", line)]

    header = cells(rows[0])
    body = [cells(r) for r in rows[2:]]
    width = len(header)
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *body]:
        row = (row + [""] * width)[:width]
        for j, cell in enumerate(row):
            text = _inline(cell.replace("\\|", "|")) or " "
            out.append(f"   {'* -' if j == 0 else '  -'} {text}")
    return [*out, ""]


def markdown_to_rst(text: str, resolve_image: Callable[[str], str | None]) -> str:
    """Convert the simple markdown the result scripts write to reST.

    :param text: Markdown.
    :param resolve_image: Maps an image reference of the markdown to the path the including document must
        use, or ``None`` when the file does not exist (the image is then replaced by a note).
    :return: reST text.
    """
    lines = text.replace("\t", "    ").splitlines()
    out: list[str] = []
    ranks = sorted({len(m.group(1)) for m in (re.match(r"^(#{1,6})\s", ln) for ln in lines) if m})
    previous_level = -1
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        fence = re.match(r"^(```|~~~)\s*([\w+-]*)", stripped)
        if fence:
            language = fence.group(2) or "text"
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence.group(1)):
                block.append(lines[i])
                i += 1
            i += 1
            out += [f".. code-block:: {language}", ""] + [f"   {b}" if b else "" for b in block] + [""]
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", stripped)
        if heading:
            level = min(ranks.index(len(heading.group(1))), previous_level + 1)
            previous_level = level
            title = _inline(heading.group(2))
            char = HEADING_CHARS[min(level, len(HEADING_CHARS) - 1)]
            out += ["", title, char * max(len(title), 4), ""]
            i += 1
            continue
        if (
            stripped.startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$", lines[i + 1].strip())
        ):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out += [""] + _table(rows)
            continue
        image = re.match(r"^!\[([^\]]*)\]\(([^)\s]+)\)\s*$", stripped)
        if image:
            target = image.group(2)
            resolved = target if re.match(r"^[a-z]+://", target) else resolve_image(target)
            if resolved is None:
                out += ["", f"*(figure* ``{target}`` *not produced yet)*", ""]
            else:
                out += ["", f".. image:: {resolved}", f"   :alt: {_inline(image.group(1)) or 'figure'}", ""]
            i += 1
            continue
        if re.match(r"^(-{3,}|\*{3,}|_{3,})$", stripped):
            out += ["", "----", ""]
            i += 1
            continue
        item = re.match(r"^(\s*)([-*+]|\d+[.)])\s+(.*)$", line)
        if item:
            indent = len(item.group(1)) // 2 * 2
            marker = "-" if item.group(2) in "-*+" else "#."
            if not out or out[-1] != "" and not re.match(r"^\s*(-|#\.) ", out[-1]):
                out.append("")
            out.append(" " * indent + f"{marker} {_inline(item.group(3))}")
            i += 1
            continue
        if stripped.startswith(">"):
            out += ["", f"   {_inline(stripped.lstrip('> '))}", ""]
            i += 1
            continue
        if not stripped:
            out.append("")
        elif out and re.match(r"^\s*(-|#\.) ", out[-1]) and line.startswith(" "):
            out[-1] += " " + _inline(stripped)  # continuation of a list item
        else:
            out.append(_inline(stripped))
        i += 1
    return "\n".join(out).strip("\n") + "\n"


def _rst_problems(rst: str) -> str:
    """Warnings docutils reports when parsing ``rst`` on its own ('' if none)."""
    from docutils.core import publish_doctree

    stream = io.StringIO()
    publish_doctree(
        rst,
        settings_overrides={
            "report_level": 2,
            "halt_level": 5,
            "warning_stream": stream,
            "file_insertion_enabled": False,
        },
    )
    return stream.getvalue()


# --------------------------------------------------------------------------------------------- directives
def _repo_root(directive: SphinxDirective) -> Path:
    return Path(directive.env.srcdir).parent


def _insert(directive: SphinxDirective, lines: list[str], source: str) -> list[nodes.Node]:
    directive.state_machine.insert_input(StringList(lines, source=source), source)
    return []


class ResultsMarkdown(SphinxDirective):
    """Insert markdown result files (a path or a glob, relative to the repository root) converted to reST."""

    required_arguments = 1
    option_spec = {"title": directives.unchanged, "missing": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        root = _repo_root(self)
        pattern = self.arguments[0]
        paths = sorted(Path(p) for p in glob.glob(str(root / pattern)))
        self.env.note_dependency(str(root / Path(pattern).parent))
        if not paths:
            note = " ".join((self.options.get("missing") or f"``{pattern}`` has not been produced yet.").split())
            return _insert(self, [".. note::", "", f"   {note}", ""], str(root / pattern))
        lines: list[str] = []
        docdir = Path(self.env.srcdir, self.env.docname).parent
        for path in paths:
            self.env.note_dependency(str(path))
            rel = path.relative_to(root).as_posix()

            def resolve_image(target: str, _md_dir: Path = path.parent) -> str | None:
                # Relative to the markdown file, else to the repository root (scripts write "results/x.png").
                for candidate in (_md_dir / target, root / target):
                    if candidate.is_file():
                        self.env.note_dependency(str(candidate))
                        return os.path.relpath(candidate, docdir).replace(os.sep, "/")
                return None

            text = path.read_text(encoding="utf-8")
            first = re.match(r"^\s*#{1,6}\s+(.*?)\s*#*\s*\n", text)
            heading = None
            if first and "title" not in self.options and (len(paths) > 1 or "*" in pattern):
                heading, text = _inline(first.group(1)), text[first.end() :]
            rst = markdown_to_rst(text, resolve_image)
            problems = _rst_problems(rst)
            if problems:
                logger.info("results-markdown: %s shown verbatim (reST conversion: %s)", rel, problems.strip())
                rst = ".. code-block:: markdown\n\n" + "\n".join(f"   {ln}" if ln else "" for ln in text.splitlines())
            if "title" in self.options or len(paths) > 1 or "*" in pattern:
                title = self.options.get("title") or heading or f"``{rel}``"
                lines += [title, TITLE_CHAR * max(len(title), 4), ""]
            lines += [f"*Included from* ``{rel}`` *(written by a script, not by hand).*", ""]
            lines += rst.splitlines() + [""]
        return _insert(self, lines, str(paths[0]))


class ResultsFigures(SphinxDirective):
    """Every image matching a glob (relative to the repository root), each with its path as caption."""

    required_arguments = 1
    option_spec = {"missing": directives.unchanged, "width": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        root = _repo_root(self)
        pattern = self.arguments[0]
        paths = sorted(Path(p) for p in glob.glob(str(root / pattern), recursive=True))
        self.env.note_dependency(str(root / "results"))
        if not paths:
            note = " ".join((self.options.get("missing") or f"No ``{pattern}`` has been produced yet.").split())
            return _insert(self, [".. note::", "", f"   {note}", ""], str(root / pattern))
        docdir = Path(self.env.srcdir, self.env.docname).parent
        lines: list[str] = []
        folder = None
        for path in paths:
            self.env.note_dependency(str(path))
            rel = path.relative_to(root).as_posix()
            if len(paths) > 1 and path.parent != folder:
                folder = path.parent
                lines += [f".. rubric:: ``{folder.relative_to(root).as_posix()}/``", ""]
            lines += [f".. figure:: {os.path.relpath(path, docdir).replace(os.sep, '/')}", f"   :alt: {path.name}"]
            if "width" in self.options:
                lines.append(f"   :width: {self.options['width']}")
            lines += ["", f"   ``{rel}``", ""]
        return _insert(self, lines, str(paths[0]))


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, (dict, list)):
        return f"``{json.dumps(value)}``"
    return str(value).replace("|", "\\|").replace("*", "\\*")


def _get(data: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        data = data[key]
    return data


def _list_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        for j, cell in enumerate(row):
            text = cell if row is header else _fmt(cell)
            lines.append(f"   {'* -' if j == 0 else '  -'} {text or ' '}")
    return [*lines, ""]


def _provenance(rel: str, data: dict[str, Any]) -> str:
    hardware, versions = data.get("hardware", {}) or {}, data.get("versions", {}) or {}
    parts = [f"*Included from* ``{rel}``"]
    if data.get("command"):
        parts.append(f"command ``{data['command']}``")
    if data.get("seed") is not None:
        parts.append(f"seed {data['seed']}")
    if hardware:
        device = hardware.get("cuda") or hardware.get("device") or "?"
        parts.append(
            f"{hardware.get('cpu_count', '?')} CPU cores, torch threads {hardware.get('torch_threads', '?')}, "
            f"device {device}"
        )
    if versions:
        parts.append(f"torch {versions.get('torch', '?')}, ART {versions.get('adversarial-robustness-toolbox', '?')}")
    if data.get("date_utc"):
        parts.append(str(data["date_utc"]))
    return ", ".join(parts) + "."


class ResultsJsonTable(SphinxDirective):
    """A table of values read from a results JSON file.

    Without options, a benchmark file's ``ratios`` (with ``median_seconds``) are shown. ``:records:`` names a
    mapping ``{name: {field: value}}`` shown one row per name (fields from ``:columns:``, or all). ``:rows:`` names
    records (dotted keys) and ``:columns:`` their fields: one table row per record. A ``:rows:`` entry that is a
    mapping of plain values and no ``:columns:`` gives a two-column key / value table. ``:figure:`` names the key
    holding the path of a figure to show under the table.
    """

    required_arguments = 1
    option_spec = {
        "missing": directives.unchanged,
        "rows": directives.unchanged,
        "columns": directives.unchanged,
        "figure": directives.unchanged,
        "records": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        root = _repo_root(self)
        rel = self.arguments[0]
        path = root / rel
        self.env.note_dependency(str(path))
        if not path.is_file():
            note = " ".join((self.options.get("missing") or f"``{rel}`` has not been produced yet.").split())
            return _insert(self, [".. note::", "", f"   {note}", ""], str(path))
        split = lambda key: [v.strip() for v in self.options.get(key, "").split(",") if v.strip()]  # noqa: E731
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows, columns = split("rows"), split("columns")
            if "records" in self.options:
                records = _get(data, self.options["records"].strip())
                columns = columns or sorted({k for r in records.values() for k in r})
                header = ["", *[f"``{c}``" for c in columns]]
                body = [[name, *[r.get(c) for c in columns]] for name, r in records.items()]
            elif not rows:
                medians, ratios = data.get("median_seconds", {}), data["ratios"]
                header = [
                    "contender",
                    "median seconds",
                    "baseline",
                    "baseline median seconds",
                    "ratio (contender / baseline)",
                ]
                body = [
                    [name, medians.get(name), r.get("baseline"), medians.get(r.get("baseline")), r.get("ratio")]
                    for name, r in ratios.items()
                ]
            elif columns:
                header = ["", *[f"``{c}``" for c in columns]]
                body = [[row, *[_get(data, f"{row}.{c}") for c in columns]] for row in rows]
            else:
                mapping = _get(data, rows[0])
                header, body = [f"``{rows[0]}``", "value"], [[k, v] for k, v in mapping.items()]
            lines = _list_table(header, body) + [_provenance(rel, data), ""]
            if "figure" in self.options:
                figure = Path(_get(data, self.options["figure"]))
                figure = figure if figure.is_absolute() else root / figure
                if figure.is_file():
                    docdir = Path(self.env.srcdir, self.env.docname).parent
                    lines += [
                        f".. image:: {os.path.relpath(figure, docdir).replace(os.sep, '/')}",
                        f"   :alt: {figure.name}",
                        "",
                    ]
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            logger.info("results-json-table: %s unreadable (%s)", rel, err)
            lines = [".. note::", "", f"   ``{rel}`` could not be read ({type(err).__name__}: {err}).", ""]
        return _insert(self, lines, str(path))


def _import(dotted: str) -> Any:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _param_docs(doc: str) -> dict[str, str]:
    """``{name: description}`` from the ``:param name:`` fields of a docstring (continuations joined)."""
    out: dict[str, str] = {}
    current = None
    for line in inspect.cleandoc(doc or "").splitlines():
        m = re.match(r"^:param\s+(?:[\w.\[\], |]+\s+)?(\w+):\s*(.*)$", line)
        if m:
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current and line.startswith(" ") and line.strip():
            out[current] += " " + line.strip()
        elif not line.startswith(" "):
            current = None
    return out


def _default_text(function: Any, param: inspect.Parameter) -> str:
    """The default of ``param`` as reST: its value, and the name it was written as when that differs.

    ``autodoc_preserve_defaults`` replaces defaults in signatures by their source text (``ATTACKS``); the real
    value is read from the function itself.
    """
    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    value: Any = param.default
    if code is not None:
        names = code.co_varnames[: code.co_argcount]
        defaults = function.__defaults__ or ()
        positional = dict(zip(names[len(names) - len(defaults) :], defaults))
        if param.name in positional:
            value = positional[param.name]
        elif param.name in (function.__kwdefaults__ or {}):
            value = function.__kwdefaults__[param.name]
    text = f"``{value!r}``"
    written = repr(param.default)
    if written != repr(value) and re.fullmatch(r"[A-Za-z_][\w.]*", written):
        text += f" (``{written}``)"
    return text


class ParamTable(SphinxDirective):
    """Parameters, defaults and descriptions of a callable, read from its signature and docstring."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        obj = _import(self.arguments[0])
        target = obj.__init__ if inspect.isclass(obj) else obj
        docs = _param_docs(obj.__doc__ or "")
        docs.update({k: v for k, v in _param_docs(getattr(target, "__doc__", "") or "").items() if k not in docs})
        params = [p for p in inspect.signature(target).parameters.values() if p.name != "self"]
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 18 18 64",
            "",
            "   * - parameter",
            "     - default",
            "     - meaning",
        ]
        for p in params:
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in docs:
                continue  # e.g. ``**kwargs`` kept only for ART's signature
            if p.kind is p.VAR_KEYWORD:
                name = f"``**{p.name}``"
            elif p.kind is p.VAR_POSITIONAL:
                name = f"``*{p.name}``"
            else:
                name = f"``{p.name}``"
            default = "(required)" if p.default is p.empty else _default_text(target, p)
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                default = " "
            lines += [f"   * - {name}", f"     - {default}", f"     - {docs.get(p.name, ' ')}"]
        lines.append("")
        # The descriptions' relative references (``:data:`ATTACKS```) resolve in the object's module.
        previous = self.env.ref_context.get("py:module") or "None"
        lines = [f".. py:currentmodule:: {obj.__module__}", "", *lines, f".. py:currentmodule:: {previous}", ""]
        return _insert(self, lines, inspect.getsourcefile(obj) or self.arguments[0])


class MappingTable(SphinxDirective):
    """A module-level ``{name: description}`` mapping of the package as a two-column table."""

    required_arguments = 1
    option_spec = {"header": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        mapping = _import(self.arguments[0])
        header = [h.strip() for h in self.options.get("header", "name, meaning").split(",", 1)]
        lines = [".. list-table::", "   :header-rows: 1", "", f"   * - {header[0]}", f"     - {header[1]}"]
        for key, value in mapping.items():
            lines += [f"   * - ``{key}``", f"     - {value}"]
        return _insert(self, [*lines, ""], self.arguments[0])


class CliHelp(SphinxDirective):
    """The ``--help`` of ``art-sgt`` (or of one subcommand), from its argparse parser."""

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        import argparse

        from art_sgt.cli import build_parser

        parser = build_parser()
        if self.arguments:
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            parser = sub.choices[self.arguments[0]]
        os.environ.setdefault("COLUMNS", "100")
        text = parser.format_help()
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


# --------------------------------------------------------------------------------------------- references
def resolve_reexports(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``art_sgt.X`` / ``art_sgt.pkg.X`` to where ``X`` is documented (its defining module)."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    candidates = [target]
    modname = node.get("py:module")
    if modname and not target.startswith("art_sgt"):
        candidates.append(f"{modname}.{target}")
    domain = env.get_domain("py")
    klass = node.get("py:class")
    if node.get("reftype") == "attr" and modname and klass and "." not in target:
        # ``:attr:`eps``` inside a dataclass: its fields are documented as the class's parameters.
        import dataclasses

        try:
            owner_class = _import(f"{modname}.{klass}")
        except (ImportError, AttributeError):
            owner_class = None
        if dataclasses.is_dataclass(owner_class) and target in {f.name for f in dataclasses.fields(owner_class)}:
            new = node.deepcopy()
            new["reftarget"] = f"{modname}.{klass}"
            return domain.resolve_xref(env, node["refdoc"], app.builder, "class", f"{modname}.{klass}", new, contnode)
    for name in candidates:
        if not name.startswith("art_sgt"):
            continue
        try:
            obj = _import(name)
        except (ImportError, AttributeError):
            continue
        owner = getattr(obj, "__module__", None)
        qual = getattr(obj, "__qualname__", None)
        if not owner or not qual:
            continue
        canonical = f"{owner}.{qual}"
        if canonical == name:
            continue
        new = node.deepcopy()
        new["reftarget"] = canonical
        return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], canonical, new, contnode)
    return None


def dataclass_factories(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None, return_annotation: str | None
) -> tuple[str, str | None] | None:
    """Show a dataclass field's ``default_factory`` as a call (``dict()``) instead of ``<factory>``.

    ``<factory>`` is not Python, so Sphinx could not parse such a signature and split it at every comma.
    """
    import dataclasses

    if not signature or "<factory>" not in signature or not dataclasses.is_dataclass(obj):
        return None
    for field in dataclasses.fields(obj):
        if field.default_factory is not dataclasses.MISSING:
            factory = getattr(field.default_factory, "__qualname__", None) or "factory"
            signature = signature.replace("<factory>", f"{factory}()", 1)
    return signature, return_annotation


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("results-markdown", ResultsMarkdown)
    app.add_directive("results-json-table", ResultsJsonTable)
    app.add_directive("results-figures", ResultsFigures)
    app.add_directive("param-table", ParamTable)
    app.add_directive("cli-help", CliHelp)
    app.add_directive("mapping-table", MappingTable)
    app.connect("missing-reference", resolve_reexports)
    app.connect("autodoc-process-signature", dataclass_factories)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
