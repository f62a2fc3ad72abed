"""vghlib.scoring: the predictor table against hand-ranked data, its one report, and the
predictors under each reading of the paper's open choices on a real tiny sweep."""

import numpy as np
import pytest

from conftest import SWEEP_ARGS
from vghlib import scoring
from vghlib.results import Summary, SweepConfig, summarise
from vghlib.sweep import main
from vghlib.tables import Section


def summary(gain, r_before, p_gap, r_after=None) -> Summary:
    """A Summary of len(gain) checkpoints whose other scores are fixed, known arrays."""
    n = len(gain)
    ramp = np.arange(n, dtype=float)
    score = {
        "p_gap_single": np.asarray(p_gap, float),
        "p_gap_cond": -np.asarray(p_gap, float),
        "headroom": ramp,
        "sigma_energy": ramp[::-1].copy(),
        "bernoulli_var": ramp**2,
    }
    return Summary(
        names=[f"c{i}" for i in range(n)],
        steps=np.arange(n) * 10,
        r_before=np.asarray(r_before, float),
        budgets=(1,),
        r_after={},
        gain={},
        gain_sd={},
        mean_gain=np.asarray(gain, float),
        mean_r_after=np.asarray(r_after if r_after is not None else gain, float),
        score=score,
        config=SweepConfig(),
    )


GAIN = [0.1, 0.3, 0.2, 0.5, 0.4, 0.6]
RB = [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]


def test_the_table_ranks_as_computed_by_hand():
    rows = scoring.predictor_table(summary(GAIN, RB, p_gap=GAIN), "p_gap_single", n_resamples=200)
    rho = {r["name"]: r["corr"].rho for r in rows if r["target"] == "mean ΔR"}
    # ranks of GAIN: 1 3 2 5 4 6; a predictor equal to GAIN has rho = 1, R_before (ranks 6..1)
    # has 1 - 6 * sum(d^2) / (n (n^2 - 1)) with d = (5, 2, 2, -2, -2, -5): 1 - 6 * 66 / 210
    assert rho["P_gap"] == pytest.approx(1.0)
    assert rho["R_before"] == pytest.approx(1 - 6 * 66 / 210)
    assert rho["H_α"] == pytest.approx(1 - 6 * 4 / 210)  # ramp: d = (0, 1, -1, 1, -1, 0)
    assert rho["Σ"] == pytest.approx(-rho["H_α"])
    assert {r["paper"] for r in rows if r["name"] == "P_gap"} == {0.60}
    # control: the exact-Λ column of this summary is minus P_gap, so its rho flips
    cond = scoring.predictor_table(summary(GAIN, RB, p_gap=GAIN), "p_gap_cond", n_resamples=200)
    assert cond[0]["corr"].rho == pytest.approx(-1.0)


def test_one_table_for_one_run_and_for_several(capsys):
    s = summary(GAIN, RB, p_gap=GAIN)
    t = scoring.predictor_report(
        s, {"p_gap_single": "the plug-in Λ"}, only={"p_gap_single": ["P_gap"]}, n_resamples=200
    )
    corr = scoring.predictor_table(s, "p_gap_single", n_resamples=200)[0]["corr"]
    assert t.columns == ("predictor", "target", "paper", "ρ", "95% interval", "p", "n")
    assert t.rows == (
        Section("P_gap with the plug-in Λ"),
        (
            "P_gap",
            "mean ΔR",
            "0.60",
            f"{corr.rho:+.2f}",
            f"[{corr.ci[0]:+.2f}, {corr.ci[1]:+.2f}]",
            f"{corr.p_value:.3f}",
            "6",
        ),
    )
    # its text is what print_predictor_table prints, and what nbval compares in a notebook
    scoring.print_predictor_table(
        s, {"p_gap_single": "the plug-in Λ"}, only={"p_gap_single": ["P_gap"]}, n_resamples=200
    )
    assert capsys.readouterr().out == t.text() + "\n"
    two = scoring.predictor_report(
        {"a": s, "b": summary(GAIN, RB, p_gap=np.negative(GAIN))},
        {"p_gap_single": "x"},
        paper_only=True,
        n_resamples=200,
    )
    assert two.columns[3:] == ("a: ρ [95% CI]", "b: ρ [95% CI]")
    assert [r[0] for r in two.rows[1:]] == ["P_gap", "z(R_before) + z(P_gap)"]
    assert two.rows[1][3].startswith("+1.00") and two.rows[1][4].startswith("-1.00")  # per run
    # control: a predictor name that is not in the table gives no row
    none = scoring.predictor_report(s, {"p_gap_single": "x"}, only={"p_gap_single": ["nope"]})
    assert none.rows == (Section("P_gap with x"),)


@pytest.fixture(scope="module")
def swept(tiny_trajectory, tmp_path_factory):
    """A real (tiny) sweep over the three checkpoints of the test trajectory."""
    out = tmp_path_factory.mktemp("swept") / "r.jsonl"
    args = ["--checkpoints", str(tiny_trajectory.folder), "--out", str(out), *SWEEP_ARGS]
    assert main([*args, "--seeds", "0"]) == 0
    return summarise(out)


def test_predictors_under_each_reading_agree_with_the_stored_scores(swept):
    sc = swept.score
    single = scoring.predictors(swept)  # the sweep's own reading: Section 6's recipe
    cond = scoring.predictors(swept, lam="cond")
    assert np.allclose(single["P_gap"], sc["p_gap_single"])
    assert np.allclose(cond["P_gap"], sc["p_gap_cond"])
    group = scoring.predictors(swept, scale="group")
    want = (sc["sigma_energy"] - sc["lam_single_group"]) * sc["headroom"]
    assert np.allclose(group["P_gap"], want)
    assert not np.allclose(sc["lam_single_group"], sc["lam_single"])  # the control: Λ moves
    assert np.allclose(group["alignment × H_α"] * 4, single["alignment × H_α"])  # n = 4
    assert np.allclose(group["cos × H_α"], single["cos × H_α"])
    assert np.all(np.abs(sc["cosine_single"]) <= 1)
    P = sc["prompt_p"]
    assert np.allclose(single["pass@n"], (1 - (1 - P) ** 4).mean(1))  # n = 4
    assert np.allclose(single["p(1 − p)"], sc["bernoulli_var"])
    assert np.all((sc["entropy"] > 0) & (sc["entropy"] <= np.log(34)))  # 34 tokens
    other_n = scoring.predictors(swept, lam="cond", group_size=16, adv_kind="loo")
    assert not np.allclose(other_n["P_gap"], cond["P_gap"])
    with pytest.raises(ValueError, match="sweep's own advantages"):
        scoring.predictors(swept, group_size=16)
    with pytest.raises(ValueError, match="lam must be"):
        scoring.predictors(swept, lam="mean")


def test_in_range_drops_the_hopeless_and_saturated_ends(swept):
    assert scoring.in_range(swept).all()
    rb = swept.r_before
    mask = scoring.in_range(swept, low=rb.min() + 1e-9, high=1.0)
    assert mask.sum() == len(rb) - 1 and not mask[np.argmin(rb)]
    with pytest.raises(ValueError, match="low < high"):
        scoring.in_range(swept, 0.9, 0.1)


def test_block_intervals_replace_the_permutation_p_values():
    s = summary(GAIN, RB, [0.2, 0.1, 0.4, 0.3, 0.6, 0.5])
    iid = scoring.predictor_table(s)
    blk = scoring.predictor_table(s, block=2)
    assert [r["corr"].rho for r in blk] == [r["corr"].rho for r in iid]  # the same rho
    assert all(np.isnan(r["corr"].p_value) for r in blk)  # and no exchangeable-checkpoint p
    assert any(r["corr"].ci != i["corr"].ci for r, i in zip(blk, iid))  # other intervals
    t = scoring.predictor_report(s, {"p_gap_single": "single"}, block=2)
    assert t.columns == ("predictor", "target", "paper", "ρ", "95% interval", "n")
    # control: without blocks the p-value column is there
    assert "p" in scoring.predictor_report(s, {"p_gap_single": "single"}).columns


def test_the_score_table_prints_every_kth_checkpoint_at_its_precision():
    s = summary(GAIN, RB, p_gap=GAIN)
    s.score.update(
        lam_single=np.full(6, 2.5e-3),
        lam_cond=np.full(6, 1e-3),
        usable_single=np.full(6, -1.5e-3),
        usable_cond=np.full(6, 1e-4),
    )
    t = scoring.score_table(s, every=3)
    assert t.columns[0] == "step" and len(t.rows) == 2  # checkpoints 0 and 3
    assert t.rows[1] == (
        "30",
        "0.300",
        "2.00e+00",
        "2.50e-03",
        "1.00e-03",
        "-1.50e-03",
        "+1.00e-04",
        "3.000",
    )
