"""Printed outputs and code inputs fit the book's text column.

The book shows a stream, and a result that has nothing richer than text/plain, as preformatted
text that does not wrap: a line wider than :data:`vghlib.tables.TEXT_WIDTH` characters hides its
end off the right edge of the column. A code input is preformatted too: a code line longer than
:data:`vghlib.tables.CODE_WIDTH` characters (:data:`vghlib.tables.FOLDED_CODE_WIDTH` in a
``hide-input`` cell's toggle) makes its box scroll sideways. The browser test
(``make test-browser``) measures both on the built page; this test reads the stored notebooks, so
that it runs with the unit tests. A result table is HTML (:mod:`vghlib.tables`), whose text/plain
the book does not show.
"""

from functools import cache
from pathlib import Path

import nbformat
import pytest

from tools.sphinxext import break_names_in_tables
from vghlib.tables import CODE_WIDTH, FOLDED_CODE_WIDTH, TEXT_WIDTH

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(
    p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
#: Output types the book renders instead of text/plain (myst-nb's priority for HTML).
RICHER = ("text/html", "text/markdown", "text/latex", "image/", "application/vnd.jupyter.widget")


@cache
def read(path: Path):
    return nbformat.read(path, as_version=4)


def printed(nb) -> list[tuple[str, str]]:
    """(cell id, text) of every output that the book shows as preformatted text."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                out.append((cell.get("id", "?"), o.text))
            elif o.output_type in ("display_data", "execute_result"):
                data = o.get("data", {})
                if not any(k.startswith(RICHER) for k in data) and "text/plain" in data:
                    out.append((cell.get("id", "?"), data["text/plain"]))
    return out


def too_wide(nb) -> list[str]:
    return [
        f"cell {cid}: {len(line)} characters: {line[:60]}..."
        for cid, text in printed(nb)
        for line in text.splitlines()
        if len(line) > TEXT_WIDTH
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS])
def test_printed_lines_fit_the_text_column(path):
    wide = too_wide(read(path))
    assert not wide, f"{path.name}: lines wider than {TEXT_WIDTH} characters:\n" + "\n".join(wide)


def test_a_wide_printed_line_is_caught_and_a_table_is_not():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(...)")
    line = "x " * TEXT_WIDTH
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="fits\n" + line + "\n")]
    nb.cells = [cell]
    assert len(too_wide(nb)) == 1  # the control: the check can fail
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", {"text/plain": line, "text/html": "<table></table>"}
        ),
        nbformat.v4.new_output("execute_result", {"text/plain": "fits"}, execution_count=1),
    ]
    assert too_wide(nb) == []
    cell.outputs[1]["data"]["text/plain"] = line  # a result shown as text is checked too
    assert len(too_wide(nb)) == 1


def code_width(cell) -> int:
    """The longest code line the cell's input shows whole at a 1280-px window: its 684-px box in
    the 688-px column holds :data:`~vghlib.tables.CODE_WIDTH` characters of the code font (8.43 px
    each), the 666-px box of a ``hide-input`` cell's toggle :data:`~vghlib.tables.FOLDED_CODE_WIDTH`
    (the derivations are next to :data:`~vghlib.tables.TEXT_WIDTH`)."""
    return FOLDED_CODE_WIDTH if "hide-input" in cell.metadata.get("tags", []) else CODE_WIDTH


def long_code_lines(nb) -> list[str]:
    """One line per code line longer than its cell's :func:`code_width`: the cell's id, the line's
    length and the line."""
    return [
        f"cell {cell.get('id', '?')}: {len(line)} characters (at most {code_width(cell)}): {line}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if len(line) > code_width(cell)
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS])
def test_code_lines_fit_the_text_column(path):
    long = long_code_lines(read(path))
    assert not long, (
        f"{path.relative_to(ROOT).as_posix()}: code lines too long for their code input, which "
        "scrolls sideways at 1280 px (wrap them by hand):\n" + "\n".join(long)
    )


def test_a_code_line_one_character_too_long_is_caught(tmp_path):
    def planted(line, tags=()):
        nb = nbformat.v4.new_notebook()
        code = nbformat.v4.new_code_cell(f"x = 1\n{line}\nprint(x)")
        code.metadata["tags"] = list(tags)
        # a markdown cell wraps in the book: its long lines are not code lines
        nb.cells = [nbformat.v4.new_markdown_cell("prose " * 40), code]
        path = tmp_path / "planted.ipynb"
        nbformat.write(nb, path)
        return code.id, long_code_lines(nbformat.read(path, as_version=4))

    def line(n):  # a code line of n characters
        out = "y = " + repr("a" * (n - 6))
        assert len(out) == n
        return out

    cell_id, found = planted(line(CODE_WIDTH + 1))
    assert found == [
        f"cell {cell_id}: {CODE_WIDTH + 1} characters (at most {CODE_WIDTH}): "
        + line(CODE_WIDTH + 1)
    ]
    assert planted(line(CODE_WIDTH))[1] == []  # the control: CODE_WIDTH characters pass
    # in a hide-input cell the toggle's box is narrower
    assert len(planted(line(FOLDED_CODE_WIDTH + 1), ["hide-input"])[1]) == 1
    assert planted(line(FOLDED_CODE_WIDTH), ["hide-input"])[1] == []


def test_long_names_in_table_cells_break_between_their_parts():
    name = '<span class="pre">vghlib.estimators.sf_samples</span>'
    cell = f'<code class="docutils literal">{name}</code>'
    page = f"<p>{cell}</p><table><tr><td>{cell}</td><td>a_b.c</td></tr></table>"
    out = break_names_in_tables(page)
    # in a table: a break opportunity after each dot and underscore of the code, not mid-word
    assert '<span class="pre">vghlib.<wbr>estimators.<wbr>sf_<wbr>samples</span>' in out
    # control: the same code in running text, plain text in a cell, and the tags are untouched
    assert out.startswith(f"<p>{cell}</p>") and "<td>a_b.c</td>" in out
    assert out.replace("<wbr>", "") == page
