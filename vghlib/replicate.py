"""Part IV, replicated: the impact law over independent pretraining runs and open choices.

Reference: Asadulaev et al., arXiv 2605.21654, Sections 5–6 (eq 24–31 and the checkpoint
experiment). One pretraining trajectory, one GRPO recipe and one reading of the score make an
example, not a finding: this module runs the grid that turns Part IV's example into a verdict.

``python -m vghlib replicate --seeds 0,1,2,3,4 --jobs 2`` builds one laptop trajectory per
pretraining seed (``python -m vghlib pretrain --seed S``: initial weights and data order), then runs
one sweep per GRPO variant on each (:data:`VARIANTS`: GRPO, Dr. GRPO and RLOO advantages; groups of
4, 8 and 16), each an ordinary resumable results file under ``--work`` with every guarantee of
:mod:`vghlib.results`. From each finished sweep it writes a digest to ``--out``: a small JSON file
(a few tens of kB) with, per checkpoint, the step, R_before, the gain of every GRPO seed, and every
predictor under every reading of the costate's scale and of Λ (:data:`READINGS`,
:func:`vghlib.scoring.predictors`). The digests are committed to the repository and the chapter
reads them. Killed at any point, the same command resumes: trajectories are cached by their
config, sweeps by their results files, and a digest is written (atomically) from a finished sweep.

:func:`read_grid` loads the digests; :func:`rho_table` gives ρ(predictor, mean ΔR) per trajectory
for every variant, reading and predictor, over all checkpoints or a range of R_before.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vghlib import cli, env, impact, scoring
from vghlib.results import summarise
from vghlib.stats import rank_correlation, zscore
from vghlib.sweep import int_list
from vghlib.tables import Table

__all__ = [
    "VARIANTS",
    "READINGS",
    "DIGEST_FORMAT",
    "digest",
    "write_digest",
    "read_grid",
    "rho_table",
    "other_conclusions",
    "main",
]

# GRPO variants: the advantage (eq 1's GRPO, Dr. GRPO's mean-only, RLOO's leave-one-out) and the
# group size n. "grpo-n8" is Part IV's sweep; every other setting is the sweep's default.
VARIANTS = {
    "grpo-n8": ("--adv-kind", "grpo", "--group-size", "8"),
    "drgrpo-n8": ("--adv-kind", "mean", "--group-size", "8"),
    "rloo-n8": ("--adv-kind", "loo", "--group-size", "8"),
    "grpo-n4": ("--adv-kind", "grpo", "--group-size", "4"),
    "grpo-n16": ("--adv-kind", "grpo", "--group-size", "16"),
}
# Readings of the score: the costate's scale (eq 14 per trajectory, eq 1's 1/n) x Λ from single
# samples (Section 6) or from the exact conditional mean (eq 26).
READINGS = tuple(f"{s}/{lam}" for s in impact.COSTATE_SCALES for lam in scoring.LAMBDA_KINDS)
# What an answer of k > 1 labels changes (``--answer-length``): its trajectories pretrain for 1000
# steps (they learn to copy two labels within ~300 steps, so a longer run only adds saturated
# checkpoints), and its score reads hidden[1], the state below the last block, which attention
# carries to the later answer tokens (at the last layer that credit is 0).
MULTI_TOKEN_PRETRAIN = ("--steps", "1000")
MULTI_TOKEN_SWEEP = ("--layer", "1")
DIGEST_FORMAT = "vghlib.replicate/1"
ALPHAS = (0.5, 1.0, 2.0, 5.0, 10.0)  # headroom temperatures of the digest's α sweep


def digest(summary, *, seed: int, variant: str) -> dict:
    """The small record the chapter reads: one finished sweep of one trajectory.

    ``checkpoints``: name, step, R_before, ``gain`` (the mean ΔR over budgets, one per GRPO
    seed), ``mean_gain``, ``gain_by_budget`` (the mean ΔR over seeds at each budget K) and
    ``mean_r_after`` (the level the paper's second predictor targets); for answers of several
    tokens also ``sigma_now`` and ``sigma_future``. ``predictors[reading][name]``: one value per
    checkpoint. ``alpha_sweep[reading][α]``: the exact P_gap at each α of :data:`ALPHAS`.
    """
    per_seed = np.mean([summary.gain_by_seed[b] for b in summary.budgets], axis=0)  # (C, S)
    credit = {  # answers of several tokens: the two parts of G (vghlib.sequences)
        k: [float(x) for x in summary.score[k]]
        for k in ("sigma_now", "sigma_future")
        if k in summary.score
    }
    return {
        "format": DIGEST_FORMAT,
        "seed": int(seed),
        "variant": variant,
        "sweep_config": summary.config.to_dict(),
        "checkpoints": [
            {
                "name": n,
                "step": int(st),
                "r_before": float(rb),
                "gain": [float(g) for g in gs],
                "mean_gain": float(mg),
                "gain_by_budget": {str(b): float(summary.gain[b][i]) for b in summary.budgets},
                "mean_r_after": float(summary.mean_r_after[i]),
                **{k: v[i] for k, v in credit.items()},
            }
            for i, (n, st, rb, gs, mg) in enumerate(
                zip(summary.names, summary.steps, summary.r_before, per_seed, summary.mean_gain)
            )
        ],
        "predictors": {
            reading: {
                k: [float(x) for x in v]
                for k, v in scoring.predictors(
                    summary, scale=reading.split("/")[0], lam=reading.split("/")[1]
                ).items()
            }
            for reading in READINGS
        },
        "alpha_sweep": {  # the exact P_gap for other headroom temperatures α (eq 28)
            reading: {
                f"{alpha:g}": [
                    float(x)
                    for x in scoring.predictors(
                        summary, scale=reading.split("/")[0], lam="cond", alpha=alpha
                    )["P_gap"]
                ]
                for alpha in ALPHAS
            }
            for reading in READINGS
            if reading.endswith("/cond")
        },
    }


def write_digest(path, record: dict) -> None:
    """Write ``record`` as JSON, atomically (a reader sees the old file or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=None, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_grid(folder) -> list[dict]:
    """Every digest in ``folder`` (``seed<S>-<variant>.json``), sorted by variant and seed."""
    folder = Path(folder)
    out = []
    for p in sorted(folder.glob("seed*-*.json")):
        d = json.loads(p.read_text())
        if not isinstance(d, dict) or d.get("format") != DIGEST_FORMAT:
            raise ValueError(
                f"{p} is not a replication digest ({DIGEST_FORMAT}); rerun "
                "`python -m vghlib replicate` to write it"
            )
        out.append(d)
    if not out:
        raise ValueError(f"{folder} holds no digests: run `python -m vghlib replicate` first")
    return sorted(out, key=lambda d: (d["variant"], d["seed"]))


def rho_table(grid, *, low: float = 0.0, high: float = 1.0) -> list[dict]:
    """ρ(predictor, mean ΔR) over the checkpoints of each trajectory with low <= R_before <= high.

    One row per (variant, reading, predictor, seed): ``rho`` and ``n`` (checkpoints used). The
    unit of replication is the trajectory: compare predictors across seeds
    (:func:`vghlib.stats.compare_across`), never by pooling checkpoints of different runs.
    """
    if not 0 <= low < high <= 1:
        raise ValueError(f"need 0 <= low < high <= 1, got {low}, {high}")
    rows = []
    for d in grid:
        rb = np.array([c["r_before"] for c in d["checkpoints"]])
        gain = np.array([c["mean_gain"] for c in d["checkpoints"]])
        keep = (rb >= low) & (rb <= high)
        for reading, preds in d["predictors"].items():
            for name, values in preds.items():
                x = np.asarray(values)[keep]
                rows.append(
                    {
                        "variant": d["variant"],
                        "reading": reading,
                        "predictor": name,
                        "seed": d["seed"],
                        "rho": rank_correlation(x, gain[keep]) if keep.sum() >= 4 else float("nan"),
                        "n": int(keep.sum()),
                    }
                )
    return rows


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def _trajectory(work: Path, seed: int, pretrain_args: tuple) -> Path:
    """Seed 0 with the default settings (one-token answers) is Part IV's own trajectory (the
    book's cache); every other trajectory lives under ``work``."""
    if seed == 0 and not pretrain_args:
        return env.cache_dir("laptop-trajectory")
    return work / f"seed{seed}"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m vghlib replicate",
        description="Part IV over independent pretraining seeds and GRPO variants: one "
        "trajectory per seed, one resumable sweep per variant, one committed digest each.",
    )
    ap.add_argument(
        "--seeds", type=int_list, default=(0, 1, 2, 3, 4), help="pretraining seeds (default 0-4)"
    )
    ap.add_argument(
        "--variants",
        default=None,
        help=f"GRPO variants, comma-separated (default all: {', '.join(VARIANTS)}; grpo-n8 for "
        "answers of several labels)",
    )
    ap.add_argument(
        "--answer-length",
        type=int,
        default=1,
        help="labels per answer (default 1). With k > 1 the trajectories are pretrained on "
        f"k-label copying ({' '.join(MULTI_TOKEN_PRETRAIN)}), the sweeps reward whole answers and "
        f"score {' '.join(MULTI_TOKEN_SWEEP)}, and only grpo-n8 runs unless --variants says more",
    )
    ap.add_argument(
        "--work",
        default=None,
        help="trajectories and full results files (default: the book's cache, replicate/, or "
        "replicate-k<k>/ for answers of k > 1 labels)",
    )
    ap.add_argument(
        "--out",
        default=None,
        help="the digests (default: results/replicate/ in the repository, or "
        "results/replicate-k<k>/)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="commands run at once (one core each)")
    small = ap.add_argument_group(
        "a smaller grid (to try the command; the book's grid uses the defaults)"
    )
    for flag, what in (
        ("--pretrain-steps", "pretraining steps (pretrain --steps)"),
        ("--n-checkpoints", "checkpoints per trajectory (pretrain --checkpoints)"),
    ):
        small.add_argument(flag, type=int, default=None, help=what)
    for flag in ("--budgets", "--grpo-seeds", "--n-eval", "--n-train", "--prompts-per-step"):
        small.add_argument(flag, default=None, help=f"sweep {flag.replace('grpo-', '')}")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    return ap


def _passed(a, flags: dict) -> tuple:
    """The options given on the command line, as the arguments of the command they go to."""
    out = []
    for attr, flag in flags.items():
        if getattr(a, attr) is not None:
            out += [flag, str(getattr(a, attr))]
    return tuple(out)


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    k = a.answer_length
    if a.variants is None:
        a.variants = ",".join(VARIANTS) if k == 1 else "grpo-n8"
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants or not a.seeds or a.jobs < 1 or min(a.seeds) < 0 or not 1 <= k <= 4:
        print(
            f"error: give known --variants (of {', '.join(VARIANTS)}; unknown: {unknown}), "
            "at least one --seeds >= 0, --jobs >= 1 and --answer-length in 1..4",
            file=sys.stderr,
        )
        return 2
    tag = "replicate" if k == 1 else f"replicate-k{k}"
    work = Path(a.work) if a.work else env.cache_dir(tag)
    out = Path(a.out) if a.out else env.REPO_ROOT / "results" / tag
    task_pre = () if k == 1 else ("--answer-length", str(k), *MULTI_TOKEN_PRETRAIN)
    task_swp = () if k == 1 else ("--answer-length", str(k), *MULTI_TOKEN_SWEEP)
    say = (lambda *_: None) if a.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.perf_counter()

    pre = task_pre + _passed(a, {"pretrain_steps": "--steps", "n_checkpoints": "--checkpoints"})
    swp = task_swp + _passed(
        a,
        {
            "budgets": "--budgets",
            "grpo_seeds": "--seeds",
            "n_eval": "--n-eval",
            "n_train": "--n-train",
            "prompts_per_step": "--prompts-per-step",
        },
    )

    def pretrain(seed):
        cli.run("pretrain", "--out", _trajectory(work, seed, pre), "--seed", seed, *pre)
        say(f"trajectory seed {seed}: ready ({time.perf_counter() - t0:.0f} s)")

    def sweep(job):
        seed, v = job
        results = work / f"seed{seed}-{v}.jsonl"
        folder = _trajectory(work, seed, pre)
        cli.run("sweep", "--checkpoints", folder, "--out", results, *VARIANTS[v], *swp)
        write_digest(out / f"seed{seed}-{v}.json", digest(summarise(results), seed=seed, variant=v))
        say(f"seed {seed}, {v}: digest written ({time.perf_counter() - t0:.0f} s)")

    try:
        with ThreadPoolExecutor(a.jobs) as pool:
            list(pool.map(pretrain, a.seeds))
            list(pool.map(sweep, [(s, v) for v in variants for s in a.seeds]))
    except cli.CommandFailed as err:
        print(f"error: {err}\nRerun the same command to resume.", file=sys.stderr)
        return 2
    print(
        f"{out}: {len(a.seeds) * len(variants)} digests ({len(a.seeds)} seeds x "
        f"{len(variants)} variants) in {time.perf_counter() - t0:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# --------------------------------------------------------------------------------------------
# The verdict: each conclusion of Part IV against the grid, "holds in k of K"
# --------------------------------------------------------------------------------------------

# What Part IV concludes from one trajectory, each as a test of one trajectory's ρ values
# (``r[predictor]``: ρ with the mean gain). Each is checked in every (variant, seed) of the grid.
CONCLUSIONS = (
    ("P_gap: ρ > 0", lambda r: r["P_gap"] > 0),
    ("P_gap beats p(1 − p)", lambda r: r["P_gap"] > r["p(1 − p)"]),
    ("P_gap beats R_before", lambda r: r["P_gap"] > r["R_before"]),
    ("alignment × H_α beats p(1 − p)", lambda r: r["alignment × H_α"] > r["p(1 − p)"]),
    ("p(1 − p): ρ > 0", lambda r: r["p(1 − p)"] > 0),
)
# Short column heads for the readings: the costate's scale (one per answer, as eq 14 and Section 6,
# or eq 1's 1/n) and Λ (from single samples, or exact).
READING_LABELS = {
    "trajectory/single": "ans, single",
    "trajectory/cond": "ans, exact",
    "group/single": "1/n, single",
    "group/cond": "1/n, exact",
}


def other_conclusions(d: dict, reading: str = "trajectory/cond") -> dict:
    """Part IV's other conclusions on one trajectory (one digest ``d``), under one exact reading.

    * ``level``: ρ with the mean R_after of z(R_before) alone (``level_r_before``) and of
      z(R_before) + z(P_gap) (``level_with_p_gap``), the paper's second predictor (Section 6);
    * ``alpha``: ρ(P_gap, mean ΔR) at each α of :data:`ALPHAS` (eq 28's free temperature);
    * ``budget``: ρ(P_gap, ΔR at K) at each budget K;
    * ``n_star``: eq 31's N* = argmax P_gap, and ``best_step``, the step of the largest mean gain.
    """
    if reading not in d.get("alpha_sweep", {}):
        raise ValueError(
            f"reading {reading!r} has no α sweep in this digest (exact readings: "
            f"{sorted(d.get('alpha_sweep', {}))}); rewrite the digests with "
            "`python -m vghlib replicate`"
        )
    cps = d["checkpoints"]
    rb = np.array([c["r_before"] for c in cps])
    gain = np.array([c["mean_gain"] for c in cps])
    level = np.array([c["mean_r_after"] for c in cps])
    p_gap = np.array(d["predictors"][reading]["P_gap"])
    steps = [c["step"] for c in cps]
    return {
        "level_r_before": rank_correlation(zscore(rb), level),
        "level_with_p_gap": rank_correlation(zscore(rb) + zscore(p_gap), level),
        "alpha": {a: rank_correlation(v, gain) for a, v in d["alpha_sweep"][reading].items()},
        "budget": {
            b: rank_correlation(p_gap, [c["gain_by_budget"][b] for c in cps])
            for b in cps[0]["gain_by_budget"]
        },
        "n_star": impact.best_checkpoint(p_gap, steps),
        "best_step": int(steps[int(np.argmax(gain))]),
    }


def by_trajectory(rows) -> dict:
    """{(variant, seed, reading): {predictor: ρ}} from :func:`rho_table` rows."""
    out: dict = {}
    for r in rows:
        out.setdefault((r["variant"], r["seed"], r["reading"]), {})[r["predictor"]] = r["rho"]
    return out


def verdicts(rows, readings=READINGS) -> list[dict]:
    """Each of :data:`CONCLUSIONS` under each reading: in how many of the K trajectory × variant
    cases it holds (``k``, ``K``), and the verdict in words (every case, none, or k of K)."""
    table = by_trajectory(rows)
    out = []
    for text, holds in CONCLUSIONS:
        for reading in readings:
            cases = [v for (_, _, rd), v in table.items() if rd == reading]
            k, K = sum(bool(holds(v)) for v in cases), len(cases)
            word = "holds in all" if k == K else "fails in all" if k == 0 else f"holds in {k} of"
            out.append({"conclusion": text, "reading": reading, "k": k, "K": K, "verdict": word})
    return out


def verdict_table(rows, readings=READINGS, title: str = "") -> Table:
    """The verdict table: one row per conclusion, one column per reading, "k/K" in each
    (:data:`READING_LABELS` names the columns); a notebook shows it with ``display(...)``."""
    v = verdicts(rows, readings)
    body = [
        (text, *(f"{x['k']}/{x['K']}" for x in v if x["conclusion"] == text))
        for text, _ in CONCLUSIONS
    ]
    return Table(["conclusion", *(READING_LABELS[r] for r in readings)], body, title=title)


def print_verdicts(rows, readings=READINGS) -> None:
    """Print :func:`verdict_table` as text."""
    print(verdict_table(rows, readings).text())
