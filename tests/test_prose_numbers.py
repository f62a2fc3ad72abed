"""Numbers in the prose are printed by the cells they cite.

Notebooks. A decimal with two or more decimals in a markdown cell (solutions excluded) must appear
in the notebook's code or stored outputs, either as written or as a printed number that rounds to it
(``3.99e-01`` prints what the prose calls 0.399). nbval then guarantees that those outputs are what
the code produces today, so prose and results cannot drift apart silently. A number in scientific
notation is written as mathematics, ``$6.13\\times10^{9}$``, and must be printed with the same
digits (``6.13e+09``). The few numbers that are inputs or constants named in the prose, not results,
are listed in ALLOWED. The generated head cell (macros, and the list of references with their arXiv
numbers) is not prose.

The findings page and the scorecard. These pages quote the results of other pages, so each number
they quote is checked against the stored outputs (never the code) of the section its sentence links
to: a markdown link ``[text](part3/credit.ipynb#heading-anchor)`` selects the cells under that
heading (its subsections included), a ``{doc}`` role the whole page. A number whose sentence links
nothing takes the links of the next sentence of its paragraph that has some (the pages put the link
at the end of the sentences it covers), else of the previous one; a note under the scorecard's
table takes the links of its claim's row. ``read_page`` says what counts as a quoted number and why
every other numeral does not, ``matches`` what "at the precision printed" means, and ``LABELS``
which numbers must be found next to the words that label them in the output. The control changes
each quoted number by one in its last place, in turn, and requires the check to report it.
"""

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "book").rglob("*.ipynb"))
PROSE_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d{2,}(?!\d)")
ANY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
GENERATED = re.compile(r"^% verdicts:begin .*?^% verdicts:end[ \t]*$", re.S | re.M)
SOLUTION = re.compile(r"^(`{3,}|:{3,})\{solution\}.*?^\1", re.S | re.M)
# A number in scientific notation as the prose writes it, 6.13\times10^{9}: mantissa and exponent.
SCIENTIFIC = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)\s*\\times\s*10\^\{?(-?\d+)\}?")
# A column vector as the prose writes it, (0, 0, 0)^\top: sympy prints it Matrix([[0], [0], [0]]).
VECTOR = re.compile(r"\(\s*(-?\d+(?:\.\d+)?(?:\s*,\s*-?\d+(?:\.\d+)?)+)\s*\)\^\{?\\top\}?")


def sympy_matrix(vector: str) -> str:
    """``(0, 0, 1)^\\top`` as sympy prints the column vector: ``Matrix([[0], [0], [1]])``."""
    entries = re.split(r"\s*,\s*", VECTOR.fullmatch(vector.strip()).group(1))
    return "Matrix([" + ", ".join(f"[{x}]" for x in entries) + "])"


# Inputs and constants quoted in the prose (not measured results), by notebook.
ALLOWED = {
    # a perturbation factor of a test; an exercise input
    "book/part1/costates.ipynb": {"1.05", "0.25"},
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
    tokens = ANY_NUMBER.findall(text)
    for tok in tokens:
        try:
            numbers.add(float(tok))
        except ValueError:
            pass
    missing = []
    for c in nb.cells:
        if c.cell_type != "markdown" or "vgh-macros" in c.metadata.get("tags", []):
            continue
        prose = SOLUTION.sub("", c.source)
        for m in SCIENTIFIC.finditer(prose):
            quoted = f"{m.group(1)}e{m.group(2)}"
            if not any(matches(tok, quoted) for tok in tokens):
                missing.append(m.group(0))
        for n in PROSE_NUMBER.findall(SCIENTIFIC.sub(" ", prose)):
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
    nb.cells = [
        cell,
        nbformat.v4.new_markdown_cell(
            "The estimate is 0.6667, not 0.6676.\n\n```{solution} x\nA hidden 0.1234.\n```"
        ),
        nbformat.v4.new_markdown_cell("Written $6.667\\times10^{-1}$, not $6.667\\times10^{-2}$."),
    ]
    assert unquoted_numbers(nb) == ["0.6676", "6.667\\times10^{-2}"]


# ---------------------------------------------------------------------------------------------
# The findings page and the scorecard
# ---------------------------------------------------------------------------------------------

PAGES = ["book/findings.md", "book/scorecard.md"]

# A number as a token: not glued to a word, a decimal point, a hyphen or a slash on either side, so
# that names (OLMo-2, 2-D, 4-layer, C1a, A.5, eq-10, 2x4) and pairs written with a slash (a 0/1
# reward, rho = 1/10) are not read as values. Counts of a thousand or more may carry separators.
_NUM = r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
NUMBER = re.compile(rf"(?<![\w.+\-−/]){_NUM}(?![\w/]|\.\d|-[^\W\d])")
GLUED = re.compile(r"[\w.\-−/]$"), re.compile(r"^(?:[\w/]|\.\d|-[^\W\d])")
# Every run of digits of a page, so that each one is either quoted or excluded for a reason.
NUMERAL = re.compile(r"\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?")

# A number after one of these words names something: an equation, a result of the paper, a part of
# the book, a layer or a position of a model, an arXiv paper; so do the whole numbers listed after
# it ("eqs 8–9", "eq 2, 3", "layers 0 and 1").
NAMING = re.compile(
    r"\b(?:eqs?|equations?|props?|propositions?|theorems?|thm|corollar(?:y|ies)|cor|lemmas?|"
    r"definitions?|sections?|sec|appendix|parts?|figures?|fig|chapters?|layers?|positions?|"
    r"arxiv:?)\s*$",
    re.I,
)
LISTED = re.compile(r"\s*(?:,|and|or|to|–)\s*")
# A number the text attributes to the paper is the paper's result, not one of the book's.
PAPER = re.compile(r"\bthe paper(?:'s| reports| gives| finds)\s*$", re.I)
# "N means ..." says what a value would mean (1 means unbiased): a point of a scale, not a result.
DEFINES = re.compile(r"\s+means\b")
# Four digits without a separator from 1900 to 2099: a year (the pages write a count 5,000).
YEAR = re.compile(r"(?:19|20)\d\d")

ROLE = re.compile(r"\{([\w:-]+)\}`([^`]*)`")
LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$]+\$", re.S)
HTML = re.compile(r"<[^>\n]+>")
TARGET_LABEL = re.compile(r"^\([\w:-]+\)=[ \t]*$", re.M)
LIST_MARKER = re.compile(r"^[ \t]*\d+\.(?=\s)", re.M)
ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d+\.)\s", re.M)
HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.M)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[{$])")
NOTE_ID = re.compile(r"^\s*[-*+]\s+\*\*(\w+)\.\*\*")
WITH_ERROR = re.compile(r"\s*±\s*")  # x ± y
INTERVAL = re.compile(r"\s*\[\s*"), re.compile(r"\s*,\s*")  # x [lo, hi]

# Where a number's neighbour in the last place is also printed in the section it cites, the number
# must be found where its label puts it. Keys: a piece of the page's prose with {} for the number
# (a space matches any whitespace), which must occur once in the page; values: a regex, {} again for
# the number, that must match the cited output lines (joined by newlines; ^ and $ at each line).
LABELS = {
    "book/findings.md": {
        "(sympy residual {})": r"future-credit part of eq 7, T = 3, \w+\n\s+residual: {}$",
        "with groups of {}, the": r"^group size n = {}, ",
        "$1-1/\\groupsize={}$": r"^\s+mean n=4\s+\S+\s+\S+\s+{}\s",
        "and {} heads of width": r"^\s*Mini {}x4 heads",
        "heads of width {}, the": r"^\s*Mini 2x{} heads",
        "8, {} and 24": r"^\s*Mini 2x4 heads\s+2\s+{}\s",
        "With {} heads of width": r"^\s*Mini {}x8 \(vacuous\)",
        "the bounds are {},": r"^\s*Mini 4x8 \(vacuous\)\s+1\s+\d+\s+{}\s",
        "conditional mean is negative at {}": r"S with the exact conditional mean at {}$",
        "has alignment {} and": r": alignment {} ",
        "final reward at {}": r"^\s*z\(R_before\)\s+mean R_after\s+{}\s",
        "at $p={}$, 1.481": r"^group size\s+p = {}\s",
        "is {} with groups of 4": r"^n = 4 \(3 seeds\)\s+{}\s",
        "with groups of {} and": r"^n = {} \(3 seeds\)",
        "where $p(1-p)$ gets {} and": r"^n = 4 \(3 seeds\)\s+\S+\s+\S+\s+{}$",
        "rollouts are {} (pathwise)": r"^\s*mean\s+{}\s",
        "{} (no baseline)": r"^\s*mean\s+\S+\s+{}\s",
        "{} (leave-one-out), 0.752": r"^\s*mean\s+\S+\s+\S+\s+{}\s",
        "{} (group mean) and": r"^\s*mean\s+(?:\S+\s+){3}{}\s",
        "the sets from {} to 0.039": r"^\s*sd\s+{}\s",
        "{} for every $\\alpha$": r"^α = \S+\s+{}\s",
        "from {} to 10.0": r"^α = {}\s",
        "with groups of {}, and disappears": r"^grpo-n{}\s",
        "the gain in {} of the 25 cases": r"^P_gap: ρ > 0\s+{}/25\s",
        "of the {} cases of the grid": r"^P_gap: ρ > 0\s+\d+/{}\s",
        "to {} of them": r"^P_gap: ρ > 0\s+\d+/25\s+\d+/25\s+{}/25\s",
        "at most {}, and": r"^P_gap beats p\(1 − p\)\s+\d+/25\s+\d+/25\s+\d+/25\s+{}/25$",
        "beats it in {} to 20": r"^P_gap beats p\(1 − p\)\s+\d+/25\s+{}/25\s",
        r"mean $R_{\mathrm{after}}$ at ${}$ to": r"^one label\s+1\s+{}\s",
        "to ${}$ on every trajectory": r"^one label\s+4\s+{}\s",
        "at most from ${}$ to $+0.62$": r"^one label\s+2\s+\S+\s+\S+\s+{} to \+0\.62",
        "to ${}$ (one label": r"^one label\s+2\s+\S+\s+\S+\s+\+0\.51 to {}\s",
        "(one label, seed {});": r"^one label\s+{}\s+\S+\s+\S+\s+\+0\.51 to \+0\.62",
        "to ${}$ (two labels": r"^two label\s+2\s+.*\+0\.29 to {}\s",
        "(two labels, seed {}). Eq": r"^two label\s+{}\s+.*\+0\.29 to \+0\.69",
        "largest gain on {} of the 10": r"^N\* is the step of the largest mean gain on {} of 10 ",
        "with the gain on {} of 5 trajectories": r"^P_gap: ρ > 0\s+{}/5\s",
        "on 0 of {} trajectories": r"^P_gap: ρ > 0\s+\d+/{}\s",
        "it is positive on {} of 5,": r"^P_gap: ρ > 0\s+\d+/5\s+\d+/5\s+\d+/5\s+{}/5$",
        "positive on 5 of {}, with": r"^P_gap: ρ > 0\s+\d+/5\s+\d+/5\s+\d+/5\s+\d+/{}$",
        "on more than {} of the five": r"^P_gap beats p\(1 − p\)\s+\d+/5\s+\d+/5\s+\d+/5\s+{}/5$",
        "a median of {}% or": r"^seed 1\s.*\s{}%$",
        "or {}% over their": r"^seed 0\s.*\s{}%$",
    },
}


@dataclass(frozen=True)
class Quote:
    """A quoted number, a group of them (``x ± y``, ``x [lo, hi]``: printed side by side on one
    line), a code span that quotes an output (printed verbatim), or a column vector in math,
    ``$(0, 0, 0)^\\top$``, which quotes what sympy prints (``Matrix([[0], [0], [0]])``)."""

    starts: tuple[int, ...]  # offsets in the page
    texts: tuple[str, ...]  # as written
    kind: str  # "number", "output", "vector" or "scientific"
    sources: tuple[tuple[str, str | None], ...]  # (page, heading anchor or None)


@dataclass(frozen=True)
class Page:
    quotes: tuple[Quote, ...]
    excluded: tuple[tuple[str, str, int], ...]  # (reason, numeral, offset)


@lru_cache(maxsize=None)
def value(token: str) -> Decimal:
    return Decimal(token.replace(",", "").replace("−", "-").lstrip("+"))


def matches(printed: str, quoted: str) -> bool:
    """At the precision printed: the printed number carries at least the quoted number's decimals
    and rounds to it. A printed 0.6012 or 0.60 is a quoted 0.60; a printed 0.6 is not (the prose
    would claim a digit the page does not print), nor is 0.61. Exponents count the same way:
    3.99e-01 is 0.399, 6.0e-01 is 0.60. A printed tie (0.6050) matches both 0.60 and 0.61, as its
    digits are themselves rounded."""
    x, p = value(printed), value(quoted)
    place = p.as_tuple().exponent
    if x.as_tuple().exponent > place:
        return False
    unit = Decimal(1).scaleb(place)
    return p in (x.quantize(unit, ROUND_HALF_EVEN), x.quantize(unit, ROUND_HALF_UP))


def slug(title: str) -> str:
    """The anchor MyST gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


@lru_cache(maxsize=None)
def printed_lines(rel: str, anchor: str | None) -> tuple[str, ...] | None:
    """The stored output lines of a notebook, or of the cells under one of its headings (down to
    the next heading of the same or a higher level); None when the page or the heading does not
    exist. A markdown page prints nothing."""
    path = ROOT / rel
    if not path.is_file():
        return None
    if path.suffix != ".ipynb":
        heads = {slug(m.group(2)) for m in HEADING.finditer(path.read_text())}
        return None if anchor is not None and anchor not in heads else ()
    inside, level, found = anchor is None, None, anchor is None
    lines: list[str] = []
    for c in nbformat.read(path, as_version=4).cells:
        if c.cell_type == "markdown":
            source = re.sub(r"^(`{3,}|:{3,}).*?^\1", "", c.source, flags=re.S | re.M)
            for m in HEADING.finditer(source):
                if anchor is not None and slug(m.group(2)) == anchor:
                    inside, level, found = True, len(m.group(1)), True
                elif inside and level is not None and len(m.group(1)) <= level:
                    inside = False
        elif inside:
            for o in c.outputs:
                lines += (o.get("text", "") + o.get("data", {}).get("text/plain", "")).splitlines()
    return tuple(lines) if found else None


@lru_cache(maxsize=None)
def printed_numbers(rel: str, anchor: str | None) -> tuple[tuple[str, ...], ...]:
    return tuple(
        tuple(m.group(0) for m in NUMBER.finditer(ln)) for ln in printed_lines(rel, anchor) or ()
    )


def _blank(text: str, spans) -> str:
    chars = list(text)
    for a, b in spans:
        chars[a:b] = [c if c == "\n" else " " for c in chars[a:b]]
    return "".join(chars)


def _blocks(text: str):
    """(offset, text) of the paragraphs of a page; table rows and list items one each."""
    for m in re.finditer(r"(?:[^\n]*\S[^\n]*(?:\n|$))+", text):
        para, off = m.group(0), m.start()
        if para.lstrip().startswith("|"):
            for ln in para.splitlines(keepends=True):
                yield off, ln
                off += len(ln)
            continue
        cuts = sorted({0, len(para), *(i.start() for i in ITEM.finditer(para))})
        for a, b in zip(cuts, cuts[1:]):
            yield off + a, para[a:b]


def _rel(path: Path) -> str:
    path = path.resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def _links(rel: str, block: str):
    """(offset, (page, anchor)) of the {doc} roles and the markdown links to pages of a block."""
    here = (ROOT / rel).parent
    for m in ROLE.finditer(block):
        if m.group(1) == "doc":
            target = re.search(r"<([^>]+)>\s*$", m.group(2))
            target = (target.group(1) if target else m.group(2)).strip()
            base = ROOT / target[1:] if target.startswith("/") else here / target
            page = next(
                (base.with_suffix(s) for s in (".ipynb", ".md") if base.with_suffix(s).is_file()),
                base,
            )
            yield m.start(), (_rel(page), None)
    for m in LINK.finditer(block):
        path, _, anchor = m.group(2).partition("#")
        if path.endswith((".ipynb", ".md")) and "://" not in path:
            yield m.start(), (_rel(here / path), anchor or None)


@lru_cache(maxsize=None)
def _read_block(rel: str, off: int, block: str, row_sources: tuple) -> Page:
    spans: list[tuple[int, int]] = []  # blanked before numbers are read
    reasons: list[tuple[int, int, str]] = []
    for rx, why in (
        (ROLE, "link"),
        (LINK, "link"),
        (TARGET_LABEL, "markup"),
        (HTML, "markup"),
        (LIST_MARKER, "markup"),
        (CODE, "output"),
        (MATH, "formula"),
    ):
        for m in rx.finditer(_blank(block, spans)):
            spans.append(m.span())
            reasons.append((*m.span(), why))
    text = _blank(block, spans)
    for a, b, why in reasons:  # a decimal alone on one side of an equation is a value
        if why == "formula":
            for side in re.finditer(r"[^=$]+", block[a:b]):
                s = side.group(0).strip()
                if NUMBER.fullmatch(s) and re.search(r"[.eE]", s):
                    at = a + side.start() + side.group(0).index(s)
                    text = text[:at] + s + text[at + len(s) :]
    outputs = [
        (a + 1, block[a + 1 : b - 1])
        for a, b, why in reasons
        if why == "output" and re.search(r"\d", block[a:b])
    ]
    vectors = [
        (a + 1, block[a + 1 : b - 1])
        for a, b, why in reasons
        if why == "formula" and VECTOR.fullmatch(block[a + 1 : b - 1].strip())
    ]
    scientific = [
        (a + 1, block[a + 1 : b - 1])
        for a, b, why in reasons
        if why == "formula" and SCIENTIFIC.fullmatch(block[a + 1 : b - 1])
    ]

    cuts = [0, *(m.end() for m in SENTENCE_END.finditer(block)), len(block)]
    links = list(_links(rel, block))
    per_sentence = [
        tuple(dict.fromkeys(s for p, s in links if a <= p < b)) for a, b in zip(cuts, cuts[1:])
    ]

    def sources(at: int) -> tuple:
        i = max(j for j in range(len(per_sentence)) if cuts[j] <= at)
        order = [*range(i, len(per_sentence)), *range(i - 1, -1, -1)]
        return next((per_sentence[k] for k in order if per_sentence[k]), row_sources)

    excluded, found, named_until = [], [], -1
    for m in NUMBER.finditer(text):
        before, tok = text[: m.start()], m.group(0)
        if NAMING.search(before[-30:]) or (
            named_until >= 0
            and LISTED.fullmatch(text[named_until : m.start()])
            and re.fullmatch(r"\d+", tok)
        ):
            why = "name"
        elif PAPER.search(before[-40:]):
            why = "paper"
        elif DEFINES.match(text, m.end()):
            why = "definition"
        elif YEAR.fullmatch(tok):
            why = "year"
        else:
            why = None
        named_until = m.end() if why == "name" else -1
        if why:
            excluded.append((why, tok, off + m.start()))
        else:
            found.append((m.start(), tok))

    groups: list[list[tuple[int, str]]] = []
    for at, tok in found:
        if groups:
            g = groups[-1]
            gap = text[g[-1][0] + len(g[-1][1]) : at]
            if (len(g) == 1 and (WITH_ERROR.fullmatch(gap) or INTERVAL[0].fullmatch(gap))) or (
                len(g) == 2
                and INTERVAL[1].fullmatch(gap)
                and INTERVAL[0].fullmatch(text[g[0][0] + len(g[0][1]) : g[1][0]])
            ):
                g.append((at, tok))
                continue
        groups.append([(at, tok)])
    quotes = [
        Quote(tuple(off + a for a, _ in g), tuple(t for _, t in g), "number", sources(g[0][0]))
        for g in groups
    ]
    quotes += [Quote((off + a,), (s,), "output", sources(a)) for a, s in outputs]
    quotes += [Quote((off + a,), (s,), "vector", sources(a)) for a, s in vectors]
    quotes += [Quote((off + a,), (s,), "scientific", sources(a)) for a, s in scientific]

    taken = [(a - off, a - off + len(t)) for q in quotes for a, t in zip(q.starts, q.texts)]
    taken += [(a - off, a - off + len(t)) for _, t, a in excluded]
    for m in NUMERAL.finditer(block):
        if any(a <= m.start() < b for a, b in taken):
            continue
        why = next((r for a, b, r in reasons if a <= m.start() < b), None)
        if why is None and (
            GLUED[0].search(block[: m.start()]) or GLUED[1].search(block[m.end() :])
        ):
            why = "name"
        excluded.append((why or "unaccounted", m.group(0), off + m.start()))
    return Page(tuple(quotes), tuple(excluded))


def read_page(rel: str, text: str) -> Page:
    """The numbers a page quotes, and every other numeral with the reason it is not quoted.

    Quoted: the numbers of the running text, and a number with a decimal point alone on one side of
    an equation in math ($\\Lambda=3.557$, $p=0.5$). Not quoted, by reason:

    - "link": the text or target of a link or role (it names the place it links);
    - "formula": any other number in math: indices, exponents, and the whole-number parameters
      a formula is stated for ($T=3$, $\\gamma=1$);
    - "name": a number glued to a word (OLMo-2, 2-D, C1a, A.5), joined by a slash (a 0/1 reward),
      or after a naming word (eq 8, eqs 8–9, Prop 2, layers 0 and 1, arXiv 2605.21654);
    - "paper": a number the text attributes to the paper (the paper's 0.60);
    - "definition": what a value would mean (1 means unbiased);
    - "year": four digits from 1900 to 2099 without a separator;
    - "markup": list markers, section labels, HTML;
    - "output": digits inside a code span, which is then a quoted output, checked verbatim.

    A column vector in math, ``$(0, 0, 0)^\\top$``, is a quoted output too: sympy's
    ``Matrix([[0], [0], [0]])``, checked verbatim (its numerals count as "formula"). A number in
    scientific notation alone in math, ``$6.13\\times10^{9}$``, is a quoted number, 6.13e9.

    Not read at all: the blocks that ``tools.verdicts`` writes from the chapters' verdict records
    (between ``% verdicts:begin`` and ``% verdicts:end``). Their numbers are the records' own, which
    nbval compares with what the chapters compute, and tests/test_verdicts.py requires each block to
    equal what the records give.
    """
    text = GENERATED.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    blocks = list(_blocks(text))
    rows = {}
    for _, block in blocks:
        if block.lstrip().startswith("|"):
            rows[block.strip().strip("|").split("|")[0].strip()] = tuple(
                dict.fromkeys(s for _, s in _links(rel, block))
            )
    quotes, excluded = [], []
    for off, block in blocks:
        note = NOTE_ID.match(block)
        part = _read_block(rel, off, block, rows.get(note.group(1), ()) if note else ())
        quotes += part.quotes
        excluded += part.excluded
    return Page(tuple(quotes), tuple(excluded))


@lru_cache(maxsize=None)
def _piece(piece: str) -> re.Pattern:
    before, after = (r"\s+".join(map(re.escape, p.split(" "))) for p in piece.split("{}"))
    return re.compile(before + f"({_NUM})" + after)


@lru_cache(maxsize=None)
def problem(quote: Quote, label: str | None = None) -> str | None:
    """Why a quote is not printed where its sentence links, or None."""
    if not quote.sources:
        return "its sentence, paragraph and row link no page"
    for page, anchor in quote.sources:
        if printed_lines(page, anchor) is None:
            return f"the link {page}#{anchor} leads nowhere"
    if quote.kind in ("output", "vector"):
        shown = quote.texts[0] if quote.kind == "output" else sympy_matrix(quote.texts[0])
        ok = any(shown in ln for s in quote.sources for ln in printed_lines(*s))
    elif label is not None:
        joined = "\n".join(ln for s in quote.sources for ln in printed_lines(*s))
        hole = label.replace("{}", f"({_NUM})")
        ok = any(matches(m.group(1), quote.texts[0]) for m in re.finditer(hole, joined, re.M))
    else:
        texts = quote.texts
        if quote.kind == "scientific":  # 6.13\times10^{9} is the number 6.13e9
            texts = tuple("e".join(SCIENTIFIC.fullmatch(s).groups()) for s in texts)
        n = len(texts)
        ok = any(
            all(matches(toks[i + k], texts[k]) for k in range(n))
            for s in quote.sources
            for toks in printed_numbers(*s)
            for i in range(len(toks) - n + 1)
        )
    where = " or ".join(f"{p}#{a}" if a else p for p, a in quote.sources)
    if ok:
        return None
    return f"not printed in {where}" + (f" where /{label}/ puts it" if label else "")


def page_problems(rel: str, text: str, labels=None) -> list[tuple[tuple[int, ...], str, str]]:
    """(offsets, quote, problem) for every quote that the outputs it cites do not print, every
    numeral the reader cannot account for, and every label piece that does not mark one quote."""
    labels = LABELS.get(rel, {}) if labels is None else labels
    page = read_page(rel, text)
    starts = {a for q in page.quotes if q.kind == "number" for a in q.starts}
    label_at, found = {}, []
    for piece, regex in labels.items():
        hits = tuple(m.start(1) for m in _piece(piece).finditer(text))
        label_at.update(dict.fromkeys(hits, regex))
        if len(hits) != 1 or hits[0] not in starts:
            found.append(
                (
                    hits,
                    piece,
                    f"the label piece matches {len(hits)} times, not once at a quoted number",
                )
            )
    found += [
        (q.starts, " ".join(q.texts), why)
        for q in page.quotes
        if (why := problem(q, label_at.get(q.starts[0])))
    ]
    found += [
        ((a,), t, "a numeral the reader cannot account for")
        for why, t, a in page.excluded
        if why == "unaccounted"
    ]
    return found


def _describe(text: str, problems) -> str:
    return "\n".join(
        f"  line {text.count(chr(10), 0, a[0]) + 1 if a else '?'}: {t!r}: {why}"
        for a, t, why in problems
    )


@pytest.mark.parametrize("page", PAGES)
def test_each_number_the_page_quotes_is_printed_where_it_links(page):
    text = (ROOT / page).read_text()
    problems = page_problems(page, text)
    assert not problems, f"{page}:\n" + _describe(text, problems)


def perturbations(token: str) -> list[str]:
    """The number one up and one down in its last place, written the same way (sign, thousands
    separators, exponent): 0.60 -> 0.61, 0.59; 0.0000 -> 0.0001, -0.0001; 6.13e+09 -> 6.14e+09."""
    v = value(token)
    place = v.as_tuple().exponent
    form = re.fullmatch(r"[-+−]?[\d,]+(?:\.(\d+))?([eE][-+]?\d+)?", token)
    out = []
    for step in (1, -1):
        w = v + step * Decimal(1).scaleb(place)
        if form.group(2):
            s = f"{w.scaleb(-int(form.group(2)[1:])):.{len(form.group(1) or '')}f}{form.group(2)}"
        else:
            s = f"{w:,.{max(-place, 0)}f}" if "," in token else f"{w:.{max(-place, 0)}f}"
        s = "+" + s if token.startswith("+") and w >= 0 else s
        out.append(s.replace("-", "−") if "−" in token else s)
    return out


def mantissa_changed(text: str) -> list[str]:
    """A number written 6.13\\times10^{9}, its mantissa one up and one down in its last place."""
    m = SCIENTIFIC.fullmatch(text)
    return [new + text[m.end(1) :] for new in perturbations(m.group(1))]


def last_digit_changed(text: str) -> list[str]:
    """A quoted output with its last digit one up and one down."""
    i = max(i for i, ch in enumerate(text) if ch.isdigit())
    return [
        text[:i] + str(int(text[i]) + s) + text[i + 1 :]
        for s in (1, -1)
        if 0 <= int(text[i]) + s <= 9
    ]


@pytest.mark.parametrize("page", PAGES)
def test_control_each_quoted_number_changed_by_one_in_its_last_place_is_caught(page):
    text = (ROOT / page).read_text()
    escaped, tried = [], 0
    for q in read_page(page, text).quotes:
        for at, tok in zip(q.starts, q.texts):
            change = {"number": perturbations, "scientific": mantissa_changed}
            for new in change.get(q.kind, last_digit_changed)(tok):
                tried += 1
                changed = text[:at] + new + text[at + len(tok) :]
                if not any(at in starts for starts, _, _ in page_problems(page, changed)):
                    escaped.append(f"line {text.count(chr(10), 0, at) + 1}: {tok} -> {new}")
    assert not escaped, f"{page}: not caught:\n  " + "\n  ".join(escaped)
    assert tried >= 2 * len(read_page(page, text).quotes)


def test_precision_printed():
    assert matches("0.60", "0.60") and matches("0.6012", "0.60") and matches("6.0e-01", "0.60")
    assert matches("3.99e-01", "0.399") and matches("0.3990", "3.99e-01")
    assert matches("64000", "64,000") and matches("-0.0000", "0.0000") and matches("+0.65", "0.65")
    assert matches("0.605", "0.60") and matches("0.605", "0.61")  # a printed tie
    assert not matches("0.6", "0.60") and not matches("0.61", "0.60")
    assert not matches("0.65", "-0.65")
    assert not matches("3.99e-01", "0.3990") and not matches("0.0", "0.0000")


SAMPLE = """(sample-label)=
## Eq 8 and Prop 2

The paper obtains eq 8 and eqs 8–9 (Prop 2, Appendix A.5) at layers 0 and 1 of OLMo-2 on a 2-D
task with a 0/1 reward; the paper's 0.60 and arXiv 2605.21654, from 2026, aside, the coefficient is
0.9534 ± 0.0412 (1 means unbiased), the book's 0.60, rank 8 after eq 8 and 0.2056, 2,026 draws,
+0.65 [+0.32, +0.82] with $T=3$, $x_{t+1}$ and $\\Lambda=3.557$, and residual `Matrix([[0]])` over
64,000 rollouts ([the check](../part1/costates.ipynb#costates-are-value-gradients-in-expectation)).

1. A list item, {doc}`Part 2 <../part2/continuous_control>`.
"""


def test_what_counts_as_a_quoted_number():
    page = read_page("book/start/sample.md", SAMPLE)
    assert [q.texts for q in page.quotes if q.kind == "number"] == [
        ("0.9534", "0.0412"),
        ("0.60",),
        ("8",),
        ("0.2056",),
        ("2,026",),
        ("+0.65", "+0.32", "+0.82"),
        ("3.557",),
        ("64,000",),
    ]
    assert [q.texts for q in page.quotes if q.kind == "output"] == [("Matrix([[0]])",)]
    assert {q.sources for q in page.quotes} == {
        (("book/part1/costates.ipynb", "costates-are-value-gradients-in-expectation"),)
    }
    reasons: dict[str, list[str]] = {}
    for why, numeral, _ in page.excluded:
        reasons.setdefault(why, []).append(numeral)
    assert {why: sorted(n) for why, n in reasons.items()} == {
        "markup": ["1"],  # the list marker
        # the heading's two, then the paragraph's
        "name": sorted("8 2 8 8 9 2 5 0 1 2 2 0 1 2605.21654 8".split()),
        "paper": ["0.60"],
        "year": ["2026"],
        "definition": ["1"],
        "formula": ["1", "3"],
        "link": ["1", "2", "2"],
    }


def _one(text: str) -> list[str]:
    return [why for _, _, why in page_problems("book/sample.md", text, labels={})]


def test_a_number_is_checked_against_the_section_its_sentence_links():
    costates = "part1/costates.ipynb"
    section = f"{costates}#costates-are-value-gradients-in-expectation"
    assert _one(f"It is -10.3877 ([there]({section})).") == []
    assert _one(f"It is -10.3877 ({{doc}}`{costates[:-6]}`).") == []
    assert _one(f"It is -10.3877 ({{doc}}`Part I <{costates[:-6]}>`).") == []
    # printed in the same notebook, another section; in another notebook; nowhere
    assert _one(f"It is -10.3877 ([there]({costates}#the-setting-a-differentiable-rollout)).") == [
        f"not printed in book/{costates}#the-setting-a-differentiable-rollout"
    ]
    assert _one("It is -10.3877 ([there](part1/sf_vs_pd.ipynb)).") == [
        "not printed in book/part1/sf_vs_pd.ipynb"
    ]
    # in the notebook's code only: the code is not what it printed
    assert _one("It is 0.99 ([there](part1/costates.ipynb)).") == [
        "not printed in book/part1/costates.ipynb"
    ]
    assert _one(f"It is -10.3877 ([there]({costates}#no-such-heading)).") == [
        f"the link book/{costates}#no-such-heading leads nowhere"
    ]
    assert _one("It is -10.3877.") == ["its sentence, paragraph and row link no page"]
    # a sentence without a link takes the next linked sentence of its paragraph
    assert _one(f"A is 0.2056. B is -10.3877 ([there]({section})).") == [
        f"not printed in book/{section}"
    ]
    assert _one(f"A is 0.2056 ([a](appendix/proofs.ipynb)). B is -10.3877 ([b]({section})).") == []
    # x ± y is printed side by side on one line
    assert _one(f"It is -10.3877 ± 0.0061 ([there]({section})).") == []
    assert _one(f"It is -10.3877 ± 0.0246 ([there]({section})).") == [
        f"not printed in book/{section}"
    ]


def test_a_note_under_the_scorecard_takes_the_links_of_its_row():
    section = "part1/costates.ipynb#costates-are-value-gradients-in-expectation"
    row = f"| C1 | claim | [there]({section}) | v |"
    text = f"| id | claim | checked in | verdict |\n|---|---|---|---|\n{row}\n\n"
    assert _one(text + "- **C1.** With 64,000 rollouts ({ref}`elsewhere`).\n") == []
    assert _one(text + "- **C1.** With 64,001 rollouts.\n") != []
    assert _one(text + "- **C2.** With 64,000 rollouts.\n") == [
        "its sentence, paragraph and row link no page"
    ]


@pytest.mark.parametrize("page", PAGES)
def test_each_label_is_needed(page):
    """Without its label, a labelled number or one of its neighbours in the last place passes for
    printed in the section it cites: the labels only ever tighten the check."""
    text = (ROOT / page).read_text()
    quotes = {q.starts[0]: q for q in read_page(page, text).quotes}
    for piece in LABELS.get(page, {}):
        (m,) = _piece(piece).finditer(text)
        q = quotes[m.start(1)]
        neighbours = [Quote(q.starts, (n,), q.kind, q.sources) for n in perturbations(q.texts[0])]
        assert problem(q) is not None or any(problem(n) is None for n in neighbours), piece
