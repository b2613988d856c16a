"""Multi-model and multi-task generation against single-model generators and direct training.

    python benchmarks/multi.py [--seeds 3] [--parts families tasks speed] [--families cnn_digits_family]
                               [--threads 1] [--set generator.fourier_features=128 ...]

- families: for each packaged ``multi_model`` config, test accuracy (mean ± std over seeds) on
  seen, interpolation and extrapolation members, next to direct training of the held-out members;
  then each held-out member, generated and trained directly;
- tasks: each task's accuracy for the ``multi_task/vision_graph_text`` generator, the single-task
  ``uhn`` generator and direct training;
- speed: forward + backward time per model of ``Generator.generate_many`` against one target at a
  time, over the training members of each family.

``--threads`` fixes torch's thread count: results of one seed differ between thread counts (the
CNN family's interpolation accuracy, seed 0: 93.06 % at one thread, 86.69 % at two), so compare
variants at one count. ``--set`` overrides the ``multi_model`` configs of the families part.

Targets: held-out interpolation within 1 point of seen; multi-task within 1.5 points of
single-task on every task; batched generation at least 2x faster per model.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import hyperkit
from hyperkit.engine.trainer import train
from hyperkit.recipes import load_recipe

FAMILY_CONFIGS = {"mlp_digits_family": "multi_model/digits_mlp", "cnn_digits_family": "multi_model/digits_cnn",
                  "transformer_family": "multi_model/transformer"}
SINGLE = {"digits_cnn": "digits_cnn", "sbm_gcn": "gcn", "sequence_transformer": "transformer"}


def run(config: str, seed: int, target: dict | None = None, extra: list[str] = ()) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        recipe = load_recipe(config, [f"out={out}", f"train.seed={seed}", "train.eval_every=0",
                                      "train.checkpoint_every=0", "train.progress=false", *extra])
        if target is not None:
            recipe.config.target = target
        return train(recipe)


def mean_std(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.pstdev(values):.2f}"


def members(config: str, extra: list[str] = ()) -> dict[str, list]:
    """The family members a ``multi_model`` config (with overrides ``extra``) trains on and holds
    out, as its recipe splits them (``seen``, ``interpolation``, ``extrapolation``)."""
    recipe = load_recipe(config, ["out=/tmp/unused", *extra])
    recipe.setup(torch.device("cpu"))
    return recipe.groups


def families(seeds: int, names: list[str], extra: list[str]) -> None:
    rows, detail = [], []
    for family, config in FAMILY_CONFIGS.items():
        if family not in names:
            continue
        results = [run(config, seed, extra=extra) for seed in range(seeds)]
        held_out = members(config, extra)["interpolation"]
        data = "direct/transformer" if "transformer" in family else "direct/digits_mlp"
        direct = {m.label: [run(data, seed, {"name": m.target, **{k: list(v) if isinstance(v, tuple) else v
                                                                   for k, v in m.arguments}})["eval/accuracy"]
                            for seed in range(seeds)] for m in held_out}
        cells = [mean_std([r[f"eval/{g}_accuracy"] for r in results]) for g in ("seen", "interpolation", "extrapolation")]
        rows.append(f"| {family} | " + " | ".join(cells) + f" | {mean_std(sum(direct.values(), []))} |")
        detail += [f"| {family} | {m.label} | {mean_std([r[f'eval/interpolation_accuracy/{m.label}'] for r in results])} "
                   f"| {mean_std(direct[m.label])} |" for m in held_out]
    print("| family | seen | interpolation | extrapolation | direct (held-out members) |\n|---|---|---|---|---|")
    print("\n".join(rows) + "\n\nEach held-out (interpolation) member, generated and trained directly:\n")
    print("| family | member | generated | direct |\n|---|---|---|---|\n" + "\n".join(detail), flush=True)


def tasks(seeds: int) -> None:
    multi = [run("multi_task/vision_graph_text", seed) for seed in range(seeds)]
    print("| task | multi-task | single-task UHN | direct |\n|---|---|---|---|")
    for task, single in SINGLE.items():
        uhn = [run(f"uhn/{single}", seed)["eval/accuracy"] for seed in range(seeds)]
        direct = [run(f"direct/{single}", seed)["eval/accuracy"] for seed in range(seeds)]
        print(f"| {task} | {mean_std([r[f'eval/{task}_accuracy'] for r in multi])} | {mean_std(uhn)} | "
              f"{mean_std(direct)} |", flush=True)


def speed() -> None:
    sizes = {"mlp_digits": dict(in_features=64, num_classes=10), "cnn_digits": dict(num_classes=10),
             "transformer_tiny": dict(vocab_size=64, num_classes=4)}
    print("| family | shared trunk | models | trunk rows (distinct) | batched (ms/model) | one at a time (ms/model) "
          "| speed-up |\n|---|---|---|---|---|---|---|")
    for family, config in FAMILY_CONFIGS.items():
        specs = [hyperkit.describe(m.build(**sizes[m.target])) for m in members(config)["seen"]]
        for shared in (False, True):
            torch.manual_seed(0)
            generator = hyperkit.Generator(specs, head="lowrank", width=64, fourier_features=512, rank=64,
                                           structure_encoder=True, shared_trunk=shared)
            plan = generator.head.plan(generator, generator.plans.merged(specs))
            rows = len(plan["tensor"])
            distinct = len(plan["shared"]["tensor"]) if shared else rows  # one representative per distinct row

            def batched():
                sum(p.sum() for d in generator.generate_many(specs) for p in d.values()).backward()

            def single():
                for spec in specs:
                    sum(p.sum() for p in generator(spec).values()).backward()

            times = {}
            for name, fn in (("batched", batched), ("single", single)):
                fn()
                samples = []
                for _ in range(10):
                    start = time.perf_counter()
                    fn()
                    samples.append(time.perf_counter() - start)
                times[name] = 1000 * statistics.median(samples) / len(specs)
            print(f"| {family} | {'yes' if shared else 'no'} | {len(specs)} | {rows} ({distinct}) | {times['batched']:.2f} "
                  f"| {times['single']:.2f} | {times['single'] / times['batched']:.2f}× |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--parts", nargs="*", default=["families", "tasks", "speed"])
    parser.add_argument("--families", nargs="*", default=list(FAMILY_CONFIGS), choices=list(FAMILY_CONFIGS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides of the families' multi_model configs, e.g. generator.rank=16")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, seeds 0..{args.seeds - 1}, "
          f"overrides: {' '.join(args.set) or 'none'}\n")
    for part in args.parts:
        {"families": lambda: families(args.seeds, args.families, args.set), "tasks": lambda: tasks(args.seeds), "speed": speed}[part]()
        print()


if __name__ == "__main__":
    main()
