"""Optimizer steps per second of ``psic train run`` on this machine, per speed option.

Builds one trainer per variant (data decoded once into uint8 arrays, caption features
cached) and times the same kind of step under each: precision, memory format, thread
count, and the one-rate network of the first release against the gain network. With
--gradient-check it also compares bf16 autocast with fp32 on the same batches and the same
quantization noise: the relative loss difference and the cosine similarity of the two
gradients (a step that points the same way is a step of the same quality). Prints a table
and, with --json, writes it.

    python benchmarks/train_speed.py --captioned DATA/flickr8k --folder DATA/cid22/train \\
        --text-cache runs/text-features.pt --steps 20
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import torch
from report import cpu_model, load_average, write_json

from psic.train.trainer import Trainer, TrainSettings

VARIANTS = {
    "fp32": {},
    "bf16 autocast": {"bf16": True},
    "channels_last": {"channels_last": True},
    "bf16 + channels_last": {"bf16": True, "channels_last": True},
}


def steps_per_second(trainer: Trainer, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        trainer.train_step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return steps / (time.perf_counter() - start)


def run_variant(base: TrainSettings, changes: dict, threads: int, steps: int, warmup: int) -> float:
    torch.set_num_threads(threads)
    settings = dataclasses.replace(base, **changes)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(settings, run_dir)
        trainer.bf16 = settings.bf16  # time what was asked, also where training would fall back to fp32
        return steps_per_second(trainer, steps, warmup)


def gradient_agreement(base: TrainSettings, batches: int) -> list[dict]:
    """Per batch: |loss_bf16 - loss_fp32| / loss_fp32 and the cosine of the two full gradients."""
    rows = []
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(dataclasses.replace(base, bf16=False), run_dir)
        for _ in range(batches):
            batch = trainer._batch()
            beta, level = trainer._betas(len(batch.images)), trainer._levels(len(batch.images))
            results = []
            for bf16 in (False, True):
                trainer.bf16 = bf16
                torch.manual_seed(7)  # the same quantization noise in both passes
                loss, _ = trainer.losses(batch, beta, level)
                trainer.model.zero_grad(set_to_none=True)
                loss.backward()
                grads = [p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None]
                results.append((loss.item(), torch.cat(grads)))
            (loss32, grad32), (loss16, grad16) = results
            cosine = torch.nn.functional.cosine_similarity(grad32, grad16, dim=0).item()
            rows.append({"loss_rel_diff": abs(loss16 - loss32) / abs(loss32), "grad_cosine": cosine})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captioned", required=True)
    parser.add_argument("--folder")
    parser.add_argument("--text-cache")
    parser.add_argument("--init", help="weights to start from (speed does not depend on it)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="thread counts to time (none: skip)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json")
    parser.add_argument("--gradient-check", type=int, default=0, metavar="N", help="compare bf16 with fp32 on N batches")
    parser.add_argument("--malloc-defaults", action="store_true",
                        help="leave malloc as the process found it (reuse_freed_memory is process-wide: "
                             "run once with and once without this flag to compare)")
    args = parser.parse_args()
    base = TrainSettings(captioned=args.captioned, folder=args.folder, text_cache=args.text_cache,
                         init=args.init, lambda_clip=0.1, device=args.device,
                         reuse_freed_memory=not args.malloc_defaults)
    rows = []
    if args.gradient_check:
        agreement = gradient_agreement(base, args.gradient_check)
        for row in agreement:
            print(f"bf16 vs fp32: loss differs by {100 * row['loss_rel_diff']:.2f} %, gradient cosine {row['grad_cosine']:.4f}")
    cases = [("one-rate network (first release)", {"levels": 0}), *VARIANTS.items()]
    for threads in args.threads:
        for label, changes in cases:
            rate = run_variant(base, changes, threads, args.steps, args.warmup)
            rows.append({"variant": label, "threads": threads, "steps_per_s": round(rate, 3)})
            print(f"{label:36s} threads={threads}  {rate:.3f} steps/s", flush=True)
    batch = f"{base.batch_size} captioned + {base.folder_batch} folder crops of {base.crop} px"
    report = {"machine": {"cpu": cpu_model(), "load_average": load_average(), "torch": torch.__version__},
              "batch": batch, "reuse_freed_memory": base.reuse_freed_memory, "rows": rows, "bf16_agreement": agreement if args.gradient_check else None}
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
