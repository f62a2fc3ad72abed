"""Every number the prose of a notebook quotes is printed by a cell of the same notebook.

A decimal with two or more decimals in a markdown cell (solutions excluded) must appear in the
notebook's code or stored outputs, either as written or as a printed number that rounds to it
(``3.99e-01`` prints what the prose calls 0.399). nbval then guarantees that those outputs are
what the code produces today, so prose and results cannot drift apart silently. The few numbers
that are inputs or constants named in the prose, not results, are listed in ALLOWED.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "book").rglob("*.ipynb"))
PROSE_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d{2,}(?!\d)")
ANY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
SOLUTION = re.compile(r"^(`{3,}|:{3,})\{solution\}.*?^\1", re.S | re.M)

# Inputs and constants quoted in the prose (not measured results), by notebook.
ALLOWED = {
    "book/part1/costates.ipynb": {"1.05", "0.25"},  # a perturbation factor of a test; an exercise input
    "book/part3/sampling_gap.ipynb": {"0.721"},  # 1/(2 log 2), derived in the text
}


def unquoted_numbers(nb) -> list[str]:
    printed, numbers = [], set()
    for c in nb.cells:
        if c.cell_type == "code":
            printed.append(c.source)
            for o in c.outputs:
                printed.append(o.get("text", "") + o.get("data", {}).get("text/plain", ""))
    text = "\n".join(printed)
    for tok in ANY_NUMBER.findall(text):
        try:
            numbers.add(float(tok))
        except ValueError:
            pass
    missing = []
    for c in nb.cells:
        if c.cell_type != "markdown":
            continue
        for n in PROSE_NUMBER.findall(SOLUTION.sub("", c.source)):
            if n in text or n.lstrip("-") in text:
                continue
            decimals = len(n.split(".")[1])
            if any(round(abs(x), decimals) == round(abs(float(n)), decimals) for x in numbers):
                continue
            missing.append(n)
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS])
def test_prose_numbers_are_printed(path):
    rel = path.relative_to(ROOT).as_posix()
    missing = set(unquoted_numbers(nbformat.read(path, as_version=4))) - ALLOWED.get(rel, set())
    assert not missing, f"{rel}: the prose quotes numbers no cell prints: {sorted(missing)}"


def test_a_typed_in_number_is_caught():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(f'{2/3:.4f}')")
    cell.outputs = [nbformat.v4.new_output("stream", text="0.6667\n")]
    nb.cells = [cell, nbformat.v4.new_markdown_cell("The estimate is 0.6667, not 0.6676.\n\n"
                                                    "```{solution} x\nA hidden 0.1234.\n```")]
    assert unquoted_numbers(nb) == ["0.6676"]


PAGES = ["book/findings.md", "book/scorecard.md"]


def unprinted_page_numbers(text: str, notebooks) -> list[str]:
    """The numbers of a markdown page that no notebook of the book prints (its sections cite them)."""
    combined = nbformat.v4.new_notebook()
    combined.cells = [c for nb in notebooks for c in nb.cells if c.cell_type == "code"]
    combined.cells.append(nbformat.v4.new_markdown_cell(text))
    return unquoted_numbers(combined)


@pytest.mark.parametrize("page", PAGES)
def test_the_findings_and_scorecard_quote_only_printed_numbers(page):
    notebooks = [nbformat.read(p, as_version=4) for p in NOTEBOOKS]
    missing = unprinted_page_numbers((ROOT / page).read_text(), notebooks)
    assert not missing, f"{page} quotes numbers no notebook prints: {sorted(set(missing))}"
    # control: a number typed into the page is caught
    assert unprinted_page_numbers("A made-up gap of 0.98765.", notebooks) == ["0.98765"]
