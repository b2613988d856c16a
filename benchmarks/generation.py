"""Generation speed and memory per head and target size.

    python benchmarks/generation.py            # full table (about 2 minutes on 2 cores)
    python benchmarks/generation.py --quick    # small targets only

Each configuration runs in a fresh subprocess so that its peak resident memory (ru_maxrss minus
the process's resident size before generating) is its own. Generation runs at UHN's default size
(2048 Fourier features, width 128, 2 residual blocks); "train" rows time forward + backward with
chunked activation checkpointing, "infer" rows a forward pass under no_grad. Achieved GFLOP/s counts
the trunk and head matmuls only (the dominant cost) and stands next to a 2048² fp32 matmul measured
in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

TARGETS = {  # name → (registered target, kwargs)
    "mlp 131": ("mlp_tiny", {}),
    "mlp 9K": ("mlp_digits", {}),
    "cnn 95K": ("cnn_cifar", {}),
    "mlp 670K (784-512-512-10)": ("mlp_mnist", {}),
}
QUICK = ["mlp 131", "mlp 9K"]
GEN = dict(width=128, num_blocks=2, fourier_features=2048, rank=8, chunk_size=65536)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def trunk_flops(gen, spec) -> float:
    """Matmul FLOPs of one generation: trunk evaluations × per-evaluation cost (+ U·Vᵀ)."""
    w = gen.width
    per_eval = len(gen.trunk.blocks) * 2 * 2 * w * w
    if gen.head.generates_positions:  # the scalar head: one trunk pass per weight
        return spec.num_weights * (per_eval + 2 * w)
    evals = flops = 0
    for p in spec.params.values():
        rows = p.shape[0] if p.shape else 1
        cols = p.numel // rows if len(p.shape) > 1 else 0
        evals += rows + cols
        flops += 2 * rows * cols * gen.rank + 2 * w * gen.rank * (rows + cols)
    return evals * per_eval + flops


def run_one(target: str, head: str, mode: str, repeats: int) -> dict:
    import hyperkit

    torch.manual_seed(0)
    model = hyperkit.create_target(*TARGETS[target][:1], **TARGETS[target][1])
    spec = hyperkit.describe(model)
    gen = hyperkit.Generator(spec, head=head, checkpoint=(mode == "train"), **GEN)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if mode == "train":
            gen.flat(spec).square().mean().backward()
        else:
            with torch.no_grad():
                gen.flat(spec)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    t = statistics.median(times)
    flops = trunk_flops(gen, spec) * (3 if mode == "train" else 1)  # backward ≈ 2× forward
    return {"target": target, "head": head, "mode": mode, "target_params": spec.num_weights,
            "generator_params": sum(p.numel() for p in gen.parameters()), "seconds": t,
            "weights_per_s": spec.num_weights / t, "gflops": flops / t / 1e9, "peak_mb": peak / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--one", nargs=3, metavar=("TARGET", "HEAD", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args.repeats)))
        return
    mm = matmul_gflops()
    rows = []
    for target in (QUICK if args.quick else TARGETS):
        for head in ("scalar", "lowrank", "flat"):
            if head == "flat" and TARGETS[target][0] == "mlp_mnist":
                continue  # a 670K × 128 output layer is the flat head's cost; shown on smaller targets
            for mode in ("infer", "train"):
                out = subprocess.run([sys.executable, __file__, "--one", target, head, mode,
                                      "--repeats", str(args.repeats)], capture_output=True, text=True, check=True)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"  done: {target} {head} {mode}", file=sys.stderr, flush=True)
    print_table(rows, mm, matmul_gflops())


def print_table(rows: list[dict], mm_before: float, mm_after: float) -> None:
    print(f"\nfp32 2048² matmul: {mm_before:.1f} GFLOP/s before, {mm_after:.1f} after; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    head = ("target", "head", "mode", "target params", "gen params", "time (s)", "weights/s",
            "GFLOP/s", "% matmul", "peak MB")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print(f"| {r['target']} | {r['head']} | {r['mode']} | {r['target_params']:,} | {r['generator_params']:,} "
              f"| {r['seconds']:.4f} | {r['weights_per_s']:.3g} | {r['gflops']:.1f} | "
              f"{100 * r['gflops'] / mm_before:.0f}% | {r['peak_mb']:.0f} |")
    by = {(r["target"], r["head"], r["mode"]): r["seconds"] for r in rows}
    for target in dict.fromkeys(r["target"] for r in rows):
        s, l = by.get((target, "scalar", "infer")), by.get((target, "lowrank", "infer"))
        if s and l:
            print(f"\n{target}: low-rank head {s / l:.0f}× faster than scalar (inference)", end="")
    print()


if __name__ == "__main__":
    main()
