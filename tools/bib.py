"""The book's bibliography, ``book/references.bib``, cited by author and year everywhere.

In the rendered book, sphinxcontrib-bibtex writes the in-text citations as author-year
(``bibtex_reference_style: author_year``), and the bibliography page labels each entry with the same
text: :class:`AuthorYearLabelStyle`, registered with pybtex by :func:`register` (``tools.sphinxext``
calls it) under the name :data:`STYLE`, which ``_config.yml`` names as ``bibtex_default_style``.
Without it the labels would be pybtex's numbers ([1], [2], ...), which no citation in the text uses.

Outside the rendered book (JupyterLab with jupyterlab-myst, Colab), a ``{cite}`` role cannot be
resolved: jupyterlab-myst shows the bare key. :func:`notebook_references` writes the list that
the generated head cell of a notebook carries (:mod:`tools.notebooks`): each key the notebook
cites, with its authors, year and title, so that a key read in the text can be looked up on the
same page.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pybtex.plugin
from pybtex.database import parse_file
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle

from tools import REPO_ROOT

__all__ = [
    "BIB",
    "CITE",
    "STYLE",
    "AuthorYearLabelStyle",
    "AuthorYearSorting",
    "AuthorYearStyle",
    "author_year",
    "authors",
    "cited_keys",
    "citation_problems",
    "entries",
    "notebook_references",
    "register",
    "short_reference",
]

BIB = REPO_ROOT / "book" / "references.bib"
#: The pybtex formatting style of the bibliography page (``bibtex_default_style`` in _config.yml).
STYLE = "vgh_author_year"
#: A citation role of MyST: ``{cite:p}`a,b```, ``{cite:t}`a```, ``{cite}`a```; group 1 the keys.
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]*)`")


@lru_cache(maxsize=None)
def _parsed(path: str, mtime: float):
    return parse_file(path, bib_format="bibtex").entries


def entries(bib: Path = BIB) -> dict:
    """The entries of ``bib`` by key (pybtex ``Entry`` objects), read again after a change."""
    bib = Path(bib)
    return dict(_parsed(str(bib), bib.stat().st_mtime))


def _plain(latex: str) -> str:
    """A BibTeX field without braces or TeX markup: ``{DAPO}: An {LLM}`` -> ``DAPO: An LLM``."""
    return Text.from_latex(latex).render_as("text")


def _last(person) -> str:
    return _plain(" ".join(person.prelast_names + person.last_names))


def authors(entry) -> str:
    """The authors as the book's in-text citations name them: ``Williams``, ``Fairbank and
    Alonso``, ``Asadulaev et al.`` (sphinxcontrib-bibtex's author-year style: last names, "and"
    between two, the first and "et al." from three on)."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    if not people:
        return _plain(entry.fields.get("title", entry.key))
    if len(people) == 1:
        return _last(people[0])
    if len(people) == 2:
        return f"{_last(people[0])} and {_last(people[1])}"
    return f"{_last(people[0])} et al."


def author_year(entry) -> str:
    """``Asadulaev et al., 2026``: the text of a parenthetical citation, without its brackets."""
    return f"{authors(entry)}, {entry.fields.get('year', 'n.d.')}"


def short_reference(entry) -> str:
    """``Asadulaev et al., 2026. Value-Gradient Hypothesis of RL for LLMs. arXiv preprint
    arXiv:2605.21654.``: author-year, title and where it appeared, as plain text."""
    title = _plain(entry.fields.get("title", "")).rstrip(".")
    venue = _plain(entry.fields.get("journal") or entry.fields.get("booktitle") or "").rstrip(".")
    return " ".join(
        p
        for p in (
            f"{author_year(entry)}.",
            f"{title}." if title else "",
            f"{venue}." if venue else "",
        )
        if p
    )


def cited_keys(text: str) -> list[str]:
    """The keys cited by the ``{cite}`` roles of ``text``, in order of first citation."""
    keys = [k.strip() for m in CITE.finditer(text) for k in m.group(1).split(",")]
    return list(dict.fromkeys(k for k in keys if k))


def citation_problems(pages: dict[str, str], known) -> list[str]:
    """What is wrong with the citations of ``pages`` (name -> MyST text) against the keys
    ``known``: a citation of a key that is not a reference, a reference that no page cites."""
    cited: dict[str, str] = {}
    for name, text in pages.items():
        for key in cited_keys(text):
            cited.setdefault(key, name)
    problems = [
        f"{page}: cites {key}, which is not in the bibliography"
        for key, page in cited.items()
        if key not in known
    ]
    problems += [
        f"{key} is in the bibliography but no page cites it" for key in known if key not in cited
    ]
    return problems


def notebook_references(keys, bib: Path = BIB) -> str:
    """The markdown list of the references ``keys``, for a notebook's generated head cell; empty
    when ``keys`` is. A key that ``bib`` does not hold raises KeyError: the rendered book would
    fail on it too."""
    keys = list(keys)
    if not keys:
        return ""
    known = entries(bib)
    missing = [k for k in keys if k not in known]
    if missing:
        raise KeyError(f"cited but not in {Path(bib).name}: {', '.join(missing)}")
    lines = [
        "**References cited in this notebook**, by the key that a citation shows outside the "
        "rendered book:",
        "",
    ]
    lines += [f"- `{k}`: {short_reference(known[k])}" for k in keys]
    return "\n".join(lines)


class AuthorYearLabelStyle(BaseLabelStyle):
    """Bibliography labels that read as the in-text citations do: ``Asadulaev et al., 2026``. Two
    entries that would share a label get ``2026a``, ``2026b`` in the order they are sorted."""

    def format_labels(self, sorted_entries):
        sorted_entries = list(sorted_entries)
        labels = [author_year(e) for e in sorted_entries]
        counts = {lab: labels.count(lab) for lab in labels}
        seen: dict[str, int] = {}
        for lab in labels:
            if counts[lab] > 1:
                seen[lab] = seen.get(lab, 0) + 1
                lab = f"{lab}{chr(ord('a') + seen[lab] - 1)}"
            yield lab


class AuthorYearSorting(SortingStyle):
    """By author, year and title, as pybtex's ``author_year_title``, reading a braced name such as
    ``{Team OLMo}`` without its braces (pybtex would sort it after Z)."""

    def person_key(self, person):
        return _plain(super().person_key(person)).lower()


class AuthorYearStyle(PlainStyle):
    """pybtex's ``plain`` formatting with author-year labels, sorted by author, year and title."""

    default_label_style = STYLE
    default_sorting_style = STYLE


def register() -> None:
    """Make :data:`STYLE` known to pybtex as a formatting, a label and a sorting style."""
    pybtex.plugin.register_plugin("pybtex.style.labels", STYLE, AuthorYearLabelStyle, force=True)
    pybtex.plugin.register_plugin("pybtex.style.sorting", STYLE, AuthorYearSorting, force=True)
    pybtex.plugin.register_plugin("pybtex.style.formatting", STYLE, AuthorYearStyle, force=True)
