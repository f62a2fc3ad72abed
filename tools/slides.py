"""Slide decks of the course, one per session, assembled from the book's chapters.

Reference: the teaching kit of the book (``book/teaching_kit.md``). ``course/slides.yml`` names,
per session, its title, its question and, per chapter notebook, the sections (by heading text)
and the cells (by cell id) that go on slides. ``python -m tools.slides`` (``make slides``)

1. builds a temporary notebook per session: a title slide with the session's question, then for
   each chapter a title slide and the chosen markdown (solutions removed, MyST turned into plain
   Markdown by :func:`tools.notebooks.plain_markdown`) and the stored outputs of the chosen code
   cells, figures included, without their code; long sections are spread over several slides;
2. converts it with nbconvert's reveal.js exporter and the template in ``tools/slides_template``,
   which loads reveal.js and MathJax 3 (with the book's macros from ``_config.yml``) from the
   deck's folder: ``_build/slides/session-N.html`` and ``_build/slides/lib/``.

A heading or a cell id that the spec names but the notebook does not have stops the build with a
message that lists what exists. The browser check (``python -m tools.browser --slides``) opens
every deck in headless Chromium.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import shutil
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml
from nbconvert import SlidesExporter

from tools import REPO_ROOT, student
from tools import notebooks as nbs
from tools.address import book_url

SPEC = REPO_ROOT / "course" / "slides.yml"
TEMPLATE = Path(__file__).resolve().parent / "slides_template"
OUT = REPO_ROOT / "_build" / "slides"

# The deck's geometry (CSS pixels of reveal.js's slide) and what the packer assumes of the text.
WIDTH, HEIGHT = 960, 700
BUDGET = 640  # the height a slide's content may fill
TEXT_PX, LINE = 21, 1.38  # body font size and line height
CHARS_PER_LINE = 96

CSS = f"""
.reveal .slides {{ text-align: left; }}
.reveal .slides section {{ height: {HEIGHT}px; padding: 0 4px; box-sizing: border-box; }}
.reveal .jp-RenderedHTMLCommon {{ font-size: {TEXT_PX}px; line-height: {LINE}; padding: 0; }}
.reveal .jp-RenderedHTMLCommon p, .reveal .jp-RenderedHTMLCommon li {{ margin: 0 0 0.45em 0; }}
.reveal .jp-RenderedHTMLCommon blockquote {{ margin: 0.3em 0 0.5em 0; padding: 0.1em 0.8em;
  border-left: 4px solid #b8c4d6; background: #f4f6fa; font-style: normal; width: auto;
  box-shadow: none; }}
.reveal h1 {{ font-size: 40px; margin-bottom: 0.4em; }}
.reveal h2 {{ font-size: 32px; margin-bottom: 0.4em; }}
.reveal h3, .reveal h4 {{ font-size: 26px; margin-bottom: 0.3em; }}
.reveal .jp-RenderedHTMLCommon table {{ font-size: 15px; margin: 0.3em 0; }}
.reveal .jp-RenderedHTMLCommon td, .reveal .jp-RenderedHTMLCommon th {{ padding: 2px 6px; }}
.reveal .slides div.jp-OutputArea-output > pre {{ font-size: 13px; line-height: 1.25; margin: 0;
  white-space: pre; word-break: normal; word-wrap: normal; width: auto; box-shadow: none; }}
.reveal .slides .celltag_vgh-narrow div.jp-OutputArea-output > pre {{ font-size: 11px; }}
.reveal .slides .celltag_vgh-tiny div.jp-OutputArea-output > pre {{ font-size: 9px; }}
.reveal .slides .celltag_vgh-wrap div.jp-OutputArea-output > pre {{ font-size: 9px;
  white-space: pre-wrap; }}
.reveal .slides section :is(h1, h2, h3, h4) {{ text-transform: none; }}
.reveal .jp-OutputArea-output img {{ max-height: 560px; max-width: 100%; margin: 4px 0; }}
.reveal .jp-Cell {{ padding: 0; }}
.reveal .jp-OutputArea-child {{ margin: 0; }}
.reveal mjx-container[display="true"] {{ margin: 0.4em 0 !important; }}
.reveal .vgh-question {{ font-size: 30px; line-height: 1.3; color: #1f4e8c; margin: 0.6em 0; }}
.reveal .vgh-cont {{ font-size: 16px; color: #777; margin: 0 0 0.3em 0; }}
.reveal .vgh-source {{ font-size: 15px; color: #666; }}
"""


class SpecError(ValueError):
    """The slide spec names a notebook, a heading or a cell that does not exist."""


@dataclass
class Chapter:
    notebook: str  # path relative to the repository root
    sections: list[str] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)


@dataclass
class Session:
    number: int
    title: str
    question: str
    chapters: list[Chapter]


def load_spec(path: Path = SPEC) -> list[Session]:
    data = yaml.safe_load(Path(path).read_text())
    out = []
    for s in data.get("sessions") or []:
        chapters = [
            Chapter(c["notebook"], list(c.get("sections") or []), list(c.get("cells") or []))
            for c in s.get("chapters") or []
        ]
        if not chapters or not all(c.sections or c.cells for c in chapters):
            raise SpecError(
                f"{path}: session {s.get('session')}: each chapter needs sections or cells"
            )
        out.append(Session(int(s["session"]), s["title"], s["question"].strip(), chapters))
    if len({s.number for s in out}) != len(out):
        raise SpecError(f"{path}: two sessions have the same number")
    return out


# ---------------------------------------------------------------------------------- selection


@dataclass
class Piece:
    """A markdown cell's part from one heading to the next, or a whole code cell."""

    cell_id: str
    kind: str  # "markdown" or "code"
    source: str
    cell: object
    heading: tuple[int, str] | None = None  # (level, text) when the piece starts with a heading
    sections: tuple[str, ...] = ()  # the headings it lies under, outermost first


_FENCE = re.compile(r"^(`{3,}|:{3,})")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _split_at_headings(text: str) -> list[tuple[tuple[int, str] | None, str]]:
    """A markdown text cut before each heading line outside fenced blocks."""
    parts: list[list] = [[None, []]]
    fence = None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if m and fence is None:
            fence = m[1]
        elif fence is not None and line.strip() == fence:
            fence = None
        h = _HEADING.match(line) if fence is None else None
        if h:
            parts.append([(len(h[1]), h[2].strip()), [line]])
        else:
            parts[-1][1].append(line)
    return [(h, "\n".join(lines)) for h, lines in parts if h or "\n".join(lines).strip()]


def pieces(nb) -> list[Piece]:
    """The notebook as pieces, each knowing the headings it lies under."""
    out, stack = [], []  # stack: (level, text) of the open headings
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "remove-cell" in tags:
            continue
        cid = cell.get("id", "")
        if cell.cell_type == "markdown":
            for heading, text in _split_at_headings(cell.source):
                if heading:
                    while stack and stack[-1][0] >= heading[0]:
                        stack.pop()
                    stack.append(heading)
                out.append(Piece(cid, "markdown", text, cell, heading, tuple(t for _, t in stack)))
        elif cell.cell_type == "code":
            out.append(Piece(cid, "code", cell.source, cell, None, tuple(t for _, t in stack)))
    return out


def select(nb, chapter: Chapter) -> list[Piece]:
    """The pieces of ``nb`` that ``chapter`` names, in the notebook's order."""
    ps = pieces(nb)
    headings = [p.heading[1] for p in ps if p.heading]
    for s in chapter.sections:
        if s not in headings:
            raise SpecError(
                f"{chapter.notebook}: no section headed {s!r}. Its headings: "
                + "; ".join(repr(h) for h in headings)
            )
    ids = {p.cell_id for p in ps}
    for c in chapter.cells:
        if c not in ids:
            raise SpecError(
                f"{chapter.notebook}: no cell with id {c!r} (cells tagged remove-cell are not "
                "shown). Ids are in each cell's metadata; `jupyter nbconvert --to notebook` keeps "
                "them."
            )
    want_sections, want_cells = set(chapter.sections), set(chapter.cells)
    return [p for p in ps if want_sections & set(p.sections) or p.cell_id in want_cells]


# ------------------------------------------------------------------------------------ packing


def _png_size(b64: str) -> tuple[int, int]:
    head = base64.b64decode(b64[:64])
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return 800, 500
    return struct.unpack(">II", head[16:24])


def _blocks(markdown: str) -> list[str]:
    """Paragraph-level blocks: cut at blank lines outside fenced code and display math."""
    blocks, cur, fence, math_open = [], [], None, False
    for line in markdown.split("\n"):
        m = _FENCE.match(line)
        if m and fence is None:
            fence = m[1]
        elif fence is not None and line.strip() == fence:
            fence = None
        if fence is None and line.strip().startswith("$$"):
            if not (line.strip() != "$$" and line.strip().endswith("$$")):
                math_open = not math_open
        if not line.strip() and fence is None and not math_open:
            if cur:
                blocks.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    if cur:
        blocks.append("\n".join(cur))
    out: list[str] = []
    for b in blocks:
        out += _list_items(b) if block_height(b) > BUDGET / 2 else [b]
    # a bold title alone ("**Proof**", "**Exercise 3**: ...") stays with the block it introduces
    merged: list[str] = []
    for b in out:
        if merged and _TITLE.fullmatch(merged[-1]):
            merged[-1] += "\n\n" + b
        else:
            merged.append(b)
    return merged


_TITLE = re.compile(r"\*\*[^*\n]{1,80}\*\*(?::[^\n]{0,100})?")
_ITEM = re.compile(r"^(?:\d+\.|[-*+]) ")


def _list_items(block: str) -> list[str]:
    """A long list cut into its items (a numbered item keeps its number), anything else whole."""
    lines = block.split("\n")
    if not _ITEM.match(lines[0]):
        return [block]
    items: list[list[str]] = []
    for line in lines:
        if _ITEM.match(line) or not items:
            items.append([line])
        else:
            items[-1].append(line)
    return ["\n".join(i) for i in items]


def _text_lines(text: str) -> int:
    shown = re.sub(r"\$([^$]+)\$", lambda m: "x" * int(len(m[1]) * 0.55), text)
    shown = re.sub(r"\]\([^)]*\)", "]", shown)  # a link's address is not shown
    shown = re.sub(r"[*`]", "", shown)
    return sum(max(1, math.ceil(len(line) / CHARS_PER_LINE)) for line in shown.split("\n"))


def block_height(block: str) -> float:
    """The height in CSS pixels that a markdown block is expected to take on a slide."""
    line_px = TEXT_PX * LINE
    first = block.lstrip().split("\n", 1)[0]
    h = _HEADING.match(first)
    if h:
        rest = block.lstrip().split("\n", 1)[1:]
        own = {1: 62, 2: 52, 3: 44}.get(len(h[1]), 40)
        return own + (block_height(rest[0]) if rest and rest[0].strip() else 0)
    if first.startswith("|"):  # a table: each row as high as its longest cell wraps
        rows = [r.strip().strip("|").split("|") for r in block.strip().split("\n")]
        per_cell = max(8, 1.3 * CHARS_PER_LINE / max(1, len(rows[0])))
        return 20 + sum(
            22 * max(math.ceil(len(c.strip()) / per_cell) for c in row) + 6
            for row in rows
            if not set("".join(row)) <= set("-: ")
        )
    if _FENCE.match(first):
        return 20 * block.count("\n") + 24
    if first.strip().startswith("$$"):
        rows = max(1, block.count("\\\\") + 1)
        return 42 * rows + 16
    if "$$" in block:  # a paragraph with display math inside
        text = re.sub(r"\$\$.*?\$\$", "", block, flags=re.DOTALL)
        rows = sum(
            max(1, m.count("\\\\") + 1) for m in re.findall(r"\$\$.*?\$\$", block, re.DOTALL)
        )
        return _text_lines(text) * line_px + 42 * rows + 20
    return _text_lines(block) * line_px + 10


def _printed(outputs) -> list[str]:
    lines = []
    for o in outputs:
        if o.get("output_type") == "stream":
            lines += o.get("text", "").rstrip("\n").split("\n")
        elif "text/plain" in o.get("data", {}) and "image/png" not in o.get("data", {}):
            lines += o["data"]["text/plain"].split("\n")
    return lines


def output_style(outputs) -> str | None:
    """The cell tag that sets the font of a cell's printed output on a slide: none (13 px, lines
    up to 115 characters), ``vgh-narrow`` (11 px, up to 140), ``vgh-tiny`` (9 px, up to 175)
    or ``vgh-wrap`` (9 px, longer lines wrapped)."""
    longest = max(map(len, _printed(outputs)), default=0)
    for style, most in ((None, 115), ("vgh-narrow", 140), ("vgh-tiny", 175)):
        if longest <= most:
            return style
    return "vgh-wrap"


def output_height(outputs) -> float:
    """The height in CSS pixels that a code cell's outputs are expected to take on a slide."""
    style = output_style(outputs)
    line_px = {None: 16.5, "vgh-narrow": 14.0}.get(style, 11.5)
    per_line = 175 if style == "vgh-wrap" else 10**6
    h = sum(line_px * max(1, math.ceil(len(line) / per_line)) for line in _printed(outputs))
    for o in outputs:
        h += 6
        if "image/png" in o.get("data", {}):
            w, hh = _png_size(o["data"]["image/png"])
            h += hh * min(1.0, (WIDTH - 20) / w, 560 / hh) + 6
    return h


def _slide_outputs(cell) -> list:
    """The outputs a slide shows: figures and printed text, never a widget's live view or
    stderr, nor what an exercise's self-check prints before it has an answer."""
    source = cell.get("source", "")
    if "exercises.check_" in source or re.search(r"^answer = None\b", source, re.MULTILINE):
        return []
    keep = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            if o.get("name") == "stderr":
                continue
            keep.append(o)
        elif o.get("output_type") in ("display_data", "execute_result"):
            data = o.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                continue
            if "image/png" in data:
                keep.append(nbformat.from_dict({**o, "data": {"image/png": data["image/png"]}}))
            elif "text/html" in data and "text/plain" not in data:
                keep.append(o)
            elif "text/plain" in data:
                keep.append(nbformat.from_dict({**o, "data": {"text/plain": data["text/plain"]}}))
    return keep


@dataclass
class Deck:
    session: Session
    notebook: object  # the assembled notebook
    slides: int


def _md(text: str, slide_type: str = "-"):
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["slideshow"] = {"slide_type": slide_type}
    return cell


# A markdown text that ends with a ```{solution}``` block: the code cell after it belongs to the
# solution (it prints the answer), so a slide leaves it out.
_ENDS_WITH_SOLUTION = re.compile(
    r"^(`{3,}|:{3,})\{solution\}[^\n]*\n(?:(?!^\1[ \t]*$).)*^\1[ \t]*\Z", re.MULTILINE | re.DOTALL
)


def _continued(section: str) -> str:
    """The small label at the top of a slide that continues a section."""
    return f'<p class="vgh-cont">{section} (continued)</p>' if section else ""


def _page(notebook: str) -> str:
    return Path(notebook).with_suffix("").as_posix()


def assemble(session: Session, root: Path = REPO_ROOT, base: str | None = None) -> Deck:
    """The notebook of one session's deck (see the module's docstring); links to the book start
    with ``base`` (default: the published book's address)."""
    base = base or book_url()
    book = root / "book"
    labels = nbs.label_pages(book)
    paths = [p for p in sorted(book.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
    numbers = student.exercise_numbers(paths, book)
    cells: list = []
    slides = 0

    def new_slide(first):
        nonlocal slides
        first.metadata["slideshow"] = {"slide_type": "slide"}
        cells.append(first)
        slides += 1

    chapters = []
    for ch in session.chapters:
        path = root / ch.notebook
        if not path.is_file():
            raise SpecError(f"session {session.number}: no notebook {ch.notebook}")
        nb = nbformat.read(path, as_version=4)
        title = next((p.heading[1] for p in pieces(nb) if p.heading and p.heading[0] == 1), "")
        chapters.append((ch, nb, title))
    listing = "\n".join(
        f"- [{title}]({base}{_page(ch.notebook)}.html)" for ch, _, title in chapters
    )
    new_slide(
        _md(
            f"# Session {session.number}: {session.title}\n\n"
            f'<p class="vgh-question">{session.question}</p>\n\n'
            f"{listing}\n\n"
            f'<p class="vgh-source">Homework: <code>course/homework/session-{session.number}'
            ".ipynb</code></p>"
        )
    )
    for ch, nb, title in chapters:
        page = _page(ch.notebook)
        new_slide(
            _md(
                f"# {title}\n\n"
                f'<p class="vgh-source"><a href="{base}{page}.html">This chapter in the book</a>'
                "</p>"
            )
        )
        used, section, after_solution = BUDGET, "", False
        for p in select(nb, ch):
            if p.kind == "markdown":
                after_solution = bool(_ENDS_WITH_SOLUTION.search(p.source.rstrip()))
                text = student.strip_solutions(p.source)[0]
                text = nbs.plain_markdown(text, page, labels, base=base, numbers=numbers)
                for block in _blocks(text):
                    if re.fullmatch(r"\(Source: `[^`]+`, see the rendered book\.\)", block):
                        continue  # a listing of library code: the book shows it, a slide need not
                    h = block_height(block)
                    heading = _HEADING.match(block.split("\n", 1)[0])
                    if heading:
                        section = heading[2].strip()
                    if heading or used + h > BUDGET:
                        first = block if heading else _continued(section)
                        new_slide(_md(first))
                        used = block_height(first)
                        if heading:
                            continue
                    cells.append(_md(block))
                    used += h
            else:
                outs = _slide_outputs(p.cell)
                if after_solution:  # a cell that prints what the solution above derives
                    outs = []
                if not outs:
                    continue
                h, style = output_height(outs), output_style(outs)
                code = nbformat.v4.new_code_cell(p.cell.source)
                code.outputs, code.execution_count = outs, None
                code.metadata["slideshow"] = {"slide_type": "-"}
                if style:
                    code.metadata["tags"] = [style]
                if used + h > BUDGET:
                    new_slide(_md(_continued(section)))
                    used = 30
                cells.append(code)
                used += h
    deck = nbformat.v4.new_notebook()
    deck.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    deck.metadata["language_info"] = {"name": "python"}
    deck.metadata["title"] = f"Session {session.number}: {session.title}"
    deck.cells = cells
    return Deck(session, deck, slides)


# ---------------------------------------------------------------------------------- conversion


def export(deck: Deck, out_html: Path, lib: str = "lib") -> None:
    """Write the deck as reveal.js HTML; scripts come from ``lib/`` beside the file."""
    exporter = SlidesExporter(
        extra_template_basedirs=[str(TEMPLATE.parent)],
        template_name=TEMPLATE.name,
        reveal_url_prefix=f"{lib}/reveal.js",
        reveal_theme="white",  # its fonts ship with reveal.js; "simple" loads them from Google
        reveal_width=str(WIDTH),
        reveal_height=str(HEIGHT),
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    resources = {
        "vgh": {
            "mathjax_url": f"{lib}/mathjax/tex-mml-chtml.js",
            "macros_json": json.dumps(nbs.macros()),
            "css": CSS,
        },
    }
    html, _ = exporter.from_notebook_node(deck.notebook, resources=resources)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(html)


def install_lib(out: Path, reveal: Path, mathjax: Path) -> None:
    """Copy reveal.js (its dist/ and the notes plugin) and MathJax into ``out/lib``."""
    for what, where in (("reveal.js", reveal), ("MathJax", mathjax)):
        if not Path(where).is_dir():
            raise SystemExit(
                f"no {what} at {where}: run `make offline-assets` first (it installs the pinned "
                "npm packages of offline/package.json), or pass --reveal/--mathjax"
            )
    lib = out / "lib"
    target = lib / "reveal.js"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(Path(reveal) / "dist", target / "dist")
    shutil.copytree(Path(reveal) / "plugin" / "notes", target / "plugin" / "notes")
    if (lib / "mathjax").exists():
        shutil.rmtree(lib / "mathjax")
    shutil.copytree(mathjax, lib / "mathjax")


def build(
    out: Path = OUT,
    spec: Path = SPEC,
    reveal: Path | None = None,
    mathjax: Path | None = None,
    sessions: list[int] | None = None,
) -> list[tuple[Path, int]]:
    """Build every deck of the spec (or only ``sessions``); returns (file, slide count)."""
    out = Path(out)
    offline = REPO_ROOT / "_build" / "offline"
    install_lib(
        out,
        reveal or offline / "node_modules" / "reveal.js",
        mathjax or offline / "static" / "mathjax",
    )
    # The published book (repository.url in _config.yml): a deck copied on its own to a classroom
    # machine keeps working links, which a path into a local build would not.
    base = book_url()
    made = []
    for s in load_spec(spec):
        if sessions and s.number not in sessions:
            continue
        deck = assemble(s, base=base)
        path = out / f"session-{s.number}.html"
        export(deck, path)
        made.append((path, deck.slides))
    return made


# ---------------------------------------------------------------------------- negative control

#: deck file -> the checks of ``tools.browser.check_slides`` that must fail on it ("clean": none)
SELF_TEST_DECKS = {
    "clean.html": set(),
    "one-slide.html": {"slides"},
    "raw-tex.html": {"tex"},
    "undefined-macro.html": {"math"},
    "too-tall.html": {"overflow"},
    "script-error.html": {"console"},
}


def self_test_decks(folder: Path, lib: str = "lib") -> list[str]:
    """Write one clean deck and one deck per defect into ``folder`` (whose ``lib`` holds reveal.js
    and MathJax); returns the file names, which :data:`SELF_TEST_DECKS` maps to their defects."""
    good = "Inline $\\E[\\costate_t]=\\vgrad_t$ and a display\n\n$$\n\\norm{x}^2\n$$"
    decks = {
        "clean.html": [["# A clean deck"], [good]],
        "one-slide.html": [["# One slide only", good]],
        "raw-tex.html": [["# Raw TeX"], ["TeX that never became math: \\frac{1}{2} and \\vgrad"]],
        "undefined-macro.html": [["# A macro"], ["An undefined macro $\\nosuchmacro x$."]],
        "too-tall.html": [["# Too tall"], ["\n\n".join(f"Line {i}." for i in range(60))]],
        "script-error.html": [["# A script"], ["<script>throw new Error('planted');</script>"]],
    }
    for name, slides in decks.items():
        nb = nbformat.v4.new_notebook()
        for slide in slides:
            for i, text in enumerate(slide):
                nb.cells.append(_md(text, "slide" if i == 0 else "-"))
        session = Session(0, name, "", [])
        export(Deck(session, nb, len(slides)), Path(folder) / name, lib=lib)
    return list(decks)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tools.slides",
        description="Build one reveal.js slide deck per session from course/slides.yml.",
    )
    ap.add_argument("--out", default=str(OUT), help="where the decks go (default _build/slides)")
    ap.add_argument("--spec", default=str(SPEC))
    ap.add_argument("--reveal", help="the reveal.js package folder (default: make offline-assets)")
    ap.add_argument("--mathjax", help="MathJax 3's es5 folder (default: make offline-assets)")
    ap.add_argument("--sessions", type=int, nargs="*", help="only these sessions")
    a = ap.parse_args(argv)
    t0 = time.time()
    try:
        made = build(Path(a.out), Path(a.spec), a.reveal, a.mathjax, a.sessions)
    except SpecError as err:
        print(f"slides: {err}")
        return 2
    for path, n in made:
        print(f"{path.relative_to(Path(a.out).parent) if path.is_absolute() else path}: {n} slides")
    print(f"{len(made)} decks in {a.out} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
