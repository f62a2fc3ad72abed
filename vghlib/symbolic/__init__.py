"""Symbolic checks of the paper's formal statements, each returning a result that can fail.

Every check is a function that builds a sympy statement, simplifies ``lhs - rhs`` (or tests an
inequality) and returns a :class:`CheckResult`. A check never raises on a false statement: it
returns ``passed=False`` with the residual, so that negative controls (perturbed statements) can
be shown to fail in the book and in the tests.

Checks register themselves with :func:`register`, so ``all_checks()`` lists them for the
benchmark in ``benchmarks/symbolic_checks.py``.

Reference: Asadulaev et al., arXiv 2605.21654 (Lemma 1, Prop 1, eq 8–9, Corollary 1, Prop 2, A.10).

Submodules, one statement each: ``lemma1`` (Lemma 1, eq 10), ``adjoint`` (Prop 1, eq 5–7, eq 9),
``corollary`` (Corollary 1, eq 8, eq 11), ``softmax`` (the pieces of Prop 2), ``usable`` (A.10).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import textwrap
import time
from dataclasses import dataclass, field
from typing import Callable

import sympy as sp

from vghlib.tables import wrap

_REGISTRY: dict[str, Callable[[], "CheckResult"]] = {}


@dataclass
class CheckResult:
    """What a symbolic check established.

    ``statement`` is a sympy object (an Eq, a relational, or an expression claimed to be zero);
    ``residual`` is what is left after simplification (0 when an identity holds);
    ``passed`` is the verdict; ``note`` says which hypotheses were used.
    """

    name: str
    statement: object
    residual: object
    passed: bool
    note: str = ""
    seconds: float = 0.0
    details: dict = field(default_factory=dict)

    def __bool__(self) -> bool:  # `assert check_x()` reads naturally in tests
        return self.passed

    @property
    def verdict(self) -> str:
        """``"holds"`` or ``"FAILS"``: the word the book prints for this result."""
        return "holds" if self.passed else "FAILS"

    def line(self) -> str:
        """One line for a table of checks: the verdict, padded, then the name (a long name
        continues on indented lines, to the book's text column)."""
        return wrap(f"{self.verdict:6s} {self.name}", indent=" " * 7)

    def summary(self, width: int = 110) -> str:
        """Two lines: ``[verdict] name`` and the residual, in full when it is short.

        A long residual is cut at ``width`` characters when the check holds (it is then a large
        expression of zeros, e.g. a matrix) and replaced by its length when the check fails.
        Both lines wrap at spaces to the book's text column (:data:`vghlib.tables.TEXT_WIDTH`).
        """
        resid = str(self.residual)
        if len(resid) > width:
            resid = (
                f"<a nonzero expression of {len(resid)} characters>"
                if not self.passed
                else resid[:width] + " ..."
            )
        return wrap(f"[{self.verdict}] {self.name}\n    residual: {resid}")

    def _repr_markdown_(self) -> str:
        s = (
            f"**{self.verdict}**: {self.name}  \nresidual after simplification: "
            f"${sp.latex(self.residual)}$"
        )
        return s + (f"  \n_{self.note}_" if self.note else "")

    def __str__(self) -> str:
        """The verdict, name, residual and note, wrapped to the book's text column
        (78 characters)."""
        text = f"[{self.verdict}] {self.name}; residual = {self.residual}" + (
            f" ({self.note})" if self.note else ""
        )
        return textwrap.fill(
            text, width=78, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False
        )


def simplify_residual(expr) -> sp.Expr:
    """A canonical simplification of ``expr``; returns 0 when it can prove expr == 0."""
    r = sp.simplify(sp.expand(expr))
    if r != 0:
        r2 = sp.simplify(sp.together(sp.expand(sp.powsimp(sp.expand_log(r, force=True)))))
        r = r2 if r2 == 0 else r
    return r


def gaussian_expectation(expr, noises) -> sp.Expr:
    """E[expr] for a polynomial in independent standard normals ``noises`` (E[xi^k] = (k-1)!! for
    even k)."""
    expr = sp.expand(expr)
    if not noises:
        return expr
    poly = sp.Poly(expr, *noises)
    out = sp.Integer(0)
    for powers, coeff in poly.terms():
        m = sp.Integer(1)
        for k in powers:
            m *= 0 if k % 2 else sp.factorial2(k - 1)
        out += coeff * m
    return sp.expand(out)


def identity(name: str, lhs, rhs, note: str = "", **details) -> CheckResult:
    """Check ``lhs == rhs`` (scalars or matrices) by simplifying their difference."""
    t0 = time.perf_counter()
    if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
        diff = sp.Matrix(lhs) - sp.Matrix(rhs)
        residual = diff.applyfunc(simplify_residual)
        passed = all(e == 0 for e in residual)
    else:
        residual = simplify_residual(lhs - rhs)
        passed = residual == 0
    return CheckResult(
        name,
        sp.Eq(lhs, rhs, evaluate=False) if not isinstance(lhs, sp.MatrixBase) else (lhs, rhs),
        residual,
        bool(passed),
        note,
        time.perf_counter() - t0,
        details,
    )


def register(fn: Callable[[], CheckResult]) -> Callable[[], CheckResult]:
    """Add a zero-argument check to the registry used by ``all_checks`` and the benchmark."""
    _REGISTRY[f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"] = fn
    return fn


def register_control(fn: Callable[[], CheckResult]) -> Callable[[], CheckResult]:
    """Register a negative control: a deliberately false statement that its check must reject.

    The result is marked ``details["negative_control"] = True``, so that the benchmark and the
    tests read ``passed=False`` as the right verdict for it.
    """

    @functools.wraps(fn)
    def wrapped() -> CheckResult:
        res = fn()
        res.details["negative_control"] = True
        return res

    return register(wrapped)


def all_checks() -> dict[str, Callable[[], CheckResult]]:
    """Every registered check, after importing the submodules that define them."""
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    return dict(_REGISTRY)
