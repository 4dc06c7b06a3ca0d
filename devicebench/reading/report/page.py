"""The report as one document, written twice: blocks built once, rendered to Markdown (a CI
job summary: no images, history as a table) and to one HTML page (charts embedded, nothing
fetched), as NVBench's printers render one set of results in several formats."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from .. import render


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str
    code: str = ""  # a path or a name after the text, set as code
    cls: str = ""  # on the page: "note" (a side remark), "lede"


@dataclass(frozen=True)
class Bullets:
    items: list[str]
    cls: str = ""


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    cls: str = ""


@dataclass(frozen=True)
class Markdown:
    """Text already in Markdown (a table with its notes): in the Markdown rendering only."""

    text: str


@dataclass(frozen=True)
class Images:
    """Chart files with their alternative text: on the page only."""

    images: list[tuple[Path, str]]


@dataclass(frozen=True)
class Section:
    blocks: list = field(default_factory=list)
    id: str = ""
    cls: str = ""
    only: str = ""  # "markdown" or "html": the block is written in that rendering only


def only(where: str, block) -> Section:
    return Section([block], only=where)


def to_markdown(blocks: list) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Section):
            if block.only != "html":
                out.append(to_markdown(block.blocks))
        elif isinstance(block, Heading):
            out += ["#" * block.level + " " + render.md_text(block.text), ""]
        elif isinstance(block, Para):
            out += [render.md_text(block.text) + (render.md_code(block.code) if block.code else ""), ""]
        elif isinstance(block, Bullets):
            out += [f"- {render.md_text(item)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            out += [render.table(block.headers, block.rows, "markdown"), ""]
        elif isinstance(block, Markdown):
            out += [block.text, ""]
    return "\n".join(out)


def _html_table(table: Table) -> str:
    text = render.html_table(table.headers, table.rows)
    if table.cls:
        text = text.replace("<table>", f"<table class={table.cls!r}>", 1)
    return f"<div class='scroll'>{text}</div>"


def to_html(blocks: list) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Section):
            if block.only == "markdown":
                continue
            inner = to_html(block.blocks)
            if not block.id and not block.cls:  # a group of blocks, no element of its own
                out.append(inner)
                continue
            attrs = (f" id='{block.id}'" if block.id else "") + (f" class='{block.cls}'" if block.cls else "")
            out.append(f"<section{attrs}>{inner}</section>")
        elif isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            text = html.escape(block.text) + (f"<code>{html.escape(block.code)}</code>" if block.code else "")
            out.append(f"<p class='{block.cls}'>{text}</p>" if block.cls else f"<p>{text}</p>")
        elif isinstance(block, Bullets):
            cls = f" class='{block.cls}'" if block.cls else ""
            out.append(f"<ul{cls}>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            out.append(_html_table(block))
        elif isinstance(block, Images):
            images = "".join(
                f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}'>" for path, alt in block.images
            )
            out.append(f"<div class='grid'>{images}</div>")
    return "\n".join(out)


def page(blocks: list) -> str:
    return PAGE.format(body=to_html(blocks))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>devicebench report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em auto; padding: 0 1em; max-width: 1180px; color: #222; }}
h1 {{ margin: 0 0 0.2em; }}
.lede {{ margin: 0 0 1em; color: #555; }}
.note {{ color: #555; font-size: 13px; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
table {{ border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }}
table.summary td {{ max-width: 22em; }}
.flags li {{ color: #8a4b00; }}
.answers li {{ margin: 0.3em 0; font-size: 15px; }}
code {{ font-size: 12px; }}
h2, h3, p, li {{ overflow-wrap: anywhere; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.grid img {{ width: 520px; max-width: 100%; height: auto; border: 1px solid #eee; }}
</style></head><body>
<h1>devicebench report</h1>
{body}
</body></html>
"""
