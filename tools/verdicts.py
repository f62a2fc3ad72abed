"""The scorecard, the findings page's verdict lines and the landing page's summary, written from the
verdict records that the chapters emit (:mod:`vghlib.verdicts`).

``python -m tools.verdicts --write`` reads every notebook of the book as stored (with its
outputs), collects one record per claim, and rewrites the generated blocks of the pages;
``--check`` (run by the tests) fails when a block differs from what the records give. A generated
block sits between two MyST comment lines, which the rendered page does not show::

    % verdicts:begin table
    ...
    % verdicts:end

What is not a verdict lives here: each claim's wording, the pages that check it, and the findings
sections that explain it.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from vghlib import verdicts as V

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Claim:
    text: str  # the claim, as the scorecard words it (MyST)
    short: str  # a few words, for the landing page
    checked_in: str  # the pages that check it (MyST roles)
    findings: tuple[str, ...] = ()  # labels of findings sections that explain the verdict


CLAIMS: dict[str, Claim] = {
    "C1a": Claim(
        "SF and PD gradients have the same mean (eq 2, 3)",
        "SF and PD have the same mean",
        "{doc}`Part I, SF vs PD <part1/sf_vs_pd>`",
    ),
    "C1b": Claim(
        '"Pathwise has lower variance"',
        "pathwise has lower variance",
        "{doc}`Part I, SF vs PD <part1/sf_vs_pd>`, {doc}`Part II <part2/continuous_control>`",
    ),
    "C2": Claim(
        "SF = PD for a shift policy (Lemma 1, eq 10)",
        "Lemma 1: SF = PD for a shift policy",
        "{prf:ref}`Lemma 1 (Part I) <sfpd-lemma-shift>`, "
        "{prf:ref}`Lemma 1 (appendix) <proofs-lemma1>`",
        ("findings-discount",),
    ),
    "C3": Claim(
        "Adjoint recursion and pathwise gradient (Prop 1, eq 6, 7)",
        "Prop 1: the adjoint recursion",
        "{prf:ref}`Prop 1 (Part I) <costates-prop-adjoint>`, "
        "{prf:ref}`Prop 1 (appendix) <proofs-prop1>`",
    ),
    "C4": Claim(
        "Costates are value gradients in expectation (eq 8, 9)",
        "costates are value gradients",
        "{prf:ref}`eq 8 remark (Part I) <costates-remark-eq8>`, "
        "{prf:ref}`eqs 8–9 (appendix) <proofs-eq89>`, "
        "{doc}`Part II <part2/continuous_control>`",
        ("findings-eq8",),
    ),
    "C5": Claim(
        "GRPO/PPO actor update = BPTT gradient in expectation (Cor 1, eq 11, 12)",
        "Corollary 1: GRPO's update is the BPTT gradient",
        "{prf:ref}`Cor 1 as stated <proofs-cor1-paper>`, "
        "{prf:ref}`Cor 1 corrected <proofs-cor1-corrected>`, "
        "{doc}`Part II <part2/continuous_control>`",
        ("findings-eq11", "findings-corollary1"),
    ),
    "C6a": Claim(
        "Final-layer empirical costate obeys an attention recursion (eq 14, 15)",
        "the final-layer costate recursion",
        "{prf:ref}`final layer (Part III) <credit-prop-final>`, "
        "{doc}`Part III, credit <part3/credit>`",
        ("findings-final-layer", "findings-attention-adjoint"),
    ),
    "C6b": Claim(
        "The empirical costate estimates the value gradient",
        "the empirical costate is a value gradient",
        "{prf:ref}`unbiasedness (Part III) <credit-prop-unbiased>`",
        ("findings-discount",),
    ),
    "C7a": Claim(
        r"Sampling-gap bound $C\sqrt{\ent/\log\lvert\vocab\rvert}$ (Prop 2, eq 21)",
        "Prop 2: the sampling-gap bound",
        "{prf:ref}`Prop 2 (Part III) <gap-prop2>`, "
        "{prf:ref}`softmax Jacobian <proofs-softmax-jac>`, "
        "{prf:ref}`trace to p_max <proofs-pmax-chain>`, "
        "{doc}`Part III, sampling gap <part3/sampling_gap>`",
        ("findings-prop2",),
    ),
    "C7b": Claim(
        '"RNN: all temporal credit passes through the sampled token"',
        "an RNN's credit passes through the token",
        "{doc}`Part III, credit <part3/credit>`",
    ),
    "C8": Claim(
        "Attention-path Jacobian rank (Prop 3)",
        "Prop 3: the attention-path rank",
        "{doc}`Part III, credit <part3/credit>`",
        ("findings-prop3",),
    ),
    "C9": Claim(
        "Empirical and relaxed costates are close, error bounded by entropy (Thm 1, eq 23)",
        "Theorem 1: the entropy-bounded error",
        "{doc}`Part III, credit <part3/credit>`",
        ("findings-theorem1",),
    ),
    "C10": Claim(
        r"Usable-signal lower bound $\Sigma-\Lambda$ (eq 25, A.10)",
        "the usable-signal lower bound",
        "{prf:ref}`usable-signal bound <proofs-usable>`, {prf:ref}`bias of Λ <proofs-lambda-bias>`",
        ("findings-impact-law", "findings-lambda-bias"),
    ),
    "C11": Claim(
        r"Headroom $\headroom$ is small when hopeless and when saturated (eq 28)",
        "headroom vanishes at both ends",
        "{doc}`environment check <start/environment>`, "
        "{doc}`Part IV, impact law <part4/impact_law>`",
    ),
    "C12": Claim(
        r"$P_{\mathrm{gap}}=(\Sigma-\Lambda)\headroom$ predicts the RL gain (eq 29–31, Sec 6)",
        "the RL-impact law (the headline)",
        "{doc}`Part IV, GRPO task <part4/grpo_task>`, "
        "{doc}`Part IV, impact law <part4/impact_law>`, "
        "{doc}`Part V <part5/olmo2>`",
        (
            "findings-replicated",
            "findings-two-labels",
            "findings-impact-law",
            "findings-lambda-bias",
            "findings-group-size",
        ),
    ),
}

BADGE_CLASS = {
    "holds": "verdict-holds",
    "holds with conditions": "verdict-conditions",
    "corrected": "verdict-corrected",
    "fails": "verdict-fails",
}
PAGES = ("book/scorecard.md", "book/findings.md", "book/intro.md")
BLOCK = re.compile(
    r"^% verdicts:begin (?P<name>[\w-]+)[ \t]*\n(?P<body>.*?)^% verdicts:end[ \t]*$", re.M | re.S
)


class VerdictError(RuntimeError):
    """The records do not give one verdict per claim, or a page's generated block is missing."""


@dataclass(frozen=True)
class Found:
    verdict: V.Verdict
    notebook: str  # path relative to the root, e.g. "book/part3/credit.ipynb"
    cell_id: str


def collect(root: Path = ROOT) -> dict[str, Found]:
    """One record per claim of :data:`CLAIMS`, from the stored outputs of the book's notebooks."""
    found: dict[str, list[Found]] = {}
    for path in sorted((root / "book").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        rel = path.relative_to(root).as_posix()
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if V.MIME in data:
                    try:
                        v = V.from_json(dict(data[V.MIME]))
                    except (TypeError, ValueError) as e:
                        where = f"{rel}, cell {cell.get('id')}"
                        raise VerdictError(
                            f"{where}: a verdict record that cannot be read: {e}"
                        ) from e
                    found.setdefault(v.claim, []).append(Found(v, rel, cell.get("id", "")))
    unknown = sorted(set(found) - set(CLAIMS))
    if unknown:
        where = "; ".join(f"{c} in {found[c][0].notebook}" for c in unknown)
        raise VerdictError(
            f"records of claims the scorecard does not list: {where}; "
            f"add them to CLAIMS in {__name__}"
        )
    twice = {c: fs for c, fs in found.items() if len(fs) > 1}
    if twice:
        c, fs = next(iter(twice.items()))
        cells = ", ".join(f"{f.notebook} cell {f.cell_id}" for f in fs)
        raise VerdictError(
            f"{c} has {len(fs)} verdict records ({cells}): "
            "one chapter decides each claim; the others can quote its numbers"
        )
    missing = [c for c in CLAIMS if c not in found]
    if missing:
        raise VerdictError(
            f"no chapter records a verdict on {', '.join(missing)}: add "
            "vghlib.verdicts.record(...) to the verdict cell of the chapter that checks it, run "
            "the notebook and save it with its outputs"
        )
    return {c: found[c][0] for c in CLAIMS}


def badge(v: V.Verdict) -> str:
    """The verdict as the scorecard's coloured word (CSS in _static/vgh.css), scoped if need be."""
    cls = BADGE_CLASS[v.verdict] + (" verdict-scoped" if v.scope else "")
    return f'<span class="verdict {cls}">{v.label}</span>'


def _word(word: str) -> str:
    return f'<span class="verdict {BADGE_CLASS[word]}">{word}</span>'


def _chapter(f: Found) -> str:
    """A link to the chapter whose cell records the verdict, from the findings and landing pages."""
    return f"{{doc}}`{f.notebook.removeprefix('book/').removesuffix('.ipynb')}`"


def table(records: dict[str, Found]) -> str:
    """The scorecard's table. The verdict comes right after the id, so that a phone, where the
    table scrolls sideways inside its box, shows it without scrolling."""
    rows = ["| id | verdict | claim | checked in |", "|---|---|---|---|"]
    for c, claim in CLAIMS.items():
        rows.append(f"| {c} | {badge(records[c].verdict)} | {claim.text} | {claim.checked_in} |")
    return "\n".join(rows) + "\n"


def notes(records: dict[str, Found]) -> str:
    out = []
    for c, claim in CLAIMS.items():
        v = records[c].verdict
        refs = "".join(f", {{ref}}`{lab}`" for lab in claim.findings)
        out.append(f"- **{c}.** {v.summary} ({_chapter(records[c])}{refs})")
    return "\n".join(out) + "\n"


def findings_summary(records: dict[str, Found]) -> str:
    lines = []
    for word in V.VERDICTS:
        ids = [c for c in CLAIMS if records[c].verdict.verdict == word]
        if ids:
            lines.append(f"- {_word(word)}: {', '.join(ids)}")
    return "\n".join(lines) + "\n"


def findings_section(label: str, records: dict[str, Found]) -> str:
    ids = [c for c, claim in CLAIMS.items() if label in claim.findings]
    if not ids:
        raise VerdictError(
            f"findings section {label!r} has a verdict block, but no claim of CLAIMS names it"
        )
    parts = [f"{c} {badge(records[c].verdict)} (recorded in {_chapter(records[c])})" for c in ids]
    return "**Scorecard.** " + "; ".join(parts) + ".\n"


def glance(records: dict[str, Found]) -> str:
    rows = ["| claim | verdict | decided in |", "|---|---|---|"]
    for c, claim in CLAIMS.items():
        rows.append(
            f"| {c}: {claim.short} | {badge(records[c].verdict)} | {_chapter(records[c])} |"
        )
    return "\n".join(rows) + "\n"


def render(name: str, records: dict[str, Found]) -> str:
    if name == "table":
        return table(records)
    if name == "notes":
        return notes(records)
    if name == "summary":
        return findings_summary(records)
    if name == "glance":
        return glance(records)
    if name.startswith("findings-"):
        return findings_section(name, records)
    raise VerdictError(f"unknown generated block {name!r}")


def regenerate(text: str, records: dict[str, Found], page: str = "") -> str:
    """The page's text with every generated block rewritten from the records."""
    if not BLOCK.search(text):
        raise VerdictError(f"{page}: no '% verdicts:begin NAME' ... '% verdicts:end' block")

    def sub(m):
        return f"% verdicts:begin {m['name']}\n{render(m['name'], records)}% verdicts:end"

    return BLOCK.sub(sub, text)


def _changes(root: Path):
    """(page, text now, text the records give) for each page whose generated blocks differ."""
    records = collect(root)
    for page in PAGES:
        old = (root / page).read_text()
        new = regenerate(old, records, page)
        if new != old:
            yield page, old, new


def stale(root: Path = ROOT) -> list[str]:
    """A unified diff per page whose generated blocks differ from the records (empty: current)."""
    return [
        "".join(
            difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), page, page + " (records)"
            )
        )
        for page, old, new in _changes(root)
    ]


def write(root: Path = ROOT) -> list[str]:
    """Rewrite the pages whose generated blocks differ from the records; the pages rewritten."""
    changes = list(_changes(root))  # every record read before any page is written
    for page, _, new in changes:
        (root / page).write_text(new)
    return [page for page, _, _ in changes]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tools.verdicts", description=__doc__.split("\n\n")[0]
    )
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument(
        "--write", action="store_true", help="rewrite the generated blocks from the records"
    )
    g.add_argument(
        "--check", action="store_true", help="exit 1 if a generated block is out of date"
    )
    ap.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    root = Path(a.root)
    try:
        if a.write:
            changed = write(root)
            print(
                "rewrote " + ", ".join(changed) if changed else "every generated block is current"
            )
            return 0
        diffs = stale(root)
    except VerdictError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if diffs:
        print("".join(diffs))
        print(
            "The pages above do not say what the chapters' verdict records say; "
            "run python -m tools.verdicts --write"
        )
        return 1
    print("every generated block agrees with the chapters' verdict records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
