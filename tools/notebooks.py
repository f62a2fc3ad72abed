"""The notebooks outside the rendered book: JupyterLab, Colab, Binder and student copies.

The rendered book gets its LaTeX macros from ``_config.yml`` (MathJax settings) and runs with
``vghlib`` installed. A notebook opened anywhere else has neither, so every notebook starts with two
cells generated from ``_config.yml``, the one source of truth for both:

* a markdown cell of ``\\newcommand`` definitions of the book's macros (tag ``remove-cell``: the
  rendered book drops it, since MathJax already knows them there), followed, in a notebook that
  cites, by the list of the references it cites (:func:`tools.bib.notebook_references`): outside
  the rendered book a ``{cite}`` role shows only its key, and the list gives each key its authors,
  year and title;
* a code cell that makes ``vghlib`` importable when it is missing (tag ``remove-cell``; where
  ``vghlib`` is installed it does nothing): inside a clone of the repository it uses the clone's
  own ``vghlib``, with no network; elsewhere, as on Colab or a fresh Binder, it installs it with
  pip from the repository URL of ``_config.yml`` (:mod:`tools.address`). It installs the library
  only: the book's tooling (``tools/``) is not packaged.

``python -m tools.notebooks --sync`` rewrites these cells in every notebook of the book and
``--check`` fails when one is missing or stale (a test runs it). :func:`plain_markdown` turns the
book's MyST roles and directives into plain Markdown for the student copies
(:mod:`tools.student`), which plain Jupyter and Colab render without any extension.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import lru_cache
from pathlib import Path

import nbformat

from tools import REPO_ROOT, bib
from tools.address import book_config, book_url, repository_url

__all__ = [
    "book_config",
    "macros_markdown",
    "install_code",
    "head_cells",
    "cited_keys",
    "citation",
    "sync",
    "book_url",
    "repository_url",
    "plain_markdown",
    "label_pages",
    "exercise_word_before_ref",
    "figure_problems",
    "main",
]

MACROS_TAG, INSTALL_TAG = "vgh-macros", "vgh-install"


def macros(config: dict | None = None) -> dict:
    config = config or book_config()
    return config["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]


def macros_markdown(config: dict | None = None, keys=()) -> str:
    """The macros of ``_config.yml`` in the two forms that Jupyter front ends read, in one cell,
    and after them the references ``keys`` that the notebook cites, if any.

    - A YAML block first, ``math:`` mapping each macro to its body: jupyterlab-myst takes a YAML
      code block at the top of a notebook's first markdown cell as the notebook's frontmatter and
      gives its ``math`` macros to KaTeX in every cell (KaTeX forgets a definition made in one
      equation by the next one, so a block of definitions alone would not carry over).
    - Then one inline formula of ``\\def``s for Colab and plain Jupyter, where MathJax keeps
      definitions for the whole page (inline and on one line, so that no renderer numbers it or
      breaks it apart). ``\\def`` and not ``\\newcommand``: KaTeX refuses to
      ``\\newcommand`` a name it already knows (``\\R``, or one that the YAML block defined).
    """
    yaml_lines, tex_lines = ["```yaml", "math:"], []
    for name, body in macros(config).items():
        n = 0
        if isinstance(body, list):
            body, n = body
        if "'" in body:
            raise ValueError(
                f"macro \\{name}: a single quote in its body would end the YAML string"
            )
        yaml_lines.append(f"  '\\{name}': '{body}'")
        params = "".join(f"#{i}" for i in range(1, n + 1))
        tex_lines.append(f"\\def\\{name}{params}{{{body}}}")
    yaml_lines.append("```")
    text = (
        "\n".join(yaml_lines) + "\n\n"
        "<!-- The book's LaTeX macros: the YAML block gives them to JupyterLab "
        "(jupyterlab-myst), the \\def lines to Colab and plain Jupyter. Generated from "
        "_config.yml by `python -m tools.notebooks --sync`; the rendered book drops this "
        "cell. -->\n"
        "$" + " ".join(tex_lines) + "$"
    )
    references = bib.notebook_references(keys)
    return text + "\n\n" + references if references else text


#: The install cell's code; ``{url}`` is what pip installs where no clone is found.
INSTALL_CELL = """\
# Colab or a fresh Binder: make the book's library importable where it is
# missing. Inside a clone of the repository, the clone's own vghlib is used
# (no network); anywhere else, pip installs it. Where vghlib is installed
# already, this does nothing.
import importlib.util, os, pathlib, subprocess, sys
if importlib.util.find_spec("vghlib") is None:
    here = pathlib.Path.cwd().resolve()
    clones = [p for p in (here, *here.parents)
              if (p / "vghlib" / "__init__.py").is_file()
              and (p / "pyproject.toml").is_file()]
    if clones:
        # the clone's library, also for the commands a notebook starts
        # (PYTHONPATH)
        root = str(clones[0])
        sys.path.insert(0, root)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [root, os.getenv("PYTHONPATH")]))
    else:
        url = "{url}"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", url],
                       check=True)"""


def install_code(config: dict | None = None, url: str | None = None) -> str:
    """The cell that makes ``vghlib`` importable where it is missing (Colab, Binder, a bare clone).

    Inside a clone of the repository (a folder above the notebook's holds ``vghlib/`` and
    ``pyproject.toml``), the clone's own ``vghlib`` is put first on ``sys.path`` and on
    ``PYTHONPATH`` (for the commands a notebook starts), with no network and no install. Elsewhere
    it is installed with pip from ``url``, by default ``git+`` the repository URL of
    ``_config.yml`` (:func:`tools.address.repository_url`).
    """
    url = url or f"git+{repository_url(config)}"
    return INSTALL_CELL.replace("{url}", url)


def head_cells(config: dict | None = None, keys=()) -> list:
    """The two generated cells; ``keys``: the references the notebook cites (its macros cell
    lists them, :func:`macros_markdown`)."""
    md = nbformat.v4.new_markdown_cell(macros_markdown(config, keys))
    md.metadata["tags"] = ["remove-cell", MACROS_TAG]
    code = nbformat.v4.new_code_cell(install_code(config))
    code.metadata["tags"] = ["remove-cell", INSTALL_TAG]
    return [md, code]


def _is_head(cell) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return MACROS_TAG in tags or INSTALL_TAG in tags


def _same(cell, want) -> bool:
    return (
        cell.cell_type == want.cell_type
        and cell.source == want.source
        and cell.metadata.get("tags") == want.metadata.get("tags")
    )


def cited_keys(nb) -> list[str]:
    """The references that the markdown cells of ``nb`` cite, its head cells left out."""
    return bib.cited_keys(
        "\n".join(c.source for c in nb.cells if c.cell_type == "markdown" and not _is_head(c))
    )


def notebooks(root: Path = REPO_ROOT / "book") -> list[Path]:
    return sorted(p for p in Path(root).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _serialised(cell) -> dict:
    """``cell`` as nbformat writes it into a file (sorted keys, source split into lines)."""
    return json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=[cell])))["cells"][0]


def sync(paths, check: bool = False, config: dict | None = None) -> list[Path]:
    """Put the generated head cells first in each notebook; returns the notebooks that changed
    (with ``check=True`` nothing is written: the list is what ``--sync`` would change).

    Only the head cells are rewritten: every other cell keeps its bytes, key order included (the
    file is read and written as JSON, in nbformat's layout), so that a sync merges cleanly with
    edits of the notebook's body."""
    config = config or book_config()
    changed = []
    for path in paths:
        text = Path(path).read_text()
        nb = nbformat.reads(text, as_version=4)
        want = head_cells(config, cited_keys(nb))
        head = [c for c in nb.cells[:2] if _is_head(c)]
        if len(head) == 2 and all(map(_same, head, want)):
            continue
        changed.append(path)
        if check:
            continue
        raw = json.loads(text)  # the cells as stored, in the same order as nb.cells
        stored = [r for c, r in zip(nb.cells[:2], raw["cells"]) if _is_head(c)]
        rest = [r for c, r in zip(nb.cells, raw["cells"]) if not _is_head(c)]
        cells = []
        for i, cell in enumerate(want):
            old = head[i] if i < len(head) else None
            if old is not None and _same(old, cell):  # up to date: it stays exactly as it is
                cells.append(stored[i])
                continue
            if old is not None and "id" in old:  # keep cell ids stable across re-syncs
                cell["id"] = old["id"]
            cells.append(_serialised(cell))
        raw["cells"] = cells + rest
        Path(path).write_text(json.dumps(raw, indent=1, ensure_ascii=False) + "\n")
    return changed


# --- Plain Markdown for student copies ----------------------------------------------------------

_DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>[^\n]*)\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$\n?",
    re.MULTILINE | re.DOTALL,
)
_ROLE = re.compile(r"\{(?P<name>[\w:-]+)\}`(?P<text>[^`]*)`")
_TARGET = re.compile(r"^\((?P<label>[\w:.-]+)\)=[ \t]*\n", re.MULTILINE)


def label_pages(root: Path = REPO_ROOT / "book") -> dict[str, str]:
    """Every ``:label:`` and ``(label)=`` target of the book -> the page (path without suffix)."""
    out = {}
    files = [*notebooks(root), *sorted(Path(root).rglob("*.md"))]
    for p in files:
        page = p.relative_to(Path(root).parent).with_suffix("").as_posix()
        if p.suffix == ".ipynb":
            text = "\n".join(c.source for c in nbformat.read(p, as_version=4).cells)
        else:
            text = p.read_text()
        for m in re.finditer(r"^:label:[ \t]*(\S+)|^\(([\w:.-]+)\)=", text, re.MULTILINE):
            out[m[1] or m[2]] = page
    return out


_HEADING_TARGET = re.compile(r"^\(([\w:.-]+)\)=[ \t]*\n+#+[ \t]+(.+)$", re.MULTILINE)
_LABELLED_BOX = re.compile(
    r"^(?:`{3,}|:{3,})\{(?:prf:)?(\w+)\}[ \t]*([^\n]*)\n(?::[^\n]*\n)*?:label:[ \t]*(\S+)",
    re.MULTILINE,
)


def label_titles(root: Path = REPO_ROOT / "book") -> dict[str, str]:
    """Every section target and labelled box of the book -> the words a reader knows it by.

    A section's title (``(findings-eq8)=`` over ``## Eq 8: ...``), or a box's title (``{prf:theorem}
    Theorem 1``; its kind when it has none). Each page is listed too, by its path without suffix
    (``book/part1/sf_vs_pd``), with its title. Outside the rendered book, where Sphinx cannot number
    and name a reference, :func:`plain_markdown` shows these instead of the bare label or file name.
    """
    out = {}
    files = [*notebooks(root), *sorted(Path(root).rglob("*.md"))]
    for p in files:
        if p.suffix == ".ipynb":
            cells = nbformat.read(p, as_version=4).cells
            text = "\n\n".join(c.source for c in cells if c.cell_type == "markdown")
        else:
            text = p.read_text()
        title = re.search(r"^# +(.+)$", text, re.MULTILINE)
        if title:
            out[p.relative_to(Path(root).parent).with_suffix("").as_posix()] = title[1].strip()
        for m in _HEADING_TARGET.finditer(text):
            out[m[1]] = m[2].strip()
        for m in _LABELLED_BOX.finditer(text):
            out.setdefault(m[3], m[2].strip() or m[1].capitalize())
    return out


@lru_cache(maxsize=1)
def _book_titles() -> dict[str, str]:
    """:func:`label_titles` of the book, read once per process (a student copy, the slides)."""
    return label_titles()


def citation(key: str) -> str:
    """``"Asadulaev et al., 2026"`` for a key of the book's bibliography (the key if unknown)."""
    entry = bib.entries().get(key)
    return bib.author_year(entry) if entry is not None else key


def _options(body: str) -> tuple[dict, str]:
    opts, lines = {}, body.splitlines()
    while lines and re.match(r"^:[\w-]+:", lines[0]):
        k, _, v = lines.pop(0)[1:].partition(":")
        opts[k] = v.strip()
    return opts, "\n".join(lines).strip("\n")


def plain_markdown(
    text: str,
    page: str,
    labels: dict | None = None,
    base: str | None = None,
    numbers: dict | None = None,
    titles: dict | None = None,
) -> str:
    """MyST ``text`` of the page ``page`` (e.g. ``"book/part1/sf_vs_pd"``) as plain Markdown.

    Exercises become a bold heading (``**Exercise 3** (label)``, numbered by ``numbers``), other
    directives (prf boxes, admonitions) a bold title over a block quote, and roles links to the
    rendered book (``base``): ``{doc}``, ``{ref}``, ``{prf:ref}`` and ``{numref}`` by label, shown
    by the title of what they point at (``titles``, :func:`label_titles`),
    ``{cite:p}`` as the key in brackets with a link to the bibliography, ``{py:func}`` as code.
    """
    labels = labels if labels is not None else label_pages()
    base = base or book_url()
    numbers = numbers or {}
    here = page.rsplit("/", 1)[0]

    def url(target_page: str, anchor: str = "") -> str:
        return f"{base}{target_page}.html" + (f"#{anchor}" if anchor else "")

    def directive(m):
        name, arg, body = m["name"], m["arg"].strip(), m["body"]
        opts, body = _options(body)
        body = _DIRECTIVE.sub(directive, body)
        if name in ("exercise",):
            label = opts.get("label", "")
            n = numbers.get(label)
            head = f"**Exercise{f' {n}' if n else ''}**" + (f": {arg}" if arg else "")
            return f"{head}\n\n{body}\n\n"
        if name == "solution":
            return ""  # student copies carry no solutions
        if name in ("code-cell", "code-block", "code"):
            return f"```{arg}\n{body}\n```\n"
        if name == "literalinclude":
            return f"(Source: `{arg}`, see the rendered book.)\n"
        kind = name.split(":")[-1].capitalize()
        # "Proposition 1" and "Book remark: ..." name their kind already
        title = (
            arg
            if arg.lower().startswith((kind.lower(), f"book {kind.lower()}"))
            else (kind + (f": {arg}" if arg else ""))
        )
        quoted = "\n".join("> " + line if line else ">" for line in body.splitlines())
        return f"**{title}**\n\n{quoted}\n\n"

    def role(m):
        name, txt = m["name"], m["text"]
        shown, target = txt, txt
        mm = re.match(r"^(.*?)\s*<([^>]+)>$", txt)
        if mm:
            shown, target = mm[1], mm[2]
        if name == "doc":
            path = target if target.startswith("/") else f"{here}/{target}"
            parts = []
            for piece in path.split("/"):
                if piece == "..":
                    parts.pop()
                elif piece not in ("", "."):
                    parts.append(piece)
            names = titles if titles is not None else _book_titles()
            shown = shown if mm else names.get("/".join(parts), parts[-1])
            return f"[{shown}]({url('/'.join(parts))})"
        if name in ("ref", "prf:ref", "numref", "eq"):
            pg = labels.get(target)
            if not mm:
                shown = (
                    f"Exercise {numbers[target]}"
                    if target in numbers
                    else (titles if titles is not None else _book_titles()).get(target, target)
                )
            return f"[{shown}]({url(pg, target) if pg else base})"
        if name.startswith("cite"):
            names = "; ".join(citation(k.strip()) for k in txt.split(","))
            return f"[{names}]({url('book/bibliography')})"
        if name.startswith("py:") or name == "code":
            return f"`{target}`"
        return txt

    text = _TARGET.sub("", text)
    text = _DIRECTIVE.sub(directive, text)
    return _ROLE.sub(role, text).rstrip() + "\n" if text.strip() else text


_PRF_BOX = re.compile(r"(?:`{3,}|:{3,})\{prf:\w+\}[^\n]*\n((?::[^\n]*\n)*)")
_PRF_BARE = re.compile(r"\{prf:ref\}`([^`<>]+)`")


def unnumbered_refs(pages: dict[str, str]) -> list[tuple[str, str]]:
    """(page, label) of each bare ``{prf:ref}`label``` to a statement box marked ``:nonumber:``.

    The book's statement boxes carry the paper's numbers in their titles and are ``:nonumber:``, so
    Sphinx has no number for a bare reference and renders it as "Proposition " with nothing after.
    Every reference to such a box needs its own text: ``{prf:ref}`Prop 2 <gap-prop2>```.
    ``pages`` maps a page name to its MyST text (all markdown cells of a notebook, joined).
    """
    unnumbered = set()
    for text in pages.values():
        for m in _PRF_BOX.finditer(text):
            opts = m.group(1)
            lab = re.search(r":label:\s*(\S+)", opts)
            if lab and ":nonumber:" in opts:
                unnumbered.add(lab.group(1))
    return [
        (page, m.group(1).strip())
        for page, text in pages.items()
        for m in _PRF_BARE.finditer(text)
        if m.group(1).strip() in unnumbered
    ]


_EXERCISE_BOX = re.compile(r"(?:`{3,}|:{3,})\{exercise\}[^\n]*\n((?::[^\n]*\n)*)")
_WORD_THEN_REF = re.compile(r"\b[Ee]xercises?\s*\(?\s*\{(?:ref|numref)\}`([^`<>]+)`")


def exercise_word_before_ref(pages: dict[str, str]) -> list[tuple[str, str]]:
    """(page, label) of each "exercise {ref}`label`" whose label is an exercise's.

    Sphinx renders a reference to an exercise as "Exercise 13", so the word before it doubles:
    "exercise Exercise 13". ``pages`` maps a page name to its MyST text.
    """
    exercises = set()
    for text in pages.values():
        for m in _EXERCISE_BOX.finditer(text):
            lab = re.search(r":label:\s*(\S+)", m.group(1))
            if lab:
                exercises.add(lab.group(1))
    return [
        (page, m.group(1).strip())
        for page, text in pages.items()
        for m in _WORD_THEN_REF.finditer(text)
        if m.group(1).strip() in exercises
    ]


_FENCE = re.compile(r"^(`{3,}|~{3,})\s*(\S*)")


def nested_fence_problems(pages: dict[str, str]) -> list[tuple[str, int, str]]:
    """(page, line, text) of each fence that closes a directive before its end.

    A MyST directive opened with three backticks (```` ```{solution} ````) ends at the first line of
    three backticks: a ```` ```python ```` block inside it closes the solution at its own closing
    fence, and the rest of the answer shows below the folded box. The outer fence needs more
    backticks than any fence inside it (```` ````{solution} ````). ``pages`` maps a page name to
    its MyST text; a notebook's page is its markdown cells joined.
    """
    out = []
    for page, text in pages.items():
        open_ = []  # (fence, is a directive) of each block now open, innermost last
        for i, line in enumerate(text.split("\n"), 1):
            m = _FENCE.match(line)
            if not m:
                continue
            fence, info = m.groups()
            inner = open_[-1] if open_ else None
            if not info:
                if inner and fence[0] == inner[0][0] and len(fence) >= len(inner[0]):
                    open_.pop()  # the closing fence of the innermost block
                continue
            if inner and inner[1] and fence[0] == inner[0][0] and len(fence) >= len(inner[0]):
                out.append((page, i, line.strip()))
            open_.append((fence, info.startswith("{")))
    return out


_HASH = re.compile(r"[0-9a-f]{32,64}")
_PAPER_FIGURE = re.compile(r"\bFig(?:ure|\.)?\s*\d")
_TITLE_CALL = re.compile(
    r"\b(?:set_title|suptitle|title)\s*\(\s*f?[\"']([^\"']*)|\btitle\s*=\s*f?[\"']([^\"']*)"
)


def figure_problems(nb) -> list[str]:
    """What keeps a notebook's figures from being numbered figures with a caption and alt text.

    A code cell that stores an image must carry, in its metadata, ``mystnb.figure.caption`` and
    ``mystnb.figure.name`` (myst-nb wraps the output in a numbered figure with that caption and
    label) and ``mystnb.image.alt`` (the image's alt text; without it the page shows myst-nb's file
    hash to a screen reader). myst-nb applies the figure options to every display output of the
    cell, so such a cell must display exactly one: an explorer's controls go in a cell of their
    own. A figure's title must not carry a figure number of the paper ("Figure 3: ..."): the
    caption says which of the paper's figures it reproduces.
    """
    problems, names = [], {}
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        cid = c.get("id", "?")
        shown = [
            o
            for o in c.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result")
        ]
        images = [o for o in shown if "image/png" in o.get("data", {})]
        meta = c.metadata.get("mystnb", {})
        figure, image = meta.get("figure", {}), meta.get("image", {})
        if not images and not figure:
            continue
        if images and not str(figure.get("caption", "")).strip():
            problems.append(f"cell {cid}: a figure without a caption (mystnb.figure.caption)")
        if images and not str(figure.get("name", "")).startswith("fig-"):
            problems.append(f"cell {cid}: a figure without a name fig-... (mystnb.figure.name)")
        alt = str(image.get("alt", "")).strip()
        if images and (not alt or _HASH.fullmatch(alt) or alt == figure.get("caption")):
            problems.append(f"cell {cid}: a figure without its own alt text (mystnb.image.alt)")
        if figure and len(shown) != 1:
            problems.append(
                f"cell {cid}: figure options on a cell with {len(shown)} display outputs; "
                "each would get the caption and the label"
            )
        if figure.get("name"):
            if figure["name"] in names:
                problems.append(f"cell {cid}: the figure name {figure['name']} is used twice")
            names[figure["name"]] = cid
        for m in _TITLE_CALL.finditer(c.source):
            title = m.group(1) or m.group(2) or ""
            if _PAPER_FIGURE.search(title):
                problems.append(
                    f"cell {cid}: the title {title!r} carries a figure number; "
                    "put the paper's figure number in the caption"
                )
    return problems


def book_pages(root: Path = REPO_ROOT / "book") -> dict[str, str]:
    """The MyST text of every page under ``root``: markdown files, and notebooks' markdown cells."""
    pages = {}
    for path in sorted(root.rglob("*.md")):
        pages[str(path.relative_to(root))] = path.read_text()
    for path in notebooks(root):
        nb = nbformat.read(path, as_version=4)
        pages[str(path.relative_to(root))] = "\n\n".join(
            c.source for c in nb.cells if c.cell_type == "markdown"
        )
    return pages


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tools.notebooks",
        description="Keep every notebook's generated first cells (macros, "
        "install) in sync with _config.yml.",
    )
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--sync", action="store_true", help="rewrite the head cells where they differ")
    g.add_argument(
        "--check", action="store_true", help="exit 1 if a notebook's head cells are stale"
    )
    a = ap.parse_args(argv)
    changed = sync(notebooks(), check=a.check)
    for p in changed:
        print(f"{'stale' if a.check else 'updated'}: {p.relative_to(REPO_ROOT)}")
    if a.check and changed:
        print("run `python -m tools.notebooks --sync`", file=sys.stderr)
        return 1
    bare = unnumbered_refs(book_pages())
    for page, label in bare:
        print(
            f"{page}: {{prf:ref}}`{label}` points at a :nonumber: box and would render without a "
            f"number; give it text: {{prf:ref}}`<text> <{label}>`",
            file=sys.stderr,
        )
    doubled = exercise_word_before_ref(book_pages())
    for page, label in doubled:
        print(
            f'{page}: "exercise {{ref}}`{label}`" renders as "exercise Exercise N"; '
            "drop the word before the reference",
            file=sys.stderr,
        )
    fences = nested_fence_problems(book_pages())
    for page, line, text in fences:
        print(
            f"{page}, line {line} of its markdown: {text!r} inside a directive opened with no more "
            "backticks closes the directive early; open the directive with one backtick more",
            file=sys.stderr,
        )
    figures = [
        f"{p.relative_to(REPO_ROOT)}: {problem}"
        for p in notebooks()
        for problem in figure_problems(nbformat.read(p, as_version=4))
    ]
    for line in figures:
        print(line, file=sys.stderr)
    return 1 if (a.check and (bare or doubled or fences or figures)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
