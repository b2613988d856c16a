"""Recursive hypernetworks on the digits MLP: accuracy for K = 0 … 3 intermediate generators, and
the same chains without the top-down init (UHN reports divergence without it).

    python benchmarks/recursive.py [--seeds 3] [--depths 0 1 2 3] [--threads 1] [--jobs 2]
                                   [--set train.steps=2000 ...]

Runs are independent: ``--jobs 2`` trains two at a time in separate processes. On the 2-core CPU a
one-thread K = 0 run beside another took 22 s, a two-thread run alone 23 s, so two jobs nearly
halve the benchmark's wall time. ``--set`` overrides every run's config.

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


def run(depth: int, seed: int, init: bool, threads: int, extra: list[str]) -> tuple[float, float]:
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as out:
        overrides = [f"out={out}", f"train.seed={seed}", "train.eval_every=0", "train.checkpoint_every=0",
                     "train.progress=false", *extra] + ([] if init else ["init.steps_per_level=0"])
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
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every run, e.g. train.steps=2000")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {args.jobs} jobs x {args.threads} threads, seeds 0..{args.seeds - 1}, "
          f"overrides: {' '.join(args.set) or 'none'}\n")
    with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
        futures = {(depth, seed, init): pool.submit(run, depth, seed, init, args.threads, args.set)
                   for depth in args.depths for init in (True, False) for seed in range(args.seeds)}
        print("| K | with init: acc (%) | drop from K=0 | allowed | without init: acc (%) | time per run (s) |")
        print("|---|---|---|---|---|---|")
        base = None
        for depth in args.depths:
            with_init = [futures[depth, seed, True].result() for seed in range(args.seeds)]
            without = [futures[depth, seed, False].result() for seed in range(args.seeds)]
            acc = [a for a, _ in with_init]
            mean = statistics.mean(acc)
            base = mean if depth == 0 else base
            drop = "" if base is None or depth == 0 else f"{base - mean:+.2f}"
            allowed = {1: "≤ 0.5", 2: "≤ 1.0", 3: "≤ 1.5"}.get(depth, "")
            no_init = [a for a, _ in without]
            print(f"| {depth} | {mean:.2f} ± {statistics.pstdev(acc):.2f} | {drop} | {allowed} | "
                  f"{statistics.mean(no_init):.2f} ± {statistics.pstdev(no_init):.2f} | "
                  f"{statistics.median(t for _, t in with_init):.0f} |", flush=True)


if __name__ == "__main__":
    main()
