"""Building blocks of a self-contained HTML page: escaped text, tables, embedded figures.

Everything a page shows is inside the file: figures are ``data:`` URIs (PNG,
or SVG where that is smaller), style and script are inline, links point only
at files beside the page (the CSVs). Nothing is fetched when it opens.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from .assets import CSS, JS, PAGE_ROWS


def esc(value: Any) -> str:
    """``value`` as HTML text."""
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any, spec: str = ".3g") -> str:
    """A number as table text ("-" for none or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec) if isinstance(value, (int, float)) else esc(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """A plain table; cells are escaped unless they are already :class:`Markup`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for r in rows:
        cells = [f"<td class=\"num\">{_cell(c)}</td>" if i in numeric else f"<td>{_cell(c)}</td>"
                 for i, c in enumerate(r)]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Markup(str):
    """Text that is already HTML (not escaped again)."""


def _cell(value: Any) -> str:
    return value if isinstance(value, Markup) else esc(value)


def card(items: Sequence[tuple[str, Any]]) -> str:
    """A definition list: label, value."""
    return "<dl class=\"card\">" + "".join(f"<dt>{esc(k)}</dt><dd>{_cell(v)}</dd>" for k, v in items) + "</dl>"


def _small_png(data: bytes) -> bytes:
    """The PNG with its colours reduced to a 128-entry palette where that is smaller: a
    figure's flat colours survive it, and the page is a few MB instead of several times that."""
    from PIL import Image  # matplotlib's own dependency

    img = Image.open(io.BytesIO(data))
    out = io.BytesIO()
    img.convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE).save(out, "PNG", optimize=True)
    return out.getvalue() if out.tell() < len(data) else data


def figure(png: Path, svg: Path | None, caption: str) -> str:
    """A figure as a ``data:`` image: the SVG where it is smaller than the (palette) PNG."""
    data, mime = _small_png(png.read_bytes()), "image/png"
    if svg is not None and svg.is_file() and svg.stat().st_size < len(data):
        data, mime = svg.read_bytes(), "image/svg+xml"
    src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return (f"<figure><img src=\"{src}\" alt=\"{esc(caption)}\">"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def cases_block(columns: Sequence[str], rows: list[list[Any]]) -> str:
    """The case table: JSON rows drawn by the page's script (filter, sort, pages)."""
    payload = json.dumps({"columns": list(columns), "rows": rows}, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("</", "<\\/")  # no "</script>" inside the data
    return ("<div class=\"controls\"><input id=\"cases-filter\" type=\"search\" placeholder=\"filter: words that "
            "must all appear in a row\" aria-label=\"filter the cases\"><button id=\"cases-prev\">previous</button>"
            "<button id=\"cases-next\">next</button><span id=\"cases-info\"></span></div>"
            "<table id=\"cases-table\"></table>"
            f"<script type=\"application/json\" id=\"cases-data\">{payload}</script>")


def page(title: str, body: str) -> str:
    """The whole document."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}"
            f"<script>{JS % {'page_rows': PAGE_ROWS}}</script></body></html>\n")
