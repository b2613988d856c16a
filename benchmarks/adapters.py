"""Generated adapters for a family of tasks against per-task adapters and full fine-tuning.

    python benchmarks/adapters.py [--seeds 3] [--first-seed 0] [--configs rotated_digits_mlp ...]
                                  [--threads 1] [--set adapter.alpha=16 ...]
                                  [--methods generated per_task ...] [--results runs.json]

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

``--results FILE`` keeps every finished run (config, method, seed, overrides → metrics, trainable
parameters, seconds) in a JSON file and reuses it, so the methods can run in separate processes
(``--methods``) and a last call prints the whole table. The table needs every method; the
targets need ``generated`` and ``per_task``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hyperkit.engine.trainer import train
from hyperkit.recipes import load_recipe

CONFIGS = ["rotated_digits_mlp", "rotated_digits_cnn", "sequence_keywords"]
METHODS = {"generated": "generated adapters", "per_task": "per-task adapters",
           "finetune": "full fine-tuning per task"}


def run(config: str, method: str, seed: int, extra: list[str], results: Path | None = None
        ) -> tuple[dict[str, float], int]:
    """The final metrics of one run and its trainable parameters for the whole family (read from
    ``results`` when that file already holds the run, added to it otherwise). A baseline that
    trained fewer tasks than the family has (``baseline_seen``) counts its per-task numbers once
    for every task of the family."""
    key = json.dumps([config, method, seed, extra])
    stored = json.loads(results.read_text()) if results is not None and results.is_file() else {}
    if key in stored:
        return stored[key]["metrics"], stored[key]["trainable_parameters"]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        overrides = [f"out={out}", f"method={method}", f"train.seed={seed}", "train.eval_every=0",
                     "train.checkpoint_every=0", "train.progress=false", *extra]
        result = train(load_recipe(f"adapters/{config}", overrides))
        recipe = load_recipe(f"adapters/{config}", overrides)
        size = recipe.setup(torch.device("cpu")).trainable_parameters()
        if method != "generated":  # every task of the family: the listed, drawn and held-out ones
            tasks = recipe.config.tasks
            size = size // len(recipe.task_parameters) * (len(tasks.train) + tasks.draw + len(tasks.held_out))
    seconds = time.perf_counter() - start
    print(f"{config} {method} seed {seed}: seen {100 * result['eval/seen_accuracy']:.2f}, held-out "
          f"{100 * result['eval/held_out_accuracy']:.2f}, {size:,} trainable, {seconds:.0f} s", flush=True)
    if results is not None:  # re-read: another process may have added runs meanwhile
        stored = json.loads(results.read_text()) if results.is_file() else {}
        metrics = {k: v for k, v in result.items() if isinstance(v, (int, float))}
        stored[key] = {"metrics": metrics, "trainable_parameters": size, "seconds": round(seconds, 1)}
        results.write_text(json.dumps(stored, indent=1))
    return result, size


def mean_std(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.pstdev(values):.2f}"


def benchmark(config: str, seeds: list[int], extra: list[str], methods: list[str] | None = None,
              stored: Path | None = None) -> None:
    results = {m: [run(config, m, seed, extra, stored) for seed in seeds] for m in methods or METHODS}
    if set(results) != set(METHODS):
        return  # a part of the table: its runs are printed (and kept in --results)
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
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--results", type=Path, help="JSON file keeping finished runs, reused when rerun")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    for config in args.configs:
        benchmark(config, seeds, [f"train.threads={args.threads}", *args.set], args.methods, args.results)


if __name__ == "__main__":
    main()
