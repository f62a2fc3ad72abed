"""The browser check of the built book: headless Chromium, failing on what a reader sees broken.

``python -m tools.browser`` (``make test-browser``) serves the book that ``make book-offline`` built
(``_build/offline-book/_build/html``, or ``--html``) on 127.0.0.1, opens every page of ``_toc.yml``
in Debian's ``chromium`` through ``chromedriver``, with every host except 127.0.0.1 unreachable,
and checks:

- **math**: every ``.math`` element was typeset by MathJax; no MathJax error (``merror``); no
  undefined macro (MathJax shows those in red); no TeX left in the text (``\\frac``, ``$x$``);
- **images**: every ``<img>`` loaded, and the server answered every request (no 404);
- **figures**: every ``<img>`` has alt text of its own (not empty, not its file name or hash, which
  is what a notebook output without ``mystnb.image.alt`` gets), and every image a cell outputs is in
  a figure with a caption (``mystnb.figure.caption``);
- **outputs**: no cell shows a traceback, and no stderr output mentions an error;
- **widgets**: each stored widget view rendered into a visible box, and no output shows a widget's
  text form (``VBox(children=...)``);
- **references**: no link whose text is a bare statement name with its number missing
  (``Proposition `` with nothing after it);
- **width**: no display equation, table, printed output or code input is wider than the text
  column (a code input wider than its box would scroll sideways: the notebooks keep their code lines
  to :data:`vghlib.tables.CODE_WIDTH` characters, :data:`vghlib.tables.FOLDED_CODE_WIDTH` in a
  ``hide-input`` cell's toggle, and ``tests/test_output_width.py`` checks them);
- **console**: the browser logged no error (a failed script, a blocked CDN);
- **phone**: at a phone's width (:data:`PHONE_WIDTH`, 390 px) the page does not pan sideways
  (``document.documentElement.scrollWidth <= window.innerWidth``), and whatever is wider than
  the screen (a table, a printed output, an equation) scrolls inside its own box (an ancestor
  with ``overflow-x: auto``) instead of being cut off.

The book must be the offline build: a folder without the marker that the offline build writes
(:func:`tools.sphinxext.require_offline_build`), such as the online build of ``make book`` in
``_build/html``, is refused before any page is opened.

It saves each page as screenshots of the window's height, ``_build/screenshots/<page>/NN.png``
(at the phone's width: ``_build/screenshots/phone/<page>/NN.png``), and prints a table.
``--self-test`` first builds a small book with one defect of each kind and requires every check to
catch its defect and pass the clean page: the negative control of the checks.
``--lab NOTEBOOK`` opens a notebook in JupyterLab (jupyterlab-myst) and checks that its macros, its
MyST and an exercise render, and that each citation's key (all that jupyterlab-myst shows of a
``{cite}`` role) is listed with its authors and year in the notebook's head cell, with screenshots;
a copy without its macros cell must fail that check.
``--slides DIR`` checks the course's slide decks instead (:func:`check_slides`, make test-slides).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from tools import REPO_ROOT as ROOT
from tools import notebooks as nbs
from tools import slides, sphinxext
from vghlib.tables import CODE_WIDTH, FOLDED_CODE_WIDTH

#: How far the screenshots scroll between tiles: the window's height less the theme's sticky article
#: header (its bar of buttons), so that no strip of the page hides under it in every tile (CSS px).
TILE_STEP_JS = (
    "(window.innerHeight - ((h => h && ['sticky', 'fixed'].includes(getComputedStyle(h).position)"
    " ? Math.ceil(h.getBoundingClientRect().height) : 0)"
    "(document.querySelector('.bd-header-article'))))"
)

#: JavaScript run in the page after MathJax and the widgets have finished; returns the findings.
PAGE_JS = (
    r"""
const out = {math: [], images: [], figures: [], outputs: [], widgets: [], refs: [], wide: [],
             warnings: []};
const article = document.querySelector('article') || document.body;
const short = s => (s || '').replace(/\s+/g, ' ').trim().slice(0, 120);
// the screenshot tile (NN.png) that shows an element, so that a failure can be looked at
const tile = el => ' [tile ' + String(1 + Math.floor((el.getBoundingClientRect().top + """
    r"""window.scrollY) / """ + TILE_STEP_JS + r""")).padStart(2, '0') + ']';
// math: typeset, no error, no undefined macro
const mathEls = [...article.querySelectorAll('.math')];
let typeset = 0;
for (const el of mathEls) {
  if (el.querySelector('mjx-container')) typeset++;
  else out.math.push('not typeset: ' + short(el.textContent));
}
for (const e of article.querySelectorAll('mjx-merror')) {
  out.math.push('MathJax error: ' + (e.getAttribute('data-mjx-error') || short(e.textContent)));
}
if (window.MathJax && MathJax.startup && MathJax.startup.document && MathJax.startup.toMML) {
  for (const item of MathJax.startup.document.math) {
    let mml = '';
    try { mml = MathJax.startup.toMML(item.root); } catch (err) { continue; }
    const m = mml.match(/<mtext[^>]*mathcolor="red"[^>]*>([^<]*)</);
    if (m) out.math.push('undefined macro ' + m[1] + ' in ' + short(item.math));
    if (/<merror/.test(mml) && !/data-mjx-error/.test(mml)) out.math.push('error in ' + """
    r"""short(item.math));
  }
}
const skip = 'pre, code, script, style, mjx-container, textarea, .highlight, .math';
const tex = /\\(frac|tfrac|dfrac|mathbb|mathrm|mathcal|operatorname|sum|prod|int|begin|end|left|"""
    r"""right|sqrt|nabla|partial|lambda|alpha|hat|bar|tilde|le|ge|cdot|times|costate|vgrad|"""
    r"""groupsize|headroom)\b|\$[^$\s][^$\n]{0,80}\$|\\\(|\\\[/;
const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
const widgetText = /\b(VBox|HBox|Box|IntSlider|FloatSlider|FloatLogSlider|Dropdown|Output|HTML|"""
    r"""Button|Checkbox|interactive)\((children|value|layout|description|outputs)=/;
let node;
while ((node = walker.nextNode())) {
  const t = node.textContent;
  if (widgetText.test(t)) out.widgets.push('widget shown as text: ' + short(t));
  const p = node.parentElement;
  if (p && p.closest(skip)) continue;
  if (tex.test(t)) out.math.push('raw TeX in text: ' + short(t));
}
// images
for (const img of article.querySelectorAll('img')) {
  if (!(img.complete && img.naturalWidth > 0)) out.images.push('did not load' + tile(img) + ': ' """
    r"""+ (img.getAttribute('src') || '').slice(0, 100));
}
// figures: alt text of their own, and a caption around every image a cell outputs
for (const img of article.querySelectorAll('img')) {
  const alt = (img.getAttribute('alt') || '').trim();
  const src = img.getAttribute('src') || '';
  const file = src.split('/').pop();
  if (!alt || alt === src || alt === file || /^[0-9a-f]{32,64}(\.\w+)?$/.test(alt.split('/').pop()))
    out.figures.push('image without alt text' + tile(img) + ': ' + src.slice(0, 100));
  const fig = img.closest('figure');
  if (img.closest('.cell_output') && !(fig && fig.querySelector('figcaption')))
    out.figures.push('output image without a caption' + tile(img) + ': ' + src.slice(0, 100));
}
// cell outputs
for (const e of article.querySelectorAll('.output.traceback, .output.error')) {
  out.outputs.push('error output' + tile(e) + ': ' + short(e.textContent));
}
for (const e of article.querySelectorAll('.output.stderr')) {
  if (/Error|Traceback|Exception/.test(e.textContent)) out.outputs.push('stderr with an error: ' """
    r"""+ short(e.textContent));
  else out.warnings.push('stderr output: ' + short(e.textContent));
}
// widgets
const views = article.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
for (const s of views) {
  const box = s.previousElementSibling;
  const ok = box && box.classList.contains('widget-subarea') && box.offsetHeight > 10 && """
    r"""box.children.length > 0;
  if (!ok) out.widgets.push('widget view did not render (empty box)' + tile(s.parentElement));
}
// references with their number missing
const bare = /^(Proposition|Lemma|Corollary|Theorem|Remark|Definition|Exercise|Solution to|"""
    r"""Figure|Table|Equation|Fig\.|Eq\.)\s*$/;
for (const a of article.querySelectorAll('a')) {
  const t = (a.textContent || '').replace(/\u00a0/g, ' ');
  if (bare.test(t.trim()) || /\?\?/.test(t)) out.refs.push('reference without its number: "' + """
    r"""t.trim() + '" -> ' + (a.getAttribute('href') || ''));
}
// width: display equations and tables must fit the text column
const column = (article.querySelector('section') || article).clientWidth;
for (const c of article.querySelectorAll('mjx-container[display="true"]')) {
  const inner = c.firstElementChild;
  const w = Math.max(c.scrollWidth, inner ? inner.getBoundingClientRect().width : 0);
  if (w > column + 2) out.wide.push('equation ' + Math.round(w) + ' px wide in a ' + column + """
    r"""' px column' + tile(c) + ': ' + short(c.getAttribute('aria-label') || c.textContent));
}
for (const t of article.querySelectorAll('table')) {
  if (t.scrollWidth > column + 2) out.wide.push('table ' + t.scrollWidth + ' px wide in a ' + """
    r"""column + ' px column' + tile(t) + ': ' + short(t.querySelector('tr') && """
    r"""t.querySelector('tr').textContent));
}
// printed outputs must fit the column too: a line wider than it hides its end off the right edge
for (const e of article.querySelectorAll('.cell_output pre, .output pre')) {
  if (e.scrollWidth > e.clientWidth + 2) out.wide.push('printed output ' + e.scrollWidth + """
    r"""' px wide in a ' + e.clientWidth + ' px box' + tile(e) + ': ' + """
    r"""short(e.textContent.split('\n').reduce((a, b) => b.length > a.length ? b : a, '')));
}
// code inputs must fit as well: a wider one scrolls sideways and hides the end of its lines
for (const e of article.querySelectorAll('.cell_input pre')) {
  if (e.scrollWidth > e.clientWidth + 2) out.wide.push('code input ' + e.scrollWidth + """
    r"""' px wide in a ' + e.clientWidth + ' px box' + tile(e) + ': ' + """
    r"""short(e.textContent.split('\n').reduce((a, b) => b.length > a.length ? b : a, '')));
}
out.counts = {math: mathEls.length, typeset: typeset, images: """
    r"""article.querySelectorAll('img').length,
              widgets: views.length, column: column};
out.height = document.documentElement.scrollHeight;
return out;
"""
)

#: The phone pass: the window's width in CSS pixels (a common phone), and its height.
PHONE_WIDTH, PHONE_HEIGHT = 390, 844

#: JavaScript run at the phone's width: does the page pan, and is anything cut off at the right?
PHONE_JS = (
    r"""
const out = [];
const vw = window.innerWidth;
const doc = document.documentElement;
const article = document.querySelector('article') || document.body;
const short = s => (s || '').replace(/\s+/g, ' ').trim().slice(0, 80);
const name = e => e.tagName.toLowerCase() + (e.classList.length ? '.' + [...e.classList]"""
    r""".slice(0, 2).join('.') : '');
const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
const clips = e => ['hidden', 'clip'].includes(getComputedStyle(e).overflowX);
if (doc.scrollWidth > vw + 1) out.push('the page pans: ' + doc.scrollWidth + ' px wide in a ' """
    r"""+ vw + ' px window');
// everything in the article that reaches past the right edge must sit in a box that scrolls
// (MathJax's MathML copy for screen readers, and other visually hidden text, are not seen)
const unseen = 'mjx-assistive-mml, .visually-hidden, .sr-only, .fa-sr-only';
const seen = new Set();
for (const e of article.querySelectorAll('*')) {
  if (e.closest(unseen)) continue;
  const r = e.getBoundingClientRect();
  if (r.width === 0 || r.right <= vw + 1) continue;
  // the nearest box that e reaches out of decides: one that scrolls shows the rest on a swipe, one
  // that clips hides it; none (up to the body) and the page itself is wider than the screen
  let why = 'pans the page';
  for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
    if (!scrolls(a) && !clips(a)) continue;
    if (r.right <= a.getBoundingClientRect().right + 1) continue;
    why = scrolls(a) ? '' : 'is cut off';
    break;
  }
  if (!why) continue;
  // report the outermost offender only
  let p = e.parentElement, inner = false;
  for (; p; p = p.parentElement) if (seen.has(p)) { inner = true; break; }
  seen.add(e);
  if (inner) continue;
  out.push(name(e) + ' ' + Math.round(r.right) + ' px from the left ' + why + ': ' + """
    r"""short(e.textContent));
}
return {problems: out.slice(0, 20), more: Math.max(0, out.length - 20), width: vw};
"""
)

#: Waits for MathJax's first typesetting pass (when the page loads MathJax at all).
MATHJAX_WAIT_JS = r"""
const done = arguments[arguments.length - 1];
if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) { done('no MathJax'); return; }
MathJax.startup.promise.then(() => done('ok'), e => done('error: ' + e));
"""

#: A valid PNG of one pixel, the stored output of the self-test's figure cells.
TINY_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42"
    "mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

CHECKS = ("math", "images", "figures", "outputs", "widgets", "refs", "wide", "console", "phone")


@dataclass
class PageResult:
    page: str
    found: dict = field(default_factory=dict)  # check -> list of problems
    warnings: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    tiles: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(self.found.get(c) for c in CHECKS)


# ----------------------------------------------------------------------------------------- serving


class _Server:
    """A static file server on 127.0.0.1 that records every request it could not answer."""

    def __init__(self, root: Path):
        failures = self.failures = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code="-", size="-"):
                try:
                    status = int(code)
                except (TypeError, ValueError):
                    status = 0
                if status >= 400:
                    failures.append((status, self.path))

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def find_browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver, or an error that says how to install them."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        raise SystemExit(
            "The browser test needs Debian's chromium and chromium-driver packages "
            f"(found chromium: {chromium}, chromedriver: {driver}). Install them with\n"
            "    apt-get install chromium chromium-driver\n"
            "(browsers that download themselves do not run on these machines)."
        )
    return chromium, driver


def open_browser(width: int = 1280, height: int = 1000):
    # Local: only a browser run needs selenium; the page list, the offline-build helpers and
    # their tests import this module without it.
    from selenium import webdriver  # noqa: PLC0415  (optional: the browser run only)
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415  (optional: as above)

    chromium, driver = find_browser()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        # Nothing but the local server is reachable: a page that needs a CDN fails the test.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--lang=en-US",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    drv.set_page_load_timeout(120)
    drv.set_script_timeout(120)
    return drv


# ---------------------------------------------------------------------------------------- checking


def toc_pages(toc: Path) -> list[str]:
    """Every document of a jb-book ``_toc.yml``, in reading order."""
    data = yaml.safe_load(toc.read_text())
    pages = [data["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                pages.append(e["file"])
            walk(e.get("sections"))

    for part in data.get("parts", []):
        walk(part.get("chapters"))
    walk(data.get("chapters"))
    return [str(Path(p).with_suffix("")) for p in pages]


def _wait_for_widgets(drv, timeout: float = 20.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        pending = drv.execute_script(
            "const v=[...document.querySelectorAll("
            "'script[type=\"application/vnd.jupyter.widget-view+json\"]')];"
            "return v.filter(s=>!(s.previousElementSibling"
            "&&s.previousElementSibling.classList.contains('widget-subarea')"
            "&&s.previousElementSibling.children.length)).length;"
        )
        if not pending:
            return
        time.sleep(0.25)


def _screenshots(drv, folder: Path, height: int, tile: int) -> int:
    """Save the page as tiles of ``tile`` CSS pixels, scrolling the window; returns the count."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    n = 0
    for y in range(0, max(height, 1), tile):
        drv.execute_script("window.scrollTo(0, arguments[0]);", y)
        time.sleep(0.15)
        n += 1
        drv.save_screenshot(str(folder / f"{n:02d}.png"))
    drv.execute_script("window.scrollTo(0, 0);")
    return n


def check_page(drv, server: _Server, page: str, shots: Path | None) -> PageResult:
    t0 = time.time()
    res = PageResult(page)
    before = len(server.failures)
    drv.get_log("browser")  # discard what earlier pages logged
    drv.get(server.url + page + ".html")
    mj = drv.execute_async_script(MATHJAX_WAIT_JS)
    _wait_for_widgets(drv)
    height = drv.execute_script("return document.documentElement.scrollHeight;")
    if shots is not None:
        res.tiles = _screenshots(
            drv,
            shots / page.replace("/", "__"),
            height,
            drv.execute_script("return " + TILE_STEP_JS + ";"),
        )
    else:  # still scroll once through the page, so that images below the fold are requested
        drv.execute_script("window.scrollTo(0, document.documentElement.scrollHeight);")
        time.sleep(0.2)
    found = drv.execute_script(PAGE_JS)
    res.counts = found.pop("counts")
    found.pop("height", None)
    res.warnings = found.pop("warnings")
    if str(mj).startswith("error"):
        found["math"].insert(0, "MathJax failed to start: " + mj)
    # Chromium asks every server for /favicon.ico on its own; the book has no icon, and no reader
    # sees it.
    missing = [
        f"{status} {path}" for status, path in server.failures[before:] if path != "/favicon.ico"
    ]
    found["images"].extend("server could not answer: " + m for m in missing)
    console = []
    for entry in drv.get_log("browser"):
        if entry.get("level") == "SEVERE" and "/favicon.ico" not in entry.get("message", ""):
            console.append(entry.get("message", "")[:200])
    found["console"] = console
    res.found = found
    res.seconds = time.time() - t0
    return res


def report(results: list[PageResult]) -> str:
    rows = [
        "| page | math typeset | images | widgets | " + " | ".join(CHECKS) + " | shots | s |",
        "|---|---|---|---|" + "---|" * len(CHECKS) + "---|---|",
    ]
    for r in results:
        c = r.counts
        cells = [str(len(r.found.get(k, []))) if r.found.get(k) else "ok" for k in CHECKS]
        rows.append(
            f"| {r.page} | {c.get('typeset', 0)}/{c.get('math', 0)} | "
            f"{c.get('images', 0)} | {c.get('widgets', 0)} | "
            + " | ".join(cells)
            + f" | {r.tiles} | {r.seconds:.1f} |"
        )
    lines = ["\n".join(rows)]
    for r in results:
        for k in CHECKS:
            for problem in r.found.get(k, []):
                lines.append(f"FAIL {r.page} [{k}] {problem}")
        for w in r.warnings:
            lines.append(f"note {r.page} {w}")
    return "\n".join(lines)


def open_phone():
    """A browser whose window is a phone's width. Headless Chromium keeps a window at least 500 px
    wide, so the page's viewport is set through the DevTools protocol (a desktop browser at that
    size, not a mobile one that would zoom out to fit a page that pans)."""
    drv = open_browser(max(PHONE_WIDTH, 500), PHONE_HEIGHT)
    drv.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE_WIDTH, "height": PHONE_HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    return drv


def check_phone(drv, server: _Server, res: PageResult, shots: Path | None) -> None:
    """The phone pass of one page (``drv`` opened at :data:`PHONE_WIDTH`): adds ``phone``."""
    t0 = time.time()
    drv.get(server.url + res.page + ".html")
    drv.execute_async_script(MATHJAX_WAIT_JS)
    _wait_for_widgets(drv)
    if shots is not None:
        _screenshots(
            drv,
            shots / "phone" / res.page.replace("/", "__"),
            drv.execute_script("return document.documentElement.scrollHeight;"),
            drv.execute_script("return " + TILE_STEP_JS + ";"),
        )
    found = drv.execute_script(PHONE_JS)
    if found["width"] > PHONE_WIDTH + 1:
        raise SystemExit(f"the phone pass opened a {found['width']} px window, not {PHONE_WIDTH}")
    problems = [f"at {found['width']} px: {p}" for p in found["problems"]]
    if found["more"]:
        problems.append(f"and {found['more']} more")
    res.found["phone"] = problems
    res.seconds += time.time() - t0


def check_book(html: Path, pages: list[str], shots: Path | None) -> list[PageResult]:
    """Every page at 1280 px (:func:`check_page`), then again at a phone's width
    (:func:`check_phone`)."""
    if not (html / "index.html").exists():
        raise SystemExit(f"No built book at {html}: run `make book-offline` first.")
    server = _Server(html)
    try:
        drv = open_browser()
        try:
            results = [check_page(drv, server, p, shots) for p in pages]
        finally:
            drv.quit()
        drv = open_phone()
        try:
            for r in results:
                check_phone(drv, server, r, shots)
        finally:
            drv.quit()
        return results
    finally:
        server.close()


# --------------------------------------------------------------------------------- negative control

SELF_TEST_PAGES = {
    # page -> the checks that must fail on it (the clean page must pass all of them)
    "book/clean": set(),
    "book/bad_math": {"math"},
    "book/bad_image": {"images", "console"},  # the browser also logs the failed request
    "book/clean_figure": set(),  # a cell's figure with its caption and alt text
    "book/bad_figure": {"figures"},  # the same figure without them
    "book/bad_output": {"outputs"},
    "book/bad_widget": {"widgets"},
    "book/bad_ref": {"refs"},
    "book/bad_wide": {"wide"},
    "book/bad_printed_wide": {"wide"},
    "book/clean_code": set(),  # code lines of CODE_WIDTH (FOLDED_CODE_WIDTH) characters fit
    "book/bad_code_wide": {"wide"},
    "book/bad_console": {"console"},
    "book/bad_pan": {"phone"},
}


def _self_test_book(folder: Path) -> Path:
    """A small book with one defect of each kind, built with this repository's _config.yml."""
    book = folder / "selftest"
    (book / "book").mkdir(parents=True)
    (book / "_config.yml").write_text(sphinxext.config_for_copy(ROOT / "_config.yml"))
    shutil.copy(ROOT / "book" / "references.bib", book / "book" / "references.bib")
    if (ROOT / "_static").is_dir():
        shutil.copytree(ROOT / "_static", book / "_static")
    toc = "format: jb-book\nroot: book/clean\nchapters:\n" + "".join(
        f"  - file: {p}\n" for p in SELF_TEST_PAGES if p != "book/clean"
    )
    (book / "_toc.yml").write_text(toc)
    md = {
        "book/clean": "# Clean\n\nInline $\\E[\\costate_t]=\\vgrad_t$ and a display\n\n"
        "$$\n\\frac{a}{b}\n$$\n\n"
        "```{prf:lemma} A lemma\n:label: st-lemma\n\nText.\n```\n\n"
        "See {prf:ref}`st-lemma`.\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        # controls of the phone pass: inline code breaks, a wide table scrolls in its own box
        "A name `vghlib.symbolic.check_costate_value_gradient_lq_negative_control` in prose.\n\n"
        '<div style="overflow-x: auto; max-width: 100%"><table><tr>'
        + "".join(f"<td>{i}2345.678901</td>" for i in range(5))
        + "</tr></table></div>\n",
        "book/bad_math": "# Bad math\n\nAn undefined macro $\\nosuchmacro x$ and a broken one "
        "$\\frac{1}{$.\n\n"
        "Also TeX that never became math: \\\\(\\frac{1}{2}\\\\).\n",
        "book/bad_image": "# Bad image\n\n"
        '<img src="missing-figure.png" alt="a figure that is not there">\n',
        "book/bad_ref": "# Bad ref\n\n```{prf:proposition} A proposition\n:label: st-prop\n"
        ":nonumber:\n\nText.\n```\n\n"
        "See {prf:ref}`st-prop`.\n",
        "book/bad_wide": "# Bad wide\n\n$$\n"
        + " + ".join(f"\\frac{{x_{{{i}}}}}{{y_{{{i}}}}}" for i in range(60))
        + "\n$$\n",
        "book/bad_console": "# Bad console\n\n"
        "<script>throw new Error('a script error');</script>\n",
        # fits the 1280-px column, but not a phone: a fixed-width box makes the page pan there
        "book/bad_pan": "# Bad pan\n\nText.\n\n"
        '<div style="width: 600px; height: 1em; background: #ccc"></div>\n',
    }
    for page, text in md.items():
        (book / f"{page}.md").write_text(text)

    def notebook(path: str, cells: list):
        nb = nbformat.v4.new_notebook()
        nb.cells = cells
        nb.metadata["kernelspec"] = {
            "display_name": "Python 3",
            "language": "python",
            "name": "python3",
        }
        nbformat.write(nb, book / f"{path}.ipynb")

    def figure(meta=None):
        cell = nbformat.v4.new_code_cell("plt.plot([0, 1]); plt.show()")
        cell.outputs = [
            nbformat.v4.new_output(
                "display_data", {"image/png": TINY_PNG, "text/plain": "<Figure size 640x480>"}
            )
        ]
        if meta:
            cell.metadata["mystnb"] = meta
        return cell

    meta = {
        "figure": {"caption": "A line that rises.", "name": "fig-selftest"},
        "image": {"alt": "A straight line rising from left to right."},
    }
    notebook("book/clean_figure", [nbformat.v4.new_markdown_cell("# Clean figure"), figure(meta)])
    notebook("book/bad_figure", [nbformat.v4.new_markdown_cell("# Bad figure"), figure()])

    err = nbformat.v4.new_code_cell("raise ValueError('a deliberate error')")
    err.metadata["tags"] = ["raises-exception"]
    err.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="ValueError",
            evalue="a deliberate error",
            traceback=["ValueError: a deliberate error"],
        )
    ]
    notebook("book/bad_output", [nbformat.v4.new_markdown_cell("# Bad output"), err])
    # A widget whose view is stored but whose state is not, as a notebook saved without its widget
    # state: the book can show only an empty box or the widget's text form.
    view = nbformat.v4.new_code_cell("import ipywidgets as w\nw.VBox([w.IntSlider(3)])")
    view.outputs = [
        nbformat.v4.new_output(
            "execute_result",
            {
                "text/plain": "VBox(children=(IntSlider(value=3),))",
                "application/vnd.jupyter.widget-view+json": {
                    "model_id": "0123456789abcdef0123456789abcdef",
                    "version_major": 2,
                    "version_minor": 0,
                },
            },
            execution_count=1,
        )
    ]
    nb_cells = [nbformat.v4.new_markdown_cell("# Bad widget"), view]
    notebook("book/bad_widget", nb_cells)
    # A printed line wider than the column: its end is off the right edge at 1280 px.
    wide = nbformat.v4.new_code_cell("print('x ' * 100)")
    wide.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x " * 100 + "\n")]
    notebook("book/bad_printed_wide", [nbformat.v4.new_markdown_cell("# Bad printed"), wide])
    # A code line of CODE_WIDTH characters, the longest the notebooks have, fits the code input's
    # box, and one of FOLDED_CODE_WIDTH the narrower box of a hide-input cell's toggle; a line far
    # wider makes the code input scroll sideways at 1280 px.
    fits = nbformat.v4.new_code_cell(f"y = {'a' * (CODE_WIDTH - 6)!r}\nprint(y)")
    folded = nbformat.v4.new_code_cell(f"z = {'a' * (FOLDED_CODE_WIDTH - 6)!r}\nprint(z)")
    folded.metadata["tags"] = ["hide-input"]
    notebook("book/clean_code", [nbformat.v4.new_markdown_cell("# Clean code"), fits, folded])
    code = nbformat.v4.new_code_cell("x = [" + ", ".join(str(i) for i in range(60)) + "]")
    notebook("book/bad_code_wide", [nbformat.v4.new_markdown_cell("# Bad code"), code])
    # The stored outputs are the defects, so nothing is executed.
    cfg = (
        (book / "_config.yml")
        .read_text()
        .replace("execute_notebooks: cache", "execute_notebooks: 'off'")
    )
    (book / "_config.yml").write_text(cfg)
    jb = Path(sys.executable).parent / "jupyter-book"
    env = dict(os.environ)
    if sphinxext.offline_folder() is not None:  # the book's local MathJax, from any folder
        env[sphinxext.ENV] = str(sphinxext.offline_folder())
    run = subprocess.run(
        [str(jb), "build", ".", "--keep-going"],
        cwd=book,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    if run.returncode != 0 or not (book / "_build/html/index.html").exists():
        raise SystemExit(
            "The self-test book did not build:\n" + run.stdout[-3000:] + run.stderr[-3000:]
        )
    return book / "_build" / "html"


def self_test(workdir: Path | None = None) -> list[str]:
    """Build the defect book, check it, and return what the checks failed to catch (empty: good)."""
    with tempfile.TemporaryDirectory() as tmp:
        html = _self_test_book(Path(workdir or tmp))
        results = check_book(html, list(SELF_TEST_PAGES), None)
    problems = []
    for r in results:
        must = SELF_TEST_PAGES[r.page]
        failed = {k for k in CHECKS if r.found.get(k)}
        for k in sorted(must - failed):
            problems.append(f"{r.page}: the {k} check did not catch its defect")
        for k in sorted(failed - must):
            problems.append(
                f"{r.page}: the {k} check failed where it should pass: {r.found[k][:2]}"
            )
    print(report(results))
    return problems


# --------------------------------------------------------------------------------------- JupyterLab

LAB_JS = (
    r"""
// jupyterlab-myst renders markdown cells with KaTeX; a formula it cannot render, or a macro it does
// not know, leaves TeX source in the cell's text, and a directive it does not know leaves MyST.
const out = {problems: [], exercises: 0, math: 0};
const cells = [...document.querySelectorAll('.jp-MarkdownCell')];
out.cells = cells.length;
out.math = document.querySelectorAll('.jp-MarkdownCell .katex').length;
const tex = /\\(newcommand|def|frac|mathbb|mathrm|operatorname|costate|costatehat|vgrad|"""
    r"""groupsize|headroom|ent|adv|norm|ip|pd|Var|E|R)\b/;
const skip = 'code, pre, .katex, .cm-editor, .jp-InputArea-editor, script, style';
for (const cell of cells) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    const p = node.parentElement;
    if (!p || p.closest(skip) || !p.offsetParent) continue;
    const t = node.textContent;
    if (tex.test(t)) out.problems.push('TeX left unrendered: ' + t.replace(/\s+/g, """
    r"""' ').trim().slice(0, 100));
    if (/```\{|:label:|\{(cite:[pt]|doc|prf:ref|ref|numref|exercise|solution)\}/.test(t))
      out.problems.push('MyST shown as raw text: ' + t.replace(/\s+/g, ' ').trim().slice(0, 100));
  }
  for (const e of cell.querySelectorAll('.katex-error')) out.problems.push('KaTeX error: ' + """
    r"""(e.getAttribute('title') || e.textContent).slice(0, 120));
}
// an exercise renders as a box whose header reads "Exercise N"
out.exercises = cells.filter(c => [...c.querySelectorAll('*')].some(e =>
  e.children.length === 0 && /^Exercise\s+\d+/.test((e.parentElement || e).innerText || """
    r"""''))).length;
// citations: jupyterlab-myst cannot resolve a {cite} role and shows its key ("Citation Not
// Found"); the notebook's head cell must list each key with its authors and year
const keys = [...document.querySelectorAll('.jp-MarkdownCell span[title="Citation Not Found"]')]
  .map(e => e.textContent.trim());
const items = [...document.querySelectorAll('.jp-MarkdownCell li')]
  .map(li => li.textContent.replace(/\s+/g, ' ').trim());
out.citations = keys.length;
for (const k of new Set(keys)) {
  if (!items.some(t => t.startsWith(k + ':') && /\b(19|20)\d\d\b/.test(t)))
    out.problems.push('citation ' + k + ' is not listed with its authors and year');
}
return out;
"""
)

#: JupyterLab settings for the check: every cell rendered at once (no windowing), no news pop-up.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def _write_lab_settings(folder: Path) -> None:
    for name, value in LAB_SETTINGS.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value))


def _status(url: str, token: str | None = None) -> int | None:
    """HTTP status of GET ``url`` (with ``Authorization: token``), or None if nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


@contextlib.contextmanager
def jupyter_lab(root: Path = ROOT, timeout: float = 120.0):
    """Run JupyterLab on 127.0.0.1 with ``root`` as its root folder; yield ``(base_url, token)``.

    The server demands a random token (``secrets.token_urlsafe(32)``) of every request, and keeps
    its XSRF checks: while it runs, other local processes can neither read nor write ``root`` nor
    start a kernel. The token reaches the server through the environment variable JUPYTER_TOKEN,
    not its command line, so ``ps`` does not show it. A browser opens
    ``{base_url}lab/tree/<path>?token=<token>``; an API client sends the header
    ``Authorization: token <token>``. The server is stopped, and its temporary config, runtime and
    settings folders removed, when the context exits.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/"
    token = secrets.token_urlsafe(32)
    with (
        tempfile.TemporaryDirectory() as config_dir,
        tempfile.TemporaryDirectory() as runtime_dir,
        tempfile.TemporaryDirectory() as settings_dir,
        tempfile.TemporaryFile("w+") as log,  # the server's log, shown if it does not start
    ):
        _write_lab_settings(Path(settings_dir))
        env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=config_dir,
            JUPYTER_RUNTIME_DIR=runtime_dir,
            JUPYTER_TOKEN=token,
        )
        env.pop("JUPYTER_TOKEN_FILE", None)
        lab = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "jupyter-lab"),
                "--no-browser",
                f"--port={port}",
                "--ip=127.0.0.1",
                f"--ServerApp.root_dir={Path(root).resolve()}",
                f"--LabApp.user_settings_dir={settings_dir}",
                "--LabApp.news_url=",
            ]
            + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while _status(base_url + "api/status", token) != 200:  # up, and takes the token
                if lab.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    why = "exited" if lab.poll() is not None else f"not up after {timeout:.0f} s"
                    raise SystemExit(f"JupyterLab did not start ({why}):\n" + log.read()[-3000:])
                time.sleep(0.25)
            yield base_url, token
        finally:
            lab.terminate()
            try:
                lab.wait(20)
            except subprocess.TimeoutExpired:
                lab.kill()
                lab.wait()


def lab_check(notebooks: list[Path], shots: Path) -> dict[Path, list[str]]:
    """Open each notebook in JupyterLab with jupyterlab-myst; check its macros, MyST and exercises.

    Returns the problems found in each notebook. Screenshots: ``jupyterlab-<name>.png`` (the top)
    and ``jupyterlab-<name>-exercise.png`` (scrolled to the first exercise). The server runs with
    a random token (:func:`jupyter_lab`).
    """
    results = {}
    with jupyter_lab(ROOT) as (base_url, token):
        drv = open_browser(1400, 1100)
        try:
            for notebook in notebooks:
                notebook = Path(notebook).resolve()
                rel = notebook.relative_to(ROOT).as_posix()
                drv.get(f"{base_url}lab/tree/{rel}?reset&token={token}")
                found, last = {}, None
                for _ in range(90):  # until the rendering stops changing
                    time.sleep(1)
                    found = drv.execute_script(LAB_JS)
                    state = (found.get("cells"), found.get("math"), found.get("exercises"))
                    if found.get("cells", 0) > 2 and found.get("math", 0) > 0 and state == last:
                        break
                    last = state
                shots.mkdir(parents=True, exist_ok=True)
                drv.save_screenshot(str(shots / f"jupyterlab-{notebook.stem}.png"))
                drv.execute_script("""const e=[...document.querySelectorAll('.jp-MarkdownCell')]
                    .find(c=>/Exercise\\s+\\d/.test(c.innerText)); if (e) e.scrollIntoView();""")
                time.sleep(1.0)
                drv.save_screenshot(str(shots / f"jupyterlab-{notebook.stem}-exercise.png"))
                problems = list(dict.fromkeys(found.get("problems", [])))
                if not found.get("math"):
                    problems.append("no formula was typeset in the notebook's markdown cells")
                if not found.get("exercises"):
                    problems.append("no exercise rendered as a box (is jupyterlab-myst installed?)")
                cites = nbs.cited_keys(nbformat.read(notebook, as_version=4))
                if cites and not found.get("citations"):
                    problems.append(
                        f"the notebook cites {len(cites)} references, but no citation was found "
                        "where jupyterlab-myst puts one"
                    )
                print(
                    f"JupyterLab, {rel}: {found.get('cells', 0)} markdown cells, "
                    f"{found.get('math', 0)} typeset formulas, "
                    f"{found.get('exercises', 0)} exercise boxes, "
                    f"{found.get('citations', 0)} citations, {len(problems)} problems"
                )
                results[notebook] = problems
        finally:
            drv.quit()
    return results


def lab_self_test(notebook: Path, shots: Path) -> list[str]:
    """Check ``notebook`` and a copy without its macros cell: the copy must fail, the original
    pass."""
    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [c for c in nb.cells if "vgh-macros" not in c.metadata.get("tags", [])]
    copy = ROOT / "_build" / f"selftest-no-macros-{notebook.stem}.ipynb"
    copy.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, copy)
    try:
        res = lab_check([Path(notebook), copy], shots)
    finally:
        copy.unlink(missing_ok=True)
    problems = []
    good, bad = res[Path(notebook).resolve()], res[copy.resolve()]
    problems += [f"JupyterLab {Path(notebook).name}: {p}" for p in good]
    if not any("TeX left unrendered" in p for p in bad):
        problems.append(
            "SELF-TEST: the copy without macros showed no unrendered TeX: the check cannot fail"
        )
    if nbs.cited_keys(nb) and not any("not listed with its authors and year" in p for p in bad):
        problems.append(
            "SELF-TEST: the copy without its head cell's reference list raised no citation "
            "problem: the check cannot fail"
        )
    return problems


# ------------------------------------------------------------------------------------------- slides

#: Run on the slide that reveal.js shows: raw TeX in its text, and whether its content overflows.
SLIDE_JS = (
    r"""
const el = Reveal.getCurrentSlide();
const cfg = Reveal.getConfig();
const out = {tex: [], overflow: []};
const skip = 'pre, code, script, style, mjx-container, textarea';
const tex = /\\(frac|tfrac|mathbb|mathrm|mathcal|operatorname|sum|sqrt|begin|end|left|right|"""
    r"""lambda|hat|le|ge|cdot|E|norm|costate|costatehat|vgrad|groupsize|headroom|ent|adv)\b|"""
    r"""\$[^$\s][^$\n]{0,80}\$|\\\(|\\\[/;
const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
let node;
while ((node = walker.nextNode())) {
  const p = node.parentElement;
  if (p && p.closest(skip)) continue;
  if (tex.test(node.textContent)) out.tex.push(node.textContent.trim().slice(0, 100));
}
if (el.scrollHeight > cfg.height + 2) out.overflow.push('content ' + el.scrollHeight + ' px high');
if (el.scrollWidth > cfg.width + 2) out.overflow.push('content ' + el.scrollWidth + ' px wide');
for (const pre of el.querySelectorAll('pre')) {
  if (pre.scrollWidth > pre.clientWidth + 2) out.overflow.push('printed output cut at the right');
}
return out;
"""
)

#: After MathJax: errors and undefined macros in the whole deck.
SLIDES_MATH_JS = (
    r"""
const out = [];
for (const e of document.querySelectorAll('mjx-merror')) out.push('MathJax error: ' + """
    r"""(e.getAttribute('data-mjx-error') || e.textContent).slice(0, 100));
if (window.MathJax && MathJax.startup && MathJax.startup.document && MathJax.startup.toMML) {
  for (const item of MathJax.startup.document.math) {
    let mml = '';
    try { mml = MathJax.startup.toMML(item.root); } catch (err) { continue; }
    const m = mml.match(/<mtext[^>]*mathcolor="red"[^>]*>([^<]*)</);
    if (m) out.push('undefined macro ' + m[1]);
  }
}
return out;
"""
)

SLIDE_CHECKS = ("slides", "tex", "math", "overflow", "console")


def check_slides(folder: Path, shots: Path | None = None) -> dict[str, dict[str, list[str]]]:
    """Open every deck ``*.html`` of ``folder`` in headless Chromium (nothing but 127.0.0.1 is
    reachable) and return, per deck, the problems of each check: fewer than two slides, raw TeX
    on a slide, a MathJax error or undefined macro, a slide whose content overflows it, and any
    console error or file the server could not serve. Saves one screenshot per slide under
    ``shots/<deck>/NN.png``."""
    decks = sorted(p.name for p in Path(folder).glob("*.html"))
    if not decks:
        raise SystemExit(f"No slide decks in {folder}: run `make slides` first.")
    server, drv, found = _Server(Path(folder)), open_browser(1280, 960), {}
    try:
        for deck in decks:
            res = {k: [] for k in SLIDE_CHECKS}
            before = len(server.failures)
            drv.get_log("browser")
            drv.get(server.url + deck)
            mj = drv.execute_async_script(MATHJAX_WAIT_JS)
            if mj != "ok":
                res["math"].append(f"MathJax did not finish: {mj}")
            for _ in range(100):
                if drv.execute_script("return !!(window.Reveal && Reveal.isReady());"):
                    break
                time.sleep(0.1)
            else:
                res["console"].append("reveal.js did not start")
                found[deck] = res
                continue
            n = drv.execute_script("return Reveal.getTotalSlides();")
            if n < 2:
                res["slides"].append(f"{n} slide(s)")
            res["math"] += drv.execute_script(SLIDES_MATH_JS)
            folder_shots = shots / Path(deck).stem if shots else None
            if folder_shots:
                folder_shots.mkdir(parents=True, exist_ok=True)
                for old in folder_shots.glob("*.png"):
                    old.unlink()
            for i in range(n):
                drv.execute_script("Reveal.slide(arguments[0]);", i)
                time.sleep(0.15)
                one = drv.execute_script(SLIDE_JS)
                res["tex"] += [f"slide {i + 1}: {t}" for t in one["tex"]]
                res["overflow"] += [f"slide {i + 1}: {t}" for t in one["overflow"]]
                if folder_shots:
                    drv.save_screenshot(str(folder_shots / f"{i + 1:02d}.png"))
            res["console"] += [
                e.get("message", "")[:200]
                for e in drv.get_log("browser")
                if e.get("level") == "SEVERE" and "/favicon.ico" not in e.get("message", "")
            ]
            res["console"] += [
                f"server could not answer: {status} {path}"
                for status, path in server.failures[before:]
                if path != "/favicon.ico"
            ]
            res["count"] = n
            found[deck] = res
    finally:
        drv.quit()
        server.close()
    return found


def slides_main(folder: Path, shots: Path, self_test_first: bool) -> int:
    """``--slides DIR``: the decks of DIR, after the planted defects when ``--self-test``."""
    if self_test_first:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "lib").symlink_to(Path(folder).resolve() / "lib")
            slides.self_test_decks(Path(tmp))
            res = check_slides(Path(tmp))
        missed = []
        for deck, must in slides.SELF_TEST_DECKS.items():
            failed = {k for k in SLIDE_CHECKS if res[deck][k]}
            missed += [f"{deck}: the {k} check did not catch its defect" for k in must - failed]
            missed += [f"{deck}: the {k} check failed: {res[deck][k][:2]}" for k in failed - must]
        for m in missed:
            print("SELF-TEST FAIL", m)
        if missed:
            return 1
        print(f"slides self-test: {len(res)} planted decks, every defect caught")
    res = check_slides(folder, shots)
    bad = 0
    for deck, r in res.items():
        problems = [f"[{k}] {p}" for k in SLIDE_CHECKS for p in r[k]]
        print(f"{deck}: {r.get('count', 0)} slides, {'ok' if not problems else 'FAIL'}")
        for p in problems:
            print("   ", p)
        bad += bool(problems)
    print(f"{len(res)} decks checked, {bad} failed; screenshots under {shots}")
    return 1 if bad else 0


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tools.browser", description=__doc__.splitlines()[0]
    )
    ap.add_argument(
        "--html",
        default=str(sphinxext.OFFLINE_HTML),
        help="the offline build of the book (make book-offline); default: %(default)s",
    )
    ap.add_argument("--toc", default=str(ROOT / "_toc.yml"))
    ap.add_argument("--shots", default=str(ROOT / "_build" / "screenshots"))
    ap.add_argument(
        "--pages", nargs="*", help="only these pages (docnames, e.g. book/part3/credit)"
    )
    ap.add_argument(
        "--self-test", action="store_true", help="first require every check to catch its defect"
    )
    ap.add_argument(
        "--lab",
        metavar="NOTEBOOK",
        help="also check this notebook in JupyterLab, and a copy without its macros "
        "(which must fail)",
    )
    ap.add_argument("--slides", metavar="DIR", help="check only the slide decks in DIR")
    args = ap.parse_args(argv)
    if args.slides:  # the course's slide decks (make test-slides), with --self-test's planted decks
        return slides_main(Path(args.slides), Path(args.shots) / "slides", args.self_test)

    try:  # before the self-test's minutes: the folder must be the offline build
        sphinxext.require_offline_build(Path(args.html))
    except RuntimeError as e:
        raise SystemExit(f"browser test: {e}") from None
    t0 = time.time()
    failures = []
    if args.self_test:
        missed = self_test()
        for m in missed:
            print("SELF-TEST FAIL", m)
        if missed:
            print("The browser checks cannot be trusted: a defect went unnoticed.")
            return 1
        print(
            "self-test: every check caught its defect, the clean page passed "
            f"({time.time() - t0:.0f} s)"
        )
    pages = args.pages or toc_pages(Path(args.toc))
    results = check_book(Path(args.html), pages, Path(args.shots))
    print(report(results))
    failures += [r.page for r in results if not r.ok]
    if args.lab:
        lab_problems = lab_self_test(Path(args.lab), Path(args.shots))
        for p in lab_problems:
            print("FAIL JupyterLab", p)
        if lab_problems:
            failures.append("JupyterLab")
    print(
        f"{len(results)} pages checked in {time.time() - t0:.0f} s; screenshots under {args.shots}"
    )
    if failures:
        print("browser test FAILED on: " + ", ".join(failures))
        return 1
    print("browser test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
