"""A report as one list of blocks, written out as self-contained HTML (figures embedded) and as Markdown (figures
linked), so both files always hold the same sections in the same order."""

from __future__ import annotations

import base64
import html
import re
from typing import NamedTuple

import pandas as pd

_CSS = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;font-size:12px;display:block;overflow-x:auto;max-width:100%}"  # wide: scrolls
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "img{max-width:100%}pre{background:#f6f6f6;padding:1em;overflow:auto}.skip{color:#a60}"
)


class Block(NamedTuple):
    """One piece of a report. ``kind`` and ``content``:

    heading: title; text: a paragraph; items: list of lines; table: DataFrame (floats to 3 significant digits);
    figure: (name, caption); skip: (before, name, after, why) -> "before **name** after: why"; code: preformatted.
    """

    kind: str
    content: object


def fmt(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text: floats to 3 significant digits, nulls empty."""
    return frame.apply(lambda col: col.map("{:.3g}".format) if col.dtype.kind == "f" else
                       col.astype(object).where(col.notna(), "").astype(str))  # fmt: skip


def to_html(title: str, blocks: list[Block], pngs: dict[str, bytes]) -> str:
    """One self-contained HTML page: ``pngs`` (figure name -> PNG bytes) embedded as data URIs."""
    esc = html.escape
    headings = [content for kind, content in blocks if kind == "heading"]
    toc = "".join(f"<li><a href='#s{i}'>{esc(h)}</a></li>" for i, h in enumerate(headings))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Report: {esc(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>Sweep {esc(title)}</h1>"
             f"<nav><b>Contents</b><ol>{toc}</ol></nav>"]  # fmt: skip
    sections = iter(range(len(headings)))
    for kind, content in blocks:
        if kind == "heading":
            parts.append(f"<h2 id='s{next(sections)}'>{esc(content)}</h2>")
        elif kind == "text":
            parts.append(f"<p>{esc(content)}</p>")
        elif kind == "items":
            parts.append("<ul>" + "".join(f"<li>{esc(line)}</li>" for line in content) + "</ul>")
        elif kind == "table":
            parts.append(fmt(content).to_html(index=False))
        elif kind == "figure":
            name, caption = content
            data = base64.b64encode(pngs[name]).decode()
            parts.append(f"<figure><img alt='{esc(name)}' src='data:image/png;base64,{data}'><figcaption><b>{esc(name)}"
                         f"</b>{': ' + esc(caption) if caption else ''}</figcaption></figure>")  # fmt: skip
        elif kind == "skip":
            before, name, after, why = content
            parts.append(f"<p class='skip'>{esc(before)}<b>{esc(name)}</b>{esc(after)}: {esc(why)}</p>")
        else:
            parts.append(f"<pre>{esc(content)}</pre>")
    return "\n".join(parts) + "\n</body></html>"


def md_escape(text: object) -> str:
    """``text`` as Markdown shows it literally: HTML escaped (a Markdown viewer renders raw HTML, as a file name
    or an error text may hold it) and table cells' ``|`` too."""
    return html.escape(str(text), quote=False).replace("|", "\\|")


def to_markdown(title: str, blocks: list[Block]) -> str:
    """The same blocks as Markdown: figures as links to ``<name>.png`` (and the PDF beside it); text escaped
    (``md_escape``) as ``to_html`` escapes it, code fenced by more backticks than it holds."""
    esc = md_escape
    parts = [f"# Sweep {esc(title)}", ""]
    for kind, content in blocks:
        if kind == "heading":
            parts += [f"## {esc(content)}", ""]
        elif kind == "text":
            parts += [esc(content), ""]
        elif kind == "items":
            parts += [f"- {esc(line)}" for line in content] + [""]
        elif kind == "table":
            parts += [md_table(content), ""]
        elif kind == "figure":
            name, caption = content
            parts += [f"- [{esc(name)}]({name}.png) ([pdf]({name}.pdf)){': ' + esc(caption) if caption else ''}", ""]
        elif kind == "skip":
            before, name, after, why = content
            parts += [f"{esc(before)}**{esc(name)}**{esc(after)}: {esc(why)}.", ""]
        else:
            code = str(content).rstrip("\n")
            fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", code)), default=0))
            parts += [fence, code, fence, ""]
    return "\n".join(parts)


def md_table(frame: pd.DataFrame) -> str:
    """A Markdown table of ``frame`` (cells as ``fmt`` writes them, escaped by ``md_escape``)."""
    text = fmt(frame)
    lines = ["| " + " | ".join(map(md_escape, text.columns)) + " |", "|" + "---|" * len(text.columns)]
    lines += ["| " + " | ".join(map(md_escape, row)) + " |" for row in text.itertuples(index=False, name=None)]
    return "\n".join(lines)
