"""vghlib.replicate: a small grid end to end (seeds x GRPO variants), its digests, and resuming."""

import json

import numpy as np
import pytest

from vghlib import replicate
from vghlib.results import summarise

SMALL = [
    *("--pretrain-steps", "200", "--n-checkpoints", "5", "--budgets", "1,2"),
    *("--grpo-seeds", "0,1", "--n-eval", "32", "--n-train", "64", "--prompts-per-step", "8"),
]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    work, out = root / "work", root / "out"
    argv = ["--seeds", "0,1", "--variants", "grpo-n4,rloo-n8", "--work", str(work)]
    argv += ["--out", str(out), "--jobs", "2", "--quiet", *SMALL]
    assert replicate.main(argv) == 0
    return work, out, argv


@pytest.mark.slow
def test_every_seed_and_variant_gets_a_digest_of_its_finished_sweep(grid):
    work, out, _ = grid
    g = replicate.read_grid(out)
    assert [(d["variant"], d["seed"]) for d in g] == [
        ("grpo-n4", 0),
        ("grpo-n4", 1),
        ("rloo-n8", 0),
        ("rloo-n8", 1),
    ]
    for d in g:
        assert len(d["checkpoints"]) == 5 and set(d["predictors"]) == set(replicate.READINGS)
        for c in d["checkpoints"]:
            assert len(c["gain"]) == 2 and c["mean_gain"] == pytest.approx(np.mean(c["gain"]))
        for preds in d["predictors"].values():
            assert all(len(v) == 5 for v in preds.values())
    again = replicate.digest(summarise(work / "seed1-rloo-n8.jsonl"), seed=1, variant="rloo-n8")
    assert json.loads(json.dumps(again)) == g[3]  # the digest is its results file, nothing else
    rb = [[c["r_before"] for c in d["checkpoints"]] for d in g[:2]]
    assert rb[0][0] != rb[1][0]  # seeds 0 and 1 are different runs (different initial weights)


@pytest.mark.slow
def test_rho_table_has_one_rho_per_trajectory_and_honours_the_range(grid):
    g = replicate.read_grid(grid[1])
    rows = replicate.rho_table(g)
    n_pred = len(g[0]["predictors"]["trajectory/single"])
    assert len(rows) == len(g) * len(replicate.READINGS) * n_pred
    assert all(-1 <= r["rho"] <= 1 and r["n"] == 5 for r in rows)
    rb = sorted(c["r_before"] for c in g[0]["checkpoints"])
    cut = replicate.rho_table(g[:1], low=rb[0] + 1e-12)  # without the first checkpoint: 4 left
    assert {r["n"] for r in cut} == {4}
    with pytest.raises(ValueError, match="low < high"):
        replicate.rho_table(g, low=0.5, high=0.5)


@pytest.mark.slow
def test_a_second_run_resumes_and_recomputes_nothing(grid):
    work, out, argv = grid
    before = {p.name: p.read_bytes() for p in work.glob("*.jsonl")}
    assert replicate.main(argv) == 0
    assert {p.name: p.read_bytes() for p in work.glob("*.jsonl")} == before


def test_unknown_variants_and_bad_counts_are_refused(capsys, tmp_path):
    out = tmp_path / "out"
    assert replicate.main(["--variants", "ppo", "--out", str(out)]) == 2
    assert "unknown: ['ppo']" in capsys.readouterr().err
    assert replicate.main(["--jobs", "0", "--out", str(out)]) == 2
    assert not out.exists()


def test_read_grid_refuses_a_folder_without_digests_and_a_foreign_file(tmp_path):
    with pytest.raises(ValueError, match="no digests"):
        replicate.read_grid(tmp_path)
    (tmp_path / "seed0-grpo-n8.json").write_text('{"my": "notes"}')
    with pytest.raises(ValueError, match="not a replication digest"):
        replicate.read_grid(tmp_path)


def _rows(rho_pgap, rho_var):
    """rho_table-like rows: one variant, K seeds, every reading; P_gap and p(1 − p) given."""
    rows = []
    for seed, (a, b) in enumerate(zip(rho_pgap, rho_var)):
        for reading in replicate.READINGS:
            for pred, rho in (
                ("P_gap", a),
                ("p(1 − p)", b),
                ("R_before", -0.5),
                ("alignment × H_α", b + 0.01),
            ):
                rows.append(
                    {
                        "variant": "v",
                        "seed": seed,
                        "reading": reading,
                        "predictor": pred,
                        "rho": rho,
                    }
                )
    return rows


def test_verdicts_count_the_cases_where_each_conclusion_holds(capsys):
    rows = _rows([0.5, 0.6, -0.2, 0.9, 0.3], [0.8, 0.4, 0.7, 0.85, 0.9])
    v = {(x["conclusion"], x["reading"]): x for x in replicate.verdicts(rows)}
    one = "trajectory/single"
    assert (v["P_gap: ρ > 0", one]["k"], v["P_gap: ρ > 0", one]["K"]) == (4, 5)
    assert v["P_gap beats p(1 − p)", one]["k"] == 2  # 0.6 > 0.4 and 0.9 > 0.85
    assert v["P_gap beats R_before", one]["verdict"] == "holds in all"  # R_before: -0.5
    assert v["alignment × H_α beats p(1 − p)", one]["verdict"] == "holds in all"
    flipped = replicate.verdicts(_rows([-0.5] * 5, [0.8] * 5))  # the control: it can fail
    assert {x["verdict"] for x in flipped if x["conclusion"] == "P_gap: ρ > 0"} == {"fails in all"}
    table = replicate.verdict_table(rows)
    assert table.columns[1] == "ans, single" and table.rows[0][1:] == ("4/5",) * 4
    replicate.print_verdicts(rows)  # its text, for a terminal
    assert capsys.readouterr().out == table.text() + "\n"


def _digest(p_gap, gain, r_before, by_budget, alpha_sweep):
    cps = [
        {
            "step": 10 * i,
            "r_before": rb,
            "mean_gain": g,
            "mean_r_after": rb + g,
            "gain_by_budget": {"10": b10, "20": b20},
        }
        for i, (rb, g, (b10, b20)) in enumerate(zip(r_before, gain, by_budget))
    ]
    return {
        "checkpoints": cps,
        "predictors": {"trajectory/cond": {"P_gap": list(p_gap)}},
        "alpha_sweep": {"trajectory/cond": alpha_sweep},
    }


def test_other_conclusions_reads_level_alpha_budget_and_n_star_from_a_digest():
    """Each number is a rank correlation of the digest's own columns, so a hand-made digest with a
    known order gives known values; a reversed column flips the sign (the check can fail)."""
    rb = [0.1, 0.2, 0.3, 0.4, 0.5]
    gain = [0.01, 0.3, 0.2, 0.1, 0.05]  # the largest gain at step 10
    p_gap = [0.0, 0.9, 0.5, 0.3, 0.1]  # same order as the gain: N* = step 10
    budgets = [(g, g) for g in gain]
    d = _digest(p_gap, gain, rb, budgets, {"1": p_gap, "2": [-x for x in p_gap]})
    o = replicate.other_conclusions(d)
    assert o["alpha"] == {"1": pytest.approx(1.0), "2": pytest.approx(-1.0)}
    assert o["budget"]["10"] == pytest.approx(1.0) and o["budget"]["20"] == pytest.approx(1.0)
    assert o["n_star"] == 10 and o["best_step"] == 10
    assert o["level_r_before"] == pytest.approx(
        replicate.rank_correlation(rb, [r + g for r, g in zip(rb, gain)])
    )
    with pytest.raises(ValueError, match="no α sweep"):
        replicate.other_conclusions(d, "group/cond")
