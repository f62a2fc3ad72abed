"""book/notation.md names one vghlib function per equation; each exists and its docstring cites
it."""

import importlib
import inspect
import re
from pathlib import Path

NOTATION = Path(__file__).resolve().parent.parent / "book" / "notation.md"


def equation_rows(text: str) -> list[tuple[str, str]]:
    """(citation, dotted function path) for every row of the "Where each equation lives" table."""
    section = text.split("## Where each equation lives", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        m = re.match(r"\|\s*([^|]+?)\s*\|[^|]*\|\s*`(vghlib\.[\w.]+)`\s*\|", line)
        if m:
            rows.append((m.group(1), m.group(2)))
    return rows


def problems(rows) -> list[str]:
    out = []
    for cite, path in rows:
        mod, name = path.rsplit(".", 1)
        try:
            fn = getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError):
            out.append(f"{path}: no such function")
            continue
        if cite not in (inspect.getdoc(fn) or ""):
            out.append(f"{path}: docstring does not cite {cite!r}")
    return out


def test_every_named_function_exists_and_cites_its_equation():
    rows = equation_rows(NOTATION.read_text())
    assert len(rows) >= 25
    cites = {c for c, _ in rows}
    for needed in (
        "eq 1",
        "eq 2",
        "eq 3",
        "Lemma 1",
        "eq 5",
        "eq 6",
        "eq 7",
        "eq 9",
        "eq 14",
        "Prop 2",
        "Prop 3",
        "eq 23",
        "eq 28",
    ):
        assert needed in cites, needed
    assert problems(rows) == []


def test_the_check_catches_a_wrong_citation_and_a_missing_function():
    assert problems([("eq 28", "vghlib.grpo.advantages")]) == [
        "vghlib.grpo.advantages: docstring does not cite 'eq 28'"
    ]
    assert problems([("eq 1", "vghlib.grpo.no_such_thing")]) == [
        "vghlib.grpo.no_such_thing: no such function"
    ]
