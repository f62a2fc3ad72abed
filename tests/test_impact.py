import numpy as np
import pytest

from vghlib.impact import bernoulli_headroom, headroom, usable_terms


def test_bernoulli_headroom_vanishes_at_the_ends_and_is_positive_between():
    p = np.linspace(0, 1, 101)
    h = bernoulli_headroom(p, 3.0)
    assert h[0] == 0 and abs(h[-1]) < 1e-12
    assert np.all(h[1:-1] > 0)


def test_bernoulli_headroom_matches_the_two_point_expectation():
    # Reference computed directly from the definition, no logaddexp.
    for p, a in [(0.2, 1.0), (0.7, 4.0), (0.05, 10.0)]:
        ref = np.log((1 - p) + p * np.exp(a)) / a - p
        assert bernoulli_headroom(p, a) == pytest.approx(ref, rel=1e-12)


def test_bernoulli_headroom_limits_in_alpha():
    p = 0.3
    assert bernoulli_headroom(p, 1e-4) == pytest.approx(1e-4 * p * (1 - p) / 2, rel=1e-3)
    assert bernoulli_headroom(p, 500.0) == pytest.approx(1 - p, abs=5e-3)


def test_sampled_headroom_converges_to_the_closed_form():
    rng = np.random.default_rng(1)
    r = (rng.random(400_000) < 0.4).astype(float)
    assert headroom(r, 2.0) == pytest.approx(bernoulli_headroom(0.4, 2.0), abs=2e-3)
    # Negative control: the wrong success probability is clearly rejected.
    assert abs(headroom(r, 2.0) - bernoulli_headroom(0.6, 2.0)) > 1e-2


def test_sampled_headroom_is_zero_for_a_constant_reward_and_stable_for_large_alpha():
    assert headroom(np.full(10, 0.7), 5.0) == pytest.approx(0.0, abs=1e-12)
    r = np.array([0.0, 1.0, 1.0, 0.0])
    assert np.isfinite(headroom(r * 1000, 50.0))


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="non-finite reward"):
        headroom([0.0, np.nan, 1.0], 1.0)
    with pytest.raises(ValueError, match="alpha must be a positive"):
        bernoulli_headroom(0.5, 0.0)
    with pytest.raises(ValueError, match="probabilities in"):
        bernoulli_headroom(1.5, 1.0)


def test_usable_terms_shapes_and_values():
    g = np.array([[1.0, 0.0], [0.0, 2.0]])
    align, sigma, lam = usable_terms(g, g)
    assert (align, sigma, lam) == (2.5, 2.5, 0.0)
    with pytest.raises(ValueError):
        usable_terms(g, g[:, :1])

