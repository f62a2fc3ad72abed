"""Printed outputs fit the book's text column.

The book shows a stream, and a result that has nothing richer than text/plain, as preformatted
text that does not wrap: a line wider than :data:`vghlib.tables.TEXT_WIDTH` characters hides its
end off the right edge of the column. The browser test (``make test-browser``) measures the same
thing on the built page; this test reads the stored outputs, so that it runs with the unit tests.
A result table is HTML (:mod:`vghlib.tables`), whose text/plain the book does not show.
"""

from pathlib import Path

import nbformat
import pytest

from vghlib.tables import TEXT_WIDTH

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(
    p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
#: Output types the book renders instead of text/plain (myst-nb's priority for HTML).
RICHER = ("text/html", "text/markdown", "text/latex", "image/", "application/vnd.jupyter.widget")


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
    wide = too_wide(nbformat.read(path, as_version=4))
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
