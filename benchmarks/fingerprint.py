"""Fingerprint of hyperkit's behaviour, to show that a restructuring changed nothing.

For every registered target and head (scalar, low-rank, and flat for targets of at most 50,000
weights), a seeded generator's weights are hashed twice: as built, and after 5 steps of the
statistics-matching init (which samples positions, so it covers the heads' sampling too). Every
packaged debug config runs 6 steps and its final metrics are recorded. One thread, CPU; compare
fingerprints taken on one machine with one torch.

    python benchmarks/fingerprint.py > after.json
    python benchmarks/fingerprint.py --compare benchmarks/fingerprint_baseline.json

Prints JSON, or with ``--compare`` the entries that differ (exit status 1 if any).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile

import torch

import hyperkit
from hyperkit.engine.trainer import train
from hyperkit.recipes import list_configs, load_recipe

FLAT_LIMIT = 50_000


def digest(params: dict[str, torch.Tensor]) -> str:
    hasher = hashlib.sha256()
    for name in sorted(params):
        hasher.update(name.encode())
        hasher.update(params[name].detach().contiguous().numpy().tobytes())
    return hasher.hexdigest()[:16]


def generated() -> dict[str, str]:
    out = {}
    for name in hyperkit.list_targets():
        spec = hyperkit.describe(hyperkit.create_target(name))
        heads = ["scalar", "lowrank"] + (["flat"] if spec.num_weights <= FLAT_LIMIT else [])
        for head in heads:
            torch.manual_seed(0)
            gen = hyperkit.Generator(spec, head=head, width=32, num_blocks=1, fourier_features=64, rank=4, seed=0)
            with torch.no_grad():
                out[f"{name}/{head}"] = digest(gen(spec))
            hyperkit.init_statistics(gen, spec, steps=5, lr=1e-3, sample=256, check_every=5, seed=0)
            with torch.no_grad():
                out[f"{name}/{head}/init"] = digest(gen(spec))
    return out


def recipes() -> dict[str, dict[str, float]]:
    out = {}
    for config in [c for c in list_configs() if "debug" in c]:
        overrides = [f"out={tempfile.mkdtemp()}", "train.steps=6", "train.warmup_steps=1", "train.eval_every=6",
                     "train.checkpoint_every=6", "train.log_every=3", "train.threads=1", "train.progress=false"]
        if config.startswith("continual/"):  # each task is evaluated at its end: one task of 6 steps
            overrides.append("steps_per_task=6")
        result = train(load_recipe(config, overrides))
        out[config] = {k: round(v, 10) for k, v in result.items() if k.startswith("eval/")}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", metavar="JSON", help="a fingerprint to compare with")
    parser.add_argument("--only", choices=["generated", "recipes"], help="one part only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print_ = (lambda *a, **k: None) if args.compare else print
    fingerprint = {}
    if args.only in (None, "generated"):
        fingerprint["generated"] = generated()
    if args.only in (None, "recipes"):
        fingerprint["recipes"] = recipes()
    print_(json.dumps(fingerprint, indent=1, sort_keys=True))
    if not args.compare:
        return 0
    with open(args.compare) as file:
        old = json.load(file)
    differ = [f"{part}/{key}: {old[part][key]} → {value}" for part, entries in fingerprint.items()
              for key, value in entries.items() if key in old.get(part, {}) and old[part][key] != value]
    new = [f"{part}/{key}" for part, entries in fingerprint.items() for key in entries if key not in old.get(part, {})]
    compared = sum(map(len, fingerprint.values())) - len(new)
    print("\n".join(differ) if differ else f"identical: {compared} entries")
    if new:
        print(f"not in {args.compare} (new; add them by writing a fresh fingerprint): {', '.join(new)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
