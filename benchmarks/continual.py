"""Continual learning on split and permuted digits: the task-conditioned hypernetwork with the
output regulariser against fine-tuning in sequence and joint training of every task at once.

    python benchmarks/continual.py [--seeds 0 1 2] [--benchmarks split permuted]
                                   [--methods hypernetwork finetune joint] [--threads 1]
                                   [--set beta=0.05 ...]

Each benchmark runs the packaged ``continual/<benchmark>_digits`` config with ``method=…`` for every
seed and prints, per method: each task's test accuracy after the last task, their mean, the mean
forgetting over the tasks before the last (each task's best accuracy at the end of any task minus
its final one), trainable parameters and wall time per run; mean ± std (population) over seeds.
Task identity is given at test time. ``--set`` overrides the hypernetwork's config (tuning).

Targets: split digits within 1 point of joint training with mean forgetting ≤ 0.5 point;
permuted digits within 2 points of joint training.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from hyperkit.engine.trainer import train
from hyperkit.recipes import load_recipe

CONFIGS = {"split": "continual/split_digits", "permuted": "continual/permuted_digits"}
# (points behind joint training, mean forgetting in points or None)
TARGETS = {"split": (1.0, 0.5), "permuted": (2.0, None)}


def run(config: str, method: str, seed: int, threads: int | None, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        overrides = [f"out={out}", f"method={method}", f"train.seed={seed}", "train.checkpoint_every=0",
                     "train.progress=false", *([f"train.threads={threads}"] if threads else []),
                     *(extra if method == "hypernetwork" else [])]
        recipe = load_recipe(config, overrides)
        started = time.perf_counter()
        result = train(recipe)
        module = recipe.module
        result["parameters"] = sum(p.numel() for p in module.parameters() if p.requires_grad)
        result["seconds"] = time.perf_counter() - started
        result["num_tasks"] = recipe.config.tasks.num_tasks
        return result


def mean_std(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    return f"{scale * statistics.mean(values):.{digits}f} ± {scale * statistics.pstdev(values):.{digits}f}"


def benchmark(name: str, methods: list[str], seeds: list[int], threads: int | None, extra: list[str]) -> None:
    results = {m: [run(CONFIGS[name], m, s, threads, extra) for s in seeds] for m in methods}
    num_tasks = next(iter(results.values()))[0]["num_tasks"]
    print(f"\n### {name} digits ({num_tasks} tasks), seeds {' '.join(map(str, seeds))}\n")
    header = [f"task {k}" for k in range(num_tasks)]
    print("| method | " + " | ".join(header) + " | mean accuracy (%) | mean forgetting (points) | parameters | "
          "seconds per run |")
    print("|---|" + "---|" * (len(header) + 4))
    for method, rows in results.items():
        tasks = [mean_std([r[f"eval/task{k}_accuracy"] for r in rows], digits=1) for k in range(num_tasks)]
        print(f"| {method} | " + " | ".join(tasks) + f" | {mean_std([r['eval/accuracy'] for r in rows])} | "
              f"{mean_std([r['eval/forgetting'] for r in rows])} | {rows[0]['parameters']:,} | "
              f"{statistics.mean(r['seconds'] for r in rows):.0f} |")
    if {"hypernetwork", "joint"} <= results.keys():
        behind, forgetting = TARGETS[name]
        gap = 100 * (statistics.mean(r["eval/accuracy"] for r in results["joint"])
                     - statistics.mean(r["eval/accuracy"] for r in results["hypernetwork"]))
        forgot = 100 * statistics.mean(r["eval/forgetting"] for r in results["hypernetwork"])
        met = gap <= behind and (forgetting is None or forgot <= forgetting)
        wanted = f"within {behind} point(s) of joint" + (f", forgetting ≤ {forgetting}" if forgetting else "")
        print(f"\nTarget ({wanted}): hypernetwork {gap:.2f} points behind joint, forgetting {forgot:.2f} "
              f"points: {'met' if met else 'NOT met'}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--benchmarks", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--methods", nargs="*", default=["hypernetwork", "finetune", "joint"],
                        choices=["hypernetwork", "finetune", "joint"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides of the hypernetwork's config")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.benchmarks:
        benchmark(name, args.methods, args.seeds, args.threads, args.set)


if __name__ == "__main__":
    main()
