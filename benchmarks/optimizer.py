"""Time of one AdamW step on the trainable parameters of packaged recipes: torch's per-tensor loop,
``foreach`` and ``fused`` (what :func:`hyperkit.engine.build_optimizer` picks on CPU and CUDA).

    python benchmarks/optimizer.py [--configs uhn/digits_mlp direct/digits_mlp] [--repeats 200]

Generators are many small tensors, so the per-tensor bookkeeping of the non-fused updates, not
their arithmetic, sets the step time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from hyperkit.recipes import load_recipe

IMPLEMENTATIONS = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def step_ms(params: list[torch.Tensor], options: dict, repeats: int) -> float:
    optimizer = torch.optim.AdamW(params, lr=1e-6, **options)
    for _ in range(20):
        optimizer.step()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        optimizer.step()
        samples.append(time.perf_counter() - start)
    return 1000 * statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="*", default=["uhn/digits_mlp", "uhn/digits_cnn", "direct/digits_mlp"])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats} steps\n")
    print("| config | tensors | parameters | " + " | ".join(f"{k} (ms)" for k in IMPLEMENTATIONS)
          + " | foreach / fused |")
    print("|---|---|---|" + "---|" * len(IMPLEMENTATIONS) + "---|")
    for config in args.configs:
        module = load_recipe(config, ["out=/tmp/unused"]).setup(torch.device("cpu"))
        params = [p for p in module.parameters() if p.requires_grad]
        for p in params:
            p.grad = torch.randn_like(p)
        times = {name: step_ms(params, options, args.repeats) for name, options in IMPLEMENTATIONS.items()}
        print(f"| {config} | {len(params)} | {sum(p.numel() for p in params):,} | "
              + " | ".join(f"{t:.3f}" for t in times.values()) + f" | {times['foreach'] / times['fused']:.1f}× |",
              flush=True)


if __name__ == "__main__":
    main()
