"""The chapters' verdict records and the pages written from them (vghlib/tools verdicts)."""

import copy
import json
import math
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest

from tools import verdicts as T
from vghlib import verdicts as V

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- the record


@pytest.mark.parametrize(
    "kw, word",
    [
        (dict(as_stated=True), "holds"),
        (dict(as_stated=True, with_implicit=False, corrected=False), "holds"),
        (dict(as_stated=False, with_implicit=True), "holds with conditions"),
        (dict(as_stated=False, with_implicit=False, corrected=True), "corrected"),
        (dict(as_stated=False, corrected=True), "corrected"),
        (dict(as_stated=False), "fails"),
        (dict(as_stated=False, with_implicit=False, corrected=False), "fails"),
    ],
)
def test_decide(kw, word):
    assert V.decide(**kw) == word


def test_decide_refuses_what_is_not_a_boolean():
    with pytest.raises(TypeError, match="as_stated"):
        V.decide(as_stated=np.float64(0.3))  # a number where a finding belongs
    assert V.decide(as_stated=bool(np.bool_(True))) == "holds"


@pytest.mark.parametrize(
    "args, match",
    [
        (("9", "fails", "x"), "scorecard's id"),
        (("C9", "fail", "x"), "use one of"),
        (("C9", "fails", ""), "one non-empty line"),
        (("C9", "fails", "two\nlines"), "one non-empty line"),
        (("C9", "fails", "see {ref}`x`"), "plain text"),
        (("C9", "fails", "with $x$"), "plain text"),
    ],
)
def test_a_malformed_record_is_refused(args, match):
    with pytest.raises(ValueError, match=match):
        V.Verdict(*args)


def test_numbers_are_rounded_and_must_be_finite():
    v = V.Verdict("C1a", "holds", "x", {"a": 1 / 3, "b": [2, 0.123456789], "c": "text"})
    assert v.numbers == {"a": 0.3333, "b": [2, 0.1235], "c": "text"}
    with pytest.raises(ValueError, match="non-finite"):
        V.Verdict("C1a", "holds", "x", {"a": math.nan})
    with pytest.raises(TypeError, match="not a number"):
        V.Verdict("C1a", "holds", "x", {"a": True})


def test_the_record_round_trips_through_its_output():
    v = V.Verdict(
        "C12", "fails", "A summary.", {"rho": -0.79}, scope="fails on the laptop trajectories"
    )
    bundle = v._repr_mimebundle_()
    assert bundle["text/plain"].startswith("C12: fails on the laptop trajectories. A summary.")
    assert "rho = -0.79" in bundle["text/plain"]
    back = V.from_json(
        json.loads(json.dumps(bundle[V.MIME], sort_keys=True))
    )  # as nbformat stores it
    assert back == v and back.label == "fails on the laptop trajectories"
    ordered = V.Verdict("C9", "fails", "x", {"z": 1, "a": 2})
    stored = json.loads(json.dumps(ordered.to_dict(), sort_keys=True))
    assert V.from_json(stored).text() == ordered.text()  # the chapter's order, not the sorted one
    with pytest.raises(ValueError, match="pairs"):
        V.from_json({**stored, "numbers": [["z", 1, 2]]})
    with pytest.raises(ValueError, match="unknown fields"):
        V.from_json({**bundle[V.MIME], "extra": 1})


def test_a_check_whose_control_passed_cannot_record_a_verdict():
    with pytest.raises(ValueError, match="negative control passed"):
        V.record("C4", "holds", "x", control_failed=False)


# ---------------------------------------------------------------- the pages


def test_the_pages_say_what_the_chapters_record():
    """The scorecard, the findings and landing pages are current with the stored notebooks."""
    assert T.stale(ROOT) == [], "run python -m tools.verdicts --write"
    assert T.main(["--check"]) == 0


def test_every_claim_is_decided_by_a_computed_verdict():
    """Each record comes from a cell that computes its word with verdicts.decide, not typed in."""
    for claim, found in T.collect(ROOT).items():
        cell = next(
            c
            for c in nbformat.read(ROOT / found.notebook, as_version=4).cells
            if c.get("id") == found.cell_id
        )
        assert "verdicts.decide(" in cell.source, f"{claim}: {found.notebook} cell {found.cell_id}"
        assert f'"{claim}"' in cell.source


def _copy_book(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "book",
        tmp_path / "book",
        ignore=shutil.ignore_patterns("*.png", ".ipynb_checkpoints"),
    )
    return tmp_path


def _edit_record(root: Path, claim: str, change) -> Path:
    found = T.collect(root)[claim]
    path = root / found.notebook
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.get("id") != found.cell_id:
            continue
        for out in cell.outputs:
            rec = out.get("data", {}).get(V.MIME)
            if rec and rec["claim"] == claim:
                change(out, rec)
    nbformat.write(nb, path)
    return path


def test_changing_a_chapter_verdict_changes_the_scorecard(tmp_path):
    root = _copy_book(tmp_path)
    assert T.stale(root) == []  # the copy starts current

    def flip(out, rec):
        rec["verdict"] = "holds"
        rec["summary"] = "Holds in every setting (planted)."

    _edit_record(root, "C9", flip)
    diffs = "".join(T.stale(root))
    assert "book/scorecard.md" in diffs and "book/findings.md" in diffs and "book/intro.md" in diffs
    assert T.main(["--check", "--root", str(root)]) == 1
    T.write(root)
    card = (root / "book" / "scorecard.md").read_text()
    row = next(line for line in card.splitlines() if line.startswith("| C9 |"))
    assert 'verdict-holds">holds</span>' in row
    assert "**C9.** Holds in every setting (planted)." in card
    assert (
        'C9 <span class="verdict verdict-holds">holds</span>'
        in (root / "book" / "findings.md").read_text()
    )
    assert T.stale(root) == []


def test_a_claim_without_a_record_or_with_two_is_refused(tmp_path):
    root = _copy_book(tmp_path)
    found = T.collect(root)["C9"]
    path, other = root / found.notebook, root / "book" / "part1" / "costates.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == found.cell_id)
    c9 = next(o for o in cell.outputs if o.get("data", {}).get(V.MIME, {}).get("claim") == "C9")

    second = nbformat.read(other, as_version=4)  # a second record of C9, in another chapter
    second.cells.append(nbformat.v4.new_code_cell("", outputs=[copy.deepcopy(c9)]))
    nbformat.write(second, other)
    with pytest.raises(T.VerdictError, match="C9 has 2 verdict records"):
        T.collect(root)

    second.cells[-1].outputs[0]["data"][V.MIME]["claim"] = (
        "C99"  # a claim the scorecard does not list
    )
    nbformat.write(second, other)
    with pytest.raises(T.VerdictError, match="does not list: C99"):
        T.collect(root)
    assert T.main(["--check", "--root", str(root)]) == 2

    shutil.copy(ROOT / "book" / "part1" / "costates.ipynb", other)  # no record of C9 at all
    cell.outputs = [o for o in cell.outputs if o is not c9]
    nbformat.write(nb, path)
    with pytest.raises(T.VerdictError, match="no chapter records a verdict on C9"):
        T.collect(root)
