"""Markdown (as the repository's scripts write it under ``results/``) to reST, for the docs build.

Headings, paragraphs, lists, pipe tables, images and code blocks: the subset the result files use.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

__all__ = ["markdown_to_rst", "inline_markdown", "rst_problems", "HEADING_CHARS"]

HEADING_CHARS = "^\"'`+:"  # headings inside an included file


def inline_markdown(text: str) -> str:
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
            text = inline_markdown(cell.replace("\\|", "|")) or " "
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
            title = inline_markdown(heading.group(2))
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
                out += ["", f".. image:: {resolved}", f"   :alt: {inline_markdown(image.group(1)) or 'figure'}", ""]
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
            out.append(" " * indent + f"{marker} {inline_markdown(item.group(3))}")
            i += 1
            continue
        if stripped.startswith(">"):
            out += ["", f"   {inline_markdown(stripped.lstrip('> '))}", ""]
            i += 1
            continue
        if not stripped:
            out.append("")
        elif out and re.match(r"^\s*(-|#\.) ", out[-1]) and line.startswith(" "):
            out[-1] += " " + inline_markdown(stripped)  # continuation of a list item
        else:
            out.append(inline_markdown(stripped))
        i += 1
    return "\n".join(out).strip("\n") + "\n"


def rst_problems(rst: str) -> str:
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
