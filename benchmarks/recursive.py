"""Recursive hypernetworks on the digits MLP: accuracy for K = 0 … 3 intermediate generators, and
the same chains without the top-down init (UHN reports divergence without it), and without both
the init and the statistics loss that the configs keep in training (``stats_weight``).

    python benchmarks/recursive.py [--seeds 3] [--depths 0 1 2 3] [--threads 1] [--jobs 2]
                                   [--variants init no_init neither] [--set train.steps=2000 ...]

Runs are independent: ``--jobs 2`` trains two at a time in separate processes. On the 2-core CPU a
one-thread K = 0 run beside another took 22 s, a two-thread run alone 23 s, so two jobs nearly
halve the benchmark's wall time. ``--set`` overrides every run's config. On the packaged configs
(K = 2 and 3 train 3000 steps) each variant takes about half an hour with ``--jobs 2``.

Target: the drop from K = 0 at most 0.5, 1.0 and 1.5 points for K = 1, 2, 3.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import statistics
import tempfile
import time

import torch

from hyperkit.engine.trainer import NonFiniteLoss, train
from hyperkit.recipes import load_recipe


VARIANTS = {"init": [], "no_init": ["init.steps_per_level=0"], "neither": ["init.steps_per_level=0", "stats_weight=0"]}
HEADERS = {"init": "with init: acc (%)", "no_init": "without init: acc (%)",
           "neither": "without init or stats loss: acc (%)"}


def run(depth: int, seed: int, variant: str, threads: int, extra: list[str]) -> tuple[float, float]:
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as out:
        overrides = [f"out={out}", f"train.seed={seed}", "train.eval_every=0", "train.checkpoint_every=0",
                     "train.progress=false", *extra, *VARIANTS[variant]]
        start = time.perf_counter()
        try:
            accuracy = 100 * train(load_recipe(f"recursive/k{depth}", overrides))["eval/accuracy"]
        except NonFiniteLoss:
            accuracy = math.nan  # diverged
        return accuracy, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--depths", type=int, nargs="*", default=[0, 1, 2, 3])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at the same time")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS),
                        help="init: the configs; no_init: no init phase; neither: no init phase, stats_weight 0")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every run, e.g. train.steps=2000")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {args.jobs} jobs x {args.threads} threads, seeds 0..{args.seeds - 1}, "
          f"overrides: {' '.join(args.set) or 'none'}\n")
    with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
        futures = {(depth, seed, variant): pool.submit(run, depth, seed, variant, args.threads, args.set)
                   for depth in args.depths for variant in args.variants for seed in range(args.seeds)}
        first = args.variants[0]
        columns = [HEADERS[first], "drop from K=0", "allowed"] + [HEADERS[v] for v in args.variants[1:]]
        print("| K | " + " | ".join(columns) + " | time per run (s) |")
        print("|---" * (len(columns) + 2) + "|")
        base = None
        for depth in args.depths:
            results = {v: [futures[depth, seed, v].result() for seed in range(args.seeds)] for v in args.variants}
            cells = {v: [a for a, _ in r] for v, r in results.items()}
            mean = statistics.mean(cells[first])
            base = mean if depth == 0 else base
            drop = "" if base is None or depth == 0 else f"{base - mean:+.2f}"
            allowed = {1: "≤ 0.5", 2: "≤ 1.0", 3: "≤ 1.5"}.get(depth, "")
            shown = [f"{statistics.mean(a):.2f} ± {statistics.pstdev(a):.2f}" for a in cells.values()]
            print(f"| {depth} | {shown[0]} | {drop} | {allowed} | " + "".join(f"{c} | " for c in shown[1:])
                  + f"{statistics.median(t for _, t in results[first]):.0f} |", flush=True)


if __name__ == "__main__":
    main()
