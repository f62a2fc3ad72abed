"""vghlib.tables: one table, two forms (HTML for the book, aligned text for nbval), that agree."""

import html
import re

import pytest
from IPython.core.formatters import DisplayFormatter

from vghlib import exercises
from vghlib.symbolic import CheckResult
from vghlib.tables import TEXT_WIDTH, Section, Table, interval, numbers, show, wrap

T = Table(
    ["predictor", "ρ", "95% interval"],
    [Section("P_gap with <exact> Λ"), ("P_gap", "+0.65", "[+0.15, +0.81]"), ("Σ", "-0.70", "")],
    title="a title",
    notes=["a note"],
)


def test_the_text_form_aligns_the_columns():
    assert T.text().splitlines() == [
        "a title",
        "predictor      ρ    95% interval",
        "--- P_gap with <exact> Λ",
        "P_gap      +0.65  [+0.15, +0.81]",
        "Σ          -0.70",
        "a note",
    ]
    assert repr(T) == str(T) == T.text()
    # left-aligned columns on request
    t = Table(["a", "b"], [("1", "22")], align="rl")
    assert t.text().splitlines() == ["a  b", "1  22"]


def test_the_html_form_holds_the_same_cells_escaped():
    h = T._repr_html_()
    assert h.startswith('<div class="vgh-table" style="overflow-x: auto')
    assert h.count("<tr>") == 3 and h.count('class="vgh-table-section"') == 1  # header + 2 rows
    assert 'colspan="3"' in h and "&lt;exact&gt;" in h and "<exact>" not in h
    cells = [html.unescape(c) for c in re.findall(r"<t[dh](?: [^>]*)?>(.*?)</t[dh]>", h)]
    assert cells == [
        "predictor",
        "ρ",
        "95% interval",
        "P_gap with <exact> Λ",
        "P_gap",
        "+0.65",
        "[+0.15, +0.81]",
        "Σ",
        "-0.70",
        "",
    ]
    assert '<p class="vgh-table-title">a title</p>' in h and ">a note</p>" in h
    assert h == T._repr_html_()  # the same bytes every time: nbval compares them


def test_a_row_of_the_wrong_length_or_a_bad_alignment_is_refused():
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        Table(["a", "b", "c"], [("1", "2")])
    with pytest.raises(ValueError, match="one of l or r per column"):
        Table(["a", "b"], [], align="lc")
    with pytest.raises(ValueError, match="at least one column"):
        Table([], [])


def test_ipython_shows_both_forms_and_a_script_prints_the_text(capsys):
    data, _ = DisplayFormatter().format(T)
    assert data["text/plain"] == T.text() and data["text/html"] == T._repr_html_()
    show(T)  # no kernel here: the text is printed
    assert capsys.readouterr().out == T.text() + "\n"


def test_numbers_formats_each_column_and_leaves_text_alone():
    t = numbers(
        ["setting", "ρ", "n"],
        [Section("a"), ("x", 0.6512, 3), ("y", None, 12), ("z", interval(-0.1, 0.25), 4)],
        ["+.2f", "d"],
    )
    assert t.rows == (
        Section("a"),
        ("x", "+0.65", "3"),
        ("y", "", "12"),
        ("z", "[-0.10, +0.25]", "4"),
    )
    assert t.align == "lrr"
    with pytest.raises(ValueError, match="1 formats for 2 number columns"):
        numbers(["a", "b", "c"], [("x", 1, 2)], [".2f"])
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        numbers(["a", "b", "c"], [("x", 1)])


def test_wrap_keeps_lines_that_fit_and_indents_the_rest():
    short = "a line that fits\n  and another"
    assert wrap(short) == short
    long = "  seed 0: " + " ".join(f"word{i}" for i in range(30))
    out = wrap(long).splitlines()
    assert len(out) > 1 and all(len(line) <= TEXT_WIDTH for line in out)
    assert out[0].startswith("  seed 0: ") and all(line.startswith("      ") for line in out[1:])
    assert " ".join(" ".join(out).split()) == " ".join(long.split())  # nothing lost or added
    # control: a word longer than the line is kept whole, so that line stays too wide
    assert wrap("x" * 100) == "x" * 100


def test_the_library_printers_fit_the_text_column():
    feedback = exercises.check_sfpd_cross(None)
    assert len(f"[{feedback.exercise}] {feedback.message}") > TEXT_WIDTH  # too long unwrapped
    assert max(len(line) for line in repr(feedback).splitlines()) <= TEXT_WIDTH
    res = CheckResult("a check whose name is long: " + "word " * 20, 0, "x + y" * 30, False)
    assert max(len(line) for line in res.line().splitlines()) <= TEXT_WIDTH
    assert max(len(line) for line in res.summary(200).splitlines()) <= TEXT_WIDTH
    assert "residual:" in res.summary(200) and res.line().startswith("FAILS  a check")
