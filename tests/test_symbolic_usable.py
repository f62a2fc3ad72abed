"""vghlib.symbolic.usable: A.10 and the Jensen bias of single-sample Lambda, against closed
forms."""

import math

import numpy as np
import pytest
import sympy as sp

from vghlib.symbolic import usable


def test_single_sample_lambda_matches_closed_form():
    # Monte Carlo check of the closed form sqrt(2/pi) ||G|| s for d = 1.
    rng = np.random.default_rng(5)
    s = 0.7
    eps = rng.normal(size=400_000)
    assert np.mean(np.abs(s * eps)) == pytest.approx(math.sqrt(2 / math.pi) * s, rel=5e-3)
    res = usable.check_single_sample_lambda_bias(1)
    gs = sp.symbols("g s", positive=True)
    assert sp.simplify(res.details["lam_single"] - sp.sqrt(2 / sp.pi) * gs[0] * gs[1]) == 0


def test_the_negative_usable_signal_control_reports_its_alignment():
    assert usable.control_usable_is_nonnegative().details["alignment"] == 3
