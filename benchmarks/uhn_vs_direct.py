"""UHN (a generator emits every weight) against direct training of the same target.

For each packaged task config (digits MLP, digits CNN, GCN and GAT on the generated SBM graph,
transformer on the generated sequence task) both recipes run with their own config for several
seeds; the table gives test accuracy (mean ± std) and the wall time of the whole run (data, the
statistics-matching init for UHN, training and the final evaluation; no intermediate evaluation or
checkpoints).

    python benchmarks/uhn_vs_direct.py [--seeds 3] [--tasks digits_mlp gcn] [--threads 2]

Targets: UHN within 0.5 points of direct on the digits MLP and CNN, within 2 points on the graph
and text targets, at no more than 5x direct's wall time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from hyperkit.engine.trainer import train
from hyperkit.recipes import load_recipe

TASKS = {"digits_mlp": 0.5, "digits_cnn": 0.5, "gcn": 2.0, "gat": 2.0, "transformer": 2.0}  # allowed gap, points


def run(recipe: str, task: str, seed: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as out:
        overrides = [f"out={out}", f"train.seed={seed}", "train.eval_every=0", "train.checkpoint_every=0",
                     "train.progress=false"]
        start = time.perf_counter()
        result = train(load_recipe(f"{recipe}/{task}", overrides))
        return 100 * result["eval/accuracy"], time.perf_counter() - start


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, seeds 0..{args.seeds - 1}\n")
    print("| task | direct acc (%) | UHN acc (%) | gap (pts) | allowed | direct time (s) | UHN time (s) | time ratio | met |")
    print("|---|---|---|---|---|---|---|---|---|")
    for task in args.tasks:
        results = {r: [run(r, task, seed) for seed in range(args.seeds)] for r in ("direct", "uhn")}
        acc = {r: [a for a, _ in v] for r, v in results.items()}
        secs = {r: statistics.median(t for _, t in v) for r, v in results.items()}
        gap = statistics.mean(acc["direct"]) - statistics.mean(acc["uhn"])
        ratio = secs["uhn"] / secs["direct"]
        met = "yes" if gap <= TASKS[task] and ratio <= 5 else "no"
        print(f"| {task} | {mean_std(acc['direct'])} | {mean_std(acc['uhn'])} | {gap:+.2f} | ≤ {TASKS[task]} | "
              f"{secs['direct']:.1f} | {secs['uhn']:.1f} | {ratio:.1f}× | {met} |", flush=True)


if __name__ == "__main__":
    main()
