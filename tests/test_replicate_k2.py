"""The committed two-token grid (results/replicate-k2/) against the code: one checkpoint of the
first trajectory is pretrained and swept again from nothing; its rows must equal the committed
ones."""

import json
import os
import subprocess
import sys

import pytest

from vghlib import env, replicate
from vghlib.__main__ import PORTABLE_NUMERICS

GRID = env.REPO_ROOT / "results" / "replicate-k2"

# Run as `python -m vghlib` runs its commands: portable numerics pinned before torch is imported,
# one thread. It pretrains the first trajectory only up to the checkpoint asked for (the same
# config, so the same bits as the full run up to there), then measures that checkpoint as the sweep
# does: its score row, and the GRPO run of the sweep's first seed.
SCRIPT = r"""
import copy, json, sys
import numpy as np
import torch
from vghlib import impact, pretrain, replicate, scoring
from vghlib.results import SweepConfig
from vghlib.tasks import LabelCopyTask
from vghlib.train import train_grpo

committed, step = json.load(open(sys.argv[1])), int(sys.argv[2])
torch.set_num_threads(1)
k = committed["sweep_config"]["task"]["answer_length"]
steps = int(replicate.MULTI_TOKEN_PRETRAIN[1])
config = pretrain.PretrainConfig(
    seed=committed["seed"], steps=steps, task=LabelCopyTask(answer_length=k)
)
tok = pretrain.build_tokenizer(config)
got = {}

class Reached(Exception):
    pass

def keep(s, model, r):
    if s == step:
        got["model"] = copy.deepcopy(model)
        raise Reached

try:
    pretrain.train(config, tok, on_checkpoint=keep, progress=False)
except Reached:
    pass
sw = SweepConfig.from_dict(committed["sweep_config"])
ev, tr = sw.batches(tok)
n = sw.grpo.group_size
s = scoring.checkpoint_score(
    copy.deepcopy(got["model"]), ev, alpha=sw.alpha, group_size=n, layer=sw.layer,
    adv_kind=sw.grpo.adv_kind, seed=sw.score_seed,
)
rec = train_grpo(
    copy.deepcopy(got["model"]), tr, ev, sw.grpo, max(sw.budgets), seed=sw.seeds[0],
    record_at=sw.budgets,
)
exact_group = impact.score_from_prompts(
    np.array(s["prompt_p"]), np.array(s["prompt_g2"]), alpha=sw.alpha, group_size=n,
    adv_kind=sw.grpo.adv_kind, scale="group", answer_length=k,
)
print(json.dumps({
    "r_before": s["r_before"],
    "sigma_now": s["sigma_now"],
    "sigma_future": s["sigma_future"],
    "gain_seed0": float(np.mean([rec.r_after(b) - rec.r_exact[0] for b in sw.budgets])),
    "trajectory/single": s["p_gap_single"],
    "trajectory/cond": s["p_gap_cond"],
    "group/single": (s["sigma_energy"] - s["lam_single_group"]) * s["headroom"],
    "group/cond": exact_group["p_gap_cond"],
}))
"""


@pytest.mark.slow
def test_a_committed_two_token_checkpoint_regenerates_from_scratch():
    path = GRID / "seed0-grpo-n8.json"
    committed = json.loads(path.read_text())
    rb = [c["r_before"] for c in committed["checkpoints"]]
    i = next(j for j, r in enumerate(rb) if r >= 0.1)  # the first one past the hopeless start
    step = committed["checkpoints"][i]["step"]
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), str(step)],
        env={**os.environ, **PORTABLE_NUMERICS, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=env.REPO_ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    mine = json.loads(run.stdout.strip().splitlines()[-1])
    theirs = committed["checkpoints"][i]
    assert 0.1 <= mine["r_before"] <= 0.9
    for key in ("r_before", "sigma_now", "sigma_future"):
        assert mine[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-12), key
    assert mine["gain_seed0"] == pytest.approx(theirs["gain"][0], rel=1e-9, abs=1e-12)
    for reading in replicate.READINGS:
        want = committed["predictors"][reading]["P_gap"][i]
        assert mine[reading] == pytest.approx(want, rel=1e-9, abs=1e-15), reading
    # The comparison can fail: the next checkpoint's committed numbers are not this one's.
    assert mine["r_before"] != pytest.approx(committed["checkpoints"][i + 1]["r_before"], rel=1e-3)
    assert mine["gain_seed0"] != pytest.approx(theirs["gain"][1], rel=1e-6)  # another GRPO seed


def test_the_committed_two_token_grid_is_complete():
    """Five pretraining seeds, GRPO with groups of 8, three GRPO seeds, answers of two labels."""
    grid = replicate.read_grid(GRID)
    assert sorted(d["seed"] for d in grid) == [0, 1, 2, 3, 4]
    for d in grid:
        cfg = d["sweep_config"]
        assert d["variant"] == "grpo-n8" and cfg["task"]["answer_length"] == 2
        assert cfg["layer"] == int(replicate.MULTI_TOKEN_SWEEP[1])
        assert len(d["checkpoints"]) >= 20 and all(len(c["gain"]) >= 2 for c in d["checkpoints"])
        rb = [c["r_before"] for c in d["checkpoints"]]
        assert min(rb) < 0.05 and max(rb) > 0.95  # from hopeless to saturated
