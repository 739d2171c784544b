"""The report's blocks as ``report.md`` (figures linked as PNG files beside it) and as one self-contained
``report.html`` (figures embedded as base64 PNG, styles inline: it opens offline, alone).

``write`` and ``writing`` put each file of the report in place whole (written beside it, then renamed
over it); a file that cannot be written (disk full, quota, read-only folder) is a one-line
``ReportError`` naming the file, its folder and the free space there, and leaves the folder's other
files as they were."""

from __future__ import annotations

import base64
import contextlib
import html
import os
import re
from pathlib import Path

from rnnbench.errors.write import diagnose, discard
from rnnbench.report.document import Heading, Image, Table, Text
from rnnbench.report.load import ReportError

BOLD = re.compile(r"^\*\*(.*)\*\*$")
CODE = re.compile(r"`([^`]+)`")

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1200px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; white-space: nowrap; }
td.num { text-align: right; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
.scroll { overflow-x: auto; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #444; }
code { background: #f3f3f3; padding: 0 3px; }
.csv { font-size: 12px; color: #666; }
"""


def markdown(blocks: list) -> str:
    lines = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Text):
            lines += [block.text, ""]
        elif isinstance(block, Table):
            lines += [*markdown_table(block.frame), ""]
            lines += [f"(full numbers: [{block.csv}]({block.csv}))", ""] if block.csv else []
        elif isinstance(block, Image):
            lines += [
                f"![{block.caption}]({block.stem}.png)",
                "",
                f"*{block.caption}* ([SVG]({block.stem}.svg))",
                "",
            ]
    return "\n".join(lines)


def markdown_cell(value) -> str:
    text = str(value).replace("|", "\\|")
    bold = BOLD.match(text)
    return f"**{bold.group(1)}**" if bold else text.replace("*", "\\*")


def markdown_table(frame) -> list[str]:
    header = "| " + " | ".join(markdown_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---:" if numeric(frame[c]) else "---" for c in frame.columns) + "|"
    rows = ["| " + " | ".join(markdown_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return [header, rule, *rows]


def numeric(column) -> bool:
    """A column of numbers (right-aligned): most of its cells begin like a number."""
    starts = [str(v).lstrip("*")[:1] for v in column if str(v)]
    return sum(c.isdigit() or c in ("-", "–") for c in starts) > len(starts) / 2


def inline(text: str) -> str:
    escaped = html.escape(str(text))
    bold = BOLD.match(escaped)
    if bold:
        escaped = f"<strong>{bold.group(1)}</strong>"
    return CODE.sub(r"<code>\1</code>", escaped)


def html_table(frame) -> str:
    head = "".join(f"<th>{inline(c)}</th>" for c in frame.columns)
    opens = ['<td class="num">' if numeric(frame[c]) else "<td>" for c in frame.columns]
    body = "".join(
        "<tr>" + "".join(f"{td}{inline(v)}</td>" for td, v in zip(opens, row)) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def html_page(blocks: list, out: Path) -> str:
    parts = []
    title = next((b.text for b in blocks if isinstance(b, Heading)), "rnnbench report")
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{inline(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            parts.append(f"<p>{inline(block.text)}</p>")
        elif isinstance(block, Table):
            parts.append(html_table(block.frame))
            if block.csv:
                parts.append(f'<p class="csv">Full numbers: {html.escape(block.csv)}</p>')
        elif isinstance(block, Image):
            data = base64.b64encode((out / f"{block.stem}.png").read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{inline(block.caption)}</figcaption></figure>"
            )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def write(path: Path, text: str) -> None:
    """Writes one file of the report whole; a failure to write is a one-line ``ReportError``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with writing(path, tmp):
        tmp.write_text(text)
        os.replace(tmp, path)


@contextlib.contextmanager
def writing(path: Path, *temporary: Path):
    """A write of ``path`` (through the ``temporary`` files, removed however it fails): a failure to
    write becomes a one-line ``ReportError``."""
    try:
        yield
    except BaseException as error:
        for tmp in temporary:
            discard(tmp)
        found = diagnose(error, path) if isinstance(error, OSError | RuntimeError) else None
        if found is None:
            raise
        cause, fix = found
        raise ReportError(
            f"could not write {path.name} in {path.parent} ({cause}); the report's inputs are untouched: "
            f"{fix} and run the same command again"
        ) from error
