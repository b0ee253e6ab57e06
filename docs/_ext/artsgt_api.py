"""Sphinx helpers that document the package from its own code.

``.. param-table:: dotted.path.to.callable``
    Every parameter of a function or class with its default (read from the signature) and its description
    (read from the ``:param:`` fields of the docstring), so the table cannot drift from the code.

``.. mapping-table:: dotted.path.to.dict``
    A ``{name: description}`` dictionary of the package (e.g. the gradient-masking checks) as a table.

``.. public-data:: dotted.module`` (option ``:documented:``)
    ``autodata`` for each constant or type alias of the module's ``__all__`` that is assigned in the module and
    has no ``#:`` doc comment: autodoc's ``automodule`` skips such names even with ``undoc-members`` (it can
    only tell a module attribute from a doc comment), and every public name belongs in the reference. With
    ``:documented:`` the commented ones are included too (for a module that is not itself ``automodule``'d).

A ``missing-reference`` handler resolves cross-references to re-exported names (``art_sgt.X``,
``art_sgt.evaluation.X``) to the place where the object is documented.

Why these are ours: Markdown, the CLI reference and formulas are done by MyST-Parser, sphinx-argparse and
Sphinx's MathJax. What stays here has no maintained equivalent: autodoc lists ``:param:`` fields under a
signature but builds no parameter / default / meaning table for a guide page; ``list-table`` needs literal
rows, so a package dictionary cannot feed it; ``automodule`` cannot list constants without doc comments; and
Sphinx does not resolve a re-exported name (``art_sgt.X``) to where it is documented.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


def repo_root(directive: SphinxDirective) -> Path:
    return Path(directive.env.srcdir).parent


def insert_lines(directive: SphinxDirective, lines: list[str], source: str) -> list[nodes.Node]:
    directive.state_machine.insert_input(StringList(lines, source=source), source)
    return []


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
        return insert_lines(self, lines, inspect.getsourcefile(obj) or self.arguments[0])


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
        return insert_lines(self, [*lines, ""], self.arguments[0])


class PublicData(SphinxDirective):
    """``autodata`` for the public constants ``automodule`` leaves out (see the module docstring)."""

    required_arguments = 1
    option_spec = {"documented": directives.flag}

    def run(self) -> list[nodes.Node]:
        import ast

        from sphinx.pycode import ModuleAnalyzer

        name = self.arguments[0]
        module = importlib.import_module(name)
        source = inspect.getsource(module)
        assigned = set()
        for node in ast.parse(source).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            assigned |= {t.id for t in targets if isinstance(t, ast.Name)}
        commented = {attr for (namespace, attr) in ModuleAnalyzer.for_module(name).find_attr_docs() if not namespace}
        names = [
            n
            for n in getattr(module, "__all__", ())
            if n in assigned and ("documented" in self.options or n not in commented)
        ]
        annotations = getattr(module, "__annotations__", {})
        lines: list[str] = []
        for n in names:
            if n in commented:
                lines += [f".. autodata:: {name}.{n}", ""]
                continue
            # Without a doc comment autodoc would show the docstring of the value's type (dict's, tuple's...).
            obj = getattr(module, n)
            alias = isinstance(obj, (type(int | str), type(list[int]))) or type(obj).__module__ == "typing"
            value = repr(obj)
            lines += [f".. py:data:: {n}", f"   :module: {name}"]
            annotation = annotations.get(n)
            annotation = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
            if annotation and "<" not in annotation and not alias:
                lines.append(f"   :type: {annotation}")
            if len(value) <= 100 and "\n" not in value and "<" not in value:
                lines.append(f"   :value: {value}")
            what = "Type alias of the signatures above." if alias else "Constant the functions above accept or use."
            lines += ["", f"   {what}", ""]
        return insert_lines(self, lines, inspect.getsourcefile(module) or name)


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
    app.add_directive("param-table", ParamTable)
    app.add_directive("mapping-table", MappingTable)
    app.add_directive("public-data", PublicData)
    app.connect("missing-reference", resolve_reexports)
    app.connect("autodoc-process-signature", dataclass_factories)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
