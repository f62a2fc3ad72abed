"""tools.bib: the bibliography cited by author and year, every entry cited, every citation known."""

import pybtex.plugin
import pytest
from pybtex.database import Entry, Person

from tools import bib
from tools import notebooks as N


def _entry(key, year, *names, title="A title"):
    e = Entry("article", fields={"title": title, "year": str(year), "journal": "J"})
    e.key = key
    for name in names:
        e.add_person(Person(name), "author")
    return e


def test_author_year_names_one_two_or_the_first_and_et_al():
    assert bib.author_year(_entry("a", 1992, "Williams, Ronald J.")) == "Williams, 1992"
    two = _entry("b", 2012, "Fairbank, Michael", "Alonso, Eduardo")
    assert bib.author_year(two) == "Fairbank and Alonso, 2012"
    many = _entry("c", 2026, "Asadulaev, Arip", "Ognev, Daniil", "Salta, Karim")
    assert bib.author_year(many) == "Asadulaev et al., 2026"
    assert bib.author_year(bib.entries()["olmo2024olmo2"]) == "Team OLMo et al., 2024"  # braces


def test_the_bibliography_style_labels_entries_as_the_text_cites_them():
    bib.register()
    style = pybtex.plugin.find_plugin("pybtex.style.formatting", bib.STYLE)()
    entries = style.sort(list(bib.entries().values()))
    labels = list(style.format_labels(entries))
    assert labels[:2] == ["Ahmadian et al., 2024", "Asadulaev et al., 2026"]  # by author
    assert all(any(ch.isdigit() for ch in lab) and not lab.isdigit() for lab in labels)
    assert len(set(labels)) == len(labels)
    # sorted by author: the braced {Team OLMo} sits under T, not after Z
    assert labels.index("Team OLMo et al., 2024") < labels.index("Williams, 1992")
    # two entries with the same authors and year get 2015a, 2015b
    same = [_entry("x", 2015, "Schulman, J.", "Heess, N.", "Weber, T.", title=t) for t in "AB"]
    assert list(style.format_labels(same)) == ["Schulman et al., 2015a", "Schulman et al., 2015b"]
    # control: pybtex's plain style numbers them, which no citation of the text uses
    plain = pybtex.plugin.find_plugin("pybtex.style.formatting", "plain")()
    assert list(plain.format_labels(entries))[:2] == ["1", "2"]


def test_every_reference_is_cited_and_every_citation_is_a_reference():
    assert bib.citation_problems(N.book_pages(), bib.entries()) == []
    # control: a page citing a key that is not a reference, and a reference nobody cites
    pages = {"a.md": "See {cite:p}`x, y` and {cite:t}`y`.", "b.md": "{cite}`nobody2030`"}
    assert bib.citation_problems(pages, {"x", "y", "z"}) == [
        "b.md: cites nobody2030, which is not in the bibliography",
        "z is in the bibliography but no page cites it",
    ]
    assert bib.cited_keys("see {cite:p}`a, b` and {cite:t}`b`, {cite}`c`") == ["a", "b", "c"]


def test_a_notebook_lists_the_references_it_cites():
    text = bib.notebook_references(["asadulaev2026vgh", "yu2025dapo"])
    assert "- `asadulaev2026vgh`: Asadulaev et al., 2026. Value-Gradient Hypothesis" in text
    assert "- `yu2025dapo`: Yu et al., 2025. DAPO: An Open-Source LLM" in text  # no braces
    assert bib.notebook_references([]) == ""
    with pytest.raises(KeyError, match="nobody2030"):
        bib.notebook_references(["nobody2030"])
