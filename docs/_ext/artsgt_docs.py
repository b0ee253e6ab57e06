"""Sphinx directives that show the repository's measured results.

Everything a page shows about *measured* results is read at build time from files the repository's scripts
wrote under ``results/``; nothing here holds a number. The directives:

``.. results-markdown:: results/name.md`` (or a glob such as ``results/*.md``)
    Includes the markdown files the scripts write, parsed by MyST-Parser, each under its own heading (MNIST,
    then CIFAR-10, then ablations). Files that do not exist yet give a short note instead, so the build never
    depends on which scripts have run.

``.. results-json-table:: results/bench_trainers.json``
    Values of a results JSON file as a table (a benchmark's ratios by default, or chosen fields), with the
    command and hardware.

``.. results-figures:: results/*/*.png``
    Every figure matching a glob, captioned with its path.

Why these are ours: the markdown itself is parsed by MyST-Parser; what stays here is choosing, ordering and
titling the files a glob finds, and turning chosen fields of a results JSON into a table with its provenance
line, which no maintained Sphinx extension does.
"""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path
from typing import Any

from artsgt_api import insert_lines, repo_root
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

TITLE_CHAR = "~"  # section of one included file (under the page's "-" sections)


def _report_order(path: Path) -> tuple[bool, int, str]:
    """MNIST before CIFAR-10, main comparisons before ablations."""
    name = path.stem
    return ("ablation" in name, 1 if name.startswith("cifar") else 0, name)


class ResultsMarkdown(SphinxDirective):
    """Insert markdown result files (a path or a glob, relative to the repository root), parsed by MyST-Parser.

    Each file becomes a section titled by its own first heading; the rest of the file is included with
    MyST's parser (docutils' ``include`` with ``:parser: myst_parser.docutils_``).
    """

    required_arguments = 1
    option_spec = {"title": directives.unchanged, "missing": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        root = repo_root(self)
        pattern = self.arguments[0]
        paths = sorted((Path(p) for p in glob.glob(str(root / pattern))), key=_report_order)
        self.env.note_dependency(str(root / Path(pattern).parent))
        if not paths:
            note = " ".join((self.options.get("missing") or f"``{pattern}`` has not been produced yet.").split())
            return insert_lines(self, [".. note::", "", f"   {note}", ""], str(root / pattern))
        lines: list[str] = []
        docdir = Path(self.env.srcdir, self.env.docname).parent
        for path in paths:
            self.env.note_dependency(str(path))
            rel = path.relative_to(root).as_posix()
            text = path.read_text(encoding="utf-8")
            first = re.match(r"^\s*#{1,6}\s+(.*?)\s*#*\s*\n", text)
            title = self.options.get("title") or (first.group(1).replace("`", "``") if first else f"``{rel}``")
            skip = text[: first.end()].count("\n") if first else 0
            lines += [title, TITLE_CHAR * max(len(title), 4), ""]
            lines += [f"*Included from* ``{rel}`` *(written by a script, not by hand).*", ""]
            lines += [f".. include:: {os.path.relpath(path, docdir).replace(os.sep, '/')}"]
            lines += ["   :parser: myst_parser.docutils_", f"   :start-line: {skip}", ""]
        return insert_lines(self, lines, str(paths[0]))


#: What each figure the scripts write shows, and what to look for in it, by file name (without ``.png``).
FIGURE_CAPTIONS = {
    "time_to_robustness": "Worst-case accuracy at eps 0.3 (quick budget) after each epoch against the training CPU "
    "minutes spent so far, per trainer; the dashed line is ART Madry's final worst case minus 2 points and the "
    "dotted line a third of its training time: the target asks for a point of fast ASGT left of the dotted and "
    "above the dashed line.",
    "mnist_sgt_saliency": "Test images (top row) and the absolute input gradient of the true class for the "
    "standard and the SGT model (brighter = more salient): SGT's maps should sit on the digit's strokes.",
    "saliency_maps": "Saliency maps of each model on the same test images (brighter = more salient): look for "
    "maps that follow the object rather than the background.",
    "accuracy_vs_eps": "Accuracy under attack as eps grows, one panel per model: higher and flatter curves are "
    "more robust; the dashed worst case is the number to quote.",
    "masking_curves": "Accuracy as the most (MoRF) or least (LeRF) salient pixels are removed first: a faithful "
    "map makes MoRF fall fast and LeRF stay high.",
    "saliency_mnist_maps": "Maps of each attribution method on the same MNIST test images.",
    "saliency_mnist_masking": "Masking curves of each attribution method: MoRF should fall faster than random "
    "removal, and LeRF slower.",
    "saliency_mnist_sanity": "Sanity check: similarity of the maps to the trained model's as layers are "
    "randomised from the top; maps that stay similar do not depend on what the model learnt.",
    "saliency_mnist_stability": "Stability: similarity of each method's maps before and after an ART PGD "
    "perturbation of growing eps, beside the accuracy.",
}

#: Readable names of result folders (``results/<name>/``).
FOLDER_TITLES = {"mnist_quick": "MNIST, quick profile", "cifar10_quick": "CIFAR-10, quick profile"}


def _label(key: str) -> str:
    """A result key as a label: ``pgd40_eps0.1`` -> ``PGD-40, eps 0.1``, ``test_accuracy`` -> ``test accuracy``."""
    match = re.fullmatch(r"pgd(\d+)_eps([\d.]+)", key)
    return f"PGD-{match.group(1)}, eps {match.group(2)}" if match else key.replace("_", " ")


def _caption(path: Path) -> str:
    return FIGURE_CAPTIONS.get(path.stem) or path.stem.replace("_", " ").capitalize() + "."


class ResultsFigures(SphinxDirective):
    """Every image matching a glob (relative to the repository root), captioned by what it shows.

    Images are grouped by folder (MNIST before CIFAR-10) under a readable title; the caption of a known figure
    says what to look for (:data:`FIGURE_CAPTIONS`), and ends with the file it was read from.
    """

    required_arguments = 1
    option_spec = {"missing": directives.unchanged, "width": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        root = repo_root(self)
        pattern = self.arguments[0]
        paths = sorted(
            (Path(p) for p in glob.glob(str(root / pattern), recursive=True)),
            key=lambda p: (_report_order(p.parent), p.name),
        )
        self.env.note_dependency(str(root / "results"))
        if not paths:
            note = " ".join((self.options.get("missing") or f"No ``{pattern}`` has been produced yet.").split())
            return insert_lines(self, [".. note::", "", f"   {note}", ""], str(root / pattern))
        docdir = Path(self.env.srcdir, self.env.docname).parent
        lines: list[str] = []
        folder = None
        for path in paths:
            self.env.note_dependency(str(path))
            rel = path.relative_to(root).as_posix()
            if len(paths) > 1 and path.parent != folder:
                folder = path.parent
                title = FOLDER_TITLES.get(folder.name) or f"``{folder.relative_to(root).as_posix()}/``"
                lines += [f".. rubric:: {title}", ""]
            lines += [f".. figure:: {os.path.relpath(path, docdir).replace(os.sep, '/')}", f"   :alt: {_caption(path)}"]
            if "width" in self.options:
                lines.append(f"   :width: {self.options['width']}")
            lines += ["", rf"   {_caption(path)} *(From* ``{rel}``.\ *)*", ""]
        return insert_lines(self, lines, str(paths[0]))


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


def _command(command: str) -> str:
    """A recorded command without this machine's folders: the data folder as ``$ART_SGT_DATA``, no ``--out``."""
    command = re.sub(r"(--data-dir[ =])/\S+", r"\1$ART_SGT_DATA", command)
    return re.sub(r" --out[ =]\S+", "", command)


def _provenance(rel: str, data: dict[str, Any]) -> str:
    hardware, versions = data.get("hardware", {}) or {}, data.get("versions", {}) or {}
    parts = [f"*Included from* ``{rel}``"]
    if data.get("command"):
        parts.append(f"command ``{_command(data['command'])}``")
    git = data.get("git") or {}
    if git.get("commit"):
        state = "clean tree" if git.get("clean") else "tree with uncommitted changes"
        parts.append(f"commit {git['commit'][:10]} ({state})")
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
    mapping of plain values and no ``:columns:`` gives a two-column key / value table. ``:fields:`` names
    values anywhere in the file (dotted keys): one row per field. ``:figure:`` names the key holding the path of a
    figure to show under the table. A benchmark's ratios show the target it set itself where it recorded one.
    """

    required_arguments = 1
    option_spec = {
        "missing": directives.unchanged,
        "rows": directives.unchanged,
        "columns": directives.unchanged,
        "figure": directives.unchanged,
        "records": directives.unchanged,
        "fields": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        root = repo_root(self)
        rel = self.arguments[0]
        path = root / rel
        self.env.note_dependency(str(path))
        if not path.is_file():
            note = " ".join((self.options.get("missing") or f"``{rel}`` has not been produced yet.").split())
            return insert_lines(self, [".. note::", "", f"   {note}", ""], str(path))
        split = lambda key: [v.strip() for v in self.options.get(key, "").split(",") if v.strip()]  # noqa: E731
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows, columns = split("rows"), split("columns")
            if "fields" in self.options:
                header = ["field", "value"]
                body = [[f"``{field}``", _get(data, field)] for field in split("fields")]
            elif "records" in self.options:
                records = _get(data, self.options["records"].strip())
                columns = columns or sorted({k for r in records.values() for k in r})
                header = ["", *[_label(c) for c in columns]]
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
                if any("target" in r for r in ratios.values()):  # the ratio the project set itself beforehand
                    header.append("target (at most)")
                    body = [[*row, r.get("target")] for row, r in zip(body, ratios.values())]
            elif columns:
                header = ["", *[_label(c) for c in columns]]
                body = [[row, *[_get(data, f"{row}.{c}") for c in columns]] for row in rows]
            else:
                mapping = _get(data, rows[0])
                header, body = (
                    [_label(rows[0].split(".")[0]), _label(rows[0].split(".")[-1])],
                    [[_label(k), v] for k, v in mapping.items()],
                )
            lines = _list_table(header, body) + [_provenance(rel, data), ""]
            if "figure" in self.options:
                figure = Path(_get(data, self.options["figure"]))
                figure = figure if figure.is_absolute() else root / figure
                if figure.is_file():
                    docdir = Path(self.env.srcdir, self.env.docname).parent
                    lines += [
                        f".. figure:: {os.path.relpath(figure, docdir).replace(os.sep, '/')}",
                        f"   :alt: {_caption(figure)}",
                        "",
                        f"   {_caption(figure)}",
                        "",
                    ]
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            logger.info("results-json-table: %s unreadable (%s)", rel, err)
            lines = [".. note::", "", f"   ``{rel}`` could not be read ({type(err).__name__}: {err}).", ""]
        return insert_lines(self, lines, str(path))


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("results-markdown", ResultsMarkdown)
    app.add_directive("results-json-table", ResultsJsonTable)
    app.add_directive("results-figures", ResultsFigures)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
