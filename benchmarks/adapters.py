"""Generated adapters for a family of tasks against per-task adapters and full fine-tuning.

    python benchmarks/adapters.py [--seeds 3] [--first-seed 0] [--configs rotated_digits_mlp ...]
                                  [--threads 1] [--set adapter.alpha=16 ...]

For each packaged ``adapters`` config, the same pretrained target (``pretrain`` at the run's seed)
adapted by: nothing (the frozen base model), adapters a generator emits from each task's condition
(``method=generated``: trained on the seen tasks only), one adapter per task trained directly
(``method=per_task``: every seen and held-out task) and a full copy of the target per task
(``method=finetune``). Each cell is the mean ± std over seeds of the test accuracy averaged over
the seen or the held-out tasks; trainable parameters count the numbers the optimiser updates: the
generator's (its Fourier matrices and the task conditions are fixed, the frozen target is not
trained), every task's adapters, every task's copy of the target.

Targets: generated within 1 point of per-task adapters on seen tasks and within 3 points of
per-task adapters trained on the held-out (interpolated) tasks; the generator smaller than the
per-task adapters of all tasks together. Settings were tuned on seeds 10 and up; report seeds 0–2.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch

from hyperkit.engine.trainer import train
from hyperkit.recipes import load_recipe

CONFIGS = ["rotated_digits_mlp", "rotated_digits_cnn", "sequence_keywords"]
METHODS = {"generated": "generated adapters", "per_task": "per-task adapters",
           "finetune": "full fine-tuning per task"}


def run(config: str, method: str, seed: int, extra: list[str]) -> tuple[dict[str, float], int]:
    """The final metrics of one run and its trainable parameter count."""
    with tempfile.TemporaryDirectory() as out:
        overrides = [f"out={out}", f"method={method}", f"train.seed={seed}", "train.eval_every=0",
                     "train.checkpoint_every=0", "train.progress=false", *extra]
        result = train(load_recipe(f"adapters/{config}", overrides))
        recipe = load_recipe(f"adapters/{config}", overrides)
        return result, recipe.setup(torch.device("cpu")).trainable_parameters()


def mean_std(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.pstdev(values):.2f}"


def benchmark(config: str, seeds: list[int], extra: list[str]) -> None:
    results = {m: [run(config, m, seed, extra) for seed in seeds] for m in METHODS}
    accuracy = {m: {g: [r[f"eval/{g}_accuracy"] for r, _ in runs] for g in ("seen", "held_out")}
                for m, runs in results.items()}
    sizes = {m: runs[0][1] for m, runs in results.items()}
    base = {g: [r[f"eval/base_{g}_accuracy"] for r, _ in results["generated"]] for g in ("seen", "held_out")}
    print(f"\n{config} (seeds {', '.join(map(str, seeds))})\n")
    print("| approach | seen tasks | held-out tasks | trainable parameters |\n|---|---|---|---|")
    print(f"| frozen base model | {mean_std(base['seen'])} | {mean_std(base['held_out'])} | 0 |")
    for method, label in METHODS.items():
        print(f"| {label} | {mean_std(accuracy[method]['seen'])} | {mean_std(accuracy[method]['held_out'])} "
              f"| {sizes[method]:,} |")
    gap = {g: 100 * (statistics.mean(accuracy["per_task"][g]) - statistics.mean(accuracy["generated"][g]))
           for g in ("seen", "held_out")}
    checks = [("seen: generated within 1 point of per-task adapters", gap["seen"] <= 1, f"{gap['seen']:.2f} points"),
              ("held-out: generated within 3 points of per-task adapters", gap["held_out"] <= 3,
               f"{gap['held_out']:.2f} points"),
              ("generator smaller than the per-task adapters together", sizes["generated"] < sizes["per_task"],
               f"{sizes['generated']:,} vs {sizes['per_task']:,}")]
    print("\n| target | met | measured |\n|---|---|---|")
    for name, met, measured in checks:
        print(f"| {name} | {'yes' if met else 'no'} | {measured} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="tune on 10 and up; report from 0")
    parser.add_argument("--configs", nargs="+", default=CONFIGS, choices=CONFIGS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of every config")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    for config in args.configs:
        benchmark(config, seeds, [f"train.threads={args.threads}", *args.set])


if __name__ == "__main__":
    main()
