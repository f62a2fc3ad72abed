"""Result tables that fit the page: HTML for the book, aligned text for nbval and a terminal.

A notebook shows a :class:`Table` with ``display(table)``. The cell's output then carries two
forms of the same table:

* ``text/html``, which the book, JupyterLab and Colab show: a real table whose cells wrap to
  the text column, inside a box that scrolls sideways on its own when a phone is narrower still
  (the page itself never pans);
* ``text/plain``, the columns aligned with spaces, which nbval compares with the stored output
  and a terminal prints (``print(table)``).

The cells are strings formatted by the function that builds the table (the library function next
to the numbers, such as :func:`vghlib.scoring.predictor_report`), so both forms show the same
digits. A :class:`Section` row heads the rows below it across every column.

Printed text that is not a table is wrapped to :data:`TEXT_WIDTH` characters (:func:`wrap`), the
width of the book's text column in its monospace font. A code input's box is a little narrower: the
notebooks' code lines are at most :data:`CODE_WIDTH` characters, :data:`FOLDED_CODE_WIDTH` in a
cell whose input the book folds away (``hide-input``).
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass

__all__ = [
    "CODE_WIDTH",
    "FOLDED_CODE_WIDTH",
    "TEXT_WIDTH",
    "Section",
    "Table",
    "interval",
    "numbers",
    "show",
    "wrap",
]

#: Characters of printed output that fit the book's text column: a 688-px output box with 16 px of
#: padding each side, at 8.43 px per character of the 14-px monospace font. A longer line hides its
#: end off the right edge (the browser test fails on it).
TEXT_WIDTH = 78
#: Characters of a code line that fit a code input (``.cell_input pre``) at a 1280-px window: its
#: box is 684 px wide in the 688-px column, 4 px narrower than a printed output's, with the same
#: 16 px of padding each side and 8.43 px per character (652 / 8.43 = 77.3). A longer line makes the
#: box scroll sideways; the browser test fails on it, and tests/test_output_width.py checks the
#: notebooks' code lines against this number.
CODE_WIDTH = 77
#: The same for a cell tagged ``hide-input``, whose input the book folds into a toggle: the toggle's
#: border and padding leave the code a 666-px box, (666 - 32) / 8.43 = 75.2 characters.
FOLDED_CODE_WIDTH = 75


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "    ") -> str:
    """``text`` with each of its lines wider than ``width`` wrapped at spaces, the continuation
    lines indented by ``indent`` more than the line they continue. Lines that fit are unchanged,
    and a word is never broken (a word longer than a line stays whole)."""
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip(" "))]
        out += textwrap.wrap(
            line,
            width,
            initial_indent="",
            subsequent_indent=lead + indent,
            break_long_words=False,
            break_on_hyphens=False,
            drop_whitespace=True,
        )
    return "\n".join(out)


@dataclass(frozen=True)
class Section:
    """A row across the whole table that heads the rows below it (``--- label`` in the text)."""

    label: str


@dataclass(frozen=True)
class Table:
    """A table of formatted cells, shown as HTML with its text form kept for nbval.

    ``columns``: the header; ``rows``: tuples of cells (one string per column) or
    :class:`Section` rows; ``title``: a line above the table; ``notes``: lines below it;
    ``align``: one letter per column, ``"l"`` or ``"r"`` (default: the first column left, the
    others right, as numbers read).
    """

    columns: tuple
    rows: tuple
    title: str = ""
    notes: tuple = ()
    align: str = ""

    def __post_init__(self):
        columns = tuple(str(c) for c in self.columns)
        if not columns:
            raise ValueError("a table needs at least one column")
        rows = []
        for row in self.rows:
            if isinstance(row, Section):
                rows.append(row)
                continue
            cells = tuple("" if c is None else str(c) for c in row)
            if len(cells) != len(columns):
                raise ValueError(
                    f"a row has {len(cells)} cells for {len(columns)} columns: {cells!r}"
                )
            rows.append(cells)
        align = self.align or "l" + "r" * (len(columns) - 1)
        if len(align) != len(columns) or set(align) - {"l", "r"}:
            raise ValueError(f"align needs one of l or r per column, got {align!r}")
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", tuple(rows))
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))
        object.__setattr__(self, "align", align)

    # ----------------------------------------------------------------------------- text form
    def text(self) -> str:
        """The table as aligned text: title, header, rows (two spaces between columns), notes."""
        cells = [r for r in self.rows if not isinstance(r, Section)]
        widths = [max(len(c) for c in col) for col in zip(self.columns, *cells)]

        def line(row):
            out = [
                cell.ljust(w) if a == "l" else cell.rjust(w)
                for cell, w, a in zip(row, widths, self.align)
            ]
            return "  ".join(out).rstrip()

        lines = [self.title] if self.title else []
        lines.append(line(self.columns))
        for row in self.rows:
            lines.append(f"--- {row.label}" if isinstance(row, Section) else line(row))
        lines += self.notes
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's text/plain
        p.text(self.text())

    # ----------------------------------------------------------------------------- HTML form
    def _repr_html_(self) -> str:
        esc = html.escape

        def style(a):
            return ' style="text-align: left"' if a == "l" else ' style="text-align: right"'

        head = "".join(f"<th{style(a)}>{esc(c)}</th>" for c, a in zip(self.columns, self.align))
        body = []
        for row in self.rows:
            if isinstance(row, Section):
                body.append(
                    f'<tr class="vgh-table-section"><th colspan="{len(self.columns)}"'
                    f' style="text-align: left">{esc(row.label)}</th></tr>'
                )
            else:
                tds = "".join(f"<td{style(a)}>{esc(c)}</td>" for c, a in zip(row, self.align))
                body.append(f"<tr>{tds}</tr>")
        parts = ['<div class="vgh-table" style="overflow-x: auto; max-width: 100%">']
        if self.title:
            parts.append(f'<p class="vgh-table-title">{esc(self.title)}</p>')
        parts.append("<table>")
        parts.append(f"<thead><tr>{head}</tr></thead>")
        parts.append("<tbody>\n" + "\n".join(body) + "\n</tbody>")
        parts.append("</table>")
        parts += [f'<p class="vgh-table-note">{esc(n)}</p>' for n in self.notes]
        parts.append("</div>")
        return "\n".join(parts)


def numbers(
    columns,
    rows,
    fmt="+.2f",
    *,
    labels: int = 1,
    title: str = "",
    notes=(),
) -> Table:
    """A :class:`Table` of numbers: the first ``labels`` cells of each row are text, the others
    numbers formatted with ``fmt`` (one format spec for all, or one per number column, such as
    ``".4f"`` or ``"+.2f"``); ``None`` is an empty cell and a string is kept as it is (an interval
    formatted by :func:`interval`). :class:`Section` rows pass through."""
    n_num = len(columns) - labels
    specs = [fmt] * n_num if isinstance(fmt, str) else list(fmt)
    if len(specs) != n_num:
        raise ValueError(f"{len(specs)} formats for {n_num} number columns")
    body = []
    for row in rows:
        if isinstance(row, Section):
            body.append(row)
            continue
        row = tuple(row)
        if len(row) != len(columns):
            raise ValueError(f"a row has {len(row)} cells for {len(columns)} columns: {row!r}")
        nums = [
            "" if v is None else v if isinstance(v, str) else format(v, spec)
            for v, spec in zip(row[labels:], specs)
        ]
        body.append((*row[:labels], *nums))
    return Table(columns, body, title=title, notes=notes, align="l" * labels + "r" * n_num)


def interval(low: float, high: float, fmt: str = "+.2f") -> str:
    """``[low, high]``, both formatted with ``fmt``: an interval as one cell."""
    return f"[{format(low, fmt)}, {format(high, fmt)}]"


def show(table: Table) -> None:
    """Display ``table`` in a notebook (HTML and text); print its text anywhere else."""
    try:
        from IPython import get_ipython  # noqa: PLC0415  (optional: only inside a kernel)
        from IPython.display import display  # noqa: PLC0415  (optional: as above)
    except ImportError:  # pragma: no cover - IPython is installed with the book
        print(table.text())
        return
    if get_ipython() is None:
        print(table.text())
    else:
        display(table)
