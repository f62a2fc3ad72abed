"""GRPO step time: vghlib.train against TRL's GRPOTrainer, same model, batch and loss type.

Both run GRPO on the label-copying task from the same laptop checkpoint: 16 prompts x 8
generations of one token per step, loss_type "grpo" (per-sequence token mean), beta = 0, one
optimizer step per batch (num_iterations = 1), Adam(W) at lr 3e-4, temperature 1, on the CPU, in
the same dtype. Each library's time per step is the median over steps after a warm-up; they run
one after the other in this process, so the ratio compares them under the same load.

TRL is not a requirement of the book. Install it beside the virtual environment to run this:

    .venv/bin/pip install --target /tmp/trl trl accelerate pandas xxhash fsspec --no-deps
    .venv/bin/pip install --target /tmp/trl-data "datasets==3.6.0" "dill==0.3.8" \
        "multiprocess==0.70.16" "pyarrow==20.0.0" --no-deps
    PYTHONPATH=/tmp/trl-data:/tmp/trl .venv/bin/python benchmarks/grpo_vs_trl.py

(datasets 5.2 with pyarrow 26 fails to build even a two-column dataset here: dill cannot
pickle pyarrow's MonthDayNano type; the older pins above work.)

Prints a table: library, dtype, median seconds per step, steps timed, and the ratio TRL / vghlib.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import transformers
from transformers import TrainerCallback

from vghlib import checkpoints, tasks
from vghlib.train import GRPOConfig, train_grpo


def vghlib_steps(path, n_steps, dtype):
    model, tok = checkpoints.load(path, dtype=dtype)
    task = tasks.LabelCopyTask()
    ev, tr = task.batch(tok, 16, seed=1), task.batch(tok, 512, seed=2)
    stamps = []
    train_grpo(
        model,
        tr,
        ev,
        GRPOConfig(),
        n_steps,
        seed=0,
        record_at=(),
        progress=lambda k: stamps.append(time.perf_counter()),
    )
    return [b - a for a, b in zip(stamps, stamps[1:])]


def trl_steps(path, n_steps, dtype):
    # TRL and datasets are not requirements of the book (see the module docstring).
    from datasets import Dataset  # noqa: PLC0415  (optional: installed beside the venv)
    from trl import GRPOConfig as TRLGRPOConfig  # noqa: PLC0415  (optional: as above)
    from trl import GRPOTrainer  # noqa: PLC0415  (optional: as above)

    model, tok = checkpoints.load(path, dtype=dtype)
    task = tasks.LabelCopyTask()
    texts, target = task.texts(512, torch.Generator().manual_seed(2))
    data = Dataset.from_dict(
        {
            "prompt": [tok.bos_token + " " + t for t in texts],
            "label": [task.labels[int(y)] for y in target],
        }
    )

    def reward(completions, label, **kw):  # r_i = 1[a_i = y*], as vghlib
        return [float(c.strip() == y) for c, y in zip(completions, label)]

    stamps = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        args = TRLGRPOConfig(
            output_dir=out,
            per_device_train_batch_size=128,
            num_generations=8,
            max_completion_length=1,
            max_steps=n_steps,
            learning_rate=3e-4,
            loss_type="grpo",
            beta=0.0,
            num_iterations=1,
            temperature=1.0,
            use_cpu=True,
            report_to="none",
            logging_steps=10_000,
            save_strategy="no",
            bf16=False,
            fp16=False,
            lr_scheduler_type="constant",
            warmup_steps=0,
            max_grad_norm=0.0,
            weight_decay=0.0,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward,
            args=args,
            train_dataset=data,
            processing_class=tok,
            callbacks=[Clock()],
        )
        trainer.train()
    return [b - a for a, b in zip(stamps, stamps[1:])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoints", default=".cache/laptop-trajectory")
    ap.add_argument("--index", type=int, default=10, help="which checkpoint of the trajectory")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    a = ap.parse_args()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    path = checkpoints.list_checkpoints(a.checkpoints)[a.index].path
    rows = {}
    for name, fn in (("vghlib", vghlib_steps), ("TRL GRPOTrainer", trl_steps)):
        d = fn(path, a.steps + a.warmup, dtype)[a.warmup :]
        rows[name] = (statistics.median(d), len(d))
    print(
        f"GRPO step, 16 prompts x 8 one-token answers, {a.dtype}, {a.threads} thread(s), "
        f"checkpoint {path.name}"
    )
    print(f"{'library':>18} {'s/step (median)':>16} {'steps':>6}")
    for name, (t, n) in rows.items():
        print(f"{name:>18} {t:16.4f} {n:6d}")
    print(f"ratio TRL / vghlib: {rows['TRL GRPOTrainer'][0] / rows['vghlib'][0]:.1f}x")


if __name__ == "__main__":
    main()
