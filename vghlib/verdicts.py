"""Verdict records: a chapter states its verdict on a claim of the paper in a machine-readable form.

Reference: the book's scorecard (``book/scorecard.md``) and findings page (``book/findings.md``). A
chapter's verdict cell computes the verdict from the numbers it printed, with :func:`decide`, and
emits it with :func:`record`. The record is a cell output with two forms: text a reader sees (and
nbval compares, so a changed result fails the tests), and a JSON object under :data:`MIME` that
``python -m tools.verdicts`` collects from the stored notebooks to write the scorecard's table and
notes, the findings page's verdict lines and the landing page's summary. So those pages cannot say
something the chapters do not.

The four words are the scorecard's:

- ``holds``: true as stated, and a check that could fail did not;
- ``holds with conditions``: true once a hypothesis the paper leaves implicit is added;
- ``corrected``: the claim as written fails, a nearby statement holds, and the book checks that one;
- ``fails``: a counterexample is printed, with its numbers.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import asdict, dataclass, field

try:
    from IPython.display import display
except ImportError:  # IPython is optional: record() then prints the text only
    display = None

MIME = "application/vnd.vgh.verdict+json"
VERDICTS = ("holds", "holds with conditions", "corrected", "fails")
CLAIM_ID = re.compile(r"^C\d{1,2}[a-z]?$")

__all__ = ["MIME", "VERDICTS", "Verdict", "decide", "record", "from_json"]


def _finding(name: str, v):
    """A boolean (Python, NumPy or a one-element torch bool), or None; a number is refused, since a
    threshold belongs in the chapter's cell, where the reader sees it."""
    if v is None or isinstance(v, bool):
        return v
    if str(getattr(v, "dtype", "")) in ("bool", "torch.bool") and getattr(v, "ndim", None) == 0:
        return bool(v)
    raise TypeError(f"decide: {name} must be True, False or None, not {v!r} ({type(v).__name__})")


def decide(
    *, as_stated: bool, with_implicit: bool | None = None, corrected: bool | None = None
) -> str:
    """The scorecard's word for a claim, from what its checks found.

    ``as_stated``: every check of the claim, with only the hypotheses the paper states, passed
    (no counterexample, and no step of the proof needed anything more). ``with_implicit``: the
    checks pass once the hypotheses the paper leaves implicit are added. ``corrected``: a nearby
    statement, which the book states and checks, holds. ``None``: the chapter did not test it.
    """
    as_stated, with_implicit, corrected = (
        _finding(n, v)
        for n, v in (
            ("as_stated", as_stated),
            ("with_implicit", with_implicit),
            ("corrected", corrected),
        )
    )
    if as_stated:
        return "holds"
    if with_implicit:
        return "holds with conditions"
    if corrected:
        return "corrected"
    return "fails"


def _clean_number(name: str, v):
    if isinstance(v, bool) or v is None:
        raise TypeError(
            f"number {name!r}: {v!r} is not a number; record booleans in the verdict, not here"
        )
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(
                f"number {name!r} is {v}: a verdict cannot rest on a non-finite number"
            )
        return float(f"{v:.4g}")  # four significant digits: stable across machines, as printed
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)):
        return [_clean_number(f"{name}[{i}]", x) for i, x in enumerate(v)]
    try:  # numpy and torch scalars
        return _clean_number(name, v.item())
    except AttributeError:
        raise TypeError(
            f"number {name!r}: {type(v).__name__} is not a number, a string or a list"
        ) from None


@dataclass(frozen=True)
class Verdict:
    """One chapter's verdict on one claim of the paper (a scorecard id such as ``"C9"``)."""

    claim: str
    verdict: str
    summary: str
    numbers: dict = field(default_factory=dict)
    scope: str = ""

    def __post_init__(self):
        if not isinstance(self.claim, str) or not CLAIM_ID.match(self.claim):
            raise ValueError(f"claim {self.claim!r}: use the scorecard's id, e.g. 'C9' or 'C7a'")
        if self.verdict not in VERDICTS:
            raise ValueError(
                f"verdict {self.verdict!r} for {self.claim}: use one of {', '.join(VERDICTS)}"
            )
        if not self.summary.strip() or "\n" in self.summary:
            raise ValueError(f"summary for {self.claim}: one non-empty line of plain text")
        if "{" in self.summary or "$" in self.summary:
            raise ValueError(
                f"summary for {self.claim} contains '{{' or '$': write it as plain text (it is "
                "printed in the notebook and pasted into the scorecard as is)"
            )
        numbers = {str(k): _clean_number(str(k), v) for k, v in dict(self.numbers).items()}
        object.__setattr__(self, "numbers", numbers)

    @property
    def label(self) -> str:
        """The word the scorecard shows: the verdict, or its scoped form (``scope``)."""
        return self.scope or self.verdict

    def to_dict(self) -> dict:
        """The JSON form; ``numbers`` as ``[name, value]`` pairs, in the order the chapter gave them
        (nbformat sorts the keys of a stored dict)."""
        d = asdict(self)
        d["numbers"] = [[k, v] for k, v in self.numbers.items()]
        return d

    def text(self, width: int = 78) -> str:
        """The record as a reader sees it in the notebook: verdict, summary, then the numbers."""
        head = f"{self.claim}: {self.label}"
        lines = textwrap.wrap(f"{head}. {self.summary}", width, subsequent_indent="    ")
        nums = "; ".join(f"{k} = {_show(v)}" for k, v in self.numbers.items())
        if nums:
            lines += textwrap.wrap(
                f"rests on: {nums}", width, initial_indent="    ", subsequent_indent="    "
            )
        return "\n".join(lines)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text(), MIME: self.to_dict()}


def _show(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def from_json(d: dict) -> Verdict:
    """A record read back from a stored notebook output (the inverse of ``Verdict.to_dict``)."""
    unknown = set(d) - {"claim", "verdict", "summary", "numbers", "scope"}
    if unknown:
        raise ValueError(
            f"verdict record has unknown fields {sorted(unknown)}: {json.dumps(d)[:200]}"
        )
    numbers = d.get("numbers", [])
    if isinstance(numbers, list):
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in numbers):
            raise ValueError(
                f"verdict record's numbers must be [name, value] pairs: {numbers!r:.200}"
            )
        numbers = dict(numbers)
    return Verdict(**{**d, "numbers": numbers})


def record(
    claim: str,
    verdict: str,
    summary: str,
    *,
    numbers: dict | None = None,
    scope: str = "",
    control_failed: bool | None = None,
) -> None:
    """Emit one verdict record from a chapter's verdict cell (a display output; see the module).

    ``control_failed``: whether the negative control of the checks behind the verdict failed, as it
    must. A check whose control passes cannot support a verdict, so ``False`` is refused.
    """
    if control_failed is False:
        raise ValueError(
            f"{claim}: the negative control passed, so the checks behind this verdict cannot fail; "
            "fix the check before recording a verdict"
        )
    v = Verdict(claim, verdict, summary, numbers or {}, scope)
    if display is None:  # without IPython: print the reader's form only
        print(v.text())
    else:
        display(v)
