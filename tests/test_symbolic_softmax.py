"""vghlib.symbolic.softmax: the pieces of Prop 2's proof, their negative controls, and the
registry."""

import numpy as np
import sympy as sp

from vghlib.symbolic import all_checks, corollary, identity, softmax, usable

MODULES = [softmax, usable, corollary]


def test_each_module_registers_checks_and_negative_controls():
    # Their verdicts are tested once for the whole registry in test_symbolic_registry.py.
    names = set(all_checks())
    for m in MODULES:
        short = m.__name__.rsplit(".", 1)[-1]
        mine = [n for n in names if n.startswith(short + ".")]
        assert any(".check_" in n for n in mine) and any(".control_" in n for n in mine), short


def test_softmax_jacobian_check_rejects_a_wrong_temperature():
    # Build the claimed Jacobian with tau^2 instead of tau: the identity must fail.
    z = sp.symbols("z1:4", real=True)
    tau = sp.Symbol("tau", positive=True)
    e = [sp.exp(zi / tau) for zi in z]
    p = sp.Matrix([ei / sum(e) for ei in e])

    assert identity("ok", p.jacobian(z), (sp.diag(*p) - p * p.T) / tau).passed
    assert not identity("wrong", p.jacobian(z), (sp.diag(*p) - p * p.T) / tau**2).passed


def test_opnorm_bounds_numerically():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(6, 0.4), size=3000)  # (N, 6)
    m = np.einsum("bi,ij->bij", p, np.eye(6)) - np.einsum("bi,bj->bij", p, p)
    norm = np.linalg.eigvalsh(m)[:, -1]
    pmax = p.max(1)
    assert np.all(norm <= 1 - (p**2).sum(1) + 1e-12)
    assert np.all(norm <= 2 * (1 - pmax) + 1e-12)
    # Control: the tighter-looking 1 - p_max is violated on some draws.
    assert np.any(norm > (1 - pmax) + 1e-6)


def test_negative_controls_report_their_counterexamples():
    assert softmax.control_opnorm_le_gap().residual == sp.Rational(2, 25)  # 0.18 - 0.1
    r = softmax.control_vocab_free_constant(32).residual
    assert sp.simplify(r - (sp.Rational(1, 2) - 1 / sp.sqrt(5))) == 0
    # With |V| = 4 the same two-point law satisfies the bound 1 - p_max <= H/log|V| (equality),
    # so the control is specific to |V| >= 5.
    assert softmax.control_gap_le_normalised_entropy(4).passed
    assert not softmax.control_gap_le_normalised_entropy(5).passed
