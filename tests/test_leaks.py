"""No self-checking exercise shows its answer outside its solution.

For every exercise of the book that checks itself (``vghlib.exercises``), the checker's reference
answer is written in the forms a page could show it: at the precisions the book prints (3 and 4
decimals, 3 and 4 significant digits, and as a small fraction where it is one), and, for a symbolic
answer, term by term in sympy's, LaTeX's and Unicode's notation. None of them may appear in the
chapter's visible text (markdown outside the ``{solution}`` blocks, code, and outputs), nor anywhere
in the student copy that ``tools.student`` writes. A symbolic answer counts as shown when every one
of its terms appears in one cell, in any order. The controls plant a leak of each kind and require
it to be found, and plant the same text inside a solution and require it to be allowed.
"""

import copy
import re
from fractions import Fraction
from pathlib import Path

import nbformat
import pytest
import sympy as sp

from tools import student
from vghlib import exercises as X

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
FORMATS = (".3f", ".4f", ".3g", ".4g")
GREEK = {"mu": ("\\mu", "μ"), "sigma": ("\\sigma", "σ")}
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _chapters() -> list[Path]:
    return sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _where(exercise: str) -> Path | None:
    """The chapter that calls the exercise's checker, if any."""
    name = X.CHECKERS[exercise].__name__
    found = [p for p in _chapters() if re.search(rf"\b{name}\(", p.read_text())]
    assert len(found) <= 1, f"{exercise} is checked in {found}"
    return found[0] if found else None


EXERCISES = {e: p for e in sorted(X.CHECKERS) if (p := _where(e)) is not None}


def normalise(text: str) -> str:
    """Whitespace, braces, sizing and spacing commands removed; fraction macros unified."""
    text = re.sub(r"\\(?:left|right|[,;!:]|displaystyle)", "", text)
    text = re.sub(r"\\[td]frac", r"\\frac", text)
    return re.sub(r"[\s{}]", "", text)


def _term_forms(term: sp.Expr) -> set[str]:
    plain = str(term).replace(" ", "")
    forms = {plain, normalise(sp.latex(term))}
    caret = re.sub(r"\*\*(\d+)", r"^\1", plain).replace("*", "")
    for name, (tex, uni) in GREEK.items():
        forms.add(re.sub(rf"\b{name}\b", lambda _: tex, caret))
        forms.add(
            re.sub(r"\^(\d+)", lambda m: m[1].translate(SUPERSCRIPT), caret.replace(name, uni))
        )
    both = caret
    for name, (tex, _) in GREEK.items():
        both = re.sub(rf"\b{name}\b", lambda _, t=tex: t, both)
    uni = caret
    for name, (_, u) in GREEK.items():
        uni = uni.replace(name, u)
    forms |= {both, re.sub(r"\^(\d+)", lambda m: m[1].translate(SUPERSCRIPT), uni)}
    return {normalise(f) for f in forms if f}


def answer_forms(ref) -> tuple[str, list]:
    """("symbolic", [forms of each term]) or ("numeric", [regexes])."""
    if isinstance(ref, sp.Expr) and ref.free_symbols:
        return "symbolic", [_term_forms(t) for t in sp.Add.make_args(sp.expand(ref))]
    x = float(ref)
    texts = {format(x, f) for f in FORMATS}
    frac = Fraction(x).limit_denominator(12)
    pats = [
        re.compile(rf"(?<![\d.]){re.escape(t).replace('-', '[-−]')}(?![\d])")
        for t in texts
        if len(t.lstrip("-0.")) >= 2  # 0.0 or 1 alone would match anything
    ]
    if frac.denominator > 1 and abs(float(frac) - x) < 1e-12:
        p, q = frac.numerator, frac.denominator
        pats.append(
            re.compile(rf"(?<![\d.]){p}\s*/\s*{q}(?![\d])|\\[td]?frac\{{?{p}\}}?\{{?{q}\}}?")
        )
    return "numeric", pats


def shows(text: str, forms) -> bool:
    kind, items = forms
    if kind == "numeric":
        return any(p.search(text) for p in items)
    flat = normalise(text)
    return all(any(f in flat for f in term) for term in items)


def _visible(cell, strip_solutions: bool = True) -> str:
    if cell.cell_type == "markdown":
        return student.strip_solutions(cell.source)[0] if strip_solutions else cell.source
    parts = [cell.source]
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append(out["text"])
        for mime, value in out.get("data", {}).items():
            if mime.startswith("text/"):
                parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def leaks(nb, forms) -> list[str]:
    """The ids of the cells that show the answer (markdown solutions excluded)."""
    return [c.get("id", "?") for c in nb.cells if shows(_visible(c), forms)]


@pytest.fixture(scope="module")
def student_copies(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    student.export_student_copy(BOOK, out)
    return out


def test_every_self_checking_exercise_of_the_book_is_found():
    assert len(EXERCISES) >= 9, sorted(EXERCISES)


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_the_answer_is_not_shown_outside_its_solution(exercise):
    forms = answer_forms(X.reference(exercise))
    path = EXERCISES[exercise]
    found = leaks(nbformat.read(path, as_version=4), forms)
    assert not found, f"{exercise}: {path.relative_to(ROOT)} shows the answer in cells {found}"


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_the_answer_is_not_in_the_student_copy(exercise, student_copies):
    forms = answer_forms(X.reference(exercise))
    for path in sorted(student_copies.rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        found = [c.get("id", "?") for c in nb.cells if shows(_visible(c, False), forms)]
        assert not found, f"{exercise}: student copy {path.name} shows the answer in cells {found}"


# ---------------------------------------------------------------- controls


def _planted(path: Path, text: str, solution: bool = False):
    nb = copy.deepcopy(nbformat.read(path, as_version=4))
    if solution:
        text = f"```{{solution}} planted\n:class: dropdown\n\n{text}\n```"
    nb.cells.append(nbformat.v4.new_markdown_cell(text))
    return nb


@pytest.mark.parametrize(
    "exercise, text",
    [
        ("sfpd-ex-cross", "PD becomes the noisier one above $\\omega^\\ast=0.8512$."),
        ("sfpd-ex-cross", "crossover ω* = 0.851"),
        ("ctrl-ex-factor", "the factor is $\\tfrac{11}{12}$"),
        ("ctrl-ex-factor", "c = 11/12"),
        ("sfpd-ex-var", "$\\Var[g]=15\\sigma^2+\\mu^4/\\sigma^2 + 14 \\mu^{2}$"),
        ("sfpd-ex-var", "Var = μ⁴/σ² + 14μ² + 15σ²"),
        ("sfpd-ex-var", "mu**4/sigma**2 + 14*mu**2 + 15*sigma**2"),
    ],
)
def test_control_a_planted_leak_is_found_and_the_same_text_in_a_solution_is_not(exercise, text):
    forms = answer_forms(X.reference(exercise))
    path = EXERCISES[exercise]
    assert leaks(_planted(path, text), forms), text
    assert not leaks(_planted(path, text, solution=True), forms)


def test_control_one_term_alone_is_not_the_answer():
    forms = answer_forms(X.reference("sfpd-ex-var"))
    assert not shows("the PD variance is $4\\sigma^2$ and $15\\sigma^2$ is a lower bound", forms)
    assert shows("$15\\sigma^2+14\\mu^2+\\mu^4/\\sigma^2$", forms)
