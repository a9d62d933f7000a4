"""A static HTML page of results: one row per image with its scores, sortable and filterable.

``write_gallery(out_dir, rows, summary)`` writes ``out_dir/index.html`` and copies the
images into ``out_dir/img/``, so the folder can be moved or zipped and opened from
``file://`` with no server and no network (script and style are inline).  A row is
``{"name": str, "images": {column: path or H x W x C uint8 array}, "scores": {metric: float}}``;
``rows`` may be a generator, so images are never all held in memory.  The page shows
``page_size`` rows at a time and its thumbnails load lazily and link to the full image.

Names and paths from the user's folders reach the page only as JSON inside a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` escaped, and the
page builds its DOM with ``textContent``; a Content-Security-Policy lets only the page's
own script run.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .utils import atomic_write_text

MARKER = '<meta name="generator" content="i2i gallery">'
MANIFEST = ".i2i-files"  #: in img/: the files the gallery wrote there, one relative path a line
BROWSER_FORMATS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}  # copied as they are; others become PNG


def check_out_dir(out_dir: str | Path, flag: str = "--html") -> Path:
    """``out_dir`` must be new, empty or an earlier gallery whose ``img/`` holds only the files it wrote
    (listed in ``img/.i2i-files``): a gallery written again replaces nothing else."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and MARKER not in _read(out / "index.html"):
        raise ConfigError(f"{flag} {out}: folder holds other files; give a new or empty folder (or an earlier gallery)")
    img = out / "img"
    if os.path.lexists(img):
        if img.is_symlink() or not img.is_dir():
            raise ConfigError(f"{flag} {out}: its img is not a folder the gallery wrote; give a new or empty folder")
        made = set(_read(img / MANIFEST).splitlines()) | {MANIFEST}
        for folder, dirs, files in os.walk(img):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
                rel = Path(folder, name).relative_to(img).as_posix()
                if rel not in made:
                    raise ConfigError(f"{flag} {out}: {img / rel} was not written by the gallery, which replaces "
                                      "img/; move it, or give a new or empty folder")
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _number(value) -> float | str | None:
    """JSON value of a score: finite floats as they are, others as 'Infinity', '-Infinity', 'NaN'."""
    if value is None:
        return None
    value = float(value)
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _store(image, dst_dir: Path, stem: str) -> str:
    """Copy (or encode) one image into ``dst_dir``; return its file name."""
    from .data.io import read_image, write_image

    if isinstance(image, (str, Path)):
        src = Path(image)
        if src.suffix.lower() in BROWSER_FORMATS:
            name = stem + src.suffix.lower()
            try:
                shutil.copyfile(src, dst_dir / name)
            except OSError as exc:
                raise DataError(f"cannot copy image {src}: {exc.strerror or exc}") from None
            return name
        image = read_image(src)
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3))):
        raise DataError(f"gallery images must be uint8 H x W (x 1|3) arrays, got {arr.dtype} {arr.shape}")
    write_image(dst_dir / f"{stem}.png", arr)
    return f"{stem}.png"


def _higher_is_better(key: str) -> bool | None:
    from .metrics import higher_is_better

    try:
        return higher_is_better(key)
    except ConfigError:
        return None


def write_gallery(out_dir: str | Path, rows: Iterable[Mapping], summary: Mapping[str, float] | None = None,
                  columns: list[str] | None = None, title: str = "i2i results", info: Mapping[str, str] | None = None,
                  page_size: int = 200) -> Path:
    """Write the page and its images into ``out_dir``; return the path of ``index.html``.

    ``columns`` orders the image columns (others are appended as they appear); ``summary``
    holds the scores of the whole set, ``info`` a few labelled lines (the folders scored).
    """
    if page_size < 1:
        raise ConfigError(f"page_size must be >= 1, got {page_size}")
    out = check_out_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    columns, metrics, table = list(columns or []), [], []
    staging = Path(tempfile.mkdtemp(prefix=".img-", dir=out))
    staging.chmod(out.stat().st_mode & 0o777)  # the page's permissions, not mkdtemp's private 0700
    try:
        for i, row in enumerate(rows):
            images, scores = dict(row.get("images") or {}), dict(row.get("scores") or {})
            columns += [c for c, image in images.items() if image is not None and c not in columns]
            metrics += [m for m in scores if m not in metrics]
            stored = {}
            for c, image in images.items():
                if image is not None:
                    folder = staging / str(columns.index(c))
                    folder.mkdir(exist_ok=True)
                    stored[c] = f"img/{columns.index(c)}/" + _store(image, folder, f"{i:06d}")
            table.append((str(row["name"]), stored, scores))
        (staging / MANIFEST).write_text("".join(f"{p[len('img/'):]}\n" for _, stored, _ in table for p in stored.values()))
        final, old = out / "img", out / f"{staging.name}-old"
        if final.exists():
            final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    data = {
        "title": title, "page_size": page_size, "columns": columns,
        "metrics": [{"key": m, "higher": _higher_is_better(m)} for m in metrics],
        "summary": [[k, _number(v)] for k, v in (summary or {}).items()],
        "info": [[str(k), str(v)] for k, v in (info or {}).items()],
        "rows": [{"name": name, "img": [stored.get(c) for c in columns], "s": [_number(scores.get(m)) for m in metrics]}
                 for name, stored, scores in table],
    }
    page = out / "index.html"
    atomic_write_text(page, render(data))
    return page


def translation_gallery(out_dir: str | Path, pairs: Iterable[tuple[Path, Path]], root: str | Path | None = None) -> Path:
    """Gallery of a translation run: one ``input | output`` row per pair, named by the output's path under ``root``."""
    def name(output: Path) -> str:
        return Path(output).relative_to(root).as_posix() if root is not None else Path(output).name

    rows = ({"name": name(dst), "images": {"input": src, "output": dst}} for src, dst in pairs)
    return write_gallery(out_dir, rows, columns=["input", "output"], title="i2i translations")


def _script_json(obj) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' left to end it or open a comment."""
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render(data: dict) -> str:
    """The whole page as one ASCII string."""
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = f"default-src 'none'; img-src * file: data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    parts = {"CSP": csp, "MARKER": MARKER, "SCRIPT": _SCRIPT, "DATA": _script_json(data),
             "TITLE": html.escape(data["title"]).encode("ascii", "xmlcharrefreplace").decode()}
    return re.sub(r"__(CSP|MARKER|SCRIPT|DATA|TITLE)__", lambda m: parts[m.group(1)], _PAGE)  # one pass


_PAGE = """<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
__MARKER__
<meta http-equiv="Content-Security-Policy" content="__CSP__">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
:root { --thumb: 128px; font-family: system-ui, sans-serif; font-size: 14px; }
body { margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: middle; }
#rows th { position: sticky; top: 0; background: #eee; }
#rows th.sort { cursor: pointer; user-select: none; }
#rows th.sort:hover { background: #ddd; }
#rows tr:nth-child(even) td { background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.name { max-width: 24em; overflow-wrap: anywhere; }
td img { width: var(--thumb); height: auto; display: block; }
.bar { margin: 0.8em 0; display: flex; gap: 0.8em; align-items: center; flex-wrap: wrap; }
.muted { color: #666; }
#info { margin-bottom: 0.8em; color: #444; }
caption { text-align: left; font-weight: bold; padding: 2px 0; }
</style>
</head><body>
<h1 id="title"></h1>
<table id="info"></table>
<table id="summary"></table>
<div class="bar">
 <input id="filter" type="search" placeholder="filter by name" size="30">
 <label>thumbnails <select id="thumb"><option>64</option><option selected>128</option><option>256</option></select> px</label>
 <button id="prev">&#9664; prev</button><span id="pageinfo"></span><button id="next">next &#9654;</button>
 <span id="count" class="muted"></span>
</div>
<table id="rows"><thead></thead><tbody></tbody></table>
<script type="application/json" id="gallery-data">__DATA__</script>
<script>__SCRIPT__</script>
</body></html>
"""

_SCRIPT = r"""
"use strict";
const D = JSON.parse(document.getElementById("gallery-data").textContent);
const $ = (id) => document.getElementById(id);
const num = (v) => (v === null ? NaN : Number(v));
const fmt = (v) => {
  if (v === null) return "";
  const x = Number(v);
  return Number.isFinite(x) ? String(Number(x.toPrecision(5))) : (Number.isNaN(x) ? "nan" : (x > 0 ? "inf" : "-inf"));
};
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
const state = { key: null, dir: 1, filter: "", page: 0 };
let shown = D.rows.map((_, i) => i);

document.title = D.title;
$("title").textContent = D.title;
for (const [label, text] of D.info) {
  const tr = $("info").appendChild(el("tr"));
  tr.append(el("th", label), el("td", text));
}
if (D.summary.length) $("summary").createCaption().textContent = "whole set";
for (const [key, value] of D.summary) {
  const tr = $("summary").appendChild(el("tr"));
  tr.append(el("th", key), el("td", fmt(value), "num"));
}

const head = $("rows").tHead.appendChild(el("tr"));
const sortable = [["#", "index"], ["name", "name"]].concat(D.metrics.map((m, j) => [m.key, j]));
function header(label, key, title) {
  const th = el("th", label, "sort");
  th.dataset.key = String(key);
  th.title = title;
  th.addEventListener("click", () => sortBy(key));
  return th;
}
head.append(header("#", "index", "original order"), header("name", "name", "sort by name"));
for (const c of D.columns) head.append(el("th", c));
D.metrics.forEach((m, j) => head.append(header(m.key, j,
  m.higher === null ? "sort" : (m.higher ? "higher is better; first click: worst first" : "lower is better; first click: worst first"))));

function value(i, key) {
  if (key === "index") return i;
  if (key === "name") return D.rows[i].name;
  return num(D.rows[i].s[key]);
}
function sortBy(key) {
  if (state.key === key) state.dir = -state.dir;
  else state.dir = (typeof key === "number" && D.metrics[key].higher === false) ? -1 : 1;
  state.key = key;
  state.page = 0;
  update();
}
function compare(a, b) {
  const x = value(a, state.key), y = value(b, state.key);
  if (typeof x === "string") return state.dir * x.localeCompare(y) || a - b;
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) - Number.isNaN(y) || a - b;  // missing last
  return state.dir * (x < y ? -1 : x > y ? 1 : 0) || a - b;
}
function update() {
  const f = state.filter;
  shown = D.rows.map((_, i) => i).filter((i) => D.rows[i].name.toLowerCase().includes(f));
  if (state.key !== null) shown.sort(compare);
  for (const th of head.children) {
    if (!th.dataset.key) continue;
    const label = sortable.find(([, k]) => String(k) === th.dataset.key)[0];
    th.textContent = label + (th.dataset.key === String(state.key) ? (state.dir > 0 ? " \u25b2" : " \u25bc") : "");
  }
  draw();
}
function draw() {
  const pages = Math.max(1, Math.ceil(shown.length / D.page_size));
  state.page = Math.min(state.page, pages - 1);
  const start = state.page * D.page_size, stop = Math.min(shown.length, start + D.page_size);
  const body = $("rows").tBodies[0];
  body.replaceChildren();
  for (const i of shown.slice(start, stop)) {
    const row = D.rows[i];
    const tr = body.appendChild(el("tr"));
    tr.append(el("td", String(i + 1), "num"), el("td", row.name, "name"));
    D.columns.forEach((c, j) => {
      const td = tr.appendChild(el("td"));
      const src = row.img[j];
      if (!src) { td.textContent = "\u2014"; return; }
      const a = td.appendChild(el("a"));
      a.href = src; a.target = "_blank"; a.rel = "noopener";
      const img = a.appendChild(el("img"));
      img.loading = "lazy"; img.decoding = "async"; img.alt = c + ": " + row.name; img.src = src;
    });
    for (const v of row.s) tr.append(el("td", fmt(v), "num"));
  }
  $("pageinfo").textContent = "page " + (state.page + 1) + " / " + pages;
  $("prev").disabled = state.page === 0;
  $("next").disabled = state.page >= pages - 1;
  $("count").textContent = (shown.length ? (start + 1) + "\u2013" + stop : "0") + " of " + shown.length +
    (shown.length < D.rows.length ? " (filtered from " + D.rows.length + ")" : "") + " rows";
}
$("filter").addEventListener("input", (e) => { state.filter = e.target.value.toLowerCase(); state.page = 0; update(); });
$("prev").addEventListener("click", () => { state.page -= 1; draw(); window.scrollTo(0, 0); });
$("next").addEventListener("click", () => { state.page += 1; draw(); window.scrollTo(0, 0); });
$("thumb").addEventListener("change", (e) => document.documentElement.style.setProperty("--thumb", e.target.value + "px"));
update();
"""
